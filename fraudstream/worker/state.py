"""The worker's keyed state: profiles, pending labels and merchant statistics, with changelogs.

Three tables, each partitioned like the input topic and backed by a changelog, so a restarted
or rebalanced worker recovers them exactly: user profiles (by userId), pending labels (by
transaction id, in the partition of the transaction) and merchant statistics (by
``partition|merchant``: each partition keeps its own view, see
:mod:`fraudstream.core.merchants`). :class:`WorkerState` works on plain mappings, so the batch
handler is unit-tested with dicts; :class:`FaustState` binds it to Faust tables and writes
each batch's changes as one record batch per changelog partition.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.serializers import codecs
from faust.types import TP

from fraudstream.core.features import UserProfile, decode_profile, encode_profile
from fraudstream.core.merchants import MerchantStats
from fraudstream.core.pending import PendingStore
from fraudstream.worker.changelog import BatchProducer, ChangelogBatch

#: Table names (their changelog topics are ``<app id>-<name>-changelog``).
PROFILE_TABLE = "user-profiles"
PENDING_TABLE = "pending-labels"
MERCHANT_TABLE = "merchant-stats"


class BytesTable(faust.Table):
    """A table whose values are bytes the caller encodes itself.

    Faust derives a table's codec from ``value_type`` and falls back to JSON, which would
    decode the changelog into dicts on recovery while live writes hold bytes.
    """

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else super()._serializer_from_type(typ)


def declare_table(app: faust.App, name: str, partitions: int) -> BytesTable:
    """A bytes-valued table partitioned like the input, backed by a changelog."""
    table = BytesTable(
        app, name=name, partitions=partitions, value_type=bytes, beacon=app.tables.beacon
    )
    app.tables.add(table)
    return table


@dataclass
class StateChanges:
    """What one batch changed, per table, waiting for the changelog."""

    profiles: ChangelogBatch = field(default_factory=ChangelogBatch)
    pending: ChangelogBatch = field(default_factory=ChangelogBatch)
    merchants: ChangelogBatch = field(default_factory=ChangelogBatch)

    def __len__(self) -> int:
        return len(self.profiles) + len(self.pending) + len(self.merchants)


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
    ) -> None:
        self.profiles = profiles
        self.merchants = merchants
        self.partitions = partitions
        self.key_codec = key_codec
        self.changes = StateChanges()
        self.pending = pending
        pending.on_write = self._pending_written

    def load_profile(self, user_id: str) -> UserProfile:
        """The user's profile (an empty one for a new user)."""
        return decode_profile(self.profiles.get(user_id))

    def store_profile(self, user_id: str, profile: UserProfile, partition: int) -> None:
        """Keep the profile now; its changelog record goes to the partition of its event."""
        value = encode_profile(profile)
        self.profiles[user_id] = value
        self.changes.profiles.put(partition, self.key_codec(user_id), value)

    def merchant(self, merchant_id: str | None) -> MerchantStats | None:
        """The merchant as the partitions this worker holds see it (None: never seen)."""
        if merchant_id is None:
            return None
        parts = [
            MerchantStats.decode(stored)
            for partition in range(self.partitions)
            if (stored := self.merchants.get(f"{partition}|{merchant_id}")) is not None
        ]
        return MerchantStats.merge(parts) if parts else None

    def update_merchant(
        self, partition: int, merchant_id: str, change: Callable[[MerchantStats], None]
    ) -> None:
        """Apply ``change`` to the partition's view of the merchant and keep the result."""
        key = f"{partition}|{merchant_id}"
        stats = MerchantStats.decode(self.merchants.get(key))
        change(stats)
        value = stats.encode()
        self.merchants[key] = value
        self.changes.merchants.put(partition, self.key_codec(key), value)

    def take_changes(self) -> StateChanges:
        """The changes since the last call, and a fresh record for the next batch."""
        changes, self.changes = self.changes, StateChanges()
        return changes

    def _pending_written(self, partition: int, key: str, value: bytes | None) -> None:
        self.changes.pending.put(partition, self.key_codec(key), value)


class FaustState(WorkerState):
    """:class:`WorkerState` on Faust tables; :meth:`flush` writes their changelogs."""

    def __init__(
        self,
        profiles: BytesTable,
        pending: BytesTable,
        merchants: BytesTable,
        partitions: int,
        horizon: float,
        late_window: float,
        max_pending: int,
    ) -> None:
        self.tables = {"profiles": profiles, "pending": pending, "merchants": merchants}
        store = PendingStore(pending.data, horizon, late_window, max_pending)
        super().__init__(
            profiles.data,
            store,
            merchants.data,
            partitions,
            # Keys in the tables' own codec (JSON), so Faust's recovery reads them back.
            key_codec=lambda key: codecs.dumps(profiles.key_serializer, key),
        )

    async def flush(self, changes: StateChanges, producer: BatchProducer) -> None:
        """Put a batch's changes on the broker; tell each store how far it is persisted."""
        for name, batch in (
            ("profiles", changes.profiles),
            ("pending", changes.pending),
            ("merchants", changes.merchants),
        ):
            if not batch:
                continue
            table = self.tables[name]
            topic = table.changelog_topic.get_topic_name()
            last_offsets = await batch.flush(producer, topic)
            for partition, offset in last_offsets.items():
                table.data.set_persisted_offset(TP(topic, partition), offset)

    def users(self) -> int:
        """Profiles held (on this worker's partitions)."""
        return len(self.tables["profiles"])
