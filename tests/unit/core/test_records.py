"""Dead-letter records: whether the kept payload is the message as received."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from fraudstream.core.records import DeadLetterReason, Rejection, Source, dead_letter

SOURCE = Source("transactions-input", 0, 3)
NOW = datetime(2024, 12, 4, tzinfo=timezone.utc)
REJECTION = Rejection(DeadLetterReason.INVALID_FIELD, "bad")


def test_a_dead_letter_says_when_masking_changed_its_payload() -> None:
    """A masked copy is not the message: ``masked`` tells replay-dlq not to re-send it."""
    card = orjson.loads(
        dead_letter(b'{"userId": "4111111111111111"}', None, SOURCE, REJECTION, NOW)
    )
    assert card["payload"] == '{"userId": "************1111"}' and card["masked"] is True
    plain = orjson.loads(
        dead_letter(b'{"userId": "u1", "amount": -5}', None, SOURCE, REJECTION, NOW)
    )
    assert plain["payload"] == '{"userId": "u1", "amount": -5}' and plain["masked"] is False
    binary = orjson.loads(dead_letter(b"\xff\x00", None, SOURCE, REJECTION, NOW))
    assert binary["payloadBase64"] == "/wA=" and binary["masked"] is False
