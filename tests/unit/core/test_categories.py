"""The category profile: shares of a category's payments at an amount or above, decayed."""

from __future__ import annotations

import pickle

import pytest

from fraudstream.core import categories
from fraudstream.core.categories import (
    MEMORY,
    MIN_COUNT,
    CategoryAmounts,
    CategoryProfiles,
    band_of,
    rarity_z,
)


def test_the_share_counts_the_amounts_band_and_every_band_above() -> None:
    amounts = CategoryAmounts()
    for k in range(400):
        amounts.observe(band_of([10.0, 100.0, 1000.0, 1000.0][k % 4]))
    # bands a factor sqrt(2) apart: 90 and 100 share one; none is paid between 150 and 1000
    assert amounts.share_at_or_above(band_of(1000.0)) == pytest.approx(0.5, rel=0.01)
    assert amounts.share_at_or_above(band_of(100.0)) == pytest.approx(0.75, rel=0.01)
    assert amounts.share_at_or_above(band_of(90.0)) == amounts.share_at_or_above(band_of(100.0))
    assert amounts.share_at_or_above(band_of(150.0)) == amounts.share_at_or_above(band_of(1000.0))
    assert amounts.share_at_or_above(band_of(0.0)) == pytest.approx(1.0)
    assert amounts.share_at_or_above(band_of(5000.0)) == 0.0


def test_a_young_category_reports_nothing() -> None:
    amounts = CategoryAmounts()
    for _ in range(MIN_COUNT - 1):
        amounts.observe(band_of(500.0))
    assert amounts.share_at_or_above(band_of(500.0)) == 0.0
    amounts.observe(band_of(500.0))
    assert amounts.share_at_or_above(band_of(500.0)) == 1.0


def test_the_profile_tells_an_amount_above_everything_from_no_profile_at_all() -> None:
    """Both share 0; only the first is evidence (the spree counts it at its rarity)."""
    profiles = CategoryProfiles()
    assert profiles.share_then_count(None, None, 50.0, count=True) is None  # no category
    for _ in range(MIN_COUNT - 1):  # each judged against the ones before it
        assert profiles.share_then_count("grocery", None, 50.0, count=True) is None  # young
    assert profiles.share_then_count("grocery", None, 50.0, count=False) is None
    assert profiles.share_then_count("grocery", None, 50.0, count=True) is None
    assert profiles.share_then_count("grocery", None, 5000.0, count=False) == 0.0
    assert profiles.share("grocery", None, 50.0) == pytest.approx(1.0, rel=0.01)
    assert profiles.share("fuel", None, 50.0) == 0.0  # the float view keeps 0 for "unknown"


def test_rarity_is_the_normal_quantile_of_the_share_bounded_by_the_memory() -> None:
    assert rarity_z(0.5) == pytest.approx(0.0, abs=1e-12)
    assert rarity_z(0.0228) == pytest.approx(2.0, abs=0.01)
    assert rarity_z(0.0) == rarity_z(1.0 / MEMORY) == pytest.approx(3.54, abs=0.01)
    assert rarity_z(1.0) == -rarity_z(0.0)


def test_old_payments_fade_over_about_the_memory() -> None:
    amounts = CategoryAmounts()
    for _ in range(MEMORY):
        amounts.observe(band_of(500.0))
    for _ in range(MEMORY):
        amounts.observe(band_of(20.0))
    # after one memory of 20s, the 500s weigh exp(-1) of what they did: e^-1 / (1 + e^-1)
    assert amounts.share_at_or_above(band_of(500.0)) == pytest.approx(0.269, abs=0.01)


def test_rescaling_the_weights_changes_no_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(categories, "_RESCALE_AT", 2.0)  # rescale every ~3,500 payments
    small, plain = CategoryAmounts(), CategoryAmounts()
    for k in range(12_000):
        amount = 30.0 + (k * 37) % 400
        small.observe(band_of(amount))
        monkeypatch.setattr(categories, "_RESCALE_AT", 1e150)
        plain.observe(band_of(amount))
        monkeypatch.setattr(categories, "_RESCALE_AT", 2.0)
    assert small.weight < plain.weight
    for amount in (30.0, 100.0, 300.0):
        assert small.share_at_or_above(band_of(amount)) == pytest.approx(
            plain.share_at_or_above(band_of(amount))
        )


def test_profiles_are_per_category_and_channel_and_bounded() -> None:
    profiles = CategoryProfiles(max_categories=3)
    for _ in range(MIN_COUNT):
        profiles.observe("travel", "online", 500.0)
        profiles.observe("travel", "pos", 50.0)
    assert profiles.share("travel", "online", 500.0) == 1.0
    assert profiles.share("travel", "pos", 500.0) == 0.0
    assert profiles.share("travel", None, 500.0) == 0.0
    assert profiles.share(None, None, 500.0) == 0.0
    profiles.observe(None, "online", 60.0)  # no category: nothing to count
    profiles.observe("fuel", None, 60.0)
    profiles.observe("travel", "online", 500.0)  # most recent again
    profiles.observe("grocery", None, 30.0)  # the fourth: "travel|pos" leaves
    assert set(profiles.categories) == {"fuel|", "travel|online", "grocery|"}


def test_a_profile_survives_a_pickle_round_trip() -> None:
    profiles = CategoryProfiles()
    for k in range(300):
        profiles.observe("travel", None, 40.0 + k)
    again = pickle.loads(pickle.dumps(profiles))
    assert again.share("travel", None, 200.0) == profiles.share("travel", None, 200.0)
