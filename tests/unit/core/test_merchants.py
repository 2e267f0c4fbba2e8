"""Merchant statistics: partition views merge into one merchant, whatever is read of it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudstream.core.merchants import MerchantStats

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
