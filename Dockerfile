# One image for every role: `mishards node ...` (and, as the cluster grows, `mishards proxy|up`).
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY milvus_wire ./milvus_wire
COPY coordinator ./coordinator
COPY node ./node
COPY mishards ./mishards
# annoy builds from source; keep it portable (its default is -march=native).
ENV ANNOY_COMPILER_ARGS="-O3,-ffast-math,-fno-associative-math,-D_CRT_SECURE_NO_WARNINGS,-DANNOYLIB_MULTITHREADED_BUILD"
RUN pip install --no-cache-dir . && apt-get purge -y g++ && apt-get autoremove -y

RUN useradd --create-home --uid 10001 mishards && mkdir -p /var/lib/mishards && chown mishards /var/lib/mishards
USER mishards
ENV OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
EXPOSE 19530
VOLUME ["/var/lib/mishards"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
c=grpc.insecure_channel('127.0.0.1:19530'); \
sys.exit(0 if g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2).status == 1 else 1)"
ENTRYPOINT ["mishards"]
CMD ["node", "--role", "standalone", "--host", "0.0.0.0", "--port", "19530", "--storage-path", "/var/lib/mishards"]
