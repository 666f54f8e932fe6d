"""The tutorial way to serve a Keras model: `model.predict` inside a Flask handler.

Only the baseline of `benchmarks/spine.py`; never use this to serve.

    python benchmarks/flask_baseline.py MODEL.keras PORT
"""

import sys

import keras
import numpy as np
from flask import Flask, jsonify, request

model = keras.saving.load_model(sys.argv[1])
app = Flask(__name__)


@app.post("/v1/models/<name>:predict")
def predict(name):
    instances = np.array(request.get_json()["instances"], dtype="float32")
    return jsonify({"predictions": model.predict(instances, verbose=0).tolist()})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
