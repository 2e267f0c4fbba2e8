"""The worker's state on Faust tables: the same values and keys as Faust's own reads and writes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.serializers import codecs

from fraudstream.core.behaviour import UserHistory
from fraudstream.worker.tables import FaustState, declare_table, key_codec_of, mapping_of

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
    assert mapping_of(table) is table.data


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
