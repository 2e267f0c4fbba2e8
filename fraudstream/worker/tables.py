"""The worker's keyed state on Faust tables, each backed by a changelog topic.

Three tables, each partitioned like the input topic, so a restarted or rebalanced worker
recovers them exactly: user profiles, pending labels and merchant statistics
(:class:`fraudstream.worker.state.WorkerState` says what each holds). A batch's changes go out
as one record batch per changelog partition, in the tables' own key codec, so Faust's
recovery reads them like its own writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

import faust
import orjson
from faust.serializers import codecs
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from fraudstream.core.pending import PendingStore
from fraudstream.worker.changelog import BatchProducer
from fraudstream.worker.state import StateChanges, WorkerState

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


def mapping_of(table: BytesTable) -> MutableMapping[str, bytes]:
    """What the state reads and writes: the memory store's own dict, or the store itself.

    The memory store keeps its values in one dict for its whole life (its recovery and its
    clearing work on that very object) and reads it through ``Mapping.get``, which costs a
    raised ``KeyError`` per missing key: a merchant lookup tries every partition's view. Other
    stores (RocksDB) encode on the way and are used as they are.
    """
    store = table.data
    inner = getattr(store, "data", None)
    if isinstance(store, MemoryStore) and type(inner) is dict:
        return inner
    return store


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

    def users(self) -> int:
        """Profiles held (on this worker's partitions)."""
        return len(self.tables["profiles"])
