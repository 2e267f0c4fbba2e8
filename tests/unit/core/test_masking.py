"""Card numbers are masked wherever a transaction's data leaves the worker."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from fraudstream.core.masking import luhn_valid, mask_text, mask_value
from fraudstream.core.parsing import parse_transaction
from fraudstream.core.records import (
    Alert,
    DeadLetterReason,
    Rejection,
    Source,
    Transaction,
    dead_letter,
)

VISA = "4111111111111111"  # a Luhn-valid test number
SOURCE = Source("t", 0, 1)


def test_luhn() -> None:
    assert luhn_valid(VISA) and luhn_valid("5555555555554444")
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize("text", [VISA, "4111 1111 1111 1111", "4111-1111-1111-1111"])
def test_card_numbers_in_text_keep_only_their_last_four_digits(text: str) -> None:
    assert mask_text(f"card {text} used") == "card ************1111 used"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111 1111 1111 1111 123", "************1111 123"),  # its security code after it
        (f"{VISA} 12 26", "************1111 12 26"),  # its expiry
        ("12 26 4111-1111-1111-1111", "12 26 ************1111"),
        (f"5555555555554444 {VISA}", "************4444 ************1111"),
    ],
)
def test_a_card_number_followed_or_preceded_by_other_numbers_is_masked(
    text: str, masked: str
) -> None:
    assert mask_text(f"card {text} used") == f"card {masked} used"


def test_digit_runs_that_are_not_card_numbers_stay() -> None:
    assert mask_text("order 4111111111111112 and phone 0612345678") == (
        "order 4111111111111112 and phone 0612345678"
    )


def test_nested_values_and_integer_pans_are_masked() -> None:
    masked = mask_value({"card": {"pan": int(VISA), "note": f"pan={VISA}"}, "n": 5, "ok": True})
    assert masked == {
        "card": {"pan": "************1111", "note": "pan=************1111"},
        "n": 5,
        "ok": True,
    }


def test_alert_never_carries_a_card_number_in_clear() -> None:
    raw = orjson.dumps(
        {"userId": "u", "amount": 20000, "timestamp": 0, "cardNumber": VISA, "memo": f"x {VISA}"}
    )
    tx = parse_transaction(raw, SOURCE, 10_000)
    assert isinstance(tx, Transaction)
    alert = Alert("id", tx, datetime.now(timezone.utc), 0.0, [], {}, 1.0).to_json()
    assert VISA.encode() not in alert
    assert b"************1111" in alert


def test_dead_letter_payload_masks_card_numbers() -> None:
    raw = f'{{"userId": "u", "cardNumber": "{VISA}"'.encode()  # truncated JSON
    record = dead_letter(
        raw, None, SOURCE, Rejection(DeadLetterReason.INVALID_JSON, "x"), datetime.now(timezone.utc)
    )
    assert VISA.encode() not in record
