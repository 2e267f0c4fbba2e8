"""The records fraudstream reads and writes: transactions in, alerts and dead letters out.

Every reason is typed: a dead letter carries a :class:`DeadLetterReason`, an alert a list
of :class:`Reason` values named by :class:`ReasonName`. Nothing here knows about Kafka.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import orjson

from fraudstream.core.masking import mask_text

#: Bytes of an oversized payload kept on its dead letter (the rest is summarised by hash).
DLQ_PAYLOAD_PREVIEW_BYTES = 1024


@dataclass(frozen=True, slots=True, init=False)
class Source:
    """Where a record was read from; a stable identity for derived ids."""

    topic: str
    partition: int
    offset: int

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        # written out so that mypyc compiles it (see fraudstream.native)
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "partition", partition)
        object.__setattr__(self, "offset", offset)


@dataclass(frozen=True, slots=True, init=False)
class Transaction:
    """A validated card transaction."""

    transaction_id: str
    user_id: str
    amount: float
    timestamp: datetime  # always timezone-aware, UTC
    #: Every input field that is not one of the four above, passed through into alerts.
    extra: dict[str, Any] = field(default_factory=dict)
    #: Optional roles (see :class:`fraudstream.core.fields.FieldMapping`); None when absent.
    merchant: str | None = None
    country: str | None = None
    channel: str | None = None
    category: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    #: Event time as Unix seconds, computed once: an event reads it about eight times.
    epoch_seconds: float = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        transaction_id: str,
        user_id: str,
        amount: float,
        timestamp: datetime,
        extra: dict[str, Any] | None = None,
        merchant: str | None = None,
        country: str | None = None,
        channel: str | None = None,
        category: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
    ) -> None:
        # written out so that mypyc compiles it (see fraudstream.native)
        object.__setattr__(self, "transaction_id", transaction_id)
        object.__setattr__(self, "user_id", user_id)
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "timestamp", timestamp)
        object.__setattr__(self, "extra", {} if extra is None else extra)
        object.__setattr__(self, "merchant", merchant)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "category", category)
        object.__setattr__(self, "latitude", latitude)
        object.__setattr__(self, "longitude", longitude)
        object.__setattr__(self, "epoch_seconds", timestamp.timestamp())


class DeadLetterReason(str, Enum):
    """Why a message went to the dead-letter topic (the ``reason`` field of its record)."""

    OVERSIZED = "oversized"
    EMPTY = "empty"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_FIELD = "invalid_field"
    #: Valid input whose processing raised; parked so the stream goes on.
    PROCESSING_ERROR = "processing_error"
    #: A message on the labels topic that is not a valid label.
    INVALID_LABEL = "invalid_label"
    #: A valid label for a transaction this worker never scored, or no longer holds.
    UNKNOWN_TRANSACTION = "unknown_transaction"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message could not become a :class:`Transaction`."""

    reason: DeadLetterReason
    detail: str  # human-readable explanation


class ReasonKind(str, Enum):
    """What produced a reason: a deterministic rule or a model's score."""

    RULE = "rule"
    MODEL = "model"


class ReasonName(str, Enum):
    """Every reason an alert can carry; the names appear in alerts, metrics and InfluxDB."""

    AMOUNT_THRESHOLD = "amount_threshold"
    HABIT_SPIKE = "habit_spike"
    UNFAMILIAR_PLACE = "unfamiliar_place"
    #: The per-user deviation rule: amount far from the user's own scale, or a burst.
    USER_DEVIATION = "user_deviation"
    #: Rules defined as data (their alerts carry the rule's own id; these are the defaults).
    VELOCITY = "velocity"
    DENY_LIST = "deny_list"
    ALLOW_LIST = "allow_list"
    EXPRESSION = "expression"
    HALF_SPACE_TREES = "half_space_trees"
    #: The online supervised model trained from labels.
    FRAUD_CLASSIFIER = "fraud_classifier"


def reason_text(name: str) -> str:
    """The plain text of a reason name (a :class:`ReasonName` or a user rule's id)."""
    return name.value if isinstance(name, Enum) else name


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason an alert fired: its kind, its name and the figures that explain it.

    Built-in reasons are named by :class:`ReasonName`; a name may also be a rule's own id.

    >>> Reason(ReasonKind.RULE, ReasonName.AMOUNT_THRESHOLD, {"threshold": 10000.0}).to_dict()
    {'type': 'rule', 'name': 'amount_threshold', 'threshold': 10000.0}
    """

    kind: ReasonKind
    name: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The reason as it appears in the alert's ``reasons`` list."""
        return {"type": self.kind.value, "name": reason_text(self.name), **self.details}


def isoformat_utc(moment: datetime) -> str:
    """ISO-8601 with millisecond precision and a ``Z`` suffix."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_id_for(tx: Transaction) -> str:
    """Deterministic alert id: a replay of the same transaction yields the same id."""
    digest = hashlib.sha256(f"{tx.user_id}\x1f{tx.transaction_id}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True, slots=True)
class Alert:
    """A suspicious transaction with every reason that fired.

    ``score`` is Half-Space Trees' own score; ``risk`` the decision's risk score in [0, 1],
    which combines every part (rules, trees, classifier) and ranks alerts for review.
    """

    alert_id: str
    transaction: Transaction
    detected_at: datetime
    score: float
    reasons: list[Reason]
    features: dict[str, float]
    risk: float

    @property
    def reason_names(self) -> list[str]:
        """Names of the reasons, e.g. ``["amount_threshold", "half_space_trees"]``."""
        return [reason_text(r.name) for r in self.reasons]

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
            "risk": round(self.risk, 4),
            "reasons": [r.to_dict() for r in self.reasons],
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
    """The JSON record sent to the dead-letter topic for a rejected message.

    ``masked`` says whether masking card numbers changed the kept payload: such a copy is not
    the message as received, so ``fraudstream replay-dlq`` must not re-send it.
    """
    record: dict[str, Any] = {
        "reason": rejection.reason.value,
        "error": rejection.detail,
        "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset},
        "key": _printable(key) if key is not None else None,
        "receivedAt": isoformat_utc(now),
        "sizeBytes": len(raw),
    }
    if rejection.reason is DeadLetterReason.OVERSIZED:
        record["sha256"] = hashlib.sha256(raw).hexdigest()
        raw = raw[:DLQ_PAYLOAD_PREVIEW_BYTES]
        record["truncated"] = True
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["payloadBase64"] = base64.b64encode(raw).decode("ascii")
        record["masked"] = False
    else:
        record["payload"] = mask_text(text)
        record["masked"] = record["payload"] != text
    return orjson.dumps(record)


def _printable(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
