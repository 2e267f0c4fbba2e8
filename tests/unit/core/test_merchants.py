"""Merchant statistics: partition views merge into one merchant, whatever is read of it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudstream.core.merchants import CARD_WINDOW, FRAUD_CARDS, MerchantStats

DAY = 86400.0

#: One partition's labels: (fraud, event time in days), in any order.
labels = st.lists(st.tuples(st.booleans(), st.floats(0.0, 90.0)), max_size=12)
#: One partition's traffic: (amount, event time in days).
traffic = st.lists(st.tuples(st.floats(0.0, 5000.0), st.floats(0.0, 90.0)), max_size=12)


def view(seen: list[tuple[float, float]], resolved: list[tuple[bool, float]]) -> MerchantStats:
    """One partition's view: its traffic in time order, then its labels as they came."""
    stats = MerchantStats()
    for amount, day in sorted(seen, key=lambda item: item[1]):
        stats.observe(amount, day * DAY)
    for fraud, day in resolved:
        stats.learn_label(fraud, day * DAY)
    return stats


@given(st.lists(st.tuples(traffic, labels), min_size=1, max_size=8))
def test_merged_views_count_as_one_view_that_saw_every_partitions_traffic_and_labels(
    partitions: list[tuple[list[tuple[float, float]], list[tuple[bool, float]]]],
) -> None:
    merged = MerchantStats.merge([view(seen, resolved).encode() for seen, resolved in partitions])
    whole = view(
        [item for seen, _ in partitions for item in seen],
        [item for _, resolved in partitions for item in resolved],
    )
    assert merged.seen == whole.seen
    for name in ("count_1d", "count_30d", "fraud_1d", "fraud_7d", "fraud_30d", "resolved_30d"):
        assert getattr(merged, name) == pytest.approx(getattr(whole, name), rel=1e-9, abs=1e-9)


@given(st.lists(st.tuples(traffic, labels), min_size=1, max_size=8), st.floats(0.001, 0.2))
def test_the_risk_only_merge_gives_exactly_the_full_merges_30_day_risk(
    partitions: list[tuple[list[tuple[float, float]], list[tuple[bool, float]]]],
    global_rate: float,
) -> None:
    stored = [view(seen, resolved).encode() for seen, resolved in partitions]
    full = MerchantStats.merge(stored)
    light = MerchantStats.merge_risk_30d(stored)
    assert light.risk_30d(global_rate) == full.risk_30d(global_rate)
    assert (light.t_lab, light.fraud_30d, light.resolved_30d) == (
        full.t_lab,
        full.fraud_30d,
        full.resolved_30d,
    )


def test_a_merchant_with_frauds_on_one_partition_is_riskier_merged() -> None:
    quiet = view([], [(False, float(day)) for day in range(10)])
    risky = view([], [(True, 9.0), (True, 9.5)])
    merged = MerchantStats.merge([quiet.encode(), risky.encode()])
    assert merged.risk_30d(0.01) > quiet.risk_30d(0.01)
    assert merged.resolved_30d > quiet.resolved_30d


def test_a_cards_second_fraud_within_the_window_is_not_counted_again() -> None:
    stats = MerchantStats()
    stats.learn_label(True, 0.0, card=1)
    stats.learn_label(True, 3600.0, card=1)  # the same card an hour later: no new evidence
    stats.learn_label(True, 7200.0, card=2)  # another card: a second compromised card here
    assert (stats.fraud_30d, stats.resolved_30d) == pytest.approx((2.0, 2.0), rel=1e-2)
    stats.learn_label(True, 3600.0 + CARD_WINDOW + 1.0, card=1)  # long after its last fraud
    assert stats.fraud_30d > 2.5


def test_without_a_card_every_fraud_counts() -> None:
    stats = MerchantStats()
    for minute in range(3):
        stats.learn_label(True, minute * 60.0)
    assert stats.fraud_30d == pytest.approx(3.0, rel=1e-3)


def test_a_correction_undoes_the_legit_even_when_the_card_was_counted_already() -> None:
    """A fraud label for a transaction learned as legit: the legit goes, the fraud of a card
    counted here already adds nothing."""
    stats = MerchantStats()
    stats.learn_label(True, 0.0, card=1)
    stats.learn_label(False, 60.0)  # matured as legit
    stats.learn_label(False, 60.0, weight=-1.0)
    stats.learn_label(True, 60.0, card=1)
    assert (stats.fraud_30d, stats.resolved_30d) == pytest.approx((1.0, 1.0), rel=1e-3)


def test_the_newest_cards_are_remembered_and_travel_with_the_encoding() -> None:
    stats = MerchantStats()
    for card in range(FRAUD_CARDS + 2):
        stats.learn_label(True, card * 60.0, card=card)
    assert [card for card, _ in stats.fraud_cards] == list(range(2, FRAUD_CARDS + 2))
    assert MerchantStats.decode(stats.encode()) == stats
    stats.learn_label(True, 600.0, card=0)  # forgotten: counted again
    assert stats.fraud_30d == pytest.approx(FRAUD_CARDS + 3, rel=1e-3)


def test_an_encoding_without_cards_is_the_old_fifteen_doubles_and_merges_with_one_with_cards() -> (
    None
):
    plain, carded = MerchantStats(), MerchantStats()
    plain.learn_label(False, 0.0)
    carded.learn_label(True, 60.0, card=9)
    assert len(plain.encode()) == 120 and MerchantStats.decode(plain.encode()) == plain
    assert len(carded.encode()) > 120
    merged = MerchantStats.merge([plain.encode(), carded.encode()])
    assert (merged.fraud_30d, merged.fraud_cards) == (pytest.approx(1.0), ())
    alone = MerchantStats.merge([carded.encode()])
    assert alone.fraud_30d == 1.0
