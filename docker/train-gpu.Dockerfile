# A training image for NVIDIA GPUs: `tfdl run` on TensorFlow's official GPU image.
#
# Built from the repository root:
#
#   docker build -f docker/train-gpu.Dockerfile -t tfdl-train:gpu .
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD/runs:/work/runs" \
#       tfdl-train:gpu run configs/digits_cnn.yaml --set training.mixed_precision=auto
#
# The host needs the NVIDIA driver and the NVIDIA Container Toolkit (for
# `--gpus`); CUDA and cuDNN come with the image. Everything a run writes goes
# to /work/runs/NAME, so mount a folder there or the results stay in the
# container. `--user` makes the files written to a host folder yours; without
# it the run writes as the image's user (uid 10001), which needs write access
# to the mounted folder.
#
# A stopped container resumes: `docker stop` sends SIGTERM, the run saves its
# backup under runs/NAME/backup and exits; the same `docker run` command then
# goes on from it. Give a large model's save time with `docker stop -t 120`.
#
# Kubernetes manifests that run this image on several machines are in
# docker/k8s/.
#
# TF_VERSION pins the base image to the TensorFlow tfdl is built for (setup.cfg:
# tensorflow>=2.21,<2.22), whose CUDA and cuDNN match that TensorFlow.
ARG TF_VERSION=2.21.0
FROM tensorflow/tensorflow:${TF_VERSION}-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what `pip install` reads: a change to tests or docs does not
# invalidate the large install layer.
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY tfdl/ tfdl/
COPY configs/ configs/
COPY pipelines/ pipelines/
COPY export/ export/
COPY serving/ serving/

# The `gpu` extra is `tensorflow[and-cuda]`: TensorFlow's CUDA libraries as
# pip packages, pinned with it. Where the base image's TensorFlow already has
# them this adds nothing; `--build-arg TFDL_EXTRAS=` leaves them out and
# relies on the CUDA the base image carries.
ARG TFDL_EXTRAS=gpu
RUN python3 -m pip install "/src[${TFDL_EXTRAS}]" && tfdl --version

# A fixed uid, so a volume's permissions can be planned (Kubernetes:
# fsGroup 10001). The configs are copied beside runs/ so that the shipped
# command lines (`tfdl run configs/digits_cnn.yaml`) work as written.
RUN useradd --create-home --uid 10001 --user-group tfdl \
    && mkdir -p /work/runs \
    && cp -r /src/configs /work/configs \
    && chown -R tfdl:tfdl /work \
    && rm -rf /src

# Matplotlib (the report's plots) wants a writable config folder, and a
# `--user` other than 10001 has no writable home.
ENV MPLCONFIGDIR=/tmp/matplotlib

USER 10001
WORKDIR /work
VOLUME ["/work/runs"]

# Exec form: tfdl is PID 1 and receives `docker stop`'s SIGTERM itself.
ENTRYPOINT ["tfdl"]
CMD ["run", "configs/digits_cnn.yaml"]
