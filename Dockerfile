# The journeys worker (and every other `journeys` command): the package installed the way
# the README says, `pip install .`, on a pinned Python, with the versions constraints.txt pins.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY pipeline ./pipeline
# The event contract's JSON Schemas: pipeline/contract/schemas links here.
COPY schemas ./schemas
# Server mode only: no `[embedded]` extra, so not chdb's 534 MB. Same pins as `make install`.
RUN pip install -c constraints.txt .

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
