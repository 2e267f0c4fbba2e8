"""Deterministic rules: cheap, explainable checks that fire regardless of the model.

Every rule has the one :class:`Rule` shape: ``level`` says how strongly it holds (mapped to
[0, 1] with its alert line at 0.5, so the detector can rank by it) and ``check`` returns the
typed :class:`Reason` when it fires; both see the user's history as it was before ``tx``. An
allow list is deliberately not a rule: :class:`AllowListRule` has ``allows`` instead of
``check`` and ``level``, so it can never raise an alert by mistake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from fraudstream.core.behaviour import (
    ALERT_MEMORY,
    BEHAVIOUR_FEATURES,
    CATEGORY_HABIT_FEATURES,
    SEQUENCE_FEATURES,
    SPREE_MIN_AGE,
    SPREE_SLACK,
    UserHistory,
)
from fraudstream.core.expressions import Expression
from fraudstream.core.records import Reason, ReasonKind, ReasonName, Transaction

#: The transaction's own values an expression may read; ``amount`` is the raw amount, ``hour``
#: (0-23) and ``weekday`` (0 = Monday) are in UTC, and absent optional fields are null.
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
SQRT2 = math.sqrt(2.0)
#: After the user's newest suspicious payment (an alert is one; see
#: :meth:`UserDeviationRule.suspects`), the deviation rule's lowered line holds for
#: EPISODE_HOLD_FACTOR times the alert episode's span so far (first to newest alert), at least
#: EPISODE_HOLD_MIN seconds, and always within ``alert_memory`` of the episode's start. Fraud
#: that has gone on for days goes on (the handbook's compromised customers: a third of 14 days'
#: payments); a burst of minutes that ended is over, and the owner's own tail payments in the
#: following days are what the lowered line then catches (the persona stream's: 32 of its 33
#: alerts from the lowered line more than 2 days after the last alert were false). Three days
#: rather than two: the handbook's seed 7 had second alerts of an episode 2-3 days after its
#: first (11 of its compromised-customer frauds lost at two days, 5 at three).
EPISODE_HOLD_FACTOR = 6.0
EPISODE_HOLD_MIN = 3 * 86400.0
#: What the category profile says of the amount (:mod:`fraudstream.core.categories`).
CATEGORY_FEATURES = ("category_share", "category_common")
#: Every name an expression may use: the transaction's values and the behaviour features.
EXPRESSION_FIELDS = (
    frozenset(TRANSACTION_FIELDS)
    | frozenset(BEHAVIOUR_FEATURES)
    | frozenset(SEQUENCE_FEATURES)
    | frozenset(CATEGORY_HABIT_FEATURES)
    | frozenset(CATEGORY_FEATURES)
)


class Rule(Protocol):
    """A deterministic check on one transaction against its user's history."""

    @property
    def name(self) -> str:
        """The reason name the rule's alerts carry."""

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """How strongly the rule holds, in [0, 1]; it fires at 0.5 and above."""

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the rule fires, else ``None``; ``history`` is before ``tx``."""


def beyond(value: float, line: float) -> float:
    """Smooth step in [0, 1] that crosses 0.5 exactly at ``line`` (z units: 1 -> 0.88).

    >>> beyond(4.5, 4.5), round(beyond(5.5, 4.5), 2), round(beyond(3.5, 4.5), 2)
    (0.5, 0.88, 0.12)
    """
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, 2.0 * (value - line)))))


#: The amount rule's line unless the settings give one: 10,000 of the stream's amount unit
#: (:mod:`fraudstream.core.units`), so 10,000 on a stream whose typical payment is tens of its
#: unit and 1,000,000 on the same stream in cents (where 10,000 would be every payment over
#: 100: Sparkov-like in cents, precision 0.02).
DEFAULT_AMOUNT_THRESHOLD = 10000.0


@dataclass(frozen=True, slots=True)
class AmountThresholdRule:
    """Fires when a transaction's amount is strictly greater than ``threshold``.

    ``in_amount_units``: the threshold counts in the detector's amount unit (the
    ``amount_unit`` feature) rather than in the stream's raw amounts; the reason gives the line
    in raw amounts either way.

    >>> from datetime import datetime, timezone
    >>> rule = AmountThresholdRule(10000)
    >>> tx = Transaction("t1", "u1", 10000.01, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> rule.check(tx, UserHistory(), {}).to_dict()
    {'type': 'rule', 'name': 'amount_threshold', 'threshold': 10000.0}
    >>> cents = AmountThresholdRule(10000, in_amount_units=True)
    >>> cents.check(tx, UserHistory(), {"amount_unit": 100.0}) is None
    True
    """

    threshold: float
    name: ReasonName = ReasonName.AMOUNT_THRESHOLD
    in_amount_units: bool = False

    @classmethod
    def configured(cls, threshold: float | None) -> AmountThresholdRule:
        """The rule for ``FRAUDSTREAM_AMOUNT_THRESHOLD``: a set line in the stream's amounts
        (what the user wrote), unset :data:`DEFAULT_AMOUNT_THRESHOLD` of the amount unit.

        >>> AmountThresholdRule.configured(None).in_amount_units
        True
        >>> AmountThresholdRule.configured(500.0)
        AmountThresholdRule(threshold=500.0, name=<ReasonName.AMOUNT_THRESHOLD: \
'amount_threshold'>, in_amount_units=False)
        """
        if threshold is None:
            return cls(DEFAULT_AMOUNT_THRESHOLD, in_amount_units=True)
        return cls(threshold)

    def line(self, features: dict[str, float]) -> float:
        """The threshold in the stream's raw amounts."""
        if self.in_amount_units:
            return self.threshold * features.get("amount_unit", 1.0)
        return self.threshold

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """1 over the threshold, else 0 (a hard line, nothing to rank)."""
        return 1.0 if tx.amount > self.line(features) else 0.0

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the amount is over the threshold, else ``None``."""
        line = self.line(features)
        if tx.amount > line:
            return Reason(ReasonKind.RULE, self.name, {"threshold": float(line)})
        return None


@dataclass(frozen=True, slots=True)
class HabitSpikeRule:
    """Fires when an amount lies far above the user's own habit on the log scale.

    The z-score is the ``z_habit`` feature (log amounts, spread shrunk towards a prior while
    history is short); the rule needs ``min_history`` earlier transactions, and stays silent on
    an amount common in a category new to the user (``category_common``).

    >>> from datetime import datetime, timezone
    >>> from fraudstream.core.behaviour import BehaviourFeatures
    >>> model, history = BehaviourFeatures(), UserHistory()
    >>> when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> for i, amount in enumerate([20.0, 25.0, 18.0, 22.0]):
    ...     model.update(history, Transaction(f"t{i}", "u1", amount, when), 0, i, False)
    >>> tx = Transaction("t9", "u1", 900.0, when)
    >>> HabitSpikeRule(4.5, 3).check(tx, history, model.features(history, tx)).to_dict()["name"]
    'habit_spike'
    """

    zscore_threshold: float
    min_history: int
    name: ReasonName = ReasonName.HABIT_SPIKE

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """``z_habit`` against the threshold, once the user has enough history."""
        if history.n < self.min_history or features.get("category_common", 0.0):
            return 0.0
        return beyond(features["z_habit"], self.zscore_threshold)

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the amount is far above the user's habit, else ``None``."""
        if self.level(tx, history, features) < 0.5:
            return None
        details = {
            "zscore": round(features["z_habit"], 2),
            "threshold": float(self.zscore_threshold),
            "habitMedian": round(math.expm1(history.mu_log), 2),
        }
        return Reason(ReasonKind.RULE, self.name, details)


@dataclass(frozen=True, slots=True)
class UnfamiliarPlaceRule:
    """Fires on a payment at a new merchant from a new country with an unusual amount.

    The account-takeover pattern: each part alone is ordinary (travel, a new shop, a bigger
    purchase), together they are rare. Needs the user to have known places, and
    ``min_history`` transactions for the amount's ``z_habit``. Where the transaction has
    coordinates and the user known places, it must also lie at least ``distance_ratio`` times
    the user's usual distance from their centre: a new shop across a border near home is not
    an unfamiliar place (on the persona stream, 26 of the rule's 48 lone alerts were such).

    >>> from datetime import datetime, timezone
    >>> rule = UnfamiliarPlaceRule(2.0, 3)
    >>> history = UserHistory(n=10, places=10)
    >>> unusual = {"new_country": 1.0, "new_merchant": 1.0, "z_habit": 3.0}
    >>> when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> abroad = Transaction("t", "u", 90.0, when, country="FR", latitude=48.9, longitude=2.4)
    >>> rule.level(abroad, history, {**unusual, "distance": math.log1p(1.5)})
    0.0
    >>> rule.check(abroad, history, {**unusual, "distance": math.log1p(8.0)}).details
    {'newCountry': 'FR', 'newMerchant': None, 'zscore': 3.0, 'threshold': 2.0, 'distanceRatio': 8.0}
    """

    zscore_threshold: float
    min_history: int
    distance_ratio: float = 3.0
    name: ReasonName = ReasonName.UNFAMILIAR_PLACE

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """1 for a new merchant in a new country at an unusual amount (far away, where
        coordinates tell), else 0."""
        fires = (
            history.n >= self.min_history
            and features["new_country"] > 0.0
            and features["new_merchant"] > 0.0
            and features["z_habit"] >= self.zscore_threshold
        )
        if fires and history.locates(tx):
            fires = features["distance"] >= math.log1p(self.distance_ratio)
        return 1.0 if fires else 0.0

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """The reason for a new merchant in a new country at an unusual amount, else ``None``."""
        if self.level(tx, history, features) < 0.5:
            return None
        details: dict[str, Any] = {
            "newCountry": tx.country,
            "newMerchant": tx.merchant,
            "zscore": round(features["z_habit"], 2),
            "threshold": float(self.zscore_threshold),
        }
        if history.locates(tx):
            details["distanceRatio"] = round(math.expm1(features["distance"]), 1)
        return Reason(ReasonKind.RULE, self.name, details)


def burst_zscore(features: dict[str, float], amount_known: bool) -> float:
    """The burst statistic, in normal-equivalent z units against the user's own rate.

    The largest of: the Poisson tail of the last minute's and the last hour's count against the
    user's own Palm mean, and Stouffer combinations ``(rate_z + |z|) / sqrt(2)`` of a quick
    repeat with an amount far from habit: within the minute in either direction, within the
    hour only below habit (card testing: tiny amounts seconds or minutes apart; a larger
    purchase within the hour of another is how people shop, and the amount rules judge it).
    The amount counts only once the user's amounts are ``amount_known``.

    >>> burst_zscore({"rate_z_1m": 3.0, "rate_z_1h": 1.0, "z": -3.0}, amount_known=True)
    4.242640687119285
    >>> minutes_apart = {"rate_z_1m": 0.0, "rate_z_1h": 2.6, "z": -4.0}
    >>> round(burst_zscore(minutes_apart, True), 2), burst_zscore({**minutes_apart, "z": 4.0}, True)
    (4.67, 2.6)
    """
    rate, rate_1h = features["rate_z_1m"], features["rate_z_1h"]
    z = features["z"] if amount_known else 0.0
    stouffer = (rate + abs(z)) / SQRT2 if rate > 0.0 else 0.0
    below = (rate_1h - z) / SQRT2 if rate_1h > 0.0 and z < 0.0 else 0.0
    return max(rate, rate_1h, stouffer, below)


@dataclass(frozen=True, slots=True)
class UserDeviationRule:
    """Fires when a transaction deviates far from the user's own behaviour.

    Either the blended amount z (raw or log scale, whichever the user's amounts follow) is at
    least ``zscore_threshold`` once the user has ``min_history`` transactions (not for an
    amount common in a category new to the user: ``category_common``), or
    ``zscore_after_alert`` within ``alert_memory`` seconds of the first alert of the user's
    current episode (a card that just had fraud: smaller deviations count) and within
    :data:`EPISODE_HOLD_FACTOR` times the episode's span (at least :data:`EPISODE_HOLD_MIN`)
    of the user's newest suspicious payment (a burst that ended is over); or the
    :func:`burst_zscore` is at least ``burst_threshold``; or a **spree**: the ``spree`` CUSUM
    of the user's above-habit amounts reaches ``spree_threshold`` on a payment above habit
    (``spree_z``, its ``z`` lifted where its amount is rare in its category, over
    ``SPREE_SLACK``) that takes the day's spending (``spend_1d``, log ratio to what
    the user's own rate and typical amount predict) to ``spree_day_spend``, once the user has
    been seen for ``SPREE_MIN_AGE``. A run of payments each only moderately large (z ~2) that
    together spend far more than the user does in a day. An episode is alerts each within
    ``alert_memory`` of the one before (``UserHistory.t_episode``): counting from its newest
    alert instead, a user the amount model misjudges kept the lowered line as long as it
    misjudged them, each false alert extending it.

    >>> from datetime import datetime, timezone
    >>> rule, day = UserDeviationRule(), 86400.0
    >>> tx = Transaction("t", "u", 70.0, datetime.fromtimestamp(20 * day, timezone.utc))
    >>> rule.amount_line(tx, UserHistory(t_alert=19 * day, t_episode=10 * day))
    3.0
    >>> rule.amount_line(tx, UserHistory(t_alert=19 * day, t_episode=2 * day))
    4.5
    >>> rule.amount_line(tx, UserHistory(t_alert=16 * day, t_episode=16 * day))  # a burst
    4.5
    """

    zscore_threshold: float = 4.5
    min_history: int = 5
    zscore_after_alert: float = 3.0
    alert_memory: float = ALERT_MEMORY
    burst_threshold: float = 4.0
    spree_threshold: float = 3.0
    spree_day_spend: float = 1.5
    name: ReasonName = ReasonName.USER_DEVIATION

    def amount_line(self, tx: Transaction, history: UserHistory) -> float:
        """The amount z-score the rule needs for this user now."""
        start = self.episode_start(tx, history)
        if start:
            newest = max(history.t_alert, history.t_suspect)
            hold = max(EPISODE_HOLD_MIN, EPISODE_HOLD_FACTOR * (history.t_alert - start))
            if tx.epoch_seconds - newest <= hold:
                return self.zscore_after_alert
        return self.zscore_threshold

    def episode_start(self, tx: Transaction, history: UserHistory) -> float:
        """When the user's alert episode began, if its memory still covers ``tx``; else 0."""
        start = history.t_episode or history.t_alert  # a history of before episodes: its newest
        return start if start and tx.epoch_seconds - start <= self.alert_memory else 0.0

    def suspects(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> bool:
        """Whether the amount is over the lowered line of an episode the user is still in, even
        past its hold: not alerted then, but kept out of the user's history, and the hold runs
        on from it (a slow fraud's next payment is alerted, an owner's lone large one is not).

        >>> from datetime import datetime, timezone
        >>> rule, day = UserDeviationRule(), 86400.0
        >>> tx = Transaction("t", "u", 70.0, datetime.fromtimestamp(20 * day, timezone.utc))
        >>> burst = UserHistory(n=9, t_alert=15 * day, t_episode=15 * day)
        >>> rule.amount_line(tx, burst), rule.suspects(tx, burst, {"z": 3.2})
        (4.5, True)
        """
        over = self.judges_amount(history, features) and features["z"] >= self.zscore_after_alert
        return over and bool(self.episode_start(tx, history))

    def judges_amount(self, history: UserHistory, features: dict[str, float]) -> bool:
        """Whether the amount part judges this payment: enough history, and not an amount
        common in a category new to the user (``category_common``)."""
        return history.n >= self.min_history and not features.get("category_common", 0.0)

    def parts(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> tuple[float, float, float]:
        """Levels of the amount, burst and spree parts (each 0.5 at its line; the spree's
        where the last of its three conditions reaches its line)."""
        known = history.n >= self.min_history
        judged = self.judges_amount(history, features)
        amount = beyond(features["z"], self.amount_line(tx, history)) if judged else 0.0
        burst = beyond(burst_zscore(features, known), self.burst_threshold)
        settled = tx.epoch_seconds - history.t_first >= SPREE_MIN_AGE
        spree = (
            min(
                beyond(features["spree"], self.spree_threshold),
                beyond(features["spend_1d"], self.spree_day_spend),
                beyond(features["spree_z"], SPREE_SLACK),
            )
            if known and settled
            else 0.0
        )
        return amount, burst, spree

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """The strongest of the amount, burst and spree parts."""
        return max(self.parts(tx, history, features))

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """The reason, naming the part that fired and its z-score, else ``None``."""
        amount, burst, spree = self.parts(tx, history, features)
        if max(amount, burst, spree) < 0.5:
            return None
        details: dict[str, Any]
        if amount >= max(burst, spree):
            details = {
                "part": "amount",
                "zscore": round(features["z"], 2),
                "threshold": float(self.amount_line(tx, history)),
                "rawScaleWeight": round(features["w_raw"], 2),
            }
        elif burst >= spree:
            known = history.n >= self.min_history
            details = {
                "part": "burst",
                "zscore": round(burst_zscore(features, known), 2),
                "threshold": float(self.burst_threshold),
            }
        else:
            details = {
                "part": "spree",
                "spree": round(features["spree"], 2),
                "threshold": float(self.spree_threshold),
                "zscore": round(features["spree_z"], 2),
                "daySpend": round(features["spend_1d"], 2),
                "daySpendThreshold": float(self.spree_day_spend),
            }
        return Reason(ReasonKind.RULE, self.name, details)


@dataclass(frozen=True, slots=True)
class VelocityRule:
    """Fires when a user's transactions within a window reach a count or exceed a total.

    Counts the transaction itself plus the history's remembered ones in
    ``[t - window_seconds, t]`` (the history keeps the last ``RECENT_TRANSACTIONS`` of the past
    day, see :meth:`UserHistory.recent_activity`): fires when that count reaches ``max_count``
    or their total amount is strictly greater than ``max_amount`` (either limit may be left
    out, not both). A hard line: ``level`` is 1 when it fires, else 0.

    >>> from datetime import datetime, timezone
    >>> rule = VelocityRule(window_seconds=60.0, max_count=3)
    >>> history = UserHistory(recent_times=[1000.0, 1030.0], recent_amounts=[1.0, 1.0])
    >>> tx = Transaction("t3", "u1", 1.0, datetime.fromtimestamp(1050, timezone.utc))
    >>> rule.check(tx, history, {}).to_dict()
    {'type': 'rule', 'name': 'velocity', 'count': 3, 'total': 3.0, 'windowSeconds': 60.0, \
'maxCount': 3, 'maxAmount': None}
    """

    window_seconds: float
    max_count: int | None = None
    max_amount: float | None = None
    name: ReasonName = ReasonName.VELOCITY

    def activity(self, tx: Transaction, history: UserHistory) -> tuple[int, float, bool]:
        """Count and total in the window, this transaction included, and whether it fires."""
        earlier, earlier_total = history.recent_activity(tx.epoch_seconds, self.window_seconds)
        count, total = earlier + 1, earlier_total + tx.amount
        by_count = self.max_count is not None and count >= self.max_count
        by_amount = self.max_amount is not None and total > self.max_amount
        return count, total, by_count or by_amount

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """1 when the count or the total is over its limit, else 0."""
        return 1.0 if self.activity(tx, history)[2] else 0.0

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """The reason when the user's recent count or total is over a limit, else ``None``."""
        count, total, fires = self.activity(tx, history)
        if not fires:
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
    name: ReasonName = ReasonName.DENY_LIST

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """1 for a transaction on the list, else 0."""
        return 0.0 if self.match.find(tx) is None else 1.0

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
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
    name: ReasonName = ReasonName.ALLOW_LIST

    def allows(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
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
    >>> rule.check(Transaction("t", "u", 900.0, when, country="NG"), UserHistory(), {}).details
    {'inputs': {'amount': 900.0, 'country': 'NG'}}
    """

    expression: Expression
    name: ReasonName = ReasonName.EXPRESSION

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """1 when the expression is true, else 0."""
        return 1.0 if self.expression.matches(expression_values(tx, features)) else 0.0

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
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


# --- rules built from definitions, and their verdict on one transaction -------------------------
# (core.rule_definitions validates definitions and keeps their versions; what runs for every
# transaction lives here, with the rules, and is compiled with them: fraudstream.native)


@dataclass(frozen=True, slots=True)
class DefinedRule:
    """A rule built from a definition: the core check, its reasons named by the rule's id."""

    rule_id: str
    version: int
    inner: Rule

    @property
    def name(self) -> str:
        """The reason name: the rule's id."""
        return self.rule_id

    def level(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> float:
        """The inner rule's level."""
        return self.inner.level(tx, history, features)

    def check(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """The inner rule's reason, renamed and stamped with the rule's id and version."""
        reason = self.inner.check(tx, history, features)
        return None if reason is None else _stamped(reason, self.rule_id, self.version)


@dataclass(frozen=True, slots=True)
class DefinedAllowList:
    """An allow list built from a definition; like :class:`AllowListRule`, it never alerts."""

    rule_id: str
    version: int
    inner: AllowListRule

    @property
    def name(self) -> str:
        """The reason name: the rule's id."""
        return self.rule_id

    def allows(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> Reason | None:
        """Why the transaction is allowed (stamped with id and version), else ``None``."""
        reason = self.inner.allows(tx, history, features)
        return None if reason is None else _stamped(reason, self.rule_id, self.version)


def _stamped(reason: Reason, rule_id: str, version: int) -> Reason:
    details = {**reason.details, "rule": rule_id, "version": version}
    return Reason(reason.kind, rule_id, details)


@dataclass(frozen=True, slots=True, init=False)
class RuleOutcome:
    """The rules' verdict on one transaction.

    ``reasons`` alert; ``shadow`` are shadow rules' hits, reported and never alerting;
    ``allowed_by`` are active allow lists that matched, in which case ``reasons`` is empty,
    ``suppressed`` holds what would have alerted, and model reasons must be dropped too.
    """

    reasons: tuple[Reason, ...] = ()
    shadow: tuple[Reason, ...] = ()
    allowed_by: tuple[Reason, ...] = ()
    suppressed: tuple[Reason, ...] = ()
    #: Every active rule's level by rule id (0.5 at its alert line), for ranking and the
    #: classifier; shadow rules never appear here.
    levels: dict[str, float] = field(default_factory=dict)

    def __init__(
        self,
        reasons: tuple[Reason, ...] = (),
        shadow: tuple[Reason, ...] = (),
        allowed_by: tuple[Reason, ...] = (),
        suppressed: tuple[Reason, ...] = (),
        levels: dict[str, float] | None = None,
    ) -> None:
        # written out so that mypyc compiles it (see fraudstream.native)
        object.__setattr__(self, "reasons", reasons)
        object.__setattr__(self, "shadow", shadow)
        object.__setattr__(self, "allowed_by", allowed_by)
        object.__setattr__(self, "suppressed", suppressed)
        object.__setattr__(self, "levels", {} if levels is None else levels)

    @property
    def allowed(self) -> bool:
        """True when an active allow list vouches for the transaction: no alert at all."""
        return bool(self.allowed_by)


class ArrangedRules:
    """The installed rules sorted by mode, and their verdict on one transaction.

    Built by :class:`fraudstream.core.rule_definitions.RuleSet` whenever a definition changes,
    so evaluation does no bookkeeping.
    """

    def __init__(
        self,
        active: tuple[DefinedRule, ...],
        shadow: tuple[DefinedRule | DefinedAllowList, ...],
        allow: tuple[DefinedAllowList, ...],
    ) -> None:
        self.active = active
        self.shadow = shadow
        self.allow = allow
        self.suspecting = tuple(
            rule.inner for rule in active if isinstance(rule.inner, UserDeviationRule)
        )

    def evaluate(
        self, tx: Transaction, history: UserHistory, features: dict[str, float]
    ) -> RuleOutcome:
        """Run active and shadow rules on ``tx``; ``history`` is the user's before ``tx``.

        An active rule's reason is asked for only when its level reaches 0.5 (its alert line).
        """
        levels: dict[str, float] = {}
        alerting: list[Reason] = []
        for rule in self.active:
            level = levels[rule.rule_id] = rule.level(tx, history, features)
            if level >= 0.5 and (reason := rule.check(tx, history, features)) is not None:
                alerting.append(reason)
        shadow: list[Reason] = []
        for trial in self.shadow:
            if isinstance(trial, DefinedAllowList):
                hit = trial.allows(tx, history, features)
            else:
                hit = trial.check(tx, history, features)
            if hit is not None:
                shadow.append(hit)
        allowed = [
            r for allow in self.allow if (r := allow.allows(tx, history, features)) is not None
        ]
        if allowed:
            return RuleOutcome((), tuple(shadow), tuple(allowed), tuple(alerting), levels)
        return RuleOutcome(tuple(alerting), tuple(shadow), levels=levels)

    def suspects(self, tx: Transaction, history: UserHistory, features: dict[str, float]) -> bool:
        """Whether an active rule keeps ``tx`` out of the user's history without alerting on
        it: an active deviation rule's lowered line past its hold
        (:meth:`UserDeviationRule.suspects`). A shadow or disabled rule never does, so trying
        or switching off a rule leaves learning as the enforced rules have it.
        """
        for rule in self.suspecting:  # noqa: SIM110 (no generator to allocate per event)
            if rule.suspects(tx, history, features):
                return True
        return False
