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


#: What a ``label`` may also say, as the 0/1 columns of public data sets and flag feeds do;
#: the one vocabulary of the worker's labels and the CSV replay's label column.
VERDICT_SYNONYMS = {
    "1": Verdict.FRAUD,
    "true": Verdict.FRAUD,
    "yes": Verdict.FRAUD,
    "0": Verdict.LEGIT,
    "false": Verdict.LEGIT,
    "no": Verdict.LEGIT,
}


def parse_verdict(value: Any) -> Verdict:
    """``"fraud"`` or ``"legit"`` (any case), or 1/0, true/false and yes/no as numbers,
    booleans or text.

    >>> parse_verdict("Fraud"), parse_verdict(1), parse_verdict(False), parse_verdict(" no ")
    (<Verdict.FRAUD: 'fraud'>, <Verdict.FRAUD: 'fraud'>, <Verdict.LEGIT: 'legit'>, \
<Verdict.LEGIT: 'legit'>)
    """
    if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
        return Verdict.FRAUD if value else Verdict.LEGIT
    if isinstance(value, str):
        text = value.strip().lower()
        verdict = VERDICT_SYNONYMS.get(text)
        if verdict is not None:
            return verdict
        try:
            return Verdict(text)
        except ValueError:
            pass
    raise InvalidField(
        f"'label' must be 'fraud' or 'legit' (or 1/0, true/false, yes/no), got {value!r}"
    )


def _label_from_dict(doc: dict[str, Any]) -> Label:
    for name in ("transactionId", "userId", "label"):
        if name not in doc:
            raise InvalidField(f"missing required field {name!r}")
    tx_id = doc["transactionId"]
    if isinstance(tx_id, bool) or not isinstance(tx_id, str | int) or not str(tx_id).strip():
        raise InvalidField("'transactionId' must be a non-empty string or an integer")
    verdict = parse_verdict(doc["label"])
    labeled_at = doc.get("labeledAt")
    source = doc.get("source")
    return Label(
        transaction_id=str(tx_id).strip(),
        user_id=parse_user_id(doc["userId"]),
        verdict=verdict,
        labeled_at=None if labeled_at is None else parse_timestamp(labeled_at, "labeledAt"),
        source=str(source)[:MAX_SOURCE_LENGTH] if source is not None else "unknown",
    )
