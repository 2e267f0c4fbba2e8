"""The worker's keyed state: profiles, pending labels and merchant statistics, and their changes.

User histories (by userId, in the ``profiles`` table), pending labels (by transaction id, in
the partition of the transaction) and merchant statistics (by ``partition|merchant``: each
partition keeps its own view, see :mod:`fraudstream.core.merchants`), amount segments' label
counts among them. :class:`WorkerState`
works on plain mappings and records every change for the changelog, so the batch handler runs
on dicts in unit tests and in ``evaluate --offline``; :mod:`fraudstream.worker.tables` binds it
to Faust's tables.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

from fraudstream.core.behaviour import UserHistory
from fraudstream.core.merchants import MerchantStats
from fraudstream.core.pending import PendingStore
from fraudstream.worker.changelog import ChangelogBatch


@dataclass
class StateChanges:
    """What one batch changed, per table, waiting for the changelog."""

    profiles: ChangelogBatch = field(default_factory=ChangelogBatch)
    pending: ChangelogBatch = field(default_factory=ChangelogBatch)
    merchants: ChangelogBatch = field(default_factory=ChangelogBatch)

    def __len__(self) -> int:
        return len(self.profiles) + len(self.pending) + len(self.merchants)

    def by_partition(self) -> dict[int, StateChanges]:
        """The changes split by changelog partition, which is the partition of their event."""
        split: dict[int, StateChanges] = {}
        for name in ("profiles", "pending", "merchants"):
            batch: ChangelogBatch = getattr(self, name)
            for partition, part in batch.by_partition().items():
                setattr(split.setdefault(partition, StateChanges()), name, part)
        return split


#: Segments share the merchants' table (same counts, changelog and partition views) under
#: keys no parsed merchant id has: the input's labels are stripped, so never start with \x1e.
SEGMENT_PREFIX = "\x1eseg:"


def _utf8(key: str) -> bytes:
    return key.encode()


class WorkerState:
    """Keyed state over plain mappings; every change is also kept for the changelog."""

    def __init__(
        self,
        profiles: MutableMapping[str, bytes],
        pending: PendingStore,
        merchants: MutableMapping[str, bytes],
        partitions: int,
        key_codec: Callable[[str], bytes] = _utf8,
        cached_histories: int = 0,
    ) -> None:
        self.profiles = profiles
        self.cached_histories = cached_histories
        #: user -> (the stored bytes, their decoded history), least recently stored first
        self._decoded: dict[str, tuple[bytes, UserHistory]] = {}
        self.merchants = merchants
        self.partitions = partitions
        self.key_codec = key_codec
        self.changes = StateChanges()
        self.pending = pending
        pending.on_write = self._pending_written

    def load_history(self, user_id: str) -> UserHistory:
        """The user's history (an empty one for a new user), handed over to the caller.

        The history decoded when it was last stored is reused while the table still holds
        that very bytes object: anything that replaced the value (a changelog recovery, a
        rebalance, another store) makes a new object, so the value is decoded afresh. The entry
        leaves the cache here and returns only with :meth:`store_history`, so a history changed
        by a decision that was then not kept is never served again.
        """
        blob = self.profiles.get(user_id)
        cached = self._decoded.pop(user_id, None)
        if cached is not None and blob is not None and cached[0] is blob:
            return cached[1]
        return UserHistory.decode(blob)

    def store_history(self, user_id: str, history: UserHistory, partition: int) -> None:
        """Keep the history now; its changelog record goes to the partition of its event."""
        value = history.encode()
        self.filing("profiles", user_id, partition)
        self.profiles[user_id] = value
        self.changes.profiles.put(partition, self.key_codec(user_id), value)
        if self.cached_histories:
            decoded = self._decoded
            decoded[user_id] = (value, history)
            if len(decoded) > self.cached_histories:
                del decoded[next(iter(decoded))]  # the least recently stored

    def merchant(self, merchant_id: str | None) -> MerchantStats | None:
        """The merchant as the partitions this worker holds see it (None: never seen)."""
        if merchant_id is None:
            return None
        stored = self._views(merchant_id)
        return MerchantStats.merge(stored) if stored else None

    def segment(self, segment: str) -> MerchantStats | None:
        """An amount segment's 30-day label counts (:mod:`fraudstream.core.segments`), merged
        over this worker's partitions as a merchant's are (None: never seen)."""
        stored = self._views(SEGMENT_PREFIX + segment)
        return MerchantStats.merge_risk_30d(stored) if stored else None

    def _views(self, merchant_id: str) -> list[bytes]:
        """The encoded views of ``merchant_id`` that this worker's partitions hold."""
        return [
            value
            for partition in range(self.partitions)
            if (value := self.merchants.get(f"{partition}|{merchant_id}")) is not None
        ]

    def update_segment(
        self, partition: int, segment: str, change: Callable[[MerchantStats], None]
    ) -> None:
        """Apply ``change`` to the partition's view of the segment and keep the result."""
        self.update_merchant(partition, SEGMENT_PREFIX + segment, change)

    def update_merchant(
        self, partition: int, merchant_id: str, change: Callable[[MerchantStats], None]
    ) -> None:
        """Apply ``change`` to the partition's view of the merchant and keep the result."""
        key = f"{partition}|{merchant_id}"
        stats = MerchantStats.decode(self.merchants.get(key))
        change(stats)
        value = stats.encode()
        self.filing("merchants", key, partition)
        self.merchants[key] = value
        self.changes.merchants.put(partition, self.key_codec(key), value)

    def take_changes(self) -> StateChanges:
        """The changes since the last call, and a fresh record for the next batch."""
        changes, self.changes = self.changes, StateChanges()
        return changes

    def filing(self, table: str, key: str, partition: int | None) -> None:
        """Called just before ``key`` is written to ``table`` for ``partition`` (None: deleted).

        Plain mappings need nothing; a table store that files keys by partition does
        (:class:`fraudstream.worker.tables.FaustState`).
        """

    def _pending_written(self, partition: int, key: str, value: bytes | None) -> None:
        self.filing("pending", key, None if value is None else partition)
        self.changes.pending.put(partition, self.key_codec(key), value)
