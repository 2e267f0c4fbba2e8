"""Deterministic rules: cheap, explainable checks that fire regardless of the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudstream.schema import Transaction


@dataclass(frozen=True, slots=True)
class AmountThresholdRule:
    """Fires when a transaction's amount is strictly greater than ``threshold``.

    >>> from datetime import datetime, timezone
    >>> rule = AmountThresholdRule(10000)
    >>> tx = Transaction("t1", "u1", 10000.01, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> rule.check(tx)
    {'type': 'rule', 'name': 'amount_threshold', 'threshold': 10000.0}
    """

    threshold: float
    name: str = "amount_threshold"

    def check(self, tx: Transaction) -> dict[str, Any] | None:
        """The reason record when the rule fires, else ``None``."""
        if tx.amount > self.threshold:
            return {"type": "rule", "name": self.name, "threshold": float(self.threshold)}
        return None
