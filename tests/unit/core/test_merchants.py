"""Merchant statistics: partition views merge into one merchant, whatever is read of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fraudstream.core.merchants import MerchantStats

DAY = 86400.0

#: One partition's labels: (fraud, event time in days) in arrival order.
labels = st.lists(st.tuples(st.booleans(), st.floats(0.0, 90.0)), max_size=12)


def view(resolved: list[tuple[bool, float]]) -> MerchantStats:
    stats = MerchantStats()
    for fraud, day in resolved:
        stats.learn_label(fraud, day * DAY)
    return stats


@given(st.lists(labels, min_size=1, max_size=8), st.floats(0.001, 0.2))
def test_the_risk_only_merge_gives_exactly_the_full_merges_30_day_risk(
    partitions: list[list[tuple[bool, float]]], global_rate: float
) -> None:
    views = [view(resolved) for resolved in partitions]
    full = MerchantStats.merge(views)
    light = MerchantStats.merge_risk_30d([v.encode() for v in views])
    assert light.risk_30d(global_rate) == full.risk_30d(global_rate)
    assert (light.t_lab, light.fraud_30d, light.resolved_30d) == (
        full.t_lab,
        full.fraud_30d,
        full.resolved_30d,
    )


def test_a_merchant_with_frauds_on_one_partition_is_riskier_everywhere_merged() -> None:
    quiet = view([(False, day) for day in range(10)])
    risky = view([(True, 9.0), (True, 9.5)])
    merged = MerchantStats.merge([quiet, risky])
    assert merged.risk_30d(0.01) > quiet.risk_30d(0.01)
    assert merged.resolved_30d > quiet.resolved_30d
