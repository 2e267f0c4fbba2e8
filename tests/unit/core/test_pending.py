"""Pending entries: their bytes survive restarts and upgrades (they live in a changelog)."""

from __future__ import annotations

import struct

import pytest

from fraudstream.core.pending import HeldLabel, PendingEntry, PendingStore


@pytest.mark.parametrize("label", [None, (1.8e9, True)])
@pytest.mark.parametrize("segment", [None, "grocery_pos|pos|16", "||3"])
@pytest.mark.parametrize("card", [None, 0, 2**32 - 1])
def test_an_entry_comes_back_from_its_bytes_as_it_was_kept(
    label: tuple[float, bool] | None, segment: str | None, card: int | None
) -> None:
    entry = PendingEntry(
        1.7e9, 3, "T9", (0.5, -2.0), matured=True, label=label, segment=segment, card=card
    )
    assert PendingEntry.decode(entry.encode()) == entry


def test_an_entry_written_before_segments_existed_decodes_without_one() -> None:
    # The layout of entries kept before segments: head (event time, partition, kind, merchant
    # length), merchant, features as float32.
    old = struct.pack("<dhBH", 1.7e9, 2, 1, 2) + b"T1" + struct.pack("<2f", 0.25, 4.0)
    assert PendingEntry.decode(old) == PendingEntry(1.7e9, 2, "T1", (0.25, 4.0), matured=True)


def test_a_segmented_entry_is_never_taken_for_a_held_label() -> None:
    store = PendingStore({})
    store.add("t1", PendingEntry(1.7e9, 0, None, (1.0,), segment="||8"))
    resolution = store.resolve("t1", fraud=True)
    assert resolution is not None and resolution.entry.segment == "||8"
    held = HeldLabel(1.7e9, 0, 5, b"u1", b"{}", fraud=True)  # byte 10 is the kind in both
    assert PendingEntry(1.7e9, 0, None, (1.0,), segment="||8").encode()[10] != held.encode()[10]
    carded = PendingEntry(1.7e9, 0, None, (1.0,), segment="||8", card=7, label=(1.8e9, True))
    assert carded.encode()[10] != held.encode()[10]


T0 = 1.7e9


def entry(at: float = T0, partition: int = 0) -> PendingEntry:
    return PendingEntry(at, partition, "T1", (1.0, 2.0))


def test_a_redelivered_transaction_keeps_the_features_it_was_first_scored_with() -> None:
    store = PendingStore({})
    store.add("t1", entry())
    assert store.add("t1", PendingEntry(T0, 0, "T1", (9.0, 9.0))) == []
    resolution = store.resolve("t1", fraud=True)
    assert resolution is not None and resolution.entry.features == (1.0, 2.0)
    assert store.counts.added == 1


def test_a_held_label_rides_with_its_transaction_and_is_learned_at_its_labeled_at() -> None:
    """A label made after transactions the worker has not read yet waits for its transaction;
    when that comes, the label is kept with its features and learned once event time reaches
    ``labeledAt`` (not at once: labels must not reach the classifier ahead of their time)."""
    store = PendingStore({})
    store.hold("t1", HeldLabel(T0 + 3600, 0, 7, b"u1", b"{}", fraud=True))
    assert store.add("t1", entry()) == [] and store.held_size() == 0
    assert store.advance(T0 + 60) == []
    [resolution] = store.advance(T0 + 3600)
    assert (resolution.fraud, resolution.by_label) == (True, True)
    assert store.counts.held_resolved == 1 and len(store) == 0


def test_the_bound_learns_an_entry_whose_label_is_known_as_labeled_not_as_legit() -> None:
    store = PendingStore({}, max_entries=1)
    store.hold("t1", HeldLabel(T0 + 3600, 0, 7, b"u1", b"{}", fraud=True))
    store.add("t1", entry())  # its fraud label is known, due in an hour
    [forced] = store.add("t2", entry(T0 + 1))  # over the bound: t1 leaves now
    assert (forced.transaction_id, forced.fraud, forced.by_label) == ("t1", True, True)
    assert len(store) == 1


def test_a_label_is_held_only_for_a_transaction_not_pending() -> None:
    store = PendingStore({})
    store.add("t1", entry())
    with pytest.raises(ValueError, match="resolve it instead"):
        store.hold("t1", HeldLabel(T0, 0, 7, b"u1", b"{}", fraud=True))


def test_a_second_label_for_an_awaited_transaction_replaces_the_first() -> None:
    """The newest verdict wins, and the replaced label's place in time expires nothing."""
    store = PendingStore({})
    store.hold("t1", HeldLabel(T0 + 10, 0, 7, b"u1", b"{}", fraud=True))
    store.hold("t1", HeldLabel(T0 + 20, 0, 8, b"u1", b"{}", fraud=False))
    assert store.held_size() == 1
    assert store.expire_held({0: T0 + 15}) == []  # the first label's time: nothing expires
    [(tx_id, held)] = store.expire_held({0: T0 + 20})
    assert (tx_id, held.offset, held.fraud) == ("t1", 8, False)


def test_after_a_rebalance_the_entries_of_the_partitions_that_came_mature() -> None:
    """A rebalance can take one partition's entries away and recover as many of another's:
    the time index, rebuilt only when the mapping's size gave it away, must be rebuilt then."""
    data: dict[str, bytes] = {}
    store = PendingStore(data, horizon=100.0, late_window=0.0)
    for i in range(3):
        store.add(f"a{i}", entry(T0 + i, partition=1))
    for i in range(3):  # partition 1 goes, partition 2 comes with three entries (recovery)
        del data[f"a{i}"]
        data[f"b{i}"] = entry(T0 + i, partition=2).encode()
    store.reindex()
    matured = store.advance(T0 + 1_000.0)
    assert sorted(r.transaction_id for r in matured) == ["b0", "b1", "b2"]


@pytest.mark.parametrize("damaged", [b"\x00\x01\x02", b""])
def test_a_stored_value_that_does_not_decode_is_dropped_and_counted(damaged: bytes) -> None:
    """A damaged changelog value must not stop every later batch's maturity."""
    data = {"bad": damaged}
    store = PendingStore(data, horizon=100.0, late_window=0.0)
    store.add("t1", entry())
    assert [r.transaction_id for r in store.advance(T0 + 1_000.0)] == ["t1"]
    assert "bad" not in data and store.counts.corrupt == 1
