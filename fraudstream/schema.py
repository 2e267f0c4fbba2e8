"""The records fraudstream reads and writes: transactions in, alerts and dead letters out.

Parsing is a pure function from bytes to either a :class:`Transaction` or a
:class:`Rejection`; nothing here knows about Kafka.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from fraudstream.masking import mask_text, mask_value

#: Fields the detector interprets; everything else is passed through into alerts.
KNOWN_FIELDS = frozenset({"userId", "amount", "timestamp", "transactionId"})
#: Epoch numbers above this are milliseconds (1e11 s is the year 5138).
EPOCH_MS_CUTOFF = 1e11
#: Upper bound on a sane timestamp (year 9999) so datetime never overflows.
MAX_EPOCH_SECONDS = 253_402_300_799
MAX_USER_ID_LENGTH = 256
#: Bytes of an oversized payload kept on its dead letter (the rest is summarised by hash).
DLQ_PAYLOAD_PREVIEW_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record was read from; a stable identity for derived ids."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Transaction:
    """A validated card transaction."""

    transaction_id: str
    user_id: str
    amount: float
    timestamp: datetime  # always timezone-aware, UTC
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch_seconds(self) -> float:
        """Event time as Unix seconds."""
        return self.timestamp.timestamp()


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message could not become a :class:`Transaction`."""

    reason: str  # machine-readable category, e.g. "invalid_json", "invalid_field"
    detail: str  # human-readable explanation


class InvalidField(ValueError):
    """A field failed validation; the message says which and why."""


def parse_transaction(raw: bytes, source: Source, max_bytes: int) -> Transaction | Rejection:
    """Validate one raw message; never raises for bad input."""
    if len(raw) > max_bytes:
        return Rejection("oversized", f"message is {len(raw)} bytes, limit is {max_bytes}")
    if not raw.strip():
        return Rejection("empty", "message is empty")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("invalid_json", f"not valid JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejection("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
    try:
        return transaction_from_dict(doc, source)
    except InvalidField as exc:
        return Rejection("invalid_field", str(exc))


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


def isoformat_utc(moment: datetime) -> str:
    """ISO-8601 with millisecond precision and a ``Z`` suffix."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_id_for(tx: Transaction) -> str:
    """Deterministic alert id: a replay of the same transaction yields the same id."""
    digest = hashlib.sha256(f"{tx.user_id}\x1f{tx.transaction_id}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True, slots=True)
class Alert:
    """A suspicious transaction with every reason that fired."""

    alert_id: str
    transaction: Transaction
    detected_at: datetime
    score: float
    reasons: list[dict[str, Any]]
    features: dict[str, float]

    @property
    def reason_names(self) -> list[str]:
        """Names of the reasons, e.g. ``["amount_threshold", "half_space_trees"]``."""
        return [str(r["name"]) for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object published on the alerts topic."""
        tx = self.transaction
        record: dict[str, Any] = {
            "alertId": self.alert_id,
            "transactionId": tx.transaction_id,
            "userId": tx.user_id,
            "amount": tx.amount,
            "timestamp": isoformat_utc(tx.timestamp),
            "detectedAt": isoformat_utc(self.detected_at),
            "score": round(self.score, 4),
            "reasons": self.reasons,
            "features": {k: round(v, 4) for k, v in self.features.items()},
        }
        for key, value in tx.extra.items():
            record.setdefault(key, value)
        return record

    def to_json(self) -> bytes:
        """One line of JSON, as ``kafka-console-consumer`` prints it."""
        return orjson.dumps(self.to_dict())


def dead_letter(
    raw: bytes, key: bytes | None, source: Source, rejection: Rejection, now: datetime
) -> bytes:
    """The JSON record sent to the dead-letter topic for a rejected message."""
    record: dict[str, Any] = {
        "reason": rejection.reason,
        "error": rejection.detail,
        "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset},
        "key": _printable(key) if key is not None else None,
        "receivedAt": isoformat_utc(now),
        "sizeBytes": len(raw),
    }
    if rejection.reason == "oversized":
        record["sha256"] = hashlib.sha256(raw).hexdigest()
        raw = raw[:DLQ_PAYLOAD_PREVIEW_BYTES]
        record["truncated"] = True
    try:
        record["payload"] = mask_text(raw.decode("utf-8"))
    except UnicodeDecodeError:
        record["payloadBase64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(record)


def _printable(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
