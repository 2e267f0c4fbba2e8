"""A real worker writing to a real InfluxDB (1.6 behind the v2 proxy)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fraudstream.core.rule_definitions import AmountThresholdKind, RuleDefinition, RuleMode
from fraudstream.kafka.rules_topic import RulesTopic
from fraudstream.local.worker_process import WorkerProcess
from tests.conftest import Pipeline
from tests.integration.test_worker import SEED, normal_transactions
from tests.support.dashboard import load_dashboard, panel_queries, render_query
from tests.support.influxdb import TEST_TOKEN, worker_influx_env
from tests.support.influxdb_server import InfluxServer, InfluxV2Proxy
from tests.support.records import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.influxdb]


@pytest.fixture
def influx_pipeline(
    pipeline_factory: Callable[..., Pipeline], influx_proxy: InfluxV2Proxy, influx_bucket: str
) -> Pipeline:
    """A pipeline whose workers write to the test's InfluxDB bucket."""
    return pipeline_factory(
        **worker_influx_env(influx_proxy, influx_bucket), FRAUDSTREAM_PROGRESS_INTERVAL="0.5"
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


def test_worker_reads_the_token_from_a_file_and_prints_it_nowhere(
    influx_pipeline: Pipeline, influx_server: InfluxServer, influx_bucket: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "influx-token"
    token_file.write_text(TEST_TOKEN + "\n")
    influx_pipeline.env["FRAUDSTREAM_INFLUX_TOKEN"] = "not-the-token"  # the file must win
    influx_pipeline.env["FRAUDSTREAM_INFLUX_TOKEN_FILE"] = str(token_file)
    # Debug level: the most any log line could say about requests and settings.
    worker = WorkerProcess(influx_pipeline.env, tmp_path / "worker-debug.log", "debug").start()
    influx_pipeline.workers.append(worker)
    worker.wait_ready()
    influx_pipeline.send_json([{**SEED, "transactionId": "token-file-1"}])
    worker.wait_processed(1)
    wait_until(
        lambda: bool(influx_server.query('SELECT * FROM "fraud_alerts"', influx_bucket)),
        timeout=30,
        what="the alert point written with the token from the file",
    )
    pages = []
    for path in ("/stats", "/metrics", "/health"):
        with urllib.request.urlopen(worker.base_url + path, timeout=5) as response:
            pages.append(response.read().decode())
    assert worker.stop() == 0
    log = worker.log_path.read_text(errors="replace")
    assert "DEBUG" in log  # the level took effect
    assert TEST_TOKEN not in log
    assert all(TEST_TOKEN not in page for page in pages)


def run_panels(
    server: InfluxServer, bucket: str, user_ids: list[str] | None
) -> dict[str, list[dict[str, object]]]:
    """Every dashboard panel's query, variables substituted, run on the real InfluxDB."""
    start_ms = 1_733_270_400_000  # 2024-12-04T00:00:00Z: the transactions' event time
    end_ms = int(time.time() * 1000) + 3_600_000  # worker_stats points carry wall-clock time
    results = {}
    for panel in panel_queries(load_dashboard()):
        query = render_query(
            panel.query, start_ms=start_ms, end_ms=end_ms, user_ids=user_ids, interval="1h"
        )
        results[panel.panel_title] = server.query(query, bucket)
    return results


def test_every_dashboard_panel_query_returns_the_expected_numbers_after_a_worker_run(
    influx_pipeline: Pipeline, influx_server: InfluxServer, influx_bucket: str
) -> None:
    worker = influx_pipeline.start_worker()
    normals = normal_transactions(40)
    influx_pipeline.send([(b"junk", b"not json")])
    influx_pipeline.send_json([*normals, {**SEED, "transactionId": "seed-1"}])
    worker.wait_processed(len(normals) + 2)
    wait_until(lambda: worker.stats()["consumerLag"] is not None, timeout=30)  # a progress tick
    assert worker.stop() == 0

    everyone = run_panels(influx_server, influx_bucket, user_ids=None)
    seed_user = run_panels(influx_server, influx_bucket, user_ids=["12345"])
    normal_user = run_panels(influx_server, influx_bucket, user_ids=["user-1"])
    assert set(everyone) >= {
        "Suspicious transactions",
        "Total suspicious amount",
        "Latest alerts",
        "Consumer lag",
    }

    for panels in (everyone, seed_user):
        assert panels["Suspicious transactions"][0]["alerts"] == 1
        assert panels["Total suspicious amount"][0]["amount"] == 15000
        assert [(r["userId"], r["alerts"]) for r in panels["Suspicious transactions per user"]] == [
            ("12345", 1)
        ]
        top = panels["Top users by suspicious amount"]
        assert [(r["userId"], r["total"]) for r in top] == [("12345", 15000)]
        latest = panels["Latest alerts"]
        assert [(r["transactionId"], r["reasons"]) for r in latest] == [
            ("seed-1", "amount_threshold")
        ]
        assert 0.5 <= latest[0]["risk"] <= 1.0  # an alert's risk is in the alerted half
        by_reason = panels["Alerts over time by reason"]
        assert sum(int(r["alerts"]) for r in by_reason) == 1
        assert {r["reasons"] for r in by_reason} == {"amount_threshold"}

        by_rule = panels["Alerts by rule and version"]
        assert [(r["rule"], r["version"], r["mode"], r["hits"]) for r in by_rule] == [
            ("amount_threshold", "1", "active", 1)
        ]

    assert everyone["Transactions processed"][0]["transactions"] == 41
    assert everyone["Suspicious share"][0]["share"] == pytest.approx(1 / 41)
    assert len(everyone["Score distribution"]) == 41
    assert seed_user["Suspicious share"][0]["share"] == 1.0
    assert seed_user["Transactions processed"][0]["transactions"] == 1

    assert normal_user["Suspicious transactions"] == []
    assert normal_user["Alerts by rule and version"] == []
    assert normal_user["Latest alerts"] == []
    user_1_count = sum(1 for tx in normals if tx["userId"] == "user-1")
    assert normal_user["Transactions processed"][0]["transactions"] == user_1_count

    def series_values(panel: str, field: str) -> list[object]:
        return [r[field] for r in everyone[panel] if r.get(field) is not None]

    assert series_values("Worker throughput", "events/s")
    assert series_values("Consumer lag", "lag")[-1] == 0
    assert series_values("Processing latency p50/p95/p99", "p99")
    assert max(series_values("Dead letters, redeliveries, misrouted, duplicates", "dlq")) == 1  # type: ignore[type-var]


def test_the_rule_panel_shows_shadow_hits_beside_the_active_rule_by_version(
    influx_pipeline: Pipeline, influx_server: InfluxServer, influx_bucket: str
) -> None:
    worker = influx_pipeline.start_worker()
    trial = RuleDefinition(
        id="big-spend",
        version=3,
        author="ana",
        reason="try a lower line",
        mode=RuleMode.SHADOW,
        created_at=datetime.now(timezone.utc),
        kind=AmountThresholdKind(threshold=1000.0),
    )

    async def publish() -> None:
        async with RulesTopic(influx_pipeline.broker.bootstrap, influx_pipeline.rules_topic) as t:
            await t.publish(trial)

    asyncio.run(publish())
    wait_until(lambda: worker.stats()["rules"]["changes"].get("added", 0) >= 5, timeout=10)
    spend = {**SEED, "transactionId": "spend-1", "userId": "777", "amount": 2000}
    influx_pipeline.send_json([{**SEED, "transactionId": "seed-1"}, spend])
    worker.wait_processed(2)
    assert worker.stop() == 0

    panel = run_panels(influx_server, influx_bucket, user_ids=None)["Alerts by rule and version"]
    hits = sorted((r["rule"], r["version"], r["mode"], r["hits"]) for r in panel)
    assert hits == [
        ("amount_threshold", "1", "active", 1),  # the seed: 15,000 > 10,000
        ("big-spend", "3", "shadow", 2),  # 15,000 and 2,000 > 1,000, neither alerted by it
    ]
