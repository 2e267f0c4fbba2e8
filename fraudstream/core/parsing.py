"""Parsing: raw message bytes to a :class:`Transaction` or a :class:`Rejection`, never raising."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime, timezone
from typing import Any

import orjson

from fraudstream.core.fields import EPOCH_MS_CUTOFF, UNIT_SECONDS, FieldMapping, TimestampUnit
from fraudstream.core.masking import mask_value
from fraudstream.core.records import DeadLetterReason, Rejection, Source, Transaction

#: The default input mapping (the field names fraudstream has always read).
DEFAULT_FIELDS = FieldMapping()
#: Longest merchant, country, channel or category kept (longer values are cut, not refused).
MAX_LABEL_LENGTH = 128
#: Upper bound on a sane timestamp (year 9999) so datetime never overflows.
MAX_EPOCH_SECONDS = 253_402_300_799
MAX_USER_ID_LENGTH = 256
#: The JSON types each field takes, as tuples: ``isinstance`` with ``int | float`` builds the
#: union on every call, several times per message.
_NUMBER = (int, float)
_ID = (str, int)
_LABEL = (str, int, float)
#: An amount sent as a string: digits with an optional decimal point, nothing else.
DECIMAL_AMOUNT = re.compile(r"[0-9]{1,15}(\.[0-9]*)?|\.[0-9]+")


class InvalidField(ValueError):
    """A field failed validation; the message says which and why."""


def parse_transaction(
    raw: bytes, source: Source, max_bytes: int, fields: FieldMapping = DEFAULT_FIELDS
) -> Transaction | Rejection:
    """Validate one raw message, reading each role from its mapped field; never raises.

    >>> src = Source("in", 0, 7)
    >>> tx = parse_transaction(
    ...     b'{"customer_id": 3, "TX_AMOUNT": 12.5, "ts": 1700000000, "terminal_id": "T9"}',
    ...     src, 65536, FieldMapping(user_id="customer_id", amount="TX_AMOUNT", timestamp="ts",
    ...                              merchant="terminal_id"))
    >>> tx.user_id, tx.amount, tx.merchant, tx.transaction_id
    ('3', 12.5, 'T9', 'in-0-7')
    """
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
        return transaction_from_dict(doc, source, fields)
    except InvalidField as exc:
        return Rejection(DeadLetterReason.INVALID_FIELD, str(exc))


def transaction_from_dict(
    doc: dict[str, Any], source: Source, fields: FieldMapping = DEFAULT_FIELDS
) -> Transaction:
    """Build a transaction from a decoded JSON object; raise :class:`InvalidField`."""
    for name in (fields.user_id, fields.amount, fields.timestamp):
        if name not in doc:
            raise InvalidField(f"missing required field {name!r}")
    user_id = parse_user_id(doc[fields.user_id], fields.user_id)
    amount = parse_amount(doc[fields.amount], fields.amount)
    timestamp = parse_timestamp(doc[fields.timestamp], fields.timestamp, fields.timestamp_unit)
    tx_id = doc.get(fields.transaction_id)
    if tx_id is None:
        tx_id = f"{source.topic}-{source.partition}-{source.offset}"
    elif isinstance(tx_id, bool) or not isinstance(tx_id, _ID) or str(tx_id).strip() == "":
        raise InvalidField(f"{fields.transaction_id!r} must be a non-empty string or an integer")
    core = fields.core_names()
    extra = {k: mask_value(v) for k, v in doc.items() if k not in core}
    latitude = parse_coordinate(doc.get(fields.latitude), fields.latitude)
    longitude = parse_coordinate(doc.get(fields.longitude), fields.longitude)
    if (latitude is None) != (longitude is None):
        latitude = longitude = None  # half a position is no position
    return Transaction(
        str(tx_id).strip(),
        user_id,
        amount,
        timestamp,
        extra,
        merchant=parse_label(doc.get(fields.merchant), fields.merchant),
        country=parse_label(doc.get(fields.country), fields.country),
        channel=parse_label(doc.get(fields.channel), fields.channel),
        category=parse_label(doc.get(fields.category), fields.category),
        latitude=latitude,
        longitude=longitude,
    )


def parse_label(value: Any, name: str) -> str | None:
    """An optional short label (merchant, country, channel, category): a string or a number.

    >>> parse_label(42, "merchantId"), parse_label(" DE ", "country"), parse_label(None, "x")
    ('42', 'DE', None)
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, _LABEL):
        raise InvalidField(f"{name!r} must be a string or a number, got {_json_type(value)}")
    text = str(value).strip()
    return text[:MAX_LABEL_LENGTH] or None


def parse_coordinate(value: Any, name: str) -> float | None:
    """An optional finite coordinate."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or not math.isfinite(value):
        raise InvalidField(f"{name!r} must be a finite number, got {_json_type(value)}")
    return float(value)


def parse_user_id(value: Any, name: str = "userId") -> str:
    """A non-empty string or an integer, kept as a string."""
    if isinstance(value, bool):
        raise InvalidField(f"{name!r} must be a string or an integer, got a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidField(f"{name!r} must not be empty")
        if len(text) > MAX_USER_ID_LENGTH:
            raise InvalidField(f"{name!r} is longer than {MAX_USER_ID_LENGTH} characters")
        return text
    raise InvalidField(f"{name!r} must be a string or an integer, got {_json_type(value)}")


def parse_amount(value: Any, name: str = "amount") -> float:
    """A finite number >= 0, or a plain decimal string such as ``"12.50"``.

    Payment systems often send money as decimal strings so no float rounds it on the way, and
    exports often write a currency sign before it (``"$134.09"``, as in TabFormer's CSV);
    anything else in a string (codes, thousands separators, exponents, signs) is refused.

    >>> parse_amount(15000), parse_amount(" 12.50 "), parse_amount(".5"), parse_amount("$134.09")
    (15000.0, 12.5, 0.5, 134.09)
    """
    if isinstance(value, str):
        text = value.strip()
        if text[:1] and unicodedata.category(text[0]) == "Sc":  # a currency sign: $, €, £ ...
            text = text[1:].lstrip()
        if not DECIMAL_AMOUNT.fullmatch(text):
            raise InvalidField(f"{name!r} must be a number or a decimal string, got {value[:32]!r}")
        value = float(text)
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise InvalidField(f"{name!r} must be a number, got {_json_type(value)}")
    amount = float(value)
    if not math.isfinite(amount):
        raise InvalidField(f"{name!r} must be finite")
    if amount < 0:
        raise InvalidField(f"{name!r} must be >= 0, got {value}")
    return amount


def parse_timestamp(value: Any, name: str = "timestamp", unit: TimestampUnit = "auto") -> datetime:
    """ISO-8601 (no zone means UTC), or a number read in ``unit``; returns UTC.

    A number (or a numeric string) is epoch seconds or milliseconds by its size with ``auto``,
    and otherwise that many seconds, milliseconds, hours or days since the epoch (``s``,
    ``ms``, ``h``, ``d``): a simulator's step counter reads as steps of its own length.

    >>> parse_timestamp(1_700_000_000).isoformat(), parse_timestamp(1_700_000_000_000).year
    ('2023-11-14T22:13:20+00:00', 2023)
    >>> parse_timestamp("36", unit="h").isoformat(), parse_timestamp(2, unit="d").day
    ('1970-01-02T12:00:00+00:00', 3)
    """
    if isinstance(value, bool):
        raise InvalidField(f"{name!r} must be ISO-8601 or a number, got a boolean")
    if isinstance(value, _NUMBER):
        return _from_number(float(value), name, unit)
    if isinstance(value, str):
        text = value.strip()
        if ":" not in text:  # float() reads no colon: an ISO time skips a raised ValueError
            try:
                number = float(text)
            except ValueError:
                pass
            else:
                return _from_number(number, name, unit)
        try:
            parsed = datetime.fromisoformat(_normalise_iso(text))
        except ValueError:
            raise InvalidField(f"{name!r} is not ISO-8601: {value[:64]!r}") from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=timezone.utc)
        try:
            return parsed.astimezone(timezone.utc)
        except OverflowError:  # 0001-01-01T00:00+01:00: before the first instant in UTC
            raise InvalidField(f"{name!r} is out of range in UTC: {value[:64]!r}") from None
    raise InvalidField(f"{name!r} must be a string or a number, got {_json_type(value)}")


def _normalise_iso(text: str) -> str:
    """Make an ISO string acceptable to Python 3.10's ``fromisoformat``."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return text


def _from_number(number: float, name: str, unit: TimestampUnit) -> datetime:
    if not math.isfinite(number) or number < 0:
        raise InvalidField(f"{name!r} must be a finite number >= 0")
    if unit == "auto":
        seconds = number / 1000.0 if number >= EPOCH_MS_CUTOFF else number
    else:
        seconds = number * UNIT_SECONDS[unit]
    if seconds > MAX_EPOCH_SECONDS:
        raise InvalidField(f"{name!r} epoch is too far in the future")
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)
