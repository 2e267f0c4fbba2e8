"""InfluxSink against a real InfluxDB 1.6 behind the v2 proxy: schema, idempotence, outages, drops.

No mock of InfluxDB anywhere: every point goes through ``influxdb-client`` -> HTTP (gzip) ->
:class:`InfluxV2Proxy` -> ``influxd``, and is read back with InfluxQL.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from fraudstream.settings import InfluxSettings
from fraudstream.sinks import influx as influx_module
from fraudstream.sinks.base import ProcessedRecord
from fraudstream.sinks.influx import InfluxSink
from fraudstream.sinks.line_protocol import MAX_TIME_NS, point_time_ns, record_lines
from tests.support.influxdb_server import InfluxServer, InfluxV2Proxy
from tests.support.records import make_record, wait_until

pytestmark = [pytest.mark.influxdb, pytest.mark.timeout(120)]

SinkFactory = Callable[..., InfluxSink]
BASE_S = 1_700_000_000.0


def count(server: InfluxServer, bucket: str, measurement: str, where: str = "") -> int:
    """Number of points of a measurement (0 when it does not exist)."""
    rows = server.query(f'SELECT count("amount") FROM "{measurement}" {where}', bucket)
    return int(rows[0]["count"]) if rows else 0


def transaction_ids(server: InfluxServer, bucket: str) -> set[str]:
    """The userId tag of every ``transactions`` point (tests use one user per transaction)."""
    return {
        r["userId"] for r in server.query('SELECT "amount", "userId" FROM transactions', bucket)
    }


def assert_accounted(stats: dict[str, int]) -> None:
    """Every queued point was written or dropped for a counted reason."""
    assert stats["buffered"] == 0 and stats["in_flight"] == 0
    total = (
        stats["written"]
        + stats["dropped_overflow"]
        + stats["dropped_rejected"]
        + stats["dropped_on_close"]
    )
    assert total == stats["queued"], stats


def test_points_arrive_with_schema_tags_fields_and_times(
    influx_server: InfluxServer,
    influx_proxy: InfluxV2Proxy,
    influx_bucket: str,
    influx_sink_factory: SinkFactory,
) -> None:
    tricky_user = 'Ann Lee, "Jr"=1 \\ é'
    alert = make_record(
        'tx-"1",a b',
        user_id=tricky_user,
        amount=25000.5,
        timestamp=datetime(2024, 5, 17, 12, 30, 45, 123000, tzinfo=timezone.utc),
        score=0.875,
        reasons=["half_space_trees", "amount_threshold"],
        risk=0.9375,
    )
    plain = make_record("tx-2", user_id="u2", amount=10.0, timestamp=BASE_S, score=0.125)
    metrics = {
        "messagesIn": 12,
        "alertsByReason": {"amount_threshold": 3},
        "latencyMs": {"count": 12, "p50": 2.0, "p99": None},
    }
    sink = influx_sink_factory()
    sink.write(alert)
    sink.write(plain)
    sink.write_metrics("worker-1", metrics, BASE_S + 0.5)
    sink.close(timeout=10)

    stats = sink.stats()
    assert stats["queued"] == stats["written"] == 4
    assert_accounted(stats)
    assert influx_proxy.counters["gzip_writes"] == influx_proxy.counters["write_requests"] >= 1
    assert influx_proxy.last_write["precision"] == "ns"
    assert influx_proxy.last_write["org"] == sink.org == "fraud-detection-org"

    assert alert.alert is not None
    [row] = influx_server.query("SELECT * FROM fraud_alerts", influx_bucket)
    assert row == {
        "time": point_time_ns(alert),
        "userId": tricky_user,
        "reasons": "amount_threshold,half_space_trees",
        "amount": 25000.5,
        "score": 0.875,
        "risk": 0.9375,
        "alertId": alert.alert.alert_id,
        "transactionId": 'tx-"1",a b',
        "rule": 1,
        "model": 1,
    }
    rows = influx_server.query("SELECT * FROM transactions", influx_bucket)
    by_user = {r["userId"]: r for r in rows}
    assert by_user[tricky_user] == {
        "time": point_time_ns(alert),
        "userId": tricky_user,
        "amount": 25000.5,
        "score": 0.875,
        "suspicious": 1,
    }
    assert by_user["u2"]["suspicious"] == 0
    assert by_user["u2"]["time"] == point_time_ns(plain)

    [stats_row] = influx_server.query("SELECT * FROM worker_stats", influx_bucket)
    assert stats_row == {
        "time": 1_700_000_000_500_000_000,
        "worker": "worker-1",
        "messagesIn": 12.0,
        "alertsByReason_amount_threshold": 3.0,
        "latencyMs_count": 12.0,
        "latencyMs_p50": 2.0,
    }

    field_types = {
        (r["fieldKey"], r["fieldType"])
        for r in influx_server.query("SHOW FIELD KEYS FROM fraud_alerts", influx_bucket)
    }
    assert field_types == {
        ("amount", "float"),
        ("score", "float"),
        ("risk", "float"),
        ("alertId", "string"),
        ("transactionId", "string"),
        ("rule", "integer"),
        ("model", "integer"),
    }
    tags = {
        r["tagKey"] for r in influx_server.query("SHOW TAG KEYS FROM fraud_alerts", influx_bucket)
    }
    assert tags == {"userId", "reasons"}
    tx_fields = {
        (r["fieldKey"], r["fieldType"])
        for r in influx_server.query("SHOW FIELD KEYS FROM transactions", influx_bucket)
    }
    assert tx_fields == {("amount", "float"), ("score", "float"), ("suspicious", "integer")}


def test_replay_overwrites_and_same_millisecond_transactions_are_kept(
    influx_server: InfluxServer, influx_bucket: str, influx_sink_factory: SinkFactory
) -> None:
    sink = influx_sink_factory()
    replayed = make_record("tx-r", user_id="replay", timestamp=BASE_S, reasons=["amount_threshold"])
    for _ in range(3):  # redelivered twice
        sink.write(replayed)
    same_ms = [make_record(f"tx-s{i}", user_id="busy", timestamp=BASE_S) for i in range(5)]
    for record in same_ms:
        sink.write(record)
    sink.close(timeout=10)

    assert sink.stats()["written"] == 3 * 2 + 5
    assert count(influx_server, influx_bucket, "transactions", "WHERE userId = 'replay'") == 1
    assert count(influx_server, influx_bucket, "fraud_alerts", "WHERE userId = 'replay'") == 1
    assert count(influx_server, influx_bucket, "transactions", "WHERE userId = 'busy'") == 5


def test_outage_loses_nothing_when_influxdb_comes_back(
    fresh_influx_server: InfluxServer, influx_bucket: str, influx_sink_factory: SinkFactory
) -> None:
    sink = influx_sink_factory(batch_size=100)
    first = [make_record(f"a{i}", user_id=f"a{i}", timestamp=BASE_S + i) for i in range(500)]
    for record in first:
        sink.write(record)
    wait_until(lambda: sink.stats()["written"] == 500, what="the first 500 points")

    fresh_influx_server.stop()  # connection refused behind the proxy: 503
    second = [make_record(f"b{i}", user_id=f"b{i}", timestamp=BASE_S + i) for i in range(1500)]
    for record in second:
        sink.write(record)
    wait_until(lambda: sink.stats()["retries"] >= 3, what="retries during the outage")
    assert sink.stats()["written"] == 500

    fresh_influx_server.start()  # same data dir and ports
    sink.close(timeout=30)

    stats = sink.stats()
    assert stats["queued"] == stats["written"] == 2000
    assert_accounted(stats)
    assert count(fresh_influx_server, influx_bucket, "transactions") == 2000


def test_hung_influxdb_times_out_retries_and_replays_idempotently(
    fresh_influx_server: InfluxServer, influx_bucket: str, influx_sink_factory: SinkFactory
) -> None:
    sink = influx_sink_factory(batch_size=50, request_timeout=0.5)
    fresh_influx_server.pause()  # accepts connections, never answers: client timeouts
    try:
        records = [make_record(f"h{i}", user_id=f"h{i}", timestamp=BASE_S + i) for i in range(300)]
        started = time.perf_counter()
        for record in records:
            sink.write(record)
        assert time.perf_counter() - started < 1.0  # the hot path never waits on InfluxDB
        wait_until(lambda: sink.stats()["retries"] >= 2, what="timeouts while InfluxDB hangs")
    finally:
        fresh_influx_server.resume()
    sink.close(timeout=30)

    stats = sink.stats()
    assert stats["queued"] == stats["written"] == 300
    # Requests that timed out on the client may still have reached InfluxDB: the retried
    # points land on the same series and times, so nothing is counted twice.
    assert count(fresh_influx_server, influx_bucket, "transactions") == 300


def test_overflow_drops_the_oldest_and_counts_exactly_what_was_lost(
    influx_server: InfluxServer,
    influx_proxy: InfluxV2Proxy,
    influx_bucket: str,
    influx_sink_factory: SinkFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="fraudstream.sinks.influx")
    capacity, batch = 20, 5
    sink = influx_sink_factory(max_buffered_points=capacity, batch_size=batch)
    influx_proxy.set_outage(True)
    ids = [f"o{i:03d}" for i in range(100)]
    for i, tx_id in enumerate(ids):
        sink.write(make_record(tx_id, user_id=tx_id, timestamp=BASE_S + i))
    wait_until(lambda: sink.stats()["retries"] >= 1, what="a failed write")
    influx_proxy.set_outage(False)
    sink.close(timeout=30)

    stats = sink.stats()
    assert stats["queued"] == 100
    assert stats["dropped_rejected"] == stats["dropped_on_close"] == 0
    assert stats["written"] + stats["dropped_overflow"] == stats["queued"]
    # At most the buffer plus the batch held for retry survive the outage.
    assert capacity <= stats["written"] <= capacity + batch
    stored = transaction_ids(influx_server, influx_bucket)
    assert len(stored) == stats["written"]
    assert len(set(ids) - stored) == stats["dropped_overflow"]
    assert set(ids[-capacity:]) <= stored  # the newest points are kept
    # One warning for the whole burst (at most one per 10 s), with the running count.
    overflow_logs = [r for r in caplog.records if "buffer full" in r.getMessage()]
    assert len(overflow_logs) == 1
    assert "dropped so far" in overflow_logs[0].getMessage()


def test_close_returns_within_its_timeout_while_influxdb_is_down(
    fresh_influx_server: InfluxServer, influx_sink_factory: SinkFactory
) -> None:
    sink = influx_sink_factory(retry_initial=0.2, retry_max=30.0)
    fresh_influx_server.stop()
    for i in range(50):
        sink.write(make_record(f"d{i}", user_id="d", timestamp=BASE_S + i))
    wait_until(lambda: sink.stats()["retries"] >= 1, what="a failed write")
    started = time.monotonic()
    sink.close(timeout=1.0)
    assert time.monotonic() - started < 2.0
    stats = sink.stats()
    assert stats["written"] == 0
    assert stats["dropped_on_close"] == stats["queued"] == 50
    assert_accounted(stats)


def test_close_returns_within_its_timeout_while_a_request_hangs(
    fresh_influx_server: InfluxServer, influx_sink_factory: SinkFactory
) -> None:
    sink = influx_sink_factory(request_timeout=20.0)
    fresh_influx_server.pause()
    try:
        for i in range(10):
            sink.write(make_record(f"p{i}", user_id="p", timestamp=BASE_S + i))
        wait_until(lambda: sink.stats()["in_flight"] > 0, what="a request in flight")
        started = time.monotonic()
        sink.close(timeout=1.0)
        assert time.monotonic() - started < 2.0
    finally:
        fresh_influx_server.resume()
    stats = sink.stats()
    assert stats["dropped_on_close"] == stats["queued"] == 10
    assert_accounted(stats)


def test_missing_bucket_is_rejected_not_retried_then_writes_resume_once_created(
    influx_server: InfluxServer,
    influx_bucket: str,
    influx_sink_factory: SinkFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Decision (see fraudstream.sinks.influx): 404 "bucket/database not found" is a 4xx like any
    # other: the batch is counted in dropped_rejected and logged; nothing is held for later.
    missing = influx_bucket + "_late"
    sink = influx_sink_factory(bucket=missing, batch_size=10)
    caplog.set_level(logging.ERROR, logger="fraudstream.sinks.influx")
    for i in range(10):
        sink.write(make_record(f"m{i}", user_id=f"m{i}", timestamp=BASE_S + i))
    wait_until(lambda: sink.stats()["dropped_rejected"] == 10, what="the 404 rejection")
    assert sink.stats()["retries"] == 0
    assert "HTTP 404" in caplog.text and "database not found" in caplog.text

    influx_server.create_database(missing)
    try:
        for i in range(10, 15):
            sink.write(make_record(f"m{i}", user_id=f"m{i}", timestamp=BASE_S + i))
        sink.close(timeout=10)
        stats = sink.stats()
        assert stats["written"] == 5 and stats["dropped_rejected"] == 10
        assert_accounted(stats)
        assert count(influx_server, missing, "transactions") == 5
    finally:
        influx_server.drop_database(missing)


def test_partial_write_counts_only_the_rejected_points(
    influx_server: InfluxServer, influx_bucket: str, influx_sink_factory: SinkFactory
) -> None:
    # A string "amount" in the week of 2020-01-06 makes float amounts conflict in that shard
    # only; InfluxDB writes the rest of the batch and answers 400 "partial write ... dropped=3".
    week_2020 = datetime(2020, 1, 8, tzinfo=timezone.utc).timestamp()
    influx_server.write_lines(
        influx_bucket, [f'transactions,userId=x amount="oops" {int(week_2020 * 1e9)}']
    )
    sink = influx_sink_factory(flush_interval=60.0)  # one batch, sent by close()
    for i in range(3):
        sink.write(make_record(f"c{i}", user_id="c", timestamp=week_2020 + i))
    for i in range(2):
        sink.write(make_record(f"k{i}", user_id="k", timestamp=BASE_S + i))
    sink.close(timeout=10)

    stats = sink.stats()
    assert stats["batches"] == 1 and stats["retries"] == 0
    assert stats["dropped_rejected"] == 3 and stats["written"] == 2
    assert_accounted(stats)
    assert count(influx_server, influx_bucket, "transactions", "WHERE userId = 'k'") == 2


def test_a_line_influxdb_cannot_parse_counts_as_rejected_not_written(
    influx_server: InfluxServer,
    influx_bucket: str,
    influx_sink_factory: SinkFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A time past InfluxDB's range (the sink refuses such records; here one is forced through):
    # influxd writes the other lines and answers 400 "partial write: unable to parse ...
    # time outside range ... dropped=0", which names the line but counts it in no dropped=N.
    def unchecked_lines(record: ProcessedRecord, write_transactions: bool = True) -> list[str]:
        lines = record_lines(record, write_transactions)
        if record.transaction.transaction_id == "far":
            return [line.rsplit(" ", 1)[0] + f" {MAX_TIME_NS + 1}" for line in lines]
        return lines

    monkeypatch.setattr(influx_module, "record_lines", unchecked_lines)
    sink = influx_sink_factory(flush_interval=60.0)  # one batch, sent by close()
    sink.write(make_record("far", user_id="far", timestamp=BASE_S))
    for i in range(2):
        sink.write(make_record(f"k{i}", user_id="k", timestamp=BASE_S + i))
    sink.close(timeout=10)

    stats = sink.stats()
    assert stats["batches"] == 1 and stats["retries"] == 0
    assert stats["dropped_rejected"] == 1 and stats["written"] == 2
    assert_accounted(stats)
    assert count(influx_server, influx_bucket, "transactions") == 2


def test_a_record_past_2262_is_dropped_as_invalid_and_the_rest_is_written(
    influx_server: InfluxServer, influx_bucket: str, influx_sink_factory: SinkFactory
) -> None:
    sink = influx_sink_factory(flush_interval=60.0)
    sink.write(
        make_record("far", user_id="far", timestamp=datetime(2262, 4, 12, tzinfo=timezone.utc))
    )
    sink.write(make_record("k0", user_id="k", timestamp=BASE_S))
    sink.close(timeout=10)

    stats = sink.stats()
    assert stats["dropped_invalid"] == 1 and stats["queued"] == stats["written"] == 1
    assert stats["dropped_rejected"] == 0
    assert_accounted(stats)
    assert count(influx_server, influx_bucket, "transactions") == 1


def test_throttling_and_server_errors_are_retried_with_the_same_batch(
    influx_server: InfluxServer,
    influx_proxy: InfluxV2Proxy,
    influx_bucket: str,
    influx_sink_factory: SinkFactory,
) -> None:
    influx_proxy.inject_write_failures(503, times=2)
    influx_proxy.inject_write_failures(429, times=1, retry_after="0")
    influx_proxy.inject_write_failures(500, times=1)
    sink = influx_sink_factory(flush_interval=60.0)
    for i in range(10):
        sink.write(make_record(f"r{i}", user_id=f"r{i}", timestamp=BASE_S + i))
    sink.close(timeout=20)

    stats = sink.stats()
    assert stats["retries"] == 4 and stats["batches"] == 1
    assert stats["queued"] == stats["written"] == 10
    assert influx_proxy.counters["write_requests"] == 5
    assert count(influx_server, influx_bucket, "transactions") == 10


def test_token_is_in_no_repr_and_no_log_line(
    influx_proxy: InfluxV2Proxy,
    influx_sink_factory: SinkFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 and influxdb_client included
    wrong = "wrong-token-3b9e55a0c1"
    rejected = influx_sink_factory(token=wrong)
    for i in range(3):
        rejected.write(make_record(f"w{i}"))
    wait_until(lambda: rejected.stats()["dropped_rejected"] == 3, what="the 401 rejection")
    assert "HTTP 401" in caplog.text and "unauthorized" in caplog.text

    influx_proxy.set_outage(True)  # retry warnings carry error texts and URLs
    right = influx_sink_factory()
    right.write(make_record("t1"))
    wait_until(lambda: right.stats()["retries"] >= 1, what="a retry")
    influx_proxy.set_outage(False)
    right.close(timeout=10)
    rejected.close(timeout=1)

    assert influx_proxy.token is not None
    for secret in (wrong, influx_proxy.token):
        assert secret not in caplog.text
        for sink in (rejected, right):
            assert secret not in repr(sink)
            assert secret not in str(sink)
            assert secret not in str(sink.stats())


def test_from_settings_writes_with_the_configured_bucket_and_token(
    influx_server: InfluxServer, influx_proxy: InfluxV2Proxy, influx_bucket: str
) -> None:
    token = influx_proxy.token
    assert token is not None
    settings = InfluxSettings(
        influx_url=influx_proxy.url,
        influx_token=token,  # type: ignore[arg-type]
        influx_org="fraud-detection-org",
        influx_bucket=influx_bucket,
    )
    sink = InfluxSink.from_settings(settings, flush_interval=0.05)
    assert token not in repr(sink)
    sink.write(make_record("s1", reasons=["amount_threshold"]))
    sink.close(timeout=10)
    assert sink.stats()["written"] == 2
    assert count(influx_server, influx_bucket, "fraud_alerts") == 1


def test_proxy_health_follows_the_server(
    fresh_influx_server: InfluxServer, influx_proxy: InfluxV2Proxy
) -> None:
    def health() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{influx_proxy.url}/health", timeout=5) as resp:
                return resp.status, json.loads(resp.read())["status"]
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())["status"]

    assert health() == (200, "pass")
    fresh_influx_server.stop()
    assert health() == (503, "fail")
    fresh_influx_server.start()
    assert health() == (200, "pass")
