#!/bin/sh
# One-shot: create the pipeline's topics (idempotent). Runs in the apache/kafka image
# after the broker is healthy; partitions and replication come from the environment.
set -eu
BIN=/opt/kafka/bin
SERVER="${KAFKA_BOOTSTRAP:-kafka:9092}"
create() {
  "$BIN/kafka-topics.sh" --bootstrap-server "$SERVER" --create --if-not-exists \
    --topic "$1" --partitions "$JOURNEYS_TOPIC_PARTITIONS" \
    --replication-factor "$KAFKA_REPLICATION_FACTOR" --config "retention.ms=$2"
}
# Touchpoints are the source of truth for replay and re-scoring: keep them long.
create "$JOURNEYS_TOPIC_TOUCHPOINTS" "$KAFKA_TOUCHPOINTS_RETENTION_MS"
create "$JOURNEYS_TOPIC_DEAD_LETTERS" "$KAFKA_TOUCHPOINTS_RETENTION_MS"
create "$JOURNEYS_TOPIC_SCORES" 604800000
create "$JOURNEYS_TOPIC_ALERTS" 604800000
"$BIN/kafka-topics.sh" --bootstrap-server "$SERVER" --list
