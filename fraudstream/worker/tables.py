"""The worker's keyed state on Faust tables, each backed by a changelog topic.

Three tables, each partitioned like the input topic, so a restarted or rebalanced worker
recovers them exactly: user profiles, pending labels and merchant statistics
(:class:`fraudstream.worker.state.WorkerState` says what each holds). A batch's changes go out
as one record batch per changelog partition, in the tables' own key codec, so Faust's
recovery reads them like its own writes.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.serializers import codecs
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
        store = PendingStore(pending.data, horizon, late_window, max_pending, max_held)
        super().__init__(
            profiles.data,
            store,
            merchants.data,
            partitions,
            # Keys in the tables' own codec (JSON), so Faust's recovery reads them back.
            key_codec=lambda key: codecs.dumps(profiles.key_serializer, key),
            cached_histories=cached_histories,
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
