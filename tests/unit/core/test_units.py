"""The amount unit: a power of ten from the stream's first amounts, decided once."""

from __future__ import annotations

import pytest

from fraudstream.core.units import UNIT_SAMPLE, UNIT_SAMPLE_MAX, AmountUnit, unit_exponent


@pytest.mark.parametrize(
    ("median", "exponent"),
    [
        (4_700.0, 2),
        (1_000.5, 2),
        (75_000.0, 3),
        (9.99, -1),
        (4.7, -1),
        (0.47, -2),
        (0.1, -2),
        (0.099, -3),
    ],
)
def test_a_median_in_another_unit_is_brought_to_tens(median: float, exponent: int) -> None:
    assert unit_exponent(median) == exponent
    assert 10.0 <= median / 10.0**exponent < 100.0


@pytest.mark.parametrize("median", [10.0, 21.3, 47.0, 100.0, 150.0, 1_000.0])
def test_a_stream_whose_typical_payment_is_between_10_and_1000_keeps_unit_1(median: float) -> None:
    """Wide, so that no ordinary stream sits near an edge where two samples could disagree."""
    assert unit_exponent(median) == 0


@pytest.mark.parametrize("median", [0.0, -5.0, float("nan"), float("inf")])
def test_a_median_without_a_scale_keeps_unit_1(median: float) -> None:
    assert unit_exponent(median) == 0


def test_amounts_are_read_as_they_are_until_the_sample_decides() -> None:
    unit = AmountUnit()
    assert not unit.observe([0.3] * (UNIT_SAMPLE - 1))
    assert not unit.decided and unit.value == 1.0 and unit.scale(0.3) == 0.3
    assert unit.known is None
    assert unit.observe([0.2, 0.4])
    assert unit.decided and unit.value == unit.known == 0.01 and unit.median == 0.3
    assert unit.scale(0.3) == 30.0


def test_a_large_first_batch_decides_on_all_of_it_and_the_unit_never_moves() -> None:
    unit = AmountUnit()
    assert unit.observe([40.0] * 400 + [9_000.0] * 500)  # median 9,000: unit 100
    assert unit.value == 100.0
    assert not unit.observe([0.5] * 5_000)
    assert unit.value == 100.0 and unit.scale(4_700.0) == 47.0


def test_the_sample_is_bounded_and_ignores_amounts_that_are_not_numbers() -> None:
    unit = AmountUnit()
    unit.observe(iter([float("nan")] * 150))
    assert not unit.decided
    assert unit.observe(iter([40.0] * (UNIT_SAMPLE_MAX + 10_000) + [1e9] * 10_000))
    assert unit.value == 1.0 and unit.median == 40.0


def test_a_fixed_unit_is_used_from_the_first_amount_and_a_checkpoint_does_not_move_it() -> None:
    cents = AmountUnit(100.0)
    assert cents.decided and cents.scale(4_700.0) == 47.0
    cents.restore(-2)
    assert cents.value == 100.0
    odd = AmountUnit(2.5)
    assert odd.value == 2.5 and odd.scale(100.0) == 40.0


def test_a_restored_unit_is_decided_and_the_sample_no_longer_matters() -> None:
    unit = AmountUnit()
    unit.observe([0.3] * 50)
    unit.restore(2)
    assert unit.decided and unit.value == 100.0
    assert not unit.observe([0.3] * 500)
    assert "from the checkpoint" in unit.describe()
