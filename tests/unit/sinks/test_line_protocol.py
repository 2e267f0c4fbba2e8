"""Line protocol built by the InfluxDB sink: schema, escaping, times (pure, no server)."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from fraudstream.core.records import Alert, Reason, ReasonKind, Transaction
from fraudstream.sinks.base import ProcessedRecord
from fraudstream.sinks.influx import InfluxSink, rejected_points
from fraudstream.sinks.line_protocol import (
    MAX_TIME_NS,
    MIN_TIME_NS,
    TIME_OFFSET_RANGE_NS,
    TimeOutOfRange,
    alert_line,
    datetime_ns,
    epoch_seconds_ns,
    escape_tag_value,
    flatten_metrics,
    float_field,
    metrics_line,
    point_time_ns,
    reasons_tag,
    record_lines,
    rule_hit_lines,
    string_field,
    time_offset_ns,
    transaction_line,
)
from fraudstream.worker.stats import WorkerStats
from tests.support.records import make_record

TS = datetime(2024, 5, 17, 12, 30, 45, 123000, tzinfo=timezone.utc)
TS_NS = 1_715_949_045_123_000_000

names = st.text(min_size=1, max_size=40)
amounts = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
scores = st.floats(min_value=0, max_value=1, allow_nan=False)


def expected_transaction(record) -> str:  # type: ignore[no-untyped-def]
    """What ``influxdb_client.Point`` makes of a record's transaction."""
    tx = record.transaction
    return (
        Point("transactions")
        .tag("userId", tx.user_id)
        .field("amount", tx.amount)
        .field("score", record.score)
        .field("suspicious", 1 if record.alert else 0)
        .time(point_time_ns(record), WritePrecision.NS)
        .to_line_protocol()
    )


def test_datetime_ns_is_exact() -> None:
    assert datetime_ns(TS) == TS_NS
    assert datetime_ns(TS.replace(tzinfo=None)) == TS_NS  # naive means UTC
    later = TS + timedelta(microseconds=1)
    assert datetime_ns(later) == TS_NS + 1000
    assert datetime_ns(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 0


def test_time_offset_is_blake2b_of_the_transaction_id_below_one_millisecond() -> None:
    digest = hashlib.blake2b(b"tx-42", digest_size=8).digest()
    assert time_offset_ns("tx-42") == int.from_bytes(digest, "big") % 1_000_000
    assert time_offset_ns("tx-42") == time_offset_ns("tx-42")
    offsets = {time_offset_ns(f"tx-{i}") for i in range(1000)}
    assert len(offsets) >= 999  # 1e-6 collision chance per pair
    assert all(0 <= o < TIME_OFFSET_RANGE_NS for o in offsets)


def test_point_time_is_event_time_plus_offset() -> None:
    record = make_record("tx-1", timestamp=TS)
    assert point_time_ns(record) == TS_NS + time_offset_ns("tx-1")
    assert point_time_ns(record) // 1_000_000 == TS_NS // 1_000_000  # same millisecond


def test_transaction_line_schema() -> None:
    record = make_record("tx-1", user_id="u1", amount=42.5, timestamp=TS, score=0.125)
    t = TS_NS + time_offset_ns("tx-1")
    assert transaction_line(record) == (
        f"transactions,userId=u1 amount=42.5,score=0.125,suspicious=0i {t}"
    )
    suspicious = make_record("tx-1", user_id="u1", amount=42.5, timestamp=TS, reasons=["x"])
    assert ",suspicious=1i " in transaction_line(suspicious)


def test_alert_line_schema() -> None:
    record = make_record(
        "tx-9",
        user_id="u2",
        amount=20000.0,
        timestamp=TS,
        score=0.9,
        reasons=["half_space_trees", "amount_threshold"],
        risk=0.8,
    )
    assert record.alert is not None
    t = TS_NS + time_offset_ns("tx-9")
    assert alert_line(record) == (
        r"fraud_alerts,reasons=amount_threshold\,half_space_trees,userId=u2 "
        f'alertId="{record.alert.alert_id}",amount=20000,model=1i,risk=0.8,rule=1i,score=0.9,'
        f'transactionId="tx-9" {t}'
    )


@pytest.mark.parametrize(
    ("reasons", "rule", "model"),
    [
        (["amount_threshold"], 1, 0),
        (["half_space_trees"], 0, 1),
        (["amount_threshold", "half_space_trees"], 1, 1),
        (["velocity"], 0, 0),
    ],
)
def test_alert_rule_and_model_flags(reasons: list[str], rule: int, model: int) -> None:
    line = alert_line(make_record("t", reasons=reasons))
    assert line is not None
    assert f",model={model}i," in line
    assert f",rule={rule}i," in line


def test_reasons_tag_is_sorted_and_distinct() -> None:
    assert reasons_tag(["b", "a", "b"]) == "a,b"
    assert reasons_tag([]) == ""


def test_no_alert_no_alert_line() -> None:
    assert alert_line(make_record("t")) is None


def test_record_lines_share_one_time_and_transactions_can_be_switched_off() -> None:
    record = make_record("tx-3", timestamp=TS, reasons=["amount_threshold"])
    both = record_lines(record)
    assert [line.split(",", 1)[0] for line in both] == ["transactions", "fraud_alerts"]
    assert len({line.rsplit(" ", 1)[1] for line in both}) == 1
    only_alert = record_lines(record, write_transactions=False)
    assert only_alert == both[1:]
    assert record_lines(make_record("tx-4"), write_transactions=False) == []


def test_non_finite_score_is_left_out() -> None:
    record = make_record("t", score=math.nan, reasons=["amount_threshold"])
    assert "score=" not in transaction_line(record)
    line = alert_line(record)
    assert line is not None and "score=" not in line


def test_escaping_of_tags_and_string_fields() -> None:
    assert escape_tag_value("a b,c=d") == r"a\ b\,c\=d"
    assert escape_tag_value("line\nbreak") == r"line\nbreak"
    assert escape_tag_value("ends\\") == "ends\\ "
    assert string_field('say "hi" \\o/') == r'"say \"hi\" \\o/"'
    record = make_record('tx "1" \\', user_id="Ann Lee, Jr=1", reasons=["amount_threshold"])
    line = alert_line(record)
    assert line is not None
    assert r",userId=Ann\ Lee\,\ Jr\=1 " in line
    assert r'transactionId="tx \"1\" \\"' in line


def test_float_format_matches_point() -> None:
    assert float_field(12.0) == "12"
    assert float_field(0.1) == "0.1"
    assert float_field(1e16) == "1e+16"
    assert float_field(3) == "3"


@given(user_id=names, transaction_id=names, amount=amounts, score=scores)
def test_transaction_line_equals_influxdb_client_point(
    user_id: str, transaction_id: str, amount: float, score: float
) -> None:
    record = make_record(transaction_id, user_id=user_id, amount=amount, score=score)
    assert transaction_line(record) == expected_transaction(record)


@given(
    user_id=names,
    transaction_id=names,
    amount=amounts,
    score=scores,
    risk=scores,
    reasons=st.lists(st.sampled_from(["amount_threshold", "half_space_trees", "x y"]), min_size=1),
)
def test_alert_line_equals_influxdb_client_point(
    user_id: str,
    transaction_id: str,
    amount: float,
    score: float,
    risk: float,
    reasons: list[str],
) -> None:
    record = make_record(
        transaction_id, user_id=user_id, amount=amount, score=score, reasons=reasons, risk=risk
    )
    alert = record.alert
    assert alert is not None
    expected = (
        Point("fraud_alerts")
        .tag("userId", user_id)
        .tag("reasons", ",".join(sorted(set(reasons))))
        .field("amount", amount)
        .field("score", score)
        .field("risk", risk)
        .field("alertId", alert.alert_id)
        .field("transactionId", transaction_id)
        .field("rule", int("amount_threshold" in reasons))
        .field("model", int("half_space_trees" in reasons))
        .time(point_time_ns(record), WritePrecision.NS)
        .to_line_protocol()
    )
    assert alert_line(record) == expected


def test_flatten_metrics_of_a_worker_snapshot() -> None:
    stats = WorkerStats()
    stats.transactions_in = 10
    stats.alerts_out = 2
    stats.alerts_by_reason.update({"amount_threshold": 2, "half_space_trees": 1})
    stats.latency_ms.observe(3.0)
    stats.latency_ms.observe(100000.0)  # the open-ended bucket: p99 is inf
    flat = flatten_metrics(stats.to_dict())
    assert flat["transactionsIn"] == 10.0
    assert flat["alertsByReason_amount_threshold"] == 2.0
    assert flat["alertsByReason_half_space_trees"] == 1.0
    assert flat["latencyMs_count"] == 2.0
    assert flat["latencyMs_p50"] == 5.0
    assert "latencyMs_p99" not in flat  # inf is not representable
    assert all(isinstance(v, float) for v in flat.values())


def test_flatten_skips_none_and_non_numbers_and_maps_booleans() -> None:
    metrics = {"a": None, "b": "text", "c": [1, 2], "d": True, "e": {"f": {"g": 1}}, "h": math.nan}
    assert flatten_metrics(metrics) == {"d": 1.0, "e_f_g": 1.0}


def test_metrics_line_schema_equals_point() -> None:
    metrics = {"messagesIn": 5, "latencyMs": {"p99": 20.0, "p50": None}, "odd key=x": 1.5}
    line = metrics_line("worker 1", metrics, 1_700_000_000.25)
    expected = (
        Point("worker_stats")
        .tag("worker", "worker 1")
        .field("messagesIn", 5.0)
        .field("latencyMs_p99", 20.0)
        .field("odd key=x", 1.5)
        .time(1_700_000_000_250_000_000, WritePrecision.NS)
        .to_line_protocol()
    )
    assert line == expected
    assert metrics_line("w", {"nothing": None}, 0.0) is None


def test_epoch_seconds_ns_rounds_to_the_microsecond() -> None:
    assert epoch_seconds_ns(1.000001) == 1_000_001_000
    assert epoch_seconds_ns(1_700_000_000.123456) == 1_700_000_000_123_456_000


def test_write_never_raises_for_a_broken_record() -> None:
    sink = InfluxSink("http://127.0.0.1:9", "secret-token", "org", "bucket")
    try:
        broken = make_record("t")
        object.__setattr__(broken, "transaction", None)  # frozen dataclass: force a bad record
        sink.write(broken)
        sink.write_metrics("w", {"x": object()}, 0.0)  # nothing numeric: no point, no error
        stats = sink.stats()
        assert stats["dropped_invalid"] == 1
        assert stats["queued"] == 0
    finally:
        sink.close(timeout=0)
    sink.write(make_record("late"))  # after close: counted, dropped, no error
    stats = sink.stats()
    assert stats["queued"] == stats["dropped_on_close"] == 1


def test_a_time_influxdb_cannot_store_is_dropped_as_invalid_not_queued() -> None:
    """InfluxDB drops a line after 2262-04-11 (or before 1677-09-21): the sink must not
    count it written, so the record is refused before it becomes lines."""
    late = make_record("late", timestamp=datetime(2262, 4, 12, tzinfo=timezone.utc))
    early = make_record("early", timestamp=datetime(1677, 9, 20, tzinfo=timezone.utc))
    for record in (late, early):
        with pytest.raises(TimeOutOfRange):
            record_lines(record)
    last = make_record("last", timestamp=datetime(2262, 4, 11, tzinfo=timezone.utc))
    assert MIN_TIME_NS <= point_time_ns(last) <= MAX_TIME_NS  # the last whole day still fits
    sink = InfluxSink("http://127.0.0.1:9", "secret-token", "org", "bucket")
    try:
        sink.write(late)
        sink.write(early)
        stats = sink.stats()
        assert stats["dropped_invalid"] == 2 and stats["queued"] == 0
    finally:
        sink.close(timeout=0)


#: Error bodies of InfluxDB 1.6 (through the v2 proxy) for a batch of three lines.
ONE_OUT_OF_RANGE = (
    b'{"code": "invalid", "message": "partial write: unable to parse \'t,u=b v=2 '
    b"9223372036854775807': time outside range -9223372036854775806 - "
    b'9223372036854775806 dropped=0"}'
)
TWO_UNPARSEABLE = (
    b'{"code": "invalid", "message": "partial write: unable to parse \'t,u=b v=2 '
    b"9223372036854775807': time outside range -9223372036854775806 - 9223372036854775806"
    b"\\nunable to parse 't,u=c v=3 99999999999999999999': strconv.ParseInt: parsing "
    b'\\"99999999999999999999\\": value out of range dropped=0"}'
)


def test_lines_influxdb_could_not_parse_count_as_rejected() -> None:
    """A partial write says ``dropped=0`` for unparseable lines: each one named is rejected."""
    assert rejected_points(ONE_OUT_OF_RANGE, 3) == 1
    assert rejected_points(TWO_UNPARSEABLE, 3) == 2
    assert rejected_points(b'{"message": "partial write: field type conflict dropped=2"}', 3) == 2
    assert rejected_points(b'{"message": "unable to parse \'x\': bad"}', 3) == 3  # none written
    assert rejected_points(b'{"message": "bucket not found"}', 3) == 3


def test_constructor_validates_arguments() -> None:
    with pytest.raises(ValueError):
        InfluxSink("http://x", "t", "o", "b", batch_size=0)
    with pytest.raises(ValueError):
        InfluxSink("http://x", "t", "o", "b", retry_initial=5, retry_max=1)


def test_rule_hits_are_points_per_rule_version_and_mode_beside_the_alert() -> None:
    tx = Transaction("tx-9", "user 1", 900.0, TS)
    active = Reason(ReasonKind.RULE, "amount_threshold", {"rule": "amount_threshold", "version": 3})
    model = Reason(ReasonKind.MODEL, "half_space_trees", {"score": 0.9})
    shadow = Reason(ReasonKind.RULE, "big spend", {"rule": "big spend", "version": 1})
    alert = Alert("a", tx, tx.timestamp, 0.9, [active, model], {}, 0.9)
    record = ProcessedRecord(tx, 0.9, alert, (shadow,))
    time_ns = point_time_ns(record)
    fields = 'amount=900,transactionId="tx-9"'
    assert rule_hit_lines(record) == [
        f"rule_hits,mode=active,rule=amount_threshold,userId=user\\ 1,version=3 {fields} {time_ns}",
        f"rule_hits,mode=shadow,rule=big\\ spend,userId=user\\ 1,version=1 {fields} {time_ns}",
    ]
    assert record_lines(record)[2:] == rule_hit_lines(record)


def test_a_shadow_hit_without_an_alert_is_still_a_point() -> None:
    tx = Transaction("tx-10", "u", 5.0, TS)
    shadow = Reason(ReasonKind.RULE, "trial", {"rule": "trial", "version": 2})
    lines = record_lines(ProcessedRecord(tx, 0.1, None, (shadow,)), write_transactions=False)
    assert [line.split(" ", 1)[0] for line in lines] == [
        "rule_hits,mode=shadow,rule=trial,userId=u,version=2"
    ]
