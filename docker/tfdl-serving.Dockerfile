# The tfdl REST server (`tfdl serve`) as an image, for models in the TF Serving layout.
#
# Built from the repository root; the models are mounted, not copied, so one
# image serves any model:
#
#   docker build -f docker/tfdl-serving.Dockerfile -t tfdl-serving .
#   docker run --rm -p 8501:8501 -e MODEL_NAME=digits \
#       -v "$PWD/runs/digits_cnn/export/serving:/models:ro" tfdl-serving
#
# /models/$MODEL_NAME holds numbered version folders, as for the official
# tensorflow/serving image (docker/compose.yaml runs both side by side).
# REST on 8501 (metrics at /monitoring/prometheus/metrics); 8500 is gRPC's
# port in TF Serving and is exposed for the same reason.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what `pip install` reads: a change to tests or docs does not
# invalidate the large TensorFlow layer.
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY tfdl/ tfdl/
COPY configs/ configs/
COPY pipelines/ pipelines/
COPY export/ export/
COPY serving/ serving/
RUN pip install . && rm -rf /src

# A fixed uid, so a read-only model mount's permissions can be planned; a
# home of its own, where Keras writes its config on first import.
RUN useradd --create-home --uid 10001 --user-group tfdl
USER 10001
WORKDIR /home/tfdl

ENV MODEL_NAME=model \
    MODEL_BASE_PATH=/models
EXPOSE 8501 8500

# The model status endpoint answers 200 only once the model is loaded and
# serving; start-period covers TensorFlow's import and the warm-up replay.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/v1/models/' + os.environ['MODEL_NAME'], timeout=4)"]

# `exec` makes tfdl PID 1, so `docker stop`'s SIGTERM reaches uvicorn, which
# stops accepting connections and lets requests in flight finish; a shell
# left as PID 1 would not pass the signal on, and the container would be
# killed after the stop timeout instead.
CMD ["sh", "-c", "exec tfdl serve --host 0.0.0.0 --port 8501 --model-base-path \"$MODEL_BASE_PATH/$MODEL_NAME\" --model-name \"$MODEL_NAME\""]
