# Serve a model exported by `tfdl run` with the official TensorFlow Serving image.
#
# The build context is the exported TF Serving layout (the folder holding
# <model_name>/<version>/saved_model.pb), e.g. for the default run:
#
#   docker build -f docker/tf-serving.Dockerfile --build-arg MODEL_NAME=digits \
#       -t tfdl-digits-serving runs/digits_cnn/export/serving
#   docker run --rm -p 8501:8501 -p 8500:8500 tfdl-digits-serving
#
# REST on 8501, gRPC on 8500. Pin TF_SERVING_VERSION to the TensorFlow the
# model was exported with or newer (2.20.0 is the newest release checked).
ARG TF_SERVING_VERSION=2.20.0
FROM tensorflow/serving:${TF_SERVING_VERSION}

ARG MODEL_NAME=digits
ENV MODEL_NAME=${MODEL_NAME} \
    MODEL_BASE_PATH=/models
COPY ${MODEL_NAME}/ /models/${MODEL_NAME}/
