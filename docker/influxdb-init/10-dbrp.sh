#!/usr/bin/env bash
# InfluxDB 2.x init script (mounted into /docker-entrypoint-initdb.d; runs once, right after
# DOCKER_INFLUXDB_INIT_MODE=setup created the org, the bucket and the admin token).
#
# Grafana's dashboard speaks InfluxQL: it sends /query?db=fraud-detection-bucket, and InfluxDB 2.x
# answers InfluxQL only through a DBRP mapping (database + retention policy -> bucket).
#
# * InfluxDB 2.4 and later also create a *virtual* DBRP mapping for every bucket (database = the
#   bucket's name, retention policy "autogen"), so the dashboard would work without this script.
#   Virtual mappings cannot be listed as real ones, change with the bucket's name, and do not
#   exist before 2.4.
# * This script creates the same mapping explicitly (and as the default retention policy of the
#   database): it is visible in `influx v1 dbrp list`, and it survives a bucket rename. An
#   explicit mapping takes precedence over the virtual one.
#
# The entrypoint provides INFLUX_HOST, the CLI config with the admin token, and
# DOCKER_INFLUXDB_INIT_BUCKET_ID / DOCKER_INFLUXDB_INIT_ORG.
set -euo pipefail

db="${DOCKER_INFLUXDB_INIT_BUCKET:-fraud-detection-bucket}"
if influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${db}" \
  --rp autogen \
  --default; then
  echo "DBRP mapping created: db=${db} rp=autogen -> bucket ${DOCKER_INFLUXDB_INIT_BUCKET_ID}"
else
  # Not fatal: on 2.4+ the virtual mapping still serves InfluxQL for this bucket.
  echo "WARNING: could not create the DBRP mapping for ${db}; existing mappings:" >&2
  influx v1 dbrp list --org "${DOCKER_INFLUXDB_INIT_ORG}" >&2 || true
fi
