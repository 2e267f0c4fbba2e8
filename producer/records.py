"""The record every producer source yields: a transaction plus its ground-truth label.

The label (``scenario``, ``is_fraud``) travels in the ground-truth file and optionally in
Kafka headers, never in the message JSON the detector reads.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import orjson

from fraudstream.core.fields import OPTIONAL_ROLES, FieldMapping

#: The worker's default input mapping: what the producer writes unless told otherwise.
DEFAULT_FIELDS = FieldMapping()

#: Scenario name of legitimate traffic.
NORMAL_SCENARIO = "normal"
#: Scenario name of a fraud row replayed from a labeled CSV file.
CSV_FRAUD_SCENARIO = "labeled_fraud"
#: Scenario name of a CSV row without a label.
UNLABELED_SCENARIO = "unlabeled"

#: The record attributes that carry each optional role of the input mapping (what a stream may
#: lack: ``fraudstream evaluate --drop-field`` measures what each one is worth).
ROLE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "merchant": ("merchant_id",),
    "country": ("country",),
    "channel": ("channel",),
    "category": ("category",),
    "coordinates": ("x", "y"),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MILLISECONDS_PER_DAY = 86_400_000
DAYS_OF_DATE_PREFIXES_CACHED = 4096


@lru_cache(maxsize=DAYS_OF_DATE_PREFIXES_CACHED)
def _date_prefix(epoch_day: int) -> str:
    """``YYYY-MM-DDT`` of a day counted from the epoch (cached: streams revisit few days)."""
    return (_EPOCH + timedelta(days=epoch_day)).strftime("%Y-%m-%dT")


def format_timestamp_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z`` suffix, e.g. ``2024-12-04T15:00:00.123Z``."""
    epoch_day, ms_of_day = divmod(epoch_ms, MILLISECONDS_PER_DAY)
    seconds_of_day, millis = divmod(ms_of_day, 1000)
    minutes_of_day, second = divmod(seconds_of_day, 60)
    hour, minute = divmod(minutes_of_day, 60)
    return f"{_date_prefix(epoch_day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware (or UTC-naive) datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class LabeledTransaction:
    """One transaction to send, with the ground truth that never enters its message."""

    transaction_id: str
    user_id: str
    amount: float
    timestamp_ms: int  # event time, milliseconds since the Unix epoch (UTC)
    scenario: str  # "normal", a fraud scenario name, or a CSV label category
    is_fraud: bool | None  # None when the source carries no label
    merchant_id: str | None = None
    country: str | None = None
    channel: str | None = None
    x: float | None = None  # where the payment happened: the terminal's place on a grid
    y: float | None = None
    category: str | None = None  # the merchant's category (e.g. an MCC)

    @property
    def timestamp(self) -> datetime:
        """Event time as an aware UTC datetime."""
        return _EPOCH + timedelta(milliseconds=self.timestamp_ms)

    @property
    def key(self) -> bytes:
        """Kafka message key: the user id, so one user's transactions share a partition."""
        return self.user_id.encode()

    def message(self, fields: FieldMapping = DEFAULT_FIELDS) -> dict[str, Any]:
        """The JSON object the detector reads (no label, no scenario), named by ``fields``.

        The grid position goes out as the coordinate roles (``y`` the latitude, ``x`` the
        longitude), so the worker's distance feature reads it with its default mapping.

        >>> record = LabeledTransaction("t1", "u1", 12.5, 0, "normal", False, merchant_id="T3")
        >>> record.message(FieldMapping(user_id="customer_id", merchant="terminal_id"))
        {'transactionId': 't1', 'customer_id': 'u1', 'amount': 12.5, \
'timestamp': '1970-01-01T00:00:00.000Z', 'terminal_id': 'T3'}
        """
        doc: dict[str, Any] = {
            fields.transaction_id: self.transaction_id,
            fields.user_id: self.user_id,
            fields.amount: self.amount,
            fields.timestamp: format_timestamp_ms(self.timestamp_ms),
        }
        if self.merchant_id is not None:
            doc[fields.merchant] = self.merchant_id
        if self.country is not None:
            doc[fields.country] = self.country
        if self.channel is not None:
            doc[fields.channel] = self.channel
        if self.category is not None:
            doc[fields.category] = self.category
        if self.x is not None and self.y is not None:
            doc[fields.latitude] = self.y
            doc[fields.longitude] = self.x
        return doc

    def without(self, roles: Iterable[str]) -> LabeledTransaction:
        """The same transaction as a stream lacking the optional ``roles`` (names of
        :data:`~fraudstream.core.fields.OPTIONAL_ROLES`) sends it: those fields leave its
        message, the truth stays.

        >>> record = LabeledTransaction("t1", "u1", 9.0, 0, "normal", False, "T3", "FR", x=1, y=2)
        >>> sorted(record.without(["merchant", "coordinates"]).message())
        ['amount', 'country', 'timestamp', 'transactionId', 'userId']
        >>> record.without(["terminal"])
        Traceback (most recent call last):
        ...
        ValueError: unknown optional role 'terminal': one of merchant, country, channel, \
category, coordinates
        """
        cleared: dict[str, Any] = {}
        for role in roles:
            if role not in ROLE_ATTRIBUTES:
                known = ", ".join(OPTIONAL_ROLES)
                raise ValueError(f"unknown optional role {role!r}: one of {known}")
            cleared |= dict.fromkeys(ROLE_ATTRIBUTES[role])
        return replace(self, **cleared)

    def message_json(self, fields: FieldMapping = DEFAULT_FIELDS) -> bytes:
        """The Kafka message value: compact JSON of :meth:`message`."""
        return orjson.dumps(self.message(fields))

    def ground_truth(self, sent_at: float | None = None) -> dict[str, Any]:
        """One line of the ground-truth file; ``sentAt`` (epoch seconds) when given."""
        doc: dict[str, Any] = {
            "transactionId": self.transaction_id,
            "userId": self.user_id,
            "scenario": self.scenario,
            "is_fraud": self.is_fraud,
        }
        if sent_at is not None:
            doc["sentAt"] = sent_at
        return doc


def disordered(
    records: Iterable[LabeledTransaction], seconds: float, seed: int = 0
) -> Iterator[LabeledTransaction]:
    """``records`` (in event-time order) delivered out of order: each as if it arrived up to
    ``seconds`` late (uniform, seeded), as from several terminals or a retried send.

    Holds only the records of the last ``seconds`` of event time. Timestamps are unchanged;
    only the arrival order moves.

    >>> import itertools
    >>> from producer.generator import GeneratorParameters, ScenarioGenerator
    >>> stream = list(itertools.islice(ScenarioGenerator(GeneratorParameters(seed=1)), 2000))
    >>> shuffled = list(disordered(stream, 600.0, seed=1))
    >>> sorted(shuffled, key=lambda r: r.timestamp_ms) == stream, shuffled == stream
    (True, False)
    """
    if seconds <= 0.0:
        yield from records
        return
    rng = random.Random(seed)
    heap: list[tuple[float, int, LabeledTransaction]] = []
    for index, record in enumerate(records):
        while heap and heap[0][0] <= record.timestamp_ms:  # nothing later can arrive before it
            yield heapq.heappop(heap)[2]
        arrival = record.timestamp_ms + rng.uniform(0.0, seconds * 1000.0)
        heapq.heappush(heap, (arrival, index, record))
    while heap:
        yield heapq.heappop(heap)[2]
