# One image for every role:
#   docker run mishards node --role standalone|rw|ro ...   (default: a standalone node on /var/lib/mishards)
#   docker run mishards proxy --membership ... ...
#   docker run mishards up --host 0.0.0.0                  (proxy + writer + readers in one container)
#   docker run mishards status --membership ... --meta-uri ...
# Ports: 19530 gRPC (MilvusService and grpc.health.v1.Health), 9091 Prometheus /metrics when --metrics-port 9091.
#
# Two stages: the first compiles what needs a compiler (annoy builds from source) into a virtual environment,
# the second copies that environment onto a clean base without g++.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/mishards
WORKDIR /src
COPY pyproject.toml README.md ./
COPY milvus_wire ./milvus_wire
COPY coordinator ./coordinator
COPY node ./node
COPY mishards ./mishards
COPY mishards_tools ./mishards_tools
# annoy: keep the build portable (its default is -march=native, which would tie the image to the build CPU).
ENV ANNOY_COMPILER_ARGS="-O3,-ffast-math,-fno-associative-math,-D_CRT_SECURE_NO_WARNINGS,-DANNOYLIB_MULTITHREADED_BUILD"
# EXTRAS: the optional dependency groups to install (comma separated). Empty = every group of pyproject.toml
# except "dev" (so `kubernetes`, needed by k8s:// membership, and any later group come along).
ARG EXTRAS=""
RUN extras="${EXTRAS:-$(python -c 'import tomllib; groups = tomllib.load(open("pyproject.toml", "rb"))["project"].get("optional-dependencies", {}); print(",".join(sorted(g for g in groups if g != "dev")))')}" \
    && spec=. && if [ -n "$extras" ]; then spec=".[$extras]"; fi \
    && echo "installing $spec" \
    && /opt/mishards/bin/pip install "$spec" \
    && /opt/mishards/bin/mishards --help

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mishards" \
      org.opencontainers.image.description="Distributed vector search, wire-compatible with Milvus 1.1" \
      org.opencontainers.image.licenses="Apache-2.0"
# Runtime libraries of the compiled extensions (C++ runtime, OpenMP).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libstdc++6 libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can verify it and shared volumes can be prepared for it.
RUN groupadd --system --gid 10001 mishards \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/mishards --create-home --shell /usr/sbin/nologin mishards \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/mishards
COPY --from=build /opt/mishards /opt/mishards
ENV PATH=/opt/mishards/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    OMP_WAIT_POLICY=PASSIVE
WORKDIR /var/lib/mishards
USER 10001:10001
EXPOSE 19530 9091
# The gRPC health service on 127.0.0.1:$MISHARDS_HEALTHCHECK_PORT (default 19530). Service "" is SERVING once the
# process serves; set MISHARDS_HEALTHCHECK_SERVICE=milvus.grpc.MilvusService to wait for a read-only node's warm-up.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
c = grpc.insecure_channel('127.0.0.1:' + os.environ.get('MISHARDS_HEALTHCHECK_PORT', '19530')); \
r = g.HealthStub(c).Check(h.HealthCheckRequest(service=os.environ.get('MISHARDS_HEALTHCHECK_SERVICE', '')), timeout=4); \
sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"
ENTRYPOINT ["mishards"]
CMD ["node", "--role", "standalone", "--host", "0.0.0.0", "--port", "19530", "--storage-path", "/var/lib/mishards"]
