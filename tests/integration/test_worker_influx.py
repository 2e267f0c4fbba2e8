"""A real worker writing to a real InfluxDB (1.6 behind the v2 proxy)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fraudstream.testing.influxdb import InfluxServer, InfluxV2Proxy
from tests.conftest import Pipeline
from tests.integration.test_worker import SEED, normal_transactions
from tests.support.influxdb import TEST_ORG, TEST_TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.influxdb]


@pytest.fixture
def influx_pipeline(
    pipeline_factory: Callable[..., Pipeline], influx_proxy: InfluxV2Proxy, influx_bucket: str
) -> Pipeline:
    """A pipeline whose workers write to the test's InfluxDB bucket."""
    return pipeline_factory(
        FRAUDSTREAM_INFLUX_ENABLED="true",
        FRAUDSTREAM_INFLUX_URL=influx_proxy.url,
        FRAUDSTREAM_INFLUX_TOKEN=TEST_TOKEN,
        FRAUDSTREAM_INFLUX_ORG=TEST_ORG,
        FRAUDSTREAM_INFLUX_BUCKET=influx_bucket,
        FRAUDSTREAM_INFLUX_FLUSH_INTERVAL="0.2",
        FRAUDSTREAM_PROGRESS_INTERVAL="0.5",
    )


def test_worker_writes_alerts_transactions_and_its_metrics(
    influx_pipeline: Pipeline, influx_server: InfluxServer, influx_bucket: str
) -> None:
    worker = influx_pipeline.start_worker()
    normals = normal_transactions(40)
    influx_pipeline.send_json([*normals, {**SEED, "transactionId": "seed-1"}])
    worker.wait_processed(len(normals) + 1)
    assert worker.stop() == 0  # a graceful stop drains the sink

    alerts = influx_server.query(
        'SELECT "amount", "alertId", "transactionId", "rule", "model", "reasons" '
        'FROM "fraud_alerts" WHERE "userId" = \'12345\'',
        influx_bucket,
    )
    assert len(alerts) == 1
    assert alerts[0]["amount"] == 15000
    assert alerts[0]["transactionId"] == "seed-1"
    assert alerts[0]["reasons"] == "amount_threshold"
    assert (alerts[0]["rule"], alerts[0]["model"]) == (1, 0)

    rows = influx_server.query(
        'SELECT count("amount") AS n, sum("suspicious") AS s FROM "transactions"', influx_bucket
    )
    assert (rows[0]["n"], rows[0]["s"]) == (41, 1)

    stats = influx_server.query('SELECT last("messagesIn") AS m FROM "worker_stats"', influx_bucket)
    assert stats and stats[0]["m"] == 41
