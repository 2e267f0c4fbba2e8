"""The worker's garbage-collector setting, and that an in-process run gives Python's back."""

from __future__ import annotations

import gc

import pytest

from fraudstream.worker.collector import worker_collector


def test_the_block_runs_with_the_workers_threshold_and_restores_pythons_even_on_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), worker_collector(50_000):
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_freeze_count() > 0  # what existed at start is out of every collection
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_zero_leaves_pythons_setting() -> None:
    before = gc.get_threshold()
    with worker_collector(0):
        assert gc.get_threshold() == before
