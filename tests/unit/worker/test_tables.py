"""The worker's state on Faust tables: the same values and keys as Faust's own reads and writes."""

from __future__ import annotations

from pathlib import Path

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
