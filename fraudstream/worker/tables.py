"""The worker's keyed state on Faust tables, each backed by a changelog topic.

Three tables, each partitioned like the input topic, so a restarted or rebalanced worker
recovers them exactly: user profiles, pending labels and merchant statistics
(:class:`fraudstream.worker.state.WorkerState` says what each holds). A batch's changes go out
as one record batch per changelog partition, in the tables' own key codec, so Faust's
recovery reads them like its own writes.

Every key is filed under the partition it was written for, as each store needs: the memory
store drops a revoked partition's keys after a rebalance only where it knows their partition
(it learns that from recovery alone), and the RocksDB store writes into the database of the
current event's partition and reads from it, where a batch's current event is any of its
messages (its reads go to whichever database holds the key instead, :class:`AnyPartitionReads`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, MutableMapping
from types import SimpleNamespace
from typing import Any, cast

import faust
import orjson
from faust.serializers import codecs
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from fraudstream.core.pending import PendingStore
from fraudstream.worker.changelog import BatchProducer
from fraudstream.worker.patches import Delivered, set_current_event, without_current_event
from fraudstream.worker.state import StateChanges, WorkerState

#: Table names (their changelog topics are ``<app id>-<name>-changelog``).
PROFILE_TABLE = "user-profiles"
PENDING_TABLE = "pending-labels"
MERCHANT_TABLE = "merchant-stats"
#: Faust's memory store for one table, whatever the app's: with a host, because Faust takes a
#: table's own store URL only when it is truthy, and yarl's ``memory://`` is not.
IN_MEMORY = "memory://local"


class BytesTable(faust.Table):
    """A table whose values are bytes the caller encodes itself.

    Faust derives a table's codec from ``value_type`` and falls back to JSON, which would
    decode the changelog into dicts on recovery while live writes hold bytes.
    """

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else super()._serializer_from_type(typ)


def declare_table(
    app: faust.App, name: str, partitions: int, store: str | None = None
) -> BytesTable:
    """A bytes-valued table partitioned like the input, backed by a changelog, in ``store``
    (default: the app's, ``FRAUDSTREAM_TABLE_STORE``)."""
    table = BytesTable(
        app,
        name=name,
        partitions=partitions,
        value_type=bytes,
        beacon=app.tables.beacon,
        store=store,
    )
    app.tables.add(table)
    return table


def declare_tables(app: faust.App, partitions: int) -> tuple[BytesTable, BytesTable, BytesTable]:
    """The worker's three tables: profiles in the app's store (memory, or RocksDB to keep
    them on disk), pending labels and merchants in memory, always.

    Those two are bounded (``FRAUDSTREAM_PENDING_MAX_ENTRIES``; a view per merchant and
    partition) and read by the whole store at once (the pending store's size and time index),
    which Faust's RocksDB store answers by iterating every key.
    """
    return (
        declare_table(app, PROFILE_TABLE, partitions),
        declare_table(app, PENDING_TABLE, partitions, store=IN_MEMORY),
        declare_table(app, MERCHANT_TABLE, partitions, store=IN_MEMORY),
    )


def mapping_of(table: BytesTable) -> MutableMapping[str, bytes]:
    """What the state reads and writes: the memory store's own dict, or the store itself.

    The memory store keeps its values in one dict for its whole life (its recovery and its
    clearing work on that very object) and reads it through ``Mapping.get``, which costs a
    raised ``KeyError`` per missing key: a merchant lookup tries every partition's view. Other
    stores (RocksDB) encode on the way and are used through :class:`AnyPartitionReads`.
    """
    store = table.data
    inner = getattr(store, "data", None)
    if isinstance(store, MemoryStore) and type(inner) is dict:
        return inner
    return AnyPartitionReads(store)


class AnyPartitionReads(MutableMapping[str, bytes]):
    """A store whose reads find a key in whichever partition holds it (writes go to the
    current event's partition, which :meth:`FaustState.filing` sets)."""

    def __init__(self, store: MutableMapping[str, bytes]) -> None:
        self.store = store

    def __getitem__(self, key: str) -> bytes:
        with without_current_event():
            return self.store[key]

    def __setitem__(self, key: str, value: bytes) -> None:
        self.store[key] = value

    def __delitem__(self, key: str) -> None:
        del self.store[key]

    def __iter__(self) -> Iterator[str]:
        with without_current_event():
            yield from self.store

    def __len__(self) -> int:
        return len(self.store)


def key_codec_of(table: BytesTable) -> Callable[[str], bytes]:
    """Keys in the table's own codec, so Faust's recovery reads them back.

    Faust's JSON codec is ``orjson.dumps`` (its options change nothing for a string), so
    with the default key serializer the keys are encoded by orjson directly, without Faust's
    codec lookup per key; the result is the same bytes.
    """
    serializer = table.key_serializer
    if serializer == "json":
        return orjson.dumps
    return lambda key: codecs.dumps(serializer, key)


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
        max_held: int,
        cached_histories: int = 0,
    ) -> None:
        self.tables = {"profiles": profiles, "pending": pending, "merchants": merchants}
        #: Each memory store's own key -> partition record (what its recovery fills)
        self._filed: dict[str, MutableMapping[Any, int]] = {
            name: cast(MemoryStore, table.data)._key_partition
            for name, table in self.tables.items()
            if isinstance(mapping_of(table), dict)
        }
        #: A stand-in event per partition, for RocksDB's writes (a weak reference holds it)
        self._writing_for: dict[int, Delivered] = {}
        store = PendingStore(mapping_of(pending), horizon, late_window, max_pending, max_held)
        super().__init__(
            mapping_of(profiles),
            store,
            mapping_of(merchants),
            partitions,
            key_codec=key_codec_of(profiles),
            cached_histories=cached_histories,
        )

    async def flush(self, changes: StateChanges, producer: BatchProducer) -> None:
        """Put a batch's changes on the broker; tell each store how far it is persisted.

        The three changelogs are written at once, so the batch waits for one round of
        acknowledgements rather than one per changelog.
        """
        written = [
            (self.tables[name], self.tables[name].changelog_topic.get_topic_name(), batch)
            for name, batch in (
                ("profiles", changes.profiles),
                ("pending", changes.pending),
                ("merchants", changes.merchants),
            )
            if batch
        ]
        flushed = await asyncio.gather(*(batch.flush(producer, to) for _, to, batch in written))
        for (table, topic, _), last_offsets in zip(written, flushed, strict=True):
            for partition, offset in last_offsets.items():
                table.data.set_persisted_offset(TP(topic, partition), offset)

    def filing(self, table: str, key: str, partition: int | None) -> None:
        """File ``key`` under its partition, as the table's store needs (see the module)."""
        filed = self._filed.get(table)
        if filed is not None:  # the memory store: its rebalance drops keys by this
            if partition is None:
                filed.pop(key, None)
            else:
                filed[key] = partition
        elif partition is not None:  # RocksDB: the current event's partition is written
            event = self._writing_for.get(partition)
            if event is None:
                event = self._writing_for[partition] = Delivered(
                    SimpleNamespace(partition=partition)
                )
            set_current_event(cast(Any, event))  # a Delivered stands for a Faust event

    def rebalanced(self) -> None:
        """After a rebalance (recovery done): partitions' entries went and came."""
        self.pending.reindex()

    def users(self) -> int:
        """Profiles held (on this worker's partitions)."""
        return len(self.tables["profiles"])
