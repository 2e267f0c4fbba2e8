"""Deterministic rules: cheap, explainable checks that fire regardless of the model.

Every rule has the one :class:`Rule` shape: ``check(tx, profile, features)`` with the user's
profile as it was before ``tx``, returning a typed :class:`Reason` or ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from fraudstream.core.features import UserProfile
from fraudstream.core.records import Reason, ReasonKind, ReasonName, Transaction


class Rule(Protocol):
    """A deterministic check on one transaction against its user's history."""

    @property
    def name(self) -> str:
        """The reason name the rule's alerts carry."""

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the rule fires, else ``None``; ``profile`` is before ``tx``."""


@dataclass(frozen=True, slots=True)
class AmountThresholdRule:
    """Fires when a transaction's amount is strictly greater than ``threshold``.

    >>> from datetime import datetime, timezone
    >>> rule = AmountThresholdRule(10000)
    >>> tx = Transaction("t1", "u1", 10000.01, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> rule.check(tx, UserProfile(), {}).to_dict()
    {'type': 'rule', 'name': 'amount_threshold', 'threshold': 10000.0}
    """

    threshold: float
    name: ReasonName = ReasonName.AMOUNT_THRESHOLD

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the amount is over the threshold, else ``None``."""
        if tx.amount > self.threshold:
            return Reason(ReasonKind.RULE, self.name, {"threshold": float(self.threshold)})
        return None


@dataclass(frozen=True, slots=True)
class HabitSpikeRule:
    """Fires when an amount lies far above the user's own habit.

    The z-score is :meth:`UserProfile.log_amount_zscore` (log amounts, spread shrunk towards a
    prior while history is short); the rule needs ``min_history`` earlier transactions.

    >>> from datetime import datetime, timezone
    >>> from fraudstream.core.features import FeatureScales, update_profile
    >>> profile = UserProfile()
    >>> for i, amount in enumerate([20.0, 25.0, 18.0, 22.0]):
    ...     update_profile(profile, amount, float(i), FeatureScales(), 0, i)
    >>> rule = HabitSpikeRule(zscore_threshold=4.5, min_history=3)
    >>> tx = Transaction("t1", "u1", 900.0, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> rule.check(tx, profile, {}).to_dict()["name"]
    'habit_spike'
    """

    zscore_threshold: float
    min_history: int
    name: ReasonName = ReasonName.HABIT_SPIKE

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the amount is far above the user's habit, else ``None``."""
        z = _zscore_at_least(profile, tx.amount, self.min_history, self.zscore_threshold)
        if z is None:
            return None
        details = {
            "zscore": round(z, 2),
            "threshold": float(self.zscore_threshold),
            "habitMedian": round(math.expm1(profile.mean_log), 2),
        }
        return Reason(ReasonKind.RULE, self.name, details)


@dataclass(frozen=True, slots=True)
class UnfamiliarPlaceRule:
    """Fires on a payment at a new merchant from a new country with an unusual amount.

    The account-takeover pattern: each part alone is ordinary (travel, a new shop, a bigger
    purchase), together they are rare. Needs the user to have known places, and
    ``min_history`` transactions for the amount's z-score.
    """

    zscore_threshold: float
    min_history: int
    name: ReasonName = ReasonName.UNFAMILIAR_PLACE

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """The reason for a new merchant in a new country at an unusual amount, else ``None``."""
        if not (features["new_country"] and features["new_merchant"]):
            return None
        z = _zscore_at_least(profile, tx.amount, self.min_history, self.zscore_threshold)
        if z is None:
            return None
        details = {
            "newCountry": tx.country,
            "newMerchant": tx.merchant,
            "zscore": round(z, 2),
            "threshold": float(self.zscore_threshold),
        }
        return Reason(ReasonKind.RULE, self.name, details)


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
