"""The worker's state on Faust tables: the same values and keys as Faust's own reads and writes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from faust.serializers import codecs
from faust.types import TP

from fraudstream.core.behaviour import UserHistory
from fraudstream.core.detector import Detector
from fraudstream.worker.handler import BatchHandler
from fraudstream.worker.patches import Delivered, set_current_event
from fraudstream.worker.state import StateChanges
from fraudstream.worker.stats import WorkerStats
from fraudstream.worker.tables import (
    AnyPartitionReads,
    FaustState,
    declare_table,
    declare_tables,
    key_codec_of,
    mapping_of,
)
from tests.unit.worker.test_handler import CONFIG, LABELS, NOW, FakeMessage, FakeOutbox, not_saved

DAY = 86400.0


def faust_state(app: faust.App) -> FaustState:
    tables = [declare_table(app, name, 4) for name in ("profiles", "pending", "merchants")]
    return FaustState(*tables, 4, 7 * DAY, DAY, 100, 100)


def test_on_the_memory_store_the_state_works_on_the_very_dict_the_table_reads() -> None:
    app = faust.App("tables-memory", broker="kafka://127.0.0.1:1")
    state = faust_state(app)
    profiles, merchants = state.tables["profiles"], state.tables["merchants"]

    history = UserHistory(n=3)
    state.store_history("U1", history, partition=2)
    assert profiles["U1"] == history.encode()  # what the worker wrote, Faust reads

    recovered = UserHistory(n=7).encode()
    profiles.data["U2"] = recovered  # as Faust's changelog recovery writes it
    assert state.load_history("U2").n == 7
    assert state.merchant("M1") is None  # a missing key is no error
    state.update_merchant(1, "M1", lambda stats: stats.observe(12.0, 1000.0))
    assert "1|M1" in merchants
    assert mapping_of(profiles) is profiles.data.data


def test_other_stores_are_used_as_they_are(tmp_path: Path) -> None:
    """RocksDB (``FRAUDSTREAM_TABLE_STORE=rocksdb://``) encodes on the way: keep its API."""
    app = faust.App("tables-rocksdb", broker="kafka://127.0.0.1:1", store="rocksdb://")
    app.conf.datadir = tmp_path
    table = declare_table(app, "profiles", 4)
    mapping = mapping_of(table)
    assert isinstance(mapping, AnyPartitionReads) and mapping.store is table.data


def test_pending_labels_and_merchants_stay_in_memory_whatever_the_profiles_store(
    tmp_path: Path,
) -> None:
    """Both are bounded, and read whole (the pending store's size), which RocksDB iterates."""
    app = faust.App("tables-stores", broker="kafka://127.0.0.1:1", store="rocksdb://")
    app.conf.datadir = tmp_path
    profiles, pending, merchants = declare_tables(app, 4)
    assert isinstance(mapping_of(profiles), AnyPartitionReads)
    assert type(mapping_of(pending)) is dict and type(mapping_of(merchants)) is dict


@pytest.mark.parametrize(
    "key", ["U000001", "3|merchant 7", "Zoë", 'say "hi"', "back\\slash", "\x1eseg:x"]
)
def test_keys_are_the_bytes_fausts_own_codec_writes(key: str) -> None:
    """Faust's recovery decodes changelog keys with the table's codec: they must match it."""
    table = declare_table(faust.App("tables-keys", broker="kafka://127.0.0.1:1"), "profiles", 4)
    assert key_codec_of(table)(key) == codecs.dumps(table.key_serializer, key)


class HeldAcks:
    """A producer whose broker acknowledges nothing until told (``ack``)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, asyncio.Future[Any]]] = []

    def create_batch(self) -> Any:
        records: list[object] = []
        return SimpleNamespace(append=lambda **record: records.append(record) or True, close=list)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, future))
        return future

    def ack(self, offset: int) -> None:
        for _, _, future in self.sent:
            future.set_result(SimpleNamespace(offset=offset))


def test_a_batchs_changelogs_are_all_sent_before_any_acknowledgement_is_awaited() -> None:
    """One round of acknowledgements per batch, not one per changelog; then each store knows
    how far it is persisted (what Faust's recovery starts from)."""

    async def go() -> tuple[set[str], bool, dict[str, int]]:
        app = faust.App("tables-flush", broker="kafka://127.0.0.1:1")
        state = faust_state(app)
        state.store_history("U1", UserHistory(n=3), partition=2)
        state.update_merchant(1, "M1", lambda stats: stats.observe(12.0, 1000.0))
        persisted: dict[str, int] = {}
        for name, table in state.tables.items():  # the memory store keeps no persisted offset
            table.data.set_persisted_offset = (  # type: ignore[method-assign]
                lambda tp, offset, name=name: persisted.__setitem__(name, offset)
            )
        producer = HeldAcks()
        flush = asyncio.ensure_future(state.flush(state.take_changes(), producer))
        for _ in range(5):
            await asyncio.sleep(0)
        sent_unacknowledged = {topic for topic, _, _ in producer.sent}
        waiting = not flush.done()
        producer.ack(41)
        await flush
        return sent_unacknowledged, waiting, persisted

    sent, waiting, persisted = asyncio.run(go())
    assert sent == {"tables-flush-profiles-changelog", "tables-flush-merchants-changelog"}
    assert waiting
    assert persisted == {"profiles": 41, "merchants": 41}


def handler_on(state: FaustState) -> tuple[BatchHandler, list[StateChanges]]:
    """The worker's batch handler on ``state``, keeping every batch's changelog records."""
    flushed: list[StateChanges] = []

    async def flush(changes: StateChanges, offsets: object) -> None:
        flushed.append(changes)

    handler = BatchHandler(
        Detector(CONFIG),
        state,
        WorkerStats(),
        FakeOutbox(),
        flush,
        not_saved,
        labels_topic=LABELS,
        clock=lambda: NOW,
        set_current_event=set_current_event,
    )
    return handler, flushed


def payment(user: str, offset: int, partition: int, when: str) -> Delivered:
    doc = {
        "userId": user,
        "amount": 40.0,
        "transactionId": f"{user}-{offset}",
        "timestamp": when,
        "merchantId": "M1",
    }
    return Delivered(FakeMessage(orjson.dumps(doc), user.encode(), offset, partition))


def changelog(flushed: list[StateChanges]) -> list[dict[str, dict[int, dict[bytes, Any]]]]:
    return [
        {name: getattr(changes, name)._pending for name in ("profiles", "pending", "merchants")}
        for changes in flushed
    ]


@pytest.mark.parametrize("cached_histories", [0, 10_000])
def test_on_rocksdb_the_worker_keeps_and_matures_state_exactly_as_in_memory(
    tmp_path: Path, cached_histories: int
) -> None:
    """RocksDB files a key by the current event's partition; a batch's profile reads and
    writes for its several partitions (a user's in a later round) must not follow it."""
    outcomes = []
    for store in ("memory://", "rocksdb://"):
        app = faust.App(f"tables-{store[:4]}", broker="kafka://127.0.0.1:1", store=store)
        app.conf.datadir = tmp_path / store[:4]
        state = FaustState(*declare_tables(app, 4), 4, 7 * DAY, DAY, 100, 100, cached_histories)
        handler, flushed = handler_on(state)
        batches = [
            [payment("u1", 0, 0, "2024-12-04T14:00:00Z"), payment("u2", 0, 1, "2024-12-04T14:00Z")],
            [
                payment(user, offset, partition, f"2024-12-04T14:0{offset}:00Z")
                for offset in (1, 2)
                for user, partition in (("u1", 0), ("u2", 1))
            ],
            [payment("u2", 3, 1, "2024-12-12T15:00:00Z")],  # 8 days on: the first ones mature
        ]
        for batch in batches:
            asyncio.run(handler.handle(batch))
        assert UserHistory.decode(state.profiles.get("u1")).n == 3
        outcomes.append((changelog(flushed), handler.stats.matured, len(state.pending)))
    assert outcomes[0][1:] == (6, 1)  # u1's and u2's first six matured; u2's newest waits
    assert outcomes[1] == outcomes[0]


def test_rows_written_live_for_a_partition_go_with_it_at_a_rebalance() -> None:
    """Faust's memory store drops a revoked partition's keys where it knows their partition:
    the state tells it, so a partition's entries do not mature on here for another owner."""
    app = faust.App("tables-revoked", broker="kafka://127.0.0.1:1")
    tables = declare_tables(app, 2)
    state = FaustState(*tables, 2, 7 * DAY, DAY, 100, 100)
    handler, flushed = handler_on(state)
    asyncio.run(
        handler.handle(
            [payment("u0", 0, 0, "2024-12-04T14:00:00Z"), payment("u1", 0, 1, "2024-12-04T14Z")]
        )
    )
    assert {"u0", "u1"} <= set(state.profiles) and "1|M1" in state.merchants

    async def lose_partition_1() -> None:  # what Faust's recovery does after a rebalance
        for table in tables:
            active = {TP(table.changelog_topic.get_topic_name(), 0)}
            await table.data.on_recovery_completed(active, set())

    asyncio.run(lose_partition_1())
    state.rebalanced()
    assert set(state.profiles) == {"u0"} and "1|M1" not in state.merchants
    assert set(state.pending.data) == {"u0-0"}
    asyncio.run(handler.handle([payment("u0", 1, 0, "2024-12-12T15:00:00Z")]))  # 8 days on
    assert handler.stats.matured == 1  # u0's; u1's is its new owner's to mature
    assert all(1 not in records for records in changelog(flushed)[-1].values())
