"""The clock step: a day, an hour or a minute when the stream's timestamps are coarse."""

from __future__ import annotations

import random

import pytest

from fraudstream.core.clock import ClockStep, step_of
from fraudstream.core.units import UNIT_SAMPLE

DAY_MS, HOUR_MS, MINUTE_MS = 86_400_000, 3_600_000, 60_000
START_MS = 1_733_270_400_000  # a midnight


@pytest.mark.parametrize(
    ("spacing_ms", "step"),
    [(DAY_MS, 86400), (HOUR_MS, 3600), (7 * MINUTE_MS, 60), (1000, 0), (1, 0)],
)
def test_the_step_is_the_coarsest_every_timestamp_is_a_multiple_of(
    spacing_ms: int, step: int
) -> None:
    stamps = [START_MS + spacing_ms * k for k in range(UNIT_SAMPLE)]
    assert step_of(stamps) == step


def test_steps_may_start_anywhere_a_simulators_start_time_or_a_local_midnight() -> None:
    local_midnights = [START_MS - HOUR_MS + DAY_MS * k for k in range(UNIT_SAMPLE)]  # UTC+1
    half_past = [START_MS + 30 * MINUTE_MS + HOUR_MS * k for k in range(UNIT_SAMPLE)]
    assert (step_of(local_midnights), step_of(half_past)) == (86400, 3600)


def test_timestamps_to_the_second_are_exact_even_when_most_fall_on_whole_minutes() -> None:
    stamps = [START_MS + MINUTE_MS * k for k in range(UNIT_SAMPLE)]
    stamps[57] += 1000
    assert step_of(stamps) == 0


def test_a_stream_with_random_instants_is_never_read_in_steps() -> None:
    rng = random.Random(7)
    for _ in range(200):
        stamps = [START_MS + rng.randrange(30 * DAY_MS) // 1000 * 1000 for _ in range(UNIT_SAMPLE)]
        assert step_of(stamps) == 0


def test_the_step_is_decided_once_from_the_first_timestamps_and_sets_the_least_gap() -> None:
    clock = ClockStep()
    assert not clock.observe([86400.0 * k for k in range(UNIT_SAMPLE - 1)])
    assert (clock.decided, clock.min_gap) == (False, 0.0)  # exact until decided
    assert clock.observe([86400.0 * UNIT_SAMPLE])
    assert (clock.seconds, clock.min_gap) == (86400, 28800.0)
    assert not clock.observe([1.5] * UNIT_SAMPLE) and clock.seconds == 86400


@pytest.mark.parametrize("step", [86400, 3600, 60])
def test_a_first_sample_of_one_instant_waits_for_the_next_that_differs(step: int) -> None:
    # a busy stream stamped in steps: its first batches all fall in its first step
    clock = ClockStep()
    first = 1_714_554_000.0 // step * step
    assert not clock.observe([first] * (3 * UNIT_SAMPLE))
    assert not clock.observe([first] * UNIT_SAMPLE) and not clock.decided  # exact meanwhile
    assert clock.observe([first + step, first + step])
    assert clock.seconds == step


def test_a_step_in_the_settings_wins_over_the_checkpoints_and_0_means_exact() -> None:
    fixed = ClockStep(0)
    fixed.restore(3600)
    assert (fixed.decided, fixed.seconds, fixed.min_gap) == (True, 0, 0.0)
    restored = ClockStep()
    restored.restore(3600)
    assert (restored.seconds, restored.min_gap) == (3600, 1200.0)
