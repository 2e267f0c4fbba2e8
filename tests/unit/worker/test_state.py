"""The worker's keyed state: decoded histories are reused only while the table holds their bytes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fraudstream.core.behaviour import BehaviourFeatures, UserHistory
from fraudstream.core.pending import PendingStore
from fraudstream.core.records import Transaction
from fraudstream.worker.state import WorkerState

DAY = 86400.0
T0 = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)


def state(cached: int) -> WorkerState:
    pending = PendingStore({}, horizon=7 * DAY, late_window=DAY, max_entries=100)
    return WorkerState({}, pending, {}, partitions=1, cached_histories=cached)


def spent(history: UserHistory, amount: float) -> UserHistory:
    """The history after one more transaction of ``amount``."""
    BehaviourFeatures().update(
        history, Transaction("t", "u", amount, T0), 0, history.last_offset + 1, False
    )
    return history


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes | None]:
    """Every blob UserHistory.decode is asked to decode."""
    seen: list[bytes | None] = []
    decode = UserHistory.decode.__func__  # type: ignore[attr-defined]

    def counting(cls: type[UserHistory], blob: bytes | None) -> UserHistory:
        seen.append(blob)
        return decode(cls, blob)  # type: ignore[no-any-return]

    monkeypatch.setattr(UserHistory, "decode", classmethod(counting))
    return seen


def test_a_stored_history_comes_back_without_being_decoded(decodes: list[bytes | None]) -> None:
    s = state(cached=10)
    history = spent(s.load_history("u"), 20.0)
    s.store_history("u", history, 0)
    decodes.clear()
    assert s.load_history("u") is history
    assert decodes == []


def test_a_value_replaced_in_the_table_is_decoded_afresh(decodes: list[bytes | None]) -> None:
    s = state(cached=10)
    s.store_history("u", spent(UserHistory(), 20.0), 0)
    recovered = spent(spent(UserHistory(), 20.0), 30.0).encode()
    s.profiles["u"] = recovered  # as a changelog recovery or a rebalance writes it
    decodes.clear()
    assert s.load_history("u").n == 2
    assert decodes == [recovered]


def test_a_history_changed_but_not_stored_again_is_never_served(
    decodes: list[bytes | None],
) -> None:
    s = state(cached=10)
    s.store_history("u", spent(UserHistory(), 20.0), 0)
    spent(s.load_history("u"), 5000.0)  # decided, then not kept (e.g. a failed write)
    assert s.load_history("u").n == 1
    assert len(decodes) == 1


def test_the_cache_keeps_the_most_recently_stored_users_only(
    decodes: list[bytes | None],
) -> None:
    s = state(cached=2)
    for user in ("a", "b", "c"):
        s.store_history(user, spent(UserHistory(), 20.0), 0)
    s.store_history("a", s.load_history("a"), 0)  # "a" again: now "b" is the oldest
    decodes.clear()
    for user in ("a", "c", "b"):
        assert s.load_history(user).n == 1
    assert decodes == [s.profiles["b"]]


def test_without_a_cache_every_load_decodes(decodes: list[bytes | None]) -> None:
    s = state(cached=0)
    s.store_history("u", spent(UserHistory(), 20.0), 0)
    s.load_history("u")
    s.load_history("u")
    assert len(decodes) == 2
