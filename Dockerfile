# The journeys worker (and every other `journeys` command): the package installed the way
# the README says, `pip install .`, on a pinned Python, with the versions constraints.txt pins.
# A first stage with a C compiler builds the wheel, whose engine modules setup.py compiles
# with Cython (pipeline/compiled.py); the image itself carries no compiler.
FROM python:3.11.14-slim-bookworm AS wheel
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE constraints.txt ./
COPY pipeline ./pipeline
# The event contract's JSON Schemas: pipeline/contract/schemas links here.
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --no-deps -w /wheel .

FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY constraints.txt ./
COPY --from=wheel /wheel /wheel
# Server mode only: no `[embedded]` extra, so not chdb's 534 MB. Same pins as `make install`.
RUN pip install -c constraints.txt /wheel/journey_pipeline-*.whl && rm -rf /wheel

# An unprivileged user owning the state directory, so the named volume mounted there is
# writable (Docker copies the directory's ownership into a new volume).
RUN useradd --create-home --uid 10001 journeys && mkdir -p /data && chown journeys /data
USER journeys
ENV JOURNEYS_DATA_DIR=/data \
    JOURNEYS_CLICKHOUSE_MODE=server
VOLUME ["/data"]
# Faust's web server: health, counters (JSON and Prometheus text).
EXPOSE 6066
# `journeys collect`: the HTTP collector.
EXPOSE 8080

ENTRYPOINT ["journeys"]
CMD ["run"]
