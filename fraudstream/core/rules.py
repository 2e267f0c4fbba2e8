"""Deterministic rules: cheap, explainable checks that fire regardless of the model.

Every rule has the one :class:`Rule` shape: ``check(tx, profile, features)`` with the user's
profile as it was before ``tx``, returning a typed :class:`Reason` or ``None``. An allow list
is deliberately not a rule: :class:`AllowListRule` has ``allows`` instead of ``check``, so it
can never raise an alert by mistake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from fraudstream.core.expressions import Expression
from fraudstream.core.features import FEATURE_NAMES, UserProfile
from fraudstream.core.records import Reason, ReasonKind, ReasonName, Transaction

#: The transaction's own values an expression may read; ``amount`` is the raw amount (the
#: scaled ``amount`` feature is not visible), ``hour`` (0-23) and ``weekday`` (0 = Monday)
#: are in UTC, and absent optional fields are null.
TRANSACTION_FIELDS = (
    "amount",
    "userId",
    "merchant",
    "country",
    "channel",
    "category",
    "hour",
    "weekday",
)
#: Every name an expression may use: the transaction's values and the behaviour features.
EXPRESSION_FIELDS = frozenset(TRANSACTION_FIELDS) | frozenset(FEATURE_NAMES)


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


@dataclass(frozen=True, slots=True)
class VelocityRule:
    """Fires when a user's transactions within a window reach a count or exceed a total.

    Counts the transaction itself plus the profile's remembered ones in
    ``[t - window_seconds, t]`` (the profile keeps the last ``RECENT_TRANSACTIONS`` of the past
    day): fires when that count reaches ``max_count`` or their total amount is strictly greater
    than ``max_amount`` (either limit may be left out, not both).

    >>> from datetime import datetime, timezone
    >>> rule = VelocityRule(window_seconds=60.0, max_count=3)
    >>> profile = UserProfile(recent_times=[1000.0, 1030.0], recent_amounts=[1.0, 1.0])
    >>> tx = Transaction("t3", "u1", 1.0, datetime.fromtimestamp(1050, timezone.utc))
    >>> rule.check(tx, profile, {}).to_dict()
    {'type': 'rule', 'name': 'velocity', 'count': 3, 'total': 3.0, 'windowSeconds': 60.0, \
'maxCount': 3, 'maxAmount': None}
    """

    window_seconds: float
    max_count: int | None = None
    max_amount: float | None = None
    name: str = ReasonName.VELOCITY

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the user's recent count or total is over a limit, else ``None``."""
        earlier, earlier_total = profile.recent_activity(tx.epoch_seconds, self.window_seconds)
        count, total = earlier + 1, earlier_total + tx.amount
        by_count = self.max_count is not None and count >= self.max_count
        by_amount = self.max_amount is not None and total > self.max_amount
        if not (by_count or by_amount):
            return None
        details = {
            "count": count,
            "total": round(total, 2),
            "windowSeconds": float(self.window_seconds),
            "maxCount": self.max_count,
            "maxAmount": self.max_amount,
        }
        return Reason(ReasonKind.RULE, self.name, details)


@dataclass(frozen=True, slots=True)
class ListMatch:
    """Lists of users, merchants, countries and card BIN prefixes a transaction may be on.

    A BIN prefix is matched against the start of the user id, which is the card number when
    the stream's user is the card (see ``FRAUDSTREAM_FIELD_USER_ID``). Matching is exact and
    case-sensitive.

    >>> from datetime import datetime, timezone
    >>> match = ListMatch(countries=frozenset({"KP"}), bin_prefixes=("4111",))
    >>> match.find(Transaction("t", "4111000011112222", 5.0, datetime.now(timezone.utc)))
    {'matched': 'binPrefix', 'value': '4111'}
    """

    users: frozenset[str] = frozenset()
    merchants: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    bin_prefixes: tuple[str, ...] = ()

    def find(self, tx: Transaction) -> dict[str, Any] | None:
        """Which list the transaction is on and the value that matched, else ``None``."""
        if tx.user_id in self.users:
            return {"matched": "user", "value": tx.user_id}
        if tx.merchant is not None and tx.merchant in self.merchants:
            return {"matched": "merchant", "value": tx.merchant}
        if tx.country is not None and tx.country in self.countries:
            return {"matched": "country", "value": tx.country}
        if self.bin_prefixes and tx.user_id.startswith(self.bin_prefixes):
            prefix = next(p for p in self.bin_prefixes if tx.user_id.startswith(p))
            return {"matched": "binPrefix", "value": prefix}
        return None


@dataclass(frozen=True, slots=True)
class DenyListRule:
    """Fires on every transaction on the deny list (a blocked card, merchant, country or BIN)."""

    match: ListMatch
    name: str = ReasonName.DENY_LIST

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the transaction is on the list, else ``None``."""
        found = self.match.find(tx)
        return None if found is None else Reason(ReasonKind.RULE, self.name, found)


@dataclass(frozen=True, slots=True)
class AllowListRule:
    """Vouches for transactions on the allow list; never alerts (no ``check``, so not a Rule).

    Whoever runs the rules drops every alerting reason for a transaction it allows (see
    :class:`fraudstream.core.rule_definitions.RuleSet`); the reason returned by :meth:`allows`
    is the record of why.
    """

    match: ListMatch
    name: str = ReasonName.ALLOW_LIST

    def allows(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """Why the transaction is allowed when it is on the list, else ``None``."""
        found = self.match.find(tx)
        return None if found is None else Reason(ReasonKind.RULE, self.name, found)


@dataclass(frozen=True, slots=True)
class ExpressionRule:
    """Fires when an expression over the transaction and its features is true.

    The expression may read :data:`EXPRESSION_FIELDS`; the reason lists the values it read.

    >>> from datetime import datetime, timezone
    >>> from fraudstream.core.expressions import parse
    >>> rule = ExpressionRule(parse('amount > 500 and country == "NG"', EXPRESSION_FIELDS))
    >>> when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> rule.check(Transaction("t", "u", 900.0, when, country="NG"), UserProfile(), {}).details
    {'inputs': {'amount': 900.0, 'country': 'NG'}}
    """

    expression: Expression
    name: str = ReasonName.EXPRESSION

    def check(
        self, tx: Transaction, profile: UserProfile, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the expression is true, else ``None``."""
        values = expression_values(tx, features)
        if not self.expression.matches(values):
            return None
        inputs = {name: values.get(name) for name in sorted(self.expression.fields)}
        return Reason(ReasonKind.RULE, self.name, {"inputs": inputs})


def expression_values(tx: Transaction, features: dict[str, float]) -> dict[str, Any]:
    """The values an expression reads: the features, then the transaction's own fields."""
    return {
        **features,
        "amount": tx.amount,
        "userId": tx.user_id,
        "merchant": tx.merchant,
        "country": tx.country,
        "channel": tx.channel,
        "category": tx.category,
        "hour": float(tx.timestamp.hour),
        "weekday": float(tx.timestamp.weekday()),
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
