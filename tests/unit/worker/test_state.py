"""The worker's keyed state: user histories kept decoded between events, without changing any."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fraudstream.cli.evaluate import EvaluateOptions, labeled_stream, run_offline
from fraudstream.core.behaviour import BehaviourFeatures, UserHistory
from fraudstream.core.pending import DAY, PendingStore
from fraudstream.core.records import Transaction
from fraudstream.settings import Settings
from fraudstream.worker.state import WorkerState

T0 = datetime(2024, 12, 4, 15, tzinfo=timezone.utc)


def state(cached: int) -> WorkerState:
    pending = PendingStore({}, horizon=7 * DAY, late_window=DAY, max_entries=100)
    return WorkerState({}, pending, {}, partitions=1, cached_histories=cached)


def one_event(s: WorkerState, user: str, amount: float, offset: int) -> UserHistory:
    """What the handler does per transaction: load, fold the event in, store."""
    history = s.load_history(user)
    tx = Transaction(f"t{offset}", user, amount, T0 + timedelta(hours=offset))
    BehaviourFeatures().update(history, tx, 0, offset, suspicious=False)
    s.store_history(user, history, 0)
    return history


def test_a_history_stored_is_loaded_again_without_decoding() -> None:
    s = state(cached=10)
    stored = one_event(s, "u1", 20.0, 0)
    assert s.load_history("u1") is stored
    assert s.history_cache_hits == 1
    assert stored == UserHistory.decode(s.profiles["u1"])


def test_a_table_value_changed_underneath_is_decoded_afresh() -> None:
    s = state(cached=10)
    one_event(s, "u1", 20.0, 0)
    other = state(cached=0)
    for offset, amount in enumerate([5.0, 7.0, 9.0]):
        one_event(other, "u1", amount, offset)
    s.profiles["u1"] = other.profiles["u1"]  # e.g. recovered from the changelog
    loaded = s.load_history("u1")
    assert s.history_cache_hits == 0
    assert loaded == UserHistory.decode(other.profiles["u1"]) and loaded.n == 3


def test_a_loaded_history_is_handed_over_not_shared() -> None:
    """An event that fails between load and store must not leave a half-updated history."""
    s = state(cached=10)
    one_event(s, "u1", 20.0, 0)
    half_done = s.load_history("u1")
    half_done.n = 99  # the event failed here: never stored
    again = s.load_history("u1")
    assert again is not half_done and again.n == 1
    assert s.history_cache_hits == 1


def test_the_cache_is_bounded_and_forgets_the_least_recently_stored() -> None:
    s = state(cached=2)
    for offset, user in enumerate(["a", "b", "a", "c"]):
        one_event(s, user, 10.0, offset)
    hits = s.history_cache_hits  # the second "a"
    s.load_history("b")  # stored before a and c: forgotten
    assert s.history_cache_hits == hits
    s.load_history("a"), s.load_history("c")
    assert s.history_cache_hits == hits + 2


def test_zero_entries_decodes_every_time() -> None:
    s = state(cached=0)
    stored = one_event(s, "u1", 20.0, 0)
    assert s.load_history("u1") is not stored and s.history_cache_hits == 0


@pytest.mark.parametrize("generator", ["scenarios", "handbook"])
def test_the_cache_changes_no_decision(generator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    options = EvaluateOptions(
        offline=True,
        generator=generator,
        count=4000,
        users=200,
        customers=200,
        terminals=400,
        days=8,
    )
    decisions = []
    for entries in ("0", "16384"):
        monkeypatch.setenv("FRAUDSTREAM_HISTORY_CACHE_ENTRIES", entries)
        settings = Settings()
        decisions.append(run_offline(labeled_stream(options, settings), settings, None)[0])
    assert len(decisions[0]) > 1000
    assert decisions[0] == decisions[1]
