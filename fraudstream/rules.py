"""Deterministic rules: cheap, explainable checks that fire regardless of the model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fraudstream.features import COUNTRY_FIELD, MERCHANT_FIELD, UserProfile
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


@dataclass(frozen=True, slots=True)
class HabitSpikeRule:
    """Fires when an amount lies far above the user's own habit.

    The z-score is :meth:`UserProfile.log_amount_zscore` (log amounts, spread shrunk towards a
    prior while history is short); the rule needs ``min_history`` earlier transactions.

    >>> from datetime import datetime, timezone
    >>> from fraudstream.features import FeatureScales, update_profile
    >>> profile = UserProfile()
    >>> for i, amount in enumerate([20.0, 25.0, 18.0, 22.0]):
    ...     update_profile(profile, amount, float(i), FeatureScales(), 0, i)
    >>> rule = HabitSpikeRule(zscore_threshold=4.5, min_history=3)
    >>> tx = Transaction("t1", "u1", 900.0, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> rule.check(tx, profile)["name"]
    'habit_spike'
    """

    zscore_threshold: float
    min_history: int
    name: str = "habit_spike"

    def check(self, tx: Transaction, profile: UserProfile) -> dict[str, Any] | None:
        """The reason record when the rule fires, else ``None``; ``profile`` is before ``tx``."""
        z = _zscore_at_least(profile, tx.amount, self.min_history, self.zscore_threshold)
        if z is None:
            return None
        return {
            "type": "rule",
            "name": self.name,
            "zscore": round(z, 2),
            "threshold": float(self.zscore_threshold),
            "habitMedian": round(math.expm1(profile.mean_log), 2),
        }


@dataclass(frozen=True, slots=True)
class UnfamiliarPlaceRule:
    """Fires on a payment at a new merchant from a new country with an unusual amount.

    The account-takeover pattern: each part alone is ordinary (travel, a new shop, a bigger
    purchase), together they are rare. Needs the user to have known places, and
    ``min_history`` transactions for the amount's z-score.
    """

    zscore_threshold: float
    min_history: int
    name: str = "unfamiliar_place"

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> dict[str, Any] | None:
        """The reason record when the rule fires, else ``None``; ``profile`` is before ``tx``."""
        if not (features["new_country"] and features["new_merchant"]):
            return None
        z = _zscore_at_least(profile, tx.amount, self.min_history, self.zscore_threshold)
        if z is None:
            return None
        return {
            "type": "rule",
            "name": self.name,
            "newCountry": tx.extra.get(COUNTRY_FIELD),
            "newMerchant": tx.extra.get(MERCHANT_FIELD),
            "zscore": round(z, 2),
            "threshold": float(self.zscore_threshold),
        }


def _zscore_at_least(
    profile: UserProfile, amount: float, min_history: int, threshold: float
) -> float | None:
    """The amount's z-score against the user's habit when it reaches ``threshold``, else None.

    ``None`` too while the user has fewer than ``min_history`` transactions to judge by.
    """
    if profile.count < min_history:
        return None
    z = profile.log_amount_zscore(amount)
    return z if z is not None and z >= threshold else None
