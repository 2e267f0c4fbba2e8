"""Pending entries: their bytes survive restarts and upgrades (they live in a changelog)."""

from __future__ import annotations

import struct

import pytest

from fraudstream.core.pending import HeldLabel, PendingEntry, PendingStore


@pytest.mark.parametrize("label", [None, (1.8e9, True)])
@pytest.mark.parametrize("segment", [None, "grocery_pos|pos|16", "||3"])
def test_an_entry_comes_back_from_its_bytes_as_it_was_kept(
    label: tuple[float, bool] | None, segment: str | None
) -> None:
    entry = PendingEntry(1.7e9, 3, "T9", (0.5, -2.0), matured=True, label=label, segment=segment)
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
