"""What every labeled simulator promises, checked one way for all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from producer.records import LabeledTransaction, epoch_ms

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Params = TypeVar("Params", bound="DataclassInstance")


def assert_seeded_stream(
    simulate: Callable[[Params], Iterable[LabeledTransaction]], params: Params, other_seed: int
) -> list[LabeledTransaction]:
    """The same parameters give the same stream, in event-time order with distinct ids, and
    another seed another stream; returns the stream."""
    stream = list(simulate(params))
    assert stream == list(simulate(params))
    times = [record.timestamp_ms for record in stream]
    assert times == sorted(times)
    assert len({record.transaction_id for record in stream}) == len(stream)
    assert stream != list(simulate(replace(params, seed=other_seed)))
    return stream


def assert_start_time_shifts(
    simulate: Callable[[Params], Iterable[LabeledTransaction]],
    params: Params,
    start: datetime,
    later: datetime,
) -> list[LabeledTransaction]:
    """Moving the start from ``start`` to ``later`` moves every transaction by as much and
    changes nothing else that is drawn; returns the stream at ``start``."""
    first = list(simulate(replace(params, start_time=start)))
    moved = list(simulate(replace(params, start_time=later)))
    shift = epoch_ms(later) - epoch_ms(start)
    assert [r.timestamp_ms - shift for r in moved] == [r.timestamp_ms for r in first]
    assert [r.amount for r in moved] == [r.amount for r in first]
    return first
