"""Per-user behaviour profile and the model features derived from it, all scaled to [0, 1].

A :class:`UserProfile` is a handful of floats plus two short lists of hashed places (well under
1 KiB as JSON), so millions of users fit in a table. Statistics are kept on ``log1p(amount)``
because card amounts are log-normal: a z-score on raw amounts is dominated by a user's few large
purchases.

The model features are built so that ordinary behaviour sits in one corner (all zeros) and each
kind of fraud pulls at least one of them away from it: Half-Space Trees only resolve regions
holding more than a tenth of their window, so a feature whose normal values are spread out hides
rare values among ordinary ones.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

#: Gaps longer than this map to 1.0 on the ``since_previous`` feature.
MAX_GAP_SECONDS = 30 * 24 * 3600.0
#: The reported ``amount_zscore`` is squashed with tanh(z / Z_SCALE): |z| >= 2 saturates.
Z_SCALE = 1.0
#: Spread of log amounts assumed before a user has history (typical card users: 0.35-0.8).
PRIOR_LOG_STD = 0.6
#: Weight of that prior, in transactions: a user's own spread takes over as history grows, and
#: two or three similar amounts no longer make the next ordinary one look extreme.
PRIOR_WEIGHT = 2.0
#: Z-scores up to this are ordinary variation and map to 0 on the habit-excess features
#: (so ordinary traffic stays in the model's corner).
HABIT_EXCESS_START = 2.5
#: Beyond HABIT_EXCESS_START the excess is squashed with tanh(excess / HABIT_EXCESS_SCALE).
HABIT_EXCESS_SCALE = 2.0
#: Decayed count of a user's earlier transactions that maps to 1.0 on ``velocity``.
VELOCITY_CAP = 2.0
#: Distinct recent merchants remembered per user (hashed, 8 hex characters each).
RECENT_MERCHANTS = 16
#: Distinct recent countries remembered per user; travellers rarely use more.
RECENT_COUNTRIES = 6
#: Most recent transactions remembered per user (time and amount) for velocity rules.
RECENT_TRANSACTIONS = 12
#: Recent transactions older than this (before the user's newest) are forgotten, so an
#: ordinary user keeps only a day's handful; the longest window a velocity rule may use.
RECENT_WINDOW_SECONDS = 24 * 3600.0
#: Bytes of the hash a place is remembered by: collisions are negligible per user.
PLACE_HASH_BYTES = 4
#: Transaction fields that name the merchant and the country (pass-through JSON fields).
MERCHANT_FIELD = "merchantId"
COUNTRY_FIELD = "country"

FEATURE_NAMES = (
    "amount",
    "amount_zscore",
    "since_previous",
    "velocity",
    "amount_above_habit",
    "amount_below_habit",
    "new_country",
    "new_merchant",
)
#: What the anomaly model sees. ``amount`` is left to the amount rule and ``amount_zscore``
#: is replaced by the two one-sided excess features; ``since_previous`` mostly separates new
#: users from old ones; ``new_merchant`` is true for about a quarter of ordinary payments
#: (short histories), so alone it only adds noise. All three stay in alerts as context.
MODEL_FEATURES = ("amount_above_habit", "amount_below_habit", "velocity", "new_country")


@dataclass(slots=True)
class FeatureScales:
    """Constants that map raw behaviour into [0, 1]; set from :class:`Settings`."""

    amount_scale_max: float = 1_000_000.0
    velocity_window_seconds: float = 30.0


@dataclass(slots=True)
class UserProfile:
    """Running statistics of one user's transactions.

    ``last_partition``/``last_offset`` guard against re-applying a redelivered message
    (at-least-once input). ``merchants``/``countries`` hold hashes of the most recent distinct
    places, newest last, bounded by :data:`RECENT_MERCHANTS` / :data:`RECENT_COUNTRIES`.
    ``recent_times``/``recent_amounts`` are the user's latest transactions (suspicious ones
    too), oldest first, at most :data:`RECENT_TRANSACTIONS` within
    :data:`RECENT_WINDOW_SECONDS` of the newest: what velocity rules count.
    """

    count: int = 0  # transactions in the amount statistics (suspicious ones excluded)
    mean_amount: float = 0.0
    m2_amount: float = 0.0  # Welford sum of squared deviations of the raw amount
    mean_log: float = 0.0
    m2_log: float = 0.0  # Welford, on log1p(amount)
    last_seen: float | None = None  # event time of the newest transaction, epoch seconds
    velocity: float = 0.0  # exponentially decayed transaction count
    suspicious_count: int = 0
    last_partition: int = -1
    last_offset: int = -1
    merchants: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    recent_times: list[float] = field(default_factory=list)  # epoch seconds, ms precision
    recent_amounts: list[float] = field(default_factory=list)  # rounded to cents

    @property
    def std_amount(self) -> float:
        """Sample standard deviation of the raw amount."""
        return math.sqrt(self.m2_amount / (self.count - 1)) if self.count > 1 else 0.0

    @property
    def std_log(self) -> float:
        """Sample standard deviation of ``log1p(amount)``."""
        return math.sqrt(self.m2_log / (self.count - 1)) if self.count > 1 else 0.0

    def has_applied(self, partition: int, offset: int) -> bool:
        """True when this source position was already folded into the profile."""
        return partition == self.last_partition and offset <= self.last_offset

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the table's changelog (lists copied, so it can outlive the profile).

        Hand-written rather than ``dataclasses.asdict``, which deep-copies field by field
        and was ~3% of the worker's CPU in a profile (it runs once per event).
        """
        return {
            name: list(value) if isinstance(value, list) else value
            for name in _PROFILE_FIELDS
            for value in (getattr(self, name),)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> UserProfile:
        """Inverse of :meth:`to_dict`; ``None`` (a new user) gives an empty profile."""
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in _PROFILE_LISTS:  # older dicts lack them; keep them lists
            known[name] = list(known.get(name) or [])
        return cls(**known)

    def recent_activity(self, event_time: float, window_seconds: float) -> tuple[int, float]:
        """Count and total amount of the remembered transactions in ``[t - window, t]``.

        >>> profile = UserProfile(recent_times=[0.0, 50.0, 90.0], recent_amounts=[5.0, 7.0, 9.0])
        >>> profile.recent_activity(100.0, 60.0)
        (2, 16.0)
        """
        start = event_time - window_seconds
        count, total = 0, 0.0
        for moment, amount in zip(self.recent_times, self.recent_amounts, strict=False):
            if start <= moment <= event_time:
                count += 1
                total += amount
        return count, total

    def log_amount_zscore(self, amount: float) -> float | None:
        """How far ``log1p(amount)`` lies above the user's habit, in predictive spreads.

        The spread is shrunk towards :data:`PRIOR_LOG_STD` while history is short and widened
        for the uncertainty of the mean. ``None`` for a user without history.
        """
        if self.count == 0:
            return None
        variance = (self.m2_log + PRIOR_WEIGHT * PRIOR_LOG_STD**2) / (self.count - 1 + PRIOR_WEIGHT)
        spread = math.sqrt(variance * (1.0 + 1.0 / self.count))
        return (math.log1p(amount) - self.mean_log) / spread


#: Field names in declaration order, for :meth:`UserProfile.to_dict`.
_PROFILE_FIELDS = tuple(f.name for f in fields(UserProfile))
#: The list fields, which older stored profiles may lack.
_PROFILE_LISTS = ("merchants", "countries", "recent_times", "recent_amounts")


def encode_profile(profile: UserProfile) -> bytes:
    """The profile as compact JSON bytes, as the table and its changelog store it."""
    encoded = orjson.dumps(profile.to_dict())
    # orjson's result keeps its ~4 KiB write buffer (measured: 4.2 KB resident per stored
    # 225-byte profile); an exact-size copy brings a stored user down to ~370 B in memory.
    return bytes(memoryview(encoded))


def decode_profile(stored: bytes | None) -> UserProfile:
    """Inverse of :func:`encode_profile`; ``None`` (a new user) gives an empty profile."""
    return UserProfile.from_dict(orjson.loads(stored) if stored else None)


def compute_features(
    profile: UserProfile,
    amount: float,
    event_time: float,
    scales: FeatureScales,
    extra: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Features of a new transaction against the user's history *before* it; all in [0, 1].

    ``extra`` holds the transaction's pass-through fields (merchant, country); without them
    the place features are 0.
    """
    log_amount = math.log1p(amount)
    amount_feature = _clip01(log_amount / math.log1p(scales.amount_scale_max))

    z = profile.log_amount_zscore(amount)
    if z is None:
        zscore_feature = 0.5
        above = below = 0.0
    else:
        zscore_feature = 0.5 + 0.5 * math.tanh(z / Z_SCALE)
        above = _habit_excess(z)
        below = _habit_excess(-z)

    if profile.last_seen is None:
        since_feature = 1.0
        velocity = 0.0
    else:
        gap = max(0.0, event_time - profile.last_seen)
        since_feature = _clip01(math.log1p(gap) / math.log1p(MAX_GAP_SECONDS))
        velocity = profile.velocity * math.exp(-gap / scales.velocity_window_seconds)

    fields = extra or {}
    return {
        "amount": amount_feature,
        "amount_zscore": zscore_feature,
        "since_previous": since_feature,
        "velocity": _clip01(velocity / VELOCITY_CAP),
        "amount_above_habit": above,
        "amount_below_habit": below,
        "new_country": _novelty(profile.countries, fields.get(COUNTRY_FIELD)),
        "new_merchant": _novelty(profile.merchants, fields.get(MERCHANT_FIELD)),
    }


def update_profile(
    profile: UserProfile,
    amount: float,
    event_time: float,
    scales: FeatureScales,
    partition: int,
    offset: int,
    suspicious: bool = False,
    extra: dict[str, Any] | None = None,
) -> None:
    """Fold one transaction into the profile (in place).

    A suspicious transaction counts towards velocity and the clock but not towards the
    amount statistics or the known places, so a fraudster's spending does not become the
    user's habit.
    """
    if suspicious:
        profile.suspicious_count += 1
    else:
        fields = extra or {}
        _remember(profile.countries, fields.get(COUNTRY_FIELD), RECENT_COUNTRIES)
        _remember(profile.merchants, fields.get(MERCHANT_FIELD), RECENT_MERCHANTS)
        profile.count += 1
        delta = amount - profile.mean_amount
        profile.mean_amount += delta / profile.count
        profile.m2_amount += delta * (amount - profile.mean_amount)

        log_amount = math.log1p(amount)
        delta_log = log_amount - profile.mean_log
        profile.mean_log += delta_log / profile.count
        profile.m2_log += delta_log * (log_amount - profile.mean_log)

    _remember_recent(profile, event_time, amount)
    if profile.last_seen is None:
        profile.velocity = 1.0
        profile.last_seen = event_time
    else:
        gap = max(0.0, event_time - profile.last_seen)
        decay = math.exp(-gap / scales.velocity_window_seconds)
        profile.velocity = profile.velocity * decay + 1.0
        # Out-of-order events never move the clock backwards.
        profile.last_seen = max(profile.last_seen, event_time)
    profile.last_partition = partition
    profile.last_offset = offset


def place_token(value: Any) -> str:
    """Short stable hash a place is remembered by (bounded size whatever the input)."""
    return hashlib.blake2b(str(value).encode(), digest_size=PLACE_HASH_BYTES).hexdigest()


def _novelty(known: list[str], value: Any) -> float:
    """1.0 when the user has known places and ``value`` is not among them, else 0.0."""
    if value is None or not known:
        return 0.0
    return 0.0 if place_token(value) in known else 1.0


def _remember(known: list[str], value: Any, limit: int) -> None:
    """Move ``value`` to the newest end of ``known``, dropping the oldest beyond ``limit``."""
    if value is None:
        return
    token = place_token(value)
    if token in known:
        known.remove(token)
    known.append(token)
    del known[:-limit]


def _remember_recent(profile: UserProfile, event_time: float, amount: float) -> None:
    """Add one transaction to the recent ones (in time order), dropping beyond the bounds."""
    times, amounts = profile.recent_times, profile.recent_amounts
    moment = round(event_time, 3)
    at = len(times) if not times or moment >= times[-1] else bisect.bisect_right(times, moment)
    times.insert(at, moment)
    amounts.insert(at, round(amount, 2))
    drop = max(
        bisect.bisect_left(times, times[-1] - RECENT_WINDOW_SECONDS),
        len(times) - RECENT_TRANSACTIONS,
    )
    del times[:drop], amounts[:drop]


def _habit_excess(z: float) -> float:
    """0 for ordinary z-scores, rising towards 1 beyond :data:`HABIT_EXCESS_START`."""
    return math.tanh(max(0.0, z - HABIT_EXCESS_START) / HABIT_EXCESS_SCALE)


def _clip01(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
