"""InfluxDB down for 30 s in the middle of a run: the stream keeps its pace, no point is lost."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.conftest import Pipeline
from tests.integration.test_crash import PacedProducer
from tests.support.influxdb import worker_influx_env
from tests.support.influxdb_server import InfluxServer, InfluxV2Proxy
from tests.support.records import AMOUNT_RULE_ONLY_ENV

pytestmark = [pytest.mark.integration, pytest.mark.influxdb, pytest.mark.timeout(600)]

RATE = 400
SECONDS = 45
OUTAGE_SECONDS = 30


def records() -> list[dict[str, object]]:
    return [
        {
            "transactionId": f"o-{i}",
            "userId": f"user-{i % 300}",
            "amount": 12_000 if i % 200 == 0 else 10 + i % 50,
            "timestamp": 1_733_320_000 + i * 0.5,
        }
        for i in range(RATE * SECONDS)
    ]


def test_influxdb_outage_of_30_seconds_loses_no_point_and_does_not_slow_the_stream(
    pipeline_factory: Callable[..., Pipeline],
    fresh_influx_server: InfluxServer,
    influx_proxy: InfluxV2Proxy,
    influx_bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = pipeline_factory(
        **worker_influx_env(influx_proxy, influx_bucket),
        **AMOUNT_RULE_ONLY_ENV,  # the alert points expected are exactly the amount rule's
        FRAUDSTREAM_INFLUX_CLOSE_TIMEOUT="60",
    )
    stream = records()
    worker = pipeline.start_worker()
    producer = PacedProducer(pipeline.broker.bootstrap, pipeline.input_topic, stream, RATE)
    producer.start()
    worker.wait_processed(RATE * 5, timeout=60)

    fresh_influx_server.stop()
    outage_started = time.monotonic()
    behind = []
    while time.monotonic() - outage_started < OUTAGE_SECONDS:
        time.sleep(1)
        behind.append(producer.sent - worker.stats()["messagesIn"])
    buffered_during_outage = worker.stats()["sink"]["buffered"]
    assert producer.is_alive(), "the stream should still be flowing when InfluxDB comes back"
    fresh_influx_server.start()

    producer.join(timeout=120)
    assert producer.error is None
    worker.wait_processed(len(stream), timeout=120)
    assert worker.stop() == 0  # drains the sink

    alerts_expected = sum(1 for r in stream if float(r["amount"]) > 10_000)  # type: ignore[arg-type]
    tx_points = fresh_influx_server.query(
        'SELECT count("amount") FROM "transactions"', influx_bucket
    )
    alert_points = fresh_influx_server.query(
        'SELECT count("amount") FROM "fraud_alerts"', influx_bucket
    )
    with capsys.disabled():
        print(
            f"\ninflux outage: inputs={len(stream)} outage={OUTAGE_SECONDS}s "
            f"max backlog during outage={max(behind)} msgs, sink buffered at outage end="
            f"{buffered_during_outage} points, transaction points={tx_points[0]['count']}, "
            f"alert points={alert_points[0]['count']} (expected {alerts_expected})"
        )
    assert buffered_during_outage > 0, "the outage did not hold any point back"
    assert max(behind) < RATE * 3, "the stream slowed down while InfluxDB was away"
    assert tx_points[0]["count"] == len(stream)
    assert alert_points[0]["count"] == alerts_expected
