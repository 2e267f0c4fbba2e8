"""Labels: what a fraud team learned about a transaction later (chargebacks, analysts' verdicts).

A label arrives on the labels topic as ``{"transactionId": ..., "userId": ..., "label": "fraud"
| "legit", "labeledAt": ISO-8601, "source": "chargeback" | "analyst" | ...}`` keyed by userId,
so it lands in the same partition as the user's transactions. Parsing never raises: a bad
label becomes a :class:`Rejection` for the dead-letter topic, like a bad transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

from fraudstream.core.parsing import InvalidField, parse_timestamp, parse_user_id
from fraudstream.core.records import DeadLetterReason, Rejection

#: Longest ``source`` kept (a free-form name such as ``chargeback`` or ``analyst``).
MAX_SOURCE_LENGTH = 64


class Verdict(str, Enum):
    """What the label says about the transaction."""

    FRAUD = "fraud"
    LEGIT = "legit"


@dataclass(frozen=True, slots=True)
class Label:
    """A verdict on one earlier transaction."""

    transaction_id: str
    user_id: str
    verdict: Verdict
    labeled_at: datetime | None = None
    source: str = "unknown"

    @property
    def is_fraud(self) -> bool:
        """True for a fraud verdict."""
        return self.verdict is Verdict.FRAUD


def parse_label(raw: bytes, max_bytes: int) -> Label | Rejection:
    """Validate one message of the labels topic; never raises for bad input.

    >>> parse_label(b'{"transactionId": "t1", "userId": 7, "label": "fraud"}', 1024).verdict
    <Verdict.FRAUD: 'fraud'>
    >>> parse_label(b'{"transactionId": "t1", "userId": 7, "label": "maybe"}', 1024).reason
    <DeadLetterReason.INVALID_LABEL: 'invalid_label'>
    """
    if len(raw) > max_bytes:
        return Rejection(
            DeadLetterReason.OVERSIZED, f"label is {len(raw)} bytes, limit {max_bytes}"
        )
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(DeadLetterReason.INVALID_LABEL, f"not valid JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejection(DeadLetterReason.INVALID_LABEL, "a label must be a JSON object")
    try:
        return _label_from_dict(doc)
    except InvalidField as exc:
        return Rejection(DeadLetterReason.INVALID_LABEL, str(exc))


def _label_from_dict(doc: dict[str, Any]) -> Label:
    for name in ("transactionId", "userId", "label"):
        if name not in doc:
            raise InvalidField(f"missing required field {name!r}")
    tx_id = doc["transactionId"]
    if isinstance(tx_id, bool) or not isinstance(tx_id, str | int) or not str(tx_id).strip():
        raise InvalidField("'transactionId' must be a non-empty string or an integer")
    verdict_text = doc["label"]
    try:
        verdict = Verdict(str(verdict_text).strip().lower())
    except ValueError:
        raise InvalidField(f"'label' must be 'fraud' or 'legit', got {verdict_text!r}") from None
    labeled_at = doc.get("labeledAt")
    source = doc.get("source")
    return Label(
        transaction_id=str(tx_id).strip(),
        user_id=parse_user_id(doc["userId"]),
        verdict=verdict,
        labeled_at=None if labeled_at is None else parse_timestamp(labeled_at, "labeledAt"),
        source=str(source)[:MAX_SOURCE_LENGTH] if source is not None else "unknown",
    )
