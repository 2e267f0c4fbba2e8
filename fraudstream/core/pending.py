"""Pending labels: the features each transaction was scored with, kept until its label arrives.

Labels come late and most teams send only frauds. So a transaction without a fraud label
``horizon`` seconds of event time after it happened counts as legit ("matures"), and its
features then teach the classifier what legit looks like. A matured entry is kept
``late_window`` longer: a fraud label that arrives just after the horizon (labels and
transactions come from different topics, so their order is not guaranteed) corrects what was
learned instead of being lost. The store is bounded: past ``max_entries`` the oldest entries
mature early (counted), so memory never grows without limit.

The entries live in any ``MutableMapping[str, bytes]`` (the worker passes its changelog-backed
table); every write and delete is also reported to ``on_write``, just before it is made, so the
worker can put it on the changelog and file the key under its partition. The time index is
rebuilt from the mapping when it does not match (after recovery), and after :meth:`reindex`
(a rebalance, which can drop some partitions' entries and recover others in equal number).

The store is also where a label waits for its transaction. Labels and transactions come from
two topics, so a worker with a backlog of transactions reads a label before the transaction
it names. A label made at ``labeledAt`` (event time) for a transaction not seen yet is *held*
under the transaction's id until the transaction arrives (then the label stays with the
transaction's entry and is learned when event time reaches ``labeledAt``, as it would have been
live) or until the transaction stream of its partition passes ``labeledAt`` without it (then
the label is returned to be dead-lettered as an unknown transaction). One key holds either a
held label or a pending transaction, never both.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field

DAY = 86400.0
#: How long a matured entry waits for a late fraud label by default, days: chargebacks come
#: days to weeks after the payment, not at one delay (labels spread over 1-14 days taught the
#: classifier 2,520 of the handbook stream's frauds with one day, 4,385 with thirty).
DEFAULT_LATE_WINDOW_DAYS = 30.0
_HEAD = struct.Struct("<dhBH")  # event time, partition, kind (matured flag), merchant length
_HELD_HEAD = struct.Struct("<dhBHqB")  # labeled at, partition, kind, key length, offset, fraud
_KIND_OFFSET = 10  # where the kind byte sits in both heads
_HELD_KIND = 2  # the kind byte of a held label (0 and 1 are a pending entry's matured flag)
_SCHEDULED = 4  # kind bit of a pending entry whose label is known, due at its labeledAt
_SCHEDULE = struct.Struct("<dB")  # labeled at, fraud
_SEGMENTED = 8  # kind bit of a pending entry that names its amount segment (after the schedule)
_SEGMENT = struct.Struct("<H")  # the segment's length
_CARDED = 16  # kind bit of a pending entry that names its card (after the segment)
_CARD = struct.Struct("<I")  # the card's token
_NO_KEY = 0xFFFF


@dataclass(slots=True, init=False)
class PendingEntry:
    """What the classifier will learn from once the transaction's truth is known.

    ``label`` is a label that came before the transaction: (labeled at, fraud). It is learned
    when event time reaches its ``labeledAt``, not when the transaction arrives, so a worker
    catching up on a backlog learns labels in the order it would have live.

    ``segment`` is the transaction's amount segment (:func:`fraudstream.core.segments.segment_key`),
    whose label-derived risk learns the label too; ``card`` a token of who paid, so that a
    merchant counts a card's frauds once (:meth:`MerchantStats.learn_label`).

    >>> entry = PendingEntry(1.7e9, 2, "T9", (0.5, 1.0), label=(1.8e9, True), segment="food|pos|9")
    >>> PendingEntry.decode(entry.encode()) == entry
    True
    """

    event_time: float
    partition: int
    merchant: str | None
    features: tuple[float, ...]
    matured: bool = False
    label: tuple[float, bool] | None = None
    segment: str | None = None
    card: int | None = None

    def __init__(
        self,
        event_time: float,
        partition: int,
        merchant: str | None,
        features: tuple[float, ...],
        matured: bool = False,
        label: tuple[float, bool] | None = None,
        segment: str | None = None,
        card: int | None = None,
    ) -> None:
        # written out so that mypyc compiles it (see fraudstream.native)
        self.event_time = event_time
        self.partition = partition
        self.merchant = merchant
        self.features = features
        self.matured = matured
        self.label = label
        self.segment = segment
        self.card = card

    def encode(self) -> bytes:
        """Compact bytes: a fixed head, the label if known, the segment, the card, the merchant,
        features as float32 (entries written before segments or cards existed have no such
        bit, and decode)."""
        merchant = (self.merchant or "").encode()
        kind = int(self.matured) | (_SCHEDULED if self.label is not None else 0)
        if self.segment is not None:
            kind |= _SEGMENTED
        if self.card is not None:
            kind |= _CARDED
        head = _HEAD.pack(self.event_time, self.partition, kind, len(merchant))
        if self.label is not None:
            head += _SCHEDULE.pack(self.label[0], self.label[1])
        if self.segment is not None:
            segment = self.segment.encode()
            head += _SEGMENT.pack(len(segment)) + segment
        if self.card is not None:
            head += _CARD.pack(self.card)
        return head + merchant + struct.pack(f"<{len(self.features)}f", *self.features)

    @classmethod
    def decode(cls, data: bytes) -> PendingEntry:
        """Inverse of :meth:`encode` (features come back as float32 precision)."""
        event_time, partition, kind, size = _HEAD.unpack_from(data)
        start = _HEAD.size
        label = None
        if kind & _SCHEDULED:
            labeled_at, fraud = _SCHEDULE.unpack_from(data, start)
            label = (labeled_at, bool(fraud))
            start += _SCHEDULE.size
        segment = None
        if kind & _SEGMENTED:
            (length,) = _SEGMENT.unpack_from(data, start)
            start += _SEGMENT.size
            segment = data[start : start + length].decode()
            start += length
        card = None
        if kind & _CARDED:
            (card,) = _CARD.unpack_from(data, start)
            start += _CARD.size
        merchant = data[start : start + size].decode() or None
        start += size
        count = (len(data) - start) // 4
        features = struct.unpack_from(f"<{count}f", data, start)
        matured = bool(kind & 1)
        return cls(event_time, partition, merchant, tuple(features), matured, label, segment, card)

    @property
    def due(self) -> float:
        """When the known label is learned (infinity when none is known)."""
        return self.label[0] if self.label is not None else float("inf")


@dataclass(slots=True)
class HeldLabel:
    """A label that came before its transaction, kept whole so it can still be dead-lettered.

    >>> held = HeldLabel(1.7e9, 3, 42, b"user-1", b'{"label": "fraud"}', fraud=True)
    >>> HeldLabel.decode(held.encode()) == held
    True
    """

    labeled_at: float
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    fraud: bool

    def encode(self) -> bytes:
        """A fixed head (kind byte 2, where a pending entry has its matured flag), key, message."""
        key = self.key or b""
        size = _NO_KEY if self.key is None else len(key)
        head = _HELD_HEAD.pack(
            self.labeled_at, self.partition, _HELD_KIND, size, self.offset, self.fraud
        )
        return head + key + self.raw

    @classmethod
    def decode(cls, data: bytes) -> HeldLabel:
        """Inverse of :meth:`encode`."""
        labeled_at, partition, _, size, offset, fraud = _HELD_HEAD.unpack_from(data)
        start = _HELD_HEAD.size + (0 if size == _NO_KEY else size)
        key = None if size == _NO_KEY else data[_HELD_HEAD.size : start]
        return cls(labeled_at, partition, offset, key, data[start:], bool(fraud))


#: What decoding a damaged value raises.
_UNDECODABLE = (ValueError, IndexError, struct.error)


def _is_held(stored: bytes) -> bool:
    return len(stored) > _KIND_OFFSET and stored[_KIND_OFFSET] == _HELD_KIND


@dataclass(frozen=True, slots=True)
class Resolution:
    """A transaction whose truth is now known (or assumed): learn ``entry`` as ``fraud``.

    ``correction`` marks a fraud label for an entry already learned as legit at maturity;
    ``already_learned`` a legit label for one, which changes nothing; ``by_label`` a
    resolution by a label (not by maturity or the store's bound).
    """

    transaction_id: str
    entry: PendingEntry
    fraud: bool
    correction: bool = False
    already_learned: bool = False
    by_label: bool = False


@dataclass
class PendingCounts:
    """What happened to pending entries since the worker started."""

    added: int = 0
    labeled: int = 0
    matured: int = 0
    corrected: int = 0
    forced: int = 0  # matured early because the store was full
    held: int = 0  # labels that came before their transaction and waited for it
    held_resolved: int = 0  # of those, labels whose transaction then came
    held_expired: int = 0  # of those, labels whose transaction never came (or the bound hit)
    corrupt: int = 0  # stored values that did not decode (a damaged changelog): dropped here


@dataclass
class PendingStore:
    """Features by transaction id until the label or the horizon, bounded, time-indexed."""

    data: MutableMapping[str, bytes]
    horizon: float = 7 * DAY
    late_window: float = DEFAULT_LATE_WINDOW_DAYS * DAY
    max_entries: int = 500_000
    max_held: int = 100_000
    on_write: Callable[[int, str, bytes | None], None] = lambda partition, key, value: None
    counts: PendingCounts = field(default_factory=PendingCounts)
    _index: list[tuple[float, str]] = field(default_factory=list)
    _indexed: int = 0
    #: Held labels by partition: (labeled at, transaction id), soonest first.
    _held: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    _held_size: int = 0
    _stale: bool = False

    def reindex(self) -> None:
        """Rebuild the time indexes at the next call: the mapping changed under them."""
        self._stale = True

    def add(self, transaction_id: str, entry: PendingEntry) -> list[Resolution]:
        """Keep a newly scored transaction; returns the entries the bound pushed out (legit).

        When its label was held, the label is kept with it, to be learned at its labeledAt.
        """
        self._ensure_index()
        stored = self.data.get(transaction_id)
        if stored is not None and _is_held(stored):
            # The label was waiting: it is learned when event time reaches its labeledAt.
            held = self._decoded_label(transaction_id, stored)
            if held is None:
                return self.add(transaction_id, entry)
            self._held_size -= 1
            self.counts.held_resolved += 1
            entry.label = (held.labeled_at, held.fraud)
        elif stored is not None:  # a redelivered transaction: keep the first
            return []
        self._write(transaction_id, entry)
        self._push(transaction_id, entry)
        self.counts.added += 1
        forced: list[Resolution] = []
        while len(self.data) - self._held_size > self.max_entries and self._index:
            _, tx_id = heapq.heappop(self._index)
            self._indexed -= 1
            old = self._get(tx_id)
            if old is None:
                continue
            if old.label is not None:  # its label is known: learn it now rather than lose it
                forced.append(self._learn_label(tx_id, old, old.label[1]))
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
        return self._learn_label(transaction_id, entry, fraud)

    def hold(self, transaction_id: str, label: HeldLabel) -> list[tuple[str, HeldLabel]]:
        """Keep a label until its transaction comes; returns labels the bound pushed out.

        A second label for a transaction still awaited replaces the first (the newest verdict
        wins). Call only when :meth:`resolve` found no pending transaction.
        """
        self._ensure_index()
        stored = self.data.get(transaction_id)
        if stored is not None and not _is_held(stored):
            raise ValueError(f"transaction {transaction_id!r} is pending: resolve it instead")
        self._write_raw(label.partition, transaction_id, label.encode())
        if stored is None:
            self._held_size += 1
            self.counts.held += 1
        heapq.heappush(
            self._held.setdefault(label.partition, []), (label.labeled_at, transaction_id)
        )
        pushed_out: list[tuple[str, HeldLabel]] = []
        while self._held_size > self.max_held:
            oldest = min((heap for heap in self._held.values() if heap), key=lambda heap: heap[0])
            pushed_out.extend(self._pop_held(oldest, float("inf")))
        return pushed_out

    def expire_held(self, times: Mapping[int, float]) -> list[tuple[str, HeldLabel]]:
        """Labels whose partition's transactions passed their ``labeledAt`` without them.

        ``times`` is the event time each partition's transaction stream has reached.
        """
        self._ensure_index()
        expired: list[tuple[str, HeldLabel]] = []
        for partition, heap in self._held.items():
            if (now := times.get(partition)) is not None:
                while heap and heap[0][0] <= now:
                    expired.extend(self._pop_held(heap, now))
        return expired

    def held_size(self) -> int:
        """Labels waiting for their transaction."""
        self._ensure_index()
        return self._held_size

    def _pop_held(self, heap: list[tuple[float, str]], now: float) -> list[tuple[str, HeldLabel]]:
        """Take the heap's first label out of the store if it is still held and due."""
        _, tx_id = heapq.heappop(heap)
        stored = self.data.get(tx_id)
        if stored is None or not _is_held(stored):
            return []  # resolved meanwhile
        held = self._decoded_label(tx_id, stored)
        if held is None:
            return []
        if held.labeled_at > now:  # replaced by a later label: its own heap entry follows
            return []
        self._delete(tx_id, held.partition)
        self._held_size -= 1
        self.counts.held_expired += 1
        return [(tx_id, held)]

    def advance(self, now: float) -> list[Resolution]:
        """Event time is ``now``: known labels fall due, entries past the horizon mature as
        legit, old ones expire."""
        self._ensure_index()
        resolved: list[Resolution] = []
        index = self._index
        while index and index[0][0] <= now:
            _, tx_id = heapq.heappop(index)
            self._indexed -= 1
            entry = self._get(tx_id)
            if entry is None:
                continue  # labeled meanwhile
            if entry.label is not None and entry.label[0] <= now:
                resolved.append(self._learn_label(tx_id, entry, entry.label[1]))
                continue
            maturity = self._maturity_due(entry)
            if maturity > now:  # woken early: wait for the next due moment
                self._push(tx_id, entry)
                continue
            if entry.matured:
                self._delete(tx_id, entry.partition)
                if entry.label is not None:  # its label was made past the late window
                    self.counts.held_expired += 1
                continue
            entry.matured = True
            self._write(tx_id, entry)
            self._push(tx_id, entry)
            self.counts.matured += 1
            resolved.append(Resolution(tx_id, entry, fraud=False))
        return resolved

    def _learn_label(self, tx_id: str, entry: PendingEntry, fraud: bool) -> Resolution:
        """A label for a held entry, just arrived or known and now due: the entry leaves."""
        self._delete(tx_id, entry.partition)
        self.counts.labeled += 1
        if not entry.matured:
            return Resolution(tx_id, entry, fraud, by_label=True)
        if not fraud:
            return Resolution(tx_id, entry, False, already_learned=True, by_label=True)
        self.counts.corrected += 1
        return Resolution(tx_id, entry, True, correction=True, by_label=True)

    def _maturity_due(self, entry: PendingEntry) -> float:
        return entry.event_time + self.horizon + (self.late_window if entry.matured else 0.0)

    def _push(self, tx_id: str, entry: PendingEntry) -> None:
        heapq.heappush(self._index, (min(self._maturity_due(entry), entry.due), tx_id))
        self._indexed += 1

    def __len__(self) -> int:
        """Transactions waiting for their label (held labels not counted)."""
        self._ensure_index()
        return max(0, len(self.data) - self._held_size)

    def _get(self, transaction_id: str) -> PendingEntry | None:
        stored = self.data.get(transaction_id)
        if stored is None or _is_held(stored):
            return None
        return self._decoded_entry(transaction_id, stored)

    def _decoded_entry(self, transaction_id: str, stored: bytes) -> PendingEntry | None:
        try:
            return PendingEntry.decode(stored)
        except _UNDECODABLE:
            self._discard(transaction_id)
            return None

    def _decoded_label(self, transaction_id: str, stored: bytes) -> HeldLabel | None:
        try:
            return HeldLabel.decode(stored)
        except _UNDECODABLE:
            self._discard(transaction_id)
            return None

    def _discard(self, transaction_id: str) -> None:
        """Drop a value that does not decode, here only: its partition is in what is lost."""
        self.data.pop(transaction_id, None)
        self.counts.corrupt += 1

    def _write(self, transaction_id: str, entry: PendingEntry) -> None:
        self._write_raw(entry.partition, transaction_id, entry.encode())

    def _write_raw(self, partition: int, transaction_id: str, value: bytes) -> None:
        self.on_write(partition, transaction_id, value)
        self.data[transaction_id] = value

    def _delete(self, transaction_id: str, partition: int) -> None:
        self.on_write(partition, transaction_id, None)
        del self.data[transaction_id]

    def _ensure_index(self) -> None:
        """Rebuild the time indexes when the mapping changed under them (recovery, rebalance)."""
        held_indexed = sum(len(heap) for heap in self._held.values())
        if (
            not self._stale
            and len(self._index) + held_indexed >= len(self.data)
            and self._indexed == len(self._index)
            and self._held_size <= held_indexed
        ):
            return
        entries = []
        held: dict[int, list[tuple[float, str]]] = {}
        for tx_id, stored in list(self.data.items()):
            if _is_held(stored):
                label = self._decoded_label(tx_id, stored)
                if label is not None:
                    held.setdefault(label.partition, []).append((label.labeled_at, tx_id))
                continue
            entry = self._decoded_entry(tx_id, stored)
            if entry is None:
                continue
            entries.append((min(self._maturity_due(entry), entry.due), tx_id))
        heapq.heapify(entries)
        for heap in held.values():
            heapq.heapify(heap)
        self._index = entries
        self._indexed = len(entries)
        self._held = held
        self._held_size = sum(len(heap) for heap in held.values())
        self._stale = False
