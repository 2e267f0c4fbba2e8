#!/usr/bin/env bash
# Creates fraudstream's topics on the compose Kafka (idempotent: --if-not-exists), then exits 0.
# Runs in the apache/kafka image as the one-shot `kafka-init` service; the worker starts after it.
set -euo pipefail

BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
PARTITIONS="${FRAUDSTREAM_PARTITIONS:-4}"
TOPICS=/opt/kafka/bin/kafka-topics.sh

create() {
  local topic="$1" partitions="$2"
  shift 2
  "$TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor 1 "$@"
}

# Producers key transactions by userId; the worker's per-user state is partitioned like this
# topic, so FRAUDSTREAM_PARTITIONS must equal its partition count (the worker uses the same value).
create transactions-input "$PARTITIONS"
create fraud-alerts "$PARTITIONS"
create transactions-dlq "$PARTITIONS"
# Labels are keyed by userId like the transactions and read by the same worker: same partitions.
create fraud-labels "$PARTITIONS"
create fraud-alerts-shadow "$PARTITIONS"
# Rule definitions, key = rule id: compacted (each rule's latest record is kept for good), one
# partition (one order for every change). A worker seeds it from the settings when it is empty.
create fraudstream-rules 1 --config cleanup.policy=compact

# An existing topic keeps its partition count: say so if it differs from FRAUDSTREAM_PARTITIONS.
actual="$("$TOPICS" --bootstrap-server "$BOOTSTRAP" --describe --topic transactions-input \
  | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)"
if [ -n "$actual" ] && [ "$actual" != "$PARTITIONS" ]; then
  echo "WARNING: transactions-input has $actual partitions, FRAUDSTREAM_PARTITIONS=$PARTITIONS" >&2
fi

"$TOPICS" --bootstrap-server "$BOOTSTRAP" --list
