"""Parsing: raw message bytes to a :class:`Transaction` or a :class:`Rejection`, never raising."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import orjson

from fraudstream.core.masking import mask_value
from fraudstream.core.records import DeadLetterReason, Rejection, Source, Transaction

#: Fields the detector interprets; everything else is passed through into alerts.
KNOWN_FIELDS = frozenset({"userId", "amount", "timestamp", "transactionId"})
#: Epoch numbers above this are milliseconds (1e11 s is the year 5138).
EPOCH_MS_CUTOFF = 1e11
#: Upper bound on a sane timestamp (year 9999) so datetime never overflows.
MAX_EPOCH_SECONDS = 253_402_300_799
MAX_USER_ID_LENGTH = 256


class InvalidField(ValueError):
    """A field failed validation; the message says which and why."""


def parse_transaction(raw: bytes, source: Source, max_bytes: int) -> Transaction | Rejection:
    """Validate one raw message; never raises for bad input."""
    if len(raw) > max_bytes:
        return Rejection(
            DeadLetterReason.OVERSIZED, f"message is {len(raw)} bytes, limit is {max_bytes}"
        )
    if not raw.strip():
        return Rejection(DeadLetterReason.EMPTY, "message is empty")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(DeadLetterReason.INVALID_JSON, f"not valid JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejection(
            DeadLetterReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(doc).__name__}"
        )
    try:
        return transaction_from_dict(doc, source)
    except InvalidField as exc:
        return Rejection(DeadLetterReason.INVALID_FIELD, str(exc))


def transaction_from_dict(doc: dict[str, Any], source: Source) -> Transaction:
    """Build a transaction from a decoded JSON object; raise :class:`InvalidField`."""
    for name in ("userId", "amount", "timestamp"):
        if name not in doc:
            raise InvalidField(f"missing required field {name!r}")
    user_id = parse_user_id(doc["userId"])
    amount = parse_amount(doc["amount"])
    timestamp = parse_timestamp(doc["timestamp"])
    tx_id = doc.get("transactionId")
    if tx_id is None:
        tx_id = f"{source.topic}-{source.partition}-{source.offset}"
    elif isinstance(tx_id, bool) or not isinstance(tx_id, str | int) or str(tx_id).strip() == "":
        raise InvalidField("'transactionId' must be a non-empty string or an integer")
    extra = {k: mask_value(v) for k, v in doc.items() if k not in KNOWN_FIELDS}
    return Transaction(str(tx_id).strip(), user_id, amount, timestamp, extra)


def parse_user_id(value: Any) -> str:
    """A non-empty string or an integer, kept as a string."""
    if isinstance(value, bool):
        raise InvalidField("'userId' must be a string or an integer, got a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidField("'userId' must not be empty")
        if len(text) > MAX_USER_ID_LENGTH:
            raise InvalidField(f"'userId' is longer than {MAX_USER_ID_LENGTH} characters")
        return text
    raise InvalidField(f"'userId' must be a string or an integer, got {_json_type(value)}")


def parse_amount(value: Any) -> float:
    """A finite number >= 0; booleans and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidField(f"'amount' must be a number, got {_json_type(value)}")
    amount = float(value)
    if not math.isfinite(amount):
        raise InvalidField("'amount' must be finite")
    if amount < 0:
        raise InvalidField(f"'amount' must be >= 0, got {value}")
    return amount


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 (no zone means UTC) or epoch seconds / milliseconds; returns UTC."""
    if isinstance(value, bool):
        raise InvalidField("'timestamp' must be ISO-8601 or epoch seconds/milliseconds")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return _from_epoch(float(text))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(_normalise_iso(text))
        except ValueError:
            raise InvalidField(f"'timestamp' is not ISO-8601: {value[:64]!r}") from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    raise InvalidField(f"'timestamp' must be a string or a number, got {_json_type(value)}")


def _normalise_iso(text: str) -> str:
    """Make an ISO string acceptable to Python 3.10's ``fromisoformat``."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return text


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number) or number < 0:
        raise InvalidField("'timestamp' epoch must be a finite number >= 0")
    seconds = number / 1000.0 if number >= EPOCH_MS_CUTOFF else number
    if seconds > MAX_EPOCH_SECONDS:
        raise InvalidField("'timestamp' epoch is too far in the future")
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)
