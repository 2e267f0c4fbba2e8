"""The input contract: what parses, what becomes a dead letter, and why."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudstream.core.fields import FieldMapping, TimestampUnit
from fraudstream.core.parsing import parse_transaction, transaction_from_dict
from fraudstream.core.records import (
    Alert,
    DeadLetterReason,
    Reason,
    ReasonKind,
    ReasonName,
    Rejection,
    Source,
    Transaction,
    alert_id_for,
    dead_letter,
)

SOURCE = Source("transactions-input", 2, 41)
LIMIT = 65536
UTC = timezone.utc


def parse(doc: object) -> Transaction | Rejection:
    return parse_transaction(orjson.dumps(doc), SOURCE, LIMIT)


def ok(**fields: object) -> Transaction:
    doc = {"userId": "12345", "amount": 15000, "timestamp": "2024-12-04T15:00:00Z", **fields}
    result = parse(doc)
    assert isinstance(result, Transaction), result
    return result


def rejected(raw: bytes, limit: int = LIMIT) -> Rejection:
    result = parse_transaction(raw, SOURCE, limit)
    assert isinstance(result, Rejection), result
    return result


def test_seed_example_parses() -> None:
    tx = ok()
    assert (tx.user_id, tx.amount) == ("12345", 15000.0)
    assert tx.timestamp == datetime(2024, 12, 4, 15, 0, tzinfo=UTC)


def test_integer_user_id_is_kept_as_a_string() -> None:
    assert ok(userId=12345).user_id == "12345"


@pytest.mark.parametrize("user_id", ["", "   ", True, None, 1.5, [], {}, "x" * 257])
def test_invalid_user_ids_are_rejected(user_id: object) -> None:
    result = parse({"userId": user_id, "amount": 1, "timestamp": "2024-12-04T15:00:00Z"})
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_field"
    assert "userId" in result.detail


@pytest.mark.parametrize(
    "amount",
    [
        True,
        False,
        -0.01,
        "-5",
        "12 EUR",
        "1,000",
        "1e3",
        "nan",
        "",
        "$",
        "$-77.00",
        "$$5",
        None,
        [],
        {},
    ],
)
def test_invalid_amounts_are_rejected(amount: object) -> None:
    result = parse({"userId": "u", "amount": amount, "timestamp": "2024-12-04T15:00:00Z"})
    assert isinstance(result, Rejection)
    assert "amount" in result.detail


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_amounts_are_rejected(literal: bytes) -> None:
    raw = b'{"userId": "u", "amount": ' + literal + b', "timestamp": "2024-12-04T15:00:00Z"}'
    assert isinstance(parse_transaction(raw, SOURCE, LIMIT), Rejection)


@pytest.mark.parametrize(("text", "expected"), [("12", 12.0), (" 12.50 ", 12.5), ("0.5", 0.5)])
def test_amounts_sent_as_decimal_strings_are_read_as_numbers(text: str, expected: float) -> None:
    assert ok(amount=text).amount == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("$134.09", 134.09), ("€ 12.50", 12.5), ("£7", 7.0)]
)
def test_a_currency_sign_before_a_decimal_amount_is_read_past(text: str, expected: float) -> None:
    """Exports write money as ``$134.09`` (TabFormer's CSV does): the sign says nothing the
    detector uses, and refusing it would send every transaction to the dead letters."""
    assert ok(amount=text).amount == expected


def test_zero_amount_is_valid() -> None:
    assert ok(amount=0).amount == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-12-04T15:00:00Z", datetime(2024, 12, 4, 15, tzinfo=UTC)),
        ("2024-12-04T15:00:00", datetime(2024, 12, 4, 15, tzinfo=UTC)),  # no zone = UTC
        ("2024-12-04T16:00:00+01:00", datetime(2024, 12, 4, 15, tzinfo=UTC)),
        ("2024-12-04T15:00:00.250Z", datetime(2024, 12, 4, 15, 0, 0, 250000, tzinfo=UTC)),
        (1733324400, datetime(2024, 12, 4, 15, tzinfo=UTC)),  # epoch seconds
        (1733324400000, datetime(2024, 12, 4, 15, tzinfo=UTC)),  # epoch milliseconds
        (1733324400.5, datetime(2024, 12, 4, 15, 0, 0, 500000, tzinfo=UTC)),
        ("1733324400", datetime(2024, 12, 4, 15, tzinfo=UTC)),
        (" 1733324400.5 ", datetime(2024, 12, 4, 15, 0, 0, 500000, tzinfo=UTC)),
        ("2024-12-04", datetime(2024, 12, 4, tzinfo=UTC)),  # a date: no colon, not a number
    ],
)
def test_timestamp_forms(value: object, expected: datetime) -> None:
    assert ok(timestamp=value).timestamp == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1733324400, "s", datetime(2024, 12, 4, 15, tzinfo=UTC)),
        (1733324400000, "ms", datetime(2024, 12, 4, 15, tzinfo=UTC)),
        (99_000_000_000, "ms", datetime(1973, 2, 19, 20, tzinfo=UTC)),  # auto: seconds, 5107
        ("36", "h", datetime(1970, 1, 2, 12, tzinfo=UTC)),  # PaySim's step: the hour
        (2, "d", datetime(1970, 1, 3, tzinfo=UTC)),  # BankSim's step: the day
        ("2024-12-04T15:00:00Z", "d", datetime(2024, 12, 4, 15, tzinfo=UTC)),  # ISO is ISO
    ],
)
def test_a_numeric_timestamp_is_read_in_the_mapped_unit(
    value: object, unit: TimestampUnit, expected: datetime
) -> None:
    fields = FieldMapping(timestamp_unit=unit)
    raw = orjson.dumps({"userId": "u", "amount": 1, "timestamp": value})
    tx = parse_transaction(raw, SOURCE, LIMIT, fields)
    assert isinstance(tx, Transaction)
    assert tx.timestamp == expected


@pytest.mark.parametrize(("value", "unit"), [(-1, "d"), ("1e300", "h"), (float("inf"), "s")])
def test_a_timestamp_out_of_range_in_its_unit_is_rejected(
    value: object, unit: TimestampUnit
) -> None:
    raw = orjson.dumps({"userId": "u", "amount": 1, "timestamp": value})
    result = parse_transaction(raw, SOURCE, LIMIT, FieldMapping(timestamp_unit=unit))
    assert isinstance(result, Rejection)
    assert "timestamp" in result.detail


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        True,
        None,
        -1,
        1e300,
        [],
        "2024-13-45",
        "0001-01-01T00:00:00+01:00",  # before the first instant there is in UTC
        "9999-12-31T23:30:00-01:00",  # after the last
    ],
)
def test_invalid_timestamps_are_rejected(value: object) -> None:
    result = parse({"userId": "u", "amount": 1, "timestamp": value})
    assert isinstance(result, Rejection)
    assert "timestamp" in result.detail


@pytest.mark.parametrize("missing", ["userId", "amount", "timestamp"])
def test_missing_required_field_is_named(missing: str) -> None:
    doc = {"userId": "u", "amount": 1, "timestamp": "2024-12-04T15:00:00Z"}
    del doc[missing]
    result = parse(doc)
    assert isinstance(result, Rejection)
    assert result.detail == f"missing required field {missing!r}"


def test_transaction_id_is_derived_from_the_source_when_absent() -> None:
    assert ok().transaction_id == "transactions-input-2-41"


def test_given_transaction_id_is_kept() -> None:
    assert ok(transactionId="abc-1").transaction_id == "abc-1"


def test_unknown_fields_are_passed_through() -> None:
    tx = ok(merchantId="m-9", country="FR", channel="online", nested={"a": 1})
    assert tx.extra == {
        "merchantId": "m-9",
        "country": "FR",
        "channel": "online",
        "nested": {"a": 1},
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b"[1,2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"[" * 2000 + b"]" * 2000, "invalid_json"),
    ],
)
def test_unparseable_messages_are_categorised(raw: bytes, reason: str) -> None:
    assert rejected(raw).reason == reason


def test_oversized_message_is_rejected_before_parsing() -> None:
    raw = orjson.dumps({"userId": "u", "amount": 1, "timestamp": "x" * 200})
    assert rejected(raw, limit=100).reason == "oversized"


def test_a_message_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    base = {"userId": "u", "amount": 1, "timestamp": "2024-12-04T15:00:00Z", "note": ""}
    pad = 200 - len(orjson.dumps(base))
    at_limit = orjson.dumps({**base, "note": "x" * pad})
    assert len(at_limit) == 200
    assert isinstance(parse_transaction(at_limit, SOURCE, 200), Transaction)
    over = orjson.dumps({**base, "note": "x" * (pad + 1)})
    assert rejected(over, limit=200).reason == "oversized"


@given(st.binary(max_size=300))
def test_parser_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    assert isinstance(parse_transaction(raw, SOURCE, LIMIT), Transaction | Rejection)


@given(
    st.dictionaries(
        st.sampled_from(["userId", "amount", "timestamp", "transactionId", "other"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    )
)
def test_parser_never_raises_on_arbitrary_objects(doc: dict[str, object]) -> None:
    try:
        raw = orjson.dumps(doc)
    except TypeError:  # integers beyond 64 bits cannot be encoded at all
        return
    result = parse_transaction(raw, SOURCE, LIMIT)
    if isinstance(result, Transaction):
        assert result.amount >= 0 and result.user_id and result.timestamp.tzinfo is not None


def test_alert_id_is_deterministic_and_distinguishes_transactions() -> None:
    assert alert_id_for(ok(transactionId="t1")) == alert_id_for(ok(transactionId="t1"))
    assert alert_id_for(ok(transactionId="t1")) != alert_id_for(ok(transactionId="t2"))


def test_alert_json_carries_reasons_scores_and_passthrough_fields() -> None:
    tx = ok(transactionId="t1", merchantId="m-1")
    now = datetime(2024, 12, 4, 15, 0, 1, tzinfo=UTC)
    reasons = [Reason(ReasonKind.RULE, ReasonName.AMOUNT_THRESHOLD, {"threshold": 10000.0})]
    alert = Alert("id1", tx, now, 0.123456, reasons, {"amount": 0.7}, risk=0.876543)
    record = orjson.loads(alert.to_json())
    assert record == {
        "alertId": "id1",
        "transactionId": "t1",
        "userId": "12345",
        "amount": 15000.0,
        "timestamp": "2024-12-04T15:00:00.000Z",
        "detectedAt": "2024-12-04T15:00:01.000Z",
        "score": 0.1235,
        "risk": 0.8765,
        "reasons": [{"type": "rule", "name": "amount_threshold", "threshold": 10000.0}],
        "features": {"amount": 0.7},
        "merchantId": "m-1",
    }


def test_passthrough_fields_never_overwrite_alert_fields() -> None:
    tx = ok(score="fake", risk="fake", reasons="fake")
    record = Alert("id", tx, tx.timestamp, 0.5, [], {}, 0.75).to_dict()
    assert record["score"] == 0.5 and record["risk"] == 0.75 and record["reasons"] == []


def test_dead_letter_keeps_payload_reason_and_source() -> None:
    now = datetime(2024, 12, 4, tzinfo=UTC)
    record = orjson.loads(
        dead_letter(b"oops", b"k", SOURCE, Rejection(DeadLetterReason.INVALID_JSON, "bad"), now)
    )
    assert record["payload"] == "oops"
    assert record["reason"] == "invalid_json" and record["error"] == "bad"
    assert record["source"] == {"topic": "transactions-input", "partition": 2, "offset": 41}
    assert record["key"] == "k"


def test_dead_letter_of_binary_payload_is_base64() -> None:
    now = datetime(2024, 12, 4, tzinfo=UTC)
    record = orjson.loads(
        dead_letter(b"\xff\x00", None, SOURCE, Rejection(DeadLetterReason.INVALID_JSON, ""), now)
    )
    assert record["payloadBase64"] == "/wA="
    assert "payload" not in record


def test_dead_letter_of_oversized_payload_is_truncated_with_a_hash() -> None:
    now = datetime(2024, 12, 4, tzinfo=UTC)
    raw = b"a" * 100_000
    record = orjson.loads(
        dead_letter(raw, None, SOURCE, Rejection(DeadLetterReason.OVERSIZED, ""), now)
    )
    assert record["truncated"] is True and record["sizeBytes"] == 100_000
    assert len(record["payload"]) == 1024 and len(record["sha256"]) == 64


def test_the_input_mapping_reads_each_role_from_its_own_field() -> None:
    from fraudstream.core.fields import FieldMapping

    mapping = FieldMapping(
        user_id="customer_id",
        amount="TX_AMOUNT",
        timestamp="TX_DATETIME",
        transaction_id="TRANSACTION_ID",
        merchant="terminal_id",
        channel="entry_mode",
        latitude="y",
        longitude="x",
    )
    raw = orjson.dumps(
        {
            "TRANSACTION_ID": 5,
            "customer_id": 12,
            "TX_AMOUNT": 57.16,
            "TX_DATETIME": "2018-04-01 00:00:31",
            "terminal_id": 3156,
            "entry_mode": "CNP",
            "x": 10.5,
            "y": 2.25,
            "userId": "ignored-here",
        }
    )
    tx = parse_transaction(raw, SOURCE, LIMIT, mapping)
    assert isinstance(tx, Transaction)
    assert (tx.transaction_id, tx.user_id, tx.amount) == ("5", "12", 57.16)
    assert tx.timestamp == datetime(2018, 4, 1, 0, 0, 31, tzinfo=UTC)
    assert (tx.merchant, tx.channel, tx.country, tx.category) == ("3156", "CNP", None, None)
    assert (tx.latitude, tx.longitude) == (2.25, 10.5)
    assert tx.extra["terminal_id"] == 3156 and tx.extra["userId"] == "ignored-here"


def test_a_missing_mapped_field_is_named_in_the_rejection() -> None:
    from fraudstream.core.fields import FieldMapping

    raw = orjson.dumps({"customer_id": 1, "amount": 2.0, "timestamp": 0})
    result = parse_transaction(raw, SOURCE, LIMIT, FieldMapping(amount="TX_AMOUNT"))
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_field" and "'userId'" in result.detail

    result = parse_transaction(raw, SOURCE, LIMIT, FieldMapping(user_id="customer_id"))
    assert isinstance(result, Transaction)


@pytest.mark.parametrize("bad", [{"a": 1}, [1], True])
def test_an_optional_role_with_a_structured_value_is_refused(bad: object) -> None:
    raw = orjson.dumps({"userId": "u", "amount": 1, "timestamp": 0, "merchantId": bad})
    result = parse_transaction(raw, SOURCE, LIMIT)
    assert isinstance(result, Rejection) and "'merchantId'" in result.detail


def test_half_a_position_is_no_position() -> None:
    raw = orjson.dumps({"userId": "u", "amount": 1, "timestamp": 0, "latitude": 48.1})
    tx = parse_transaction(raw, SOURCE, LIMIT)
    assert isinstance(tx, Transaction) and tx.latitude is None and tx.longitude is None


def test_each_mapping_passes_through_the_fields_it_does_not_parse() -> None:
    # mappings made and dropped in turn, as tools do (a new one may take a dropped one's id)
    for i in range(5):
        user = f"customer{i}"
        doc = {user: "c", "cost": 2, "timestamp": 1733324400, "userId": "u", "amount": 1}
        mapped = transaction_from_dict(doc, SOURCE, FieldMapping(user_id=user, amount="cost"))
        assert (mapped.user_id, sorted(mapped.extra)) == ("c", ["amount", "userId"])
        assert sorted(transaction_from_dict(doc, SOURCE).extra) == ["cost", user]
