"""Pending labels: the features each transaction was scored with, kept until its label arrives.

Labels come late and most teams send only frauds. So a transaction without a fraud label
``horizon`` seconds of event time after it happened counts as legit ("matures"), and its
features then teach the classifier what legit looks like. A matured entry is kept
``late_window`` longer: a fraud label that arrives just after the horizon (labels and
transactions come from different topics, so their order is not guaranteed) corrects what was
learned instead of being lost. The store is bounded: past ``max_entries`` the oldest entries
mature early (counted), so memory never grows without limit.

The entries live in any ``MutableMapping[str, bytes]`` (the worker passes its changelog-backed
table); every write and delete is also reported to ``on_write`` so the worker can put it on the
changelog. The time index is rebuilt from the mapping when it does not match (after recovery).
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

DAY = 86400.0
_HEAD = struct.Struct("<dhBH")  # event time, partition, matured, merchant length


@dataclass(slots=True)
class PendingEntry:
    """What the classifier will learn from once the transaction's truth is known.

    >>> entry = PendingEntry(1.7e9, 2, "T9", (0.5, 1.0))
    >>> PendingEntry.decode(entry.encode()) == entry
    True
    """

    event_time: float
    partition: int
    merchant: str | None
    features: tuple[float, ...]
    matured: bool = False

    def encode(self) -> bytes:
        """Compact bytes: a fixed head, the merchant in UTF-8, the features as float32."""
        merchant = (self.merchant or "").encode()
        head = _HEAD.pack(self.event_time, self.partition, self.matured, len(merchant))
        return head + merchant + struct.pack(f"<{len(self.features)}f", *self.features)

    @classmethod
    def decode(cls, data: bytes) -> PendingEntry:
        """Inverse of :meth:`encode` (features come back as float32 precision)."""
        event_time, partition, matured, size = _HEAD.unpack_from(data)
        start = _HEAD.size + size
        merchant = data[_HEAD.size : start].decode() or None
        count = (len(data) - start) // 4
        features = struct.unpack_from(f"<{count}f", data, start)
        return cls(event_time, partition, merchant, tuple(features), bool(matured))


@dataclass(frozen=True, slots=True)
class Resolution:
    """A transaction whose truth is now known (or assumed): learn ``entry`` as ``fraud``.

    ``correction`` marks a fraud label for an entry already learned as legit at maturity;
    ``already_learned`` a legit label for one, which changes nothing.
    """

    transaction_id: str
    entry: PendingEntry
    fraud: bool
    correction: bool = False
    already_learned: bool = False


@dataclass
class PendingCounts:
    """What happened to pending entries since the worker started."""

    added: int = 0
    labeled: int = 0
    matured: int = 0
    corrected: int = 0
    forced: int = 0  # matured early because the store was full


@dataclass
class PendingStore:
    """Features by transaction id until the label or the horizon, bounded, time-indexed."""

    data: MutableMapping[str, bytes]
    horizon: float = 7 * DAY
    late_window: float = DAY
    max_entries: int = 500_000
    on_write: Callable[[int, str, bytes | None], None] = lambda partition, key, value: None
    counts: PendingCounts = field(default_factory=PendingCounts)
    _index: list[tuple[float, str]] = field(default_factory=list)
    _indexed: int = 0

    def add(self, transaction_id: str, entry: PendingEntry) -> list[Resolution]:
        """Keep a newly scored transaction; returns the entries the bound pushed out (legit)."""
        self._ensure_index()
        if transaction_id in self.data:  # a redelivered transaction: keep the first
            return []
        self._write(transaction_id, entry)
        heapq.heappush(self._index, (entry.event_time + self.horizon, transaction_id))
        self._indexed += 1
        self.counts.added += 1
        forced: list[Resolution] = []
        while len(self.data) > self.max_entries and self._index:
            _, tx_id = heapq.heappop(self._index)
            self._indexed -= 1
            old = self._get(tx_id)
            if old is None:
                continue
            self._delete(tx_id, old.partition)
            if not old.matured:
                self.counts.forced += 1
                forced.append(Resolution(tx_id, old, fraud=False))
        return forced

    def resolve(self, transaction_id: str, fraud: bool) -> Resolution | None:
        """A label arrived: the entry to learn from, or None when it is not held."""
        self._ensure_index()
        entry = self._get(transaction_id)
        if entry is None:
            return None
        self._delete(transaction_id, entry.partition)
        self.counts.labeled += 1
        if entry.matured:
            if not fraud:
                return Resolution(transaction_id, entry, fraud=False, already_learned=True)
            self.counts.corrected += 1
            return Resolution(transaction_id, entry, fraud=True, correction=True)
        return Resolution(transaction_id, entry, fraud)

    def advance(self, now: float) -> list[Resolution]:
        """Event time is ``now``: entries past the horizon mature as legit, old ones expire."""
        self._ensure_index()
        matured: list[Resolution] = []
        index = self._index
        while index and index[0][0] <= now:
            _, tx_id = heapq.heappop(index)
            self._indexed -= 1
            entry = self._get(tx_id)
            if entry is None:
                continue  # labeled meanwhile
            if entry.matured:
                self._delete(tx_id, entry.partition)
                continue
            entry.matured = True
            self._write(tx_id, entry)
            heapq.heappush(index, (entry.event_time + self.horizon + self.late_window, tx_id))
            self._indexed += 1
            self.counts.matured += 1
            matured.append(Resolution(tx_id, entry, fraud=False))
        return matured

    def __len__(self) -> int:
        return len(self.data)

    def _get(self, transaction_id: str) -> PendingEntry | None:
        stored = self.data.get(transaction_id)
        return None if stored is None else PendingEntry.decode(stored)

    def _write(self, transaction_id: str, entry: PendingEntry) -> None:
        value = entry.encode()
        self.data[transaction_id] = value
        self.on_write(entry.partition, transaction_id, value)

    def _delete(self, transaction_id: str, partition: int) -> None:
        del self.data[transaction_id]
        self.on_write(partition, transaction_id, None)

    def _ensure_index(self) -> None:
        """Rebuild the time index when the mapping changed under it (recovery, rebalance)."""
        if len(self._index) >= len(self.data) and self._indexed == len(self._index):
            return
        entries = []
        for tx_id, stored in list(self.data.items()):
            entry = PendingEntry.decode(stored)
            due = entry.event_time + self.horizon + (self.late_window if entry.matured else 0.0)
            entries.append((due, tx_id))
        heapq.heapify(entries)
        self._index = entries
        self._indexed = len(entries)
