"""The amount rule fires strictly above its threshold."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fraudstream.rules import AmountThresholdRule
from fraudstream.schema import Transaction


def tx(amount: float) -> Transaction:
    return Transaction("t", "u", amount, datetime(2024, 12, 4, tzinfo=timezone.utc))


@pytest.mark.parametrize(
    ("amount", "fires"), [(10000, False), (10000.01, True), (9999.99, False), (0, False)]
)
def test_rule_boundary_is_strictly_greater(amount: float, fires: bool) -> None:
    assert (AmountThresholdRule(10000).check(tx(amount)) is not None) is fires


def test_reason_names_the_rule_and_its_threshold() -> None:
    reason = AmountThresholdRule(500).check(tx(501))
    assert reason == {"type": "rule", "name": "amount_threshold", "threshold": 500.0}
