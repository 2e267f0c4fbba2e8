"""Delayed fraud labels (chargebacks): which frauds get reported, and when in event time.

Real issuers learn about a fraud days or weeks later, and never about some of them. A
:class:`DelayedLabels` queue reproduces that on any labeled stream: each fraud is reported
with probability ``share``, and its :class:`FraudLabel` becomes due ``delay`` after the
transaction. Labels are released by the stream's own event time, never the wall clock, so a
replay at any speed publishes the same labels at the same points of the stream. Pure: nothing
here knows about Kafka.

>>> from producer.records import LabeledTransaction
>>> queue = DelayedLabels(delay_ms=1000)
>>> fraud = LabeledTransaction("t1", "u1", 9.0, 5000, "large_amount", True)
>>> queue.observe(fraud), queue.release(5999)
([], [])
>>> [label.transaction_id for label in queue.release(6000)]
['t1']
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass
from typing import Any

import orjson

from producer.records import LabeledTransaction, format_timestamp_ms

DEFAULT_LABELS_TOPIC = "fraud-labels"
#: Where our labels say they come from.
CHARGEBACK_SOURCE = "chargeback"
FRAUD = "fraud"


@dataclass(frozen=True, slots=True)
class FraudLabel:
    """A report that a transaction was fraud, as it arrives on the labels topic."""

    transaction_id: str
    user_id: str
    labeled_at_ms: int  # event time the report arrives: transaction time + delay
    source: str = CHARGEBACK_SOURCE

    @property
    def key(self) -> bytes:
        """Kafka message key: the user id, like the transaction's (same partition)."""
        return self.user_id.encode()

    def message(self) -> dict[str, Any]:
        """The label JSON: transactionId, userId, label, labeledAt (ISO-8601 UTC), source."""
        return {
            "transactionId": self.transaction_id,
            "userId": self.user_id,
            "label": FRAUD,
            "labeledAt": format_timestamp_ms(self.labeled_at_ms),
            "source": self.source,
        }

    def message_json(self) -> bytes:
        """The Kafka message value: compact JSON of :meth:`message`."""
        return orjson.dumps(self.message())


class DelayedLabels:
    """Frauds waiting for their report, released once the stream's event time reaches it.

    Feed every record, in stream order, to :meth:`observe` (or :meth:`release` then
    :meth:`add`): legitimate and unlabeled records only advance the clock; a fraud is kept
    with probability ``share`` (deterministic per ``seed``) and released when event time
    reaches its ``labeledAt``: ``delay_ms`` after the fraud, or, with ``max_delay_ms``, a delay
    drawn uniformly between the two for each fraud (chargebacks come days to weeks late).
    Releases come out in ``labeledAt`` order, ties in arrival order.
    """

    def __init__(
        self,
        delay_ms: int,
        share: float = 1.0,
        seed: int | str = 0,
        max_delay_ms: int | None = None,
    ) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        if max_delay_ms is not None and max_delay_ms < delay_ms:
            raise ValueError("max_delay_ms must be >= delay_ms")
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must be in [0, 1]")
        self.delay_ms = delay_ms
        self.max_delay_ms = delay_ms if max_delay_ms is None else max_delay_ms
        self.share = share
        self._rng = random.Random(f"{seed}:labels")
        self._delays = random.Random(f"{seed}:delays")  # apart, so the reported share stays
        self._pending: list[tuple[int, int, FraudLabel]] = []
        self._arrival = itertools.count()
        #: Frauds seen, and frauds that will never be reported (outside the share).
        self.frauds = 0
        self.unreported = 0
        self.released = 0

    @property
    def pending(self) -> int:
        """Labels decided but not yet due."""
        return len(self._pending)

    def add(self, record: LabeledTransaction) -> FraudLabel | None:
        """Queue the label of a fraud (if it is in the reported share); the label or None."""
        if not record.is_fraud:
            return None
        self.frauds += 1
        if self.share < 1.0 and self._rng.random() >= self.share:
            self.unreported += 1
            return None
        delay = self.delay_ms
        if self.max_delay_ms > delay:
            delay = self._delays.randint(delay, self.max_delay_ms)
        label = FraudLabel(record.transaction_id, record.user_id, record.timestamp_ms + delay)
        heapq.heappush(self._pending, (label.labeled_at_ms, next(self._arrival), label))
        return label

    def release(self, now_ms: int) -> list[FraudLabel]:
        """Labels due at event time ``now_ms`` (labeledAt <= now), removed from the queue."""
        due: list[FraudLabel] = []
        while self._pending and self._pending[0][0] <= now_ms:
            due.append(heapq.heappop(self._pending)[2])
        self.released += len(due)
        return due

    def observe(self, record: LabeledTransaction) -> list[FraudLabel]:
        """Advance event time to ``record`` (returning what fell due), then queue its label."""
        due = self.release(record.timestamp_ms)
        self.add(record)
        return due

    def flush(self) -> list[FraudLabel]:
        """Every pending label regardless of time (e.g. to complete an offline evaluation)."""
        due = [entry[2] for entry in sorted(self._pending)]
        self._pending.clear()
        self.released += len(due)
        return due
