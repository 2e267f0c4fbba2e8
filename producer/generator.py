"""Synthetic card traffic: users with their own habits, plus labeled fraud scenarios.

Pure and deterministic: the same :class:`GeneratorParameters` (seed included) always yield
the same stream, timestamps included, because event time is simulated from ``start_time``
and never read from the wall clock. Nothing here knows about Kafka.

>>> from itertools import islice
>>> stream = ScenarioGenerator(GeneratorParameters(seed=7, users=50))
>>> [tx.transaction_id for tx in islice(stream, 2)]
['tx-7-000000001', 'tx-7-000000002']
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms

LARGE_AMOUNT = "large_amount"
HABIT_SPIKE = "habit_spike"
VELOCITY_BURST = "velocity_burst"
CARD_TESTING = "card_testing"
ACCOUNT_TAKEOVER = "account_takeover"
#: Every fraud scenario, in the order they are documented.
FRAUD_SCENARIOS: tuple[str, ...] = (
    LARGE_AMOUNT,
    HABIT_SPIKE,
    VELOCITY_BURST,
    CARD_TESTING,
    ACCOUNT_TAKEOVER,
)

DEFAULT_SEED = 42
DEFAULT_USERS = 1000
DEFAULT_FRAUD_SHARE = 0.02
#: The detector's amount rule fires strictly above this.
DEFAULT_RULE_THRESHOLD = 10_000.0
#: Fixed so that a default run is reproducible; ``--start-time now`` overrides it.
DEFAULT_START_TIME = datetime(2024, 12, 4, tzinfo=timezone.utc)

POS = "pos"
ONLINE = "online"
#: Where users live, with rough weights (a European card issuer's customer base).
HOME_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("DE", 0.30),
    ("FR", 0.15),
    ("NL", 0.10),
    ("BE", 0.06),
    ("AT", 0.06),
    ("ES", 0.08),
    ("IT", 0.08),
    ("PL", 0.07),
    ("SE", 0.05),
    ("IE", 0.05),
)
#: Countries only ever seen abroad: travel and account takeovers.
OTHER_COUNTRIES: tuple[str, ...] = (
    "US", "GB", "CH", "PT", "DK", "BR", "NG", "RU", "CN", "IN",
    "ID", "VN", "UA", "TR", "MX", "PH", "RO", "ZA", "TH", "AE",
)  # fmt: skip
ALL_COUNTRIES: tuple[str, ...] = tuple(code for code, _ in HOME_COUNTRIES) + OTHER_COUNTRIES

HOURS_PER_DAY = 24
MILLISECONDS_PER_SECOND = 1000
MILLISECONDS_PER_HOUR = 3_600_000
MILLISECONDS_PER_DAY = 86_400_000
#: Smallest amount a card network accepts here.
MIN_AMOUNT = 0.01
#: Redraws of a log-normal amount above the cap before clamping it instead.
MAX_AMOUNT_REDRAWS = 20
#: Attempts at drawing a merchant the user never used before picking a brand-new one.
MAX_NEW_MERCHANT_DRAWS = 50


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    """A value between low and high whose logarithm is uniform (multipliers, amounts)."""
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _cents(amount: float) -> float:
    """Round to cents, never below :data:`MIN_AMOUNT`."""
    return max(MIN_AMOUNT, round(amount, 2))


@dataclass(frozen=True, slots=True)
class GeneratorParameters:
    """Every knob of the synthetic stream; the defaults describe a plausible card portfolio."""

    seed: int = DEFAULT_SEED
    users: int = DEFAULT_USERS
    #: Fraction of all transactions that are fraud (every transaction of a burst counts).
    fraud_share: float = DEFAULT_FRAUD_SHARE
    scenarios: tuple[str, ...] = FRAUD_SCENARIOS
    start_time: datetime = DEFAULT_START_TIME
    rule_threshold: float = DEFAULT_RULE_THRESHOLD
    #: Largest amount of normal traffic; None means the rule threshold.
    normal_amount_cap: float | None = None

    # --- normal behaviour, drawn once per user ---------------------------------------------
    #: Mean transactions per user per day; each user's own rate varies log-normally around it.
    transactions_per_user_per_day: float = 8.0
    user_activity_spread: float = 0.5  # sigma of log(rate) across users
    typical_median_amount: float = 40.0  # median of the users' median amounts
    median_amount_spread: float = 1.0  # sigma of log(median amount) across users
    median_amount_bounds: tuple[float, float] = (5.0, 500.0)
    amount_sigma_bounds: tuple[float, float] = (0.35, 0.8)  # per-user sigma of log(amount)
    active_start_hour_bounds: tuple[int, int] = (5, 13)  # UTC hour the user's day starts
    active_hours_bounds: tuple[int, int] = (8, 16)  # length of the user's active day, hours
    usual_merchant_count_bounds: tuple[int, int] = (3, 8)
    merchant_pool_size: int = 5000
    new_merchant_share: float = 0.05  # normal transactions at a merchant outside the habit
    travel_share: float = 0.01  # normal transactions abroad
    online_share_bounds: tuple[float, float] = (0.05, 0.6)

    # --- fraud scenarios --------------------------------------------------------------------
    large_amount_multiplier_bounds: tuple[float, float] = (1.01, 5.0)  # x rule threshold
    habit_spike_multiplier_bounds: tuple[float, float] = (15.0, 60.0)  # x user's median
    account_takeover_multiplier_bounds: tuple[float, float] = (6.0, 20.0)  # x user's median
    #: Below-threshold scenarios stay under this fraction of the rule threshold.
    below_threshold_ceiling: float = 0.98
    velocity_burst_size_bounds: tuple[int, int] = (8, 15)
    velocity_burst_gap_seconds: tuple[float, float] = (1.0, 4.0)
    card_testing_size_bounds: tuple[int, int] = (8, 20)
    card_testing_gap_seconds: tuple[float, float] = (0.5, 3.0)
    card_testing_amount_bounds: tuple[float, float] = (0.5, 2.0)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("users must be at least 1")
        if not 0.0 <= self.fraud_share < 1.0:
            raise ValueError("fraud_share must be in [0, 1)")
        unknown = set(self.scenarios) - set(FRAUD_SCENARIOS)
        if unknown:
            raise ValueError(
                f"unknown scenario(s) {sorted(unknown)}; known: {', '.join(FRAUD_SCENARIOS)}"
            )
        if self.rule_threshold <= 0:
            raise ValueError("rule_threshold must be positive")
        if self.amount_cap <= MIN_AMOUNT:
            raise ValueError("normal_amount_cap must be above the smallest amount")
        if self.transactions_per_user_per_day <= 0:
            raise ValueError("transactions_per_user_per_day must be positive")
        if not 1 <= self.active_hours_bounds[0] <= self.active_hours_bounds[1] <= HOURS_PER_DAY:
            raise ValueError(f"active_hours_bounds must lie within 1..{HOURS_PER_DAY}")

    @property
    def amount_cap(self) -> float:
        """Largest amount normal traffic may carry."""
        return self.rule_threshold if self.normal_amount_cap is None else self.normal_amount_cap

    @property
    def below_threshold_limit(self) -> float:
        """Largest amount of a fraud scenario that must stay under the rule."""
        return self.rule_threshold * self.below_threshold_ceiling

    def expected_burst_size(self, scenario: str) -> float:
        """Mean number of transactions one incident of ``scenario`` produces."""
        if scenario == VELOCITY_BURST:
            return sum(self.velocity_burst_size_bounds) / 2
        if scenario == CARD_TESTING:
            return sum(self.card_testing_size_bounds) / 2
        return 1.0

    @property
    def incident_probability(self) -> float:
        """Chance that a user's turn starts a fraud incident, so fraud_share holds overall.

        With incident probability q and mean incident size m, the fraud fraction is
        q*m / (q*m + 1 - q); solving for q gives f / (m*(1 - f) + f).
        """
        if not self.scenarios or self.fraud_share == 0:
            return 0.0
        mean_size = sum(self.expected_burst_size(s) for s in self.scenarios) / len(self.scenarios)
        share = self.fraud_share
        return share / (mean_size * (1 - share) + share)


@dataclass(frozen=True, slots=True)
class UserHabits:
    """How one user normally pays: amounts, hours, merchants, country, channel."""

    user_id: str
    median_amount: float
    amount_sigma: float  # sigma of log(amount)
    transactions_per_day: float
    active_start_ms: int  # offset of the active day from the start's time of day
    active_length_ms: int
    usual_merchants: tuple[str, ...]
    home_country: str
    online_share: float

    @property
    def log_median(self) -> float:
        """Location parameter of the user's log-normal amounts."""
        return math.log(self.median_amount)

    def next_active_moment(self, after_ms: int, active_gap_ms: float) -> int:
        """The moment ``active_gap_ms`` of active time after ``after_ms`` (nights are skipped)."""
        remaining = active_gap_ms
        now = after_ms
        while True:
            window_start = now - (now - self.active_start_ms) % MILLISECONDS_PER_DAY
            window_end = window_start + self.active_length_ms
            if now >= window_end:  # asleep: jump to the next morning
                now = window_start + MILLISECONDS_PER_DAY
                window_end = now + self.active_length_ms
            available = window_end - now
            if remaining <= available:
                return now + int(remaining)
            remaining -= available
            now = window_end


def draw_user_habits(params: GeneratorParameters, rng: random.Random) -> list[UserHabits]:
    """The user population, from its own random stream so events never shift it."""
    countries = [code for code, _ in HOME_COUNTRIES]
    weights = [weight for _, weight in HOME_COUNTRIES]
    width = max(6, len(str(params.users)))
    low_median, high_median = params.median_amount_bounds
    # Active hours count from the start's time of day (UTC midnight for the default start), so
    # a stream started at any moment (the demo starts now) is the same stream, shifted: which
    # users are awake first, and so every later draw, no longer depends on the hour it starts
    # at (it did: 1 to 39 frauds in the demo's first 1,200 transactions).
    phase = epoch_ms(params.start_time) % MILLISECONDS_PER_DAY
    users = []
    for index in range(params.users):
        median = rng.lognormvariate(
            math.log(params.typical_median_amount), params.median_amount_spread
        )
        start_hour = rng.randint(*params.active_start_hour_bounds)
        active_hours = rng.randint(*params.active_hours_bounds)
        merchant_count = rng.randint(*params.usual_merchant_count_bounds)
        merchants = rng.sample(range(params.merchant_pool_size), merchant_count)
        users.append(
            UserHabits(
                user_id=f"U{index:0{width}d}",
                median_amount=round(min(high_median, max(low_median, median)), 2),
                amount_sigma=rng.uniform(*params.amount_sigma_bounds),
                transactions_per_day=rng.lognormvariate(
                    math.log(params.transactions_per_user_per_day), params.user_activity_spread
                ),
                active_start_ms=(start_hour * MILLISECONDS_PER_HOUR + phase) % MILLISECONDS_PER_DAY,
                active_length_ms=active_hours * MILLISECONDS_PER_HOUR,
                usual_merchants=tuple(merchant_name(m) for m in merchants),
                home_country=rng.choices(countries, weights)[0],
                online_share=rng.uniform(*params.online_share_bounds),
            )
        )
    return users


def merchant_name(index: int) -> str:
    """Merchant id of the pool member ``index``."""
    return f"M{index:05d}"


class _Draft(NamedTuple):
    """A transaction before it gets its id (ids are numbered in emission order)."""

    amount: float
    merchant_id: str
    country: str
    channel: str
    scenario: str


@dataclass(slots=True)
class _UserHistory:
    """What a user has already done in the stream (to make takeovers really new)."""

    merchants: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)


class ScenarioGenerator:
    """An endless, time-ordered stream of normal traffic with labeled fraud incidents.

    Each user transacts during their own active hours at their own rate (a Poisson process
    in active time); the streams of all users are merged in event-time order. On each turn a
    user may instead suffer a fraud incident (one scenario, one or several transactions).
    Iterating again restarts the identical stream.
    """

    def __init__(self, params: GeneratorParameters | None = None) -> None:
        self.params = params or GeneratorParameters()
        self.users = draw_user_habits(self.params, random.Random(f"{self.params.seed}:users"))

    def __iter__(self) -> Iterator[LabeledTransaction]:
        return self._stream()

    def _stream(self) -> Iterator[LabeledTransaction]:
        """Merge every user's turns and incidents by event time; number ids as emitted."""
        params = self.params
        rng = random.Random(f"{params.seed}:events")
        histories = [_UserHistory() for _ in self.users]
        start_ms = epoch_ms(params.start_time)
        incident_probability = params.incident_probability
        sequence = itertools.count()
        # (event time ms, tie-breaker, user index, ready draft or None for "user's turn")
        pending: list[tuple[int, int, int, _Draft | None]] = []
        for index, user in enumerate(self.users):
            first = self._next_turn(user, start_ms, rng)
            heapq.heappush(pending, (first, next(sequence), index, None))
        id_prefix = f"tx-{params.seed}-"
        for number in itertools.count(1):
            time_ms, _, index, draft = heapq.heappop(pending)
            user, history = self.users[index], histories[index]
            if draft is None:
                turn = self._next_turn(user, time_ms, rng)
                heapq.heappush(pending, (turn, next(sequence), index, None))
                if incident_probability and rng.random() < incident_probability:
                    scenario = rng.choice(params.scenarios)
                    timed = self._incident(scenario, user, history, time_ms, rng)
                    for later_ms, later in timed[1:]:
                        heapq.heappush(pending, (later_ms, next(sequence), index, later))
                    draft = timed[0][1]
                else:
                    draft = self._normal(user, rng)
            history.merchants.add(draft.merchant_id)
            history.countries.add(draft.country)
            yield LabeledTransaction(
                transaction_id=f"{id_prefix}{number:09d}",
                user_id=user.user_id,
                amount=draft.amount,
                timestamp_ms=time_ms,
                scenario=draft.scenario,
                is_fraud=draft.scenario != NORMAL_SCENARIO,
                merchant_id=draft.merchant_id,
                country=draft.country,
                channel=draft.channel,
            )

    def _next_turn(self, user: UserHabits, after_ms: int, rng: random.Random) -> int:
        """When the user next pays, counting only their active hours."""
        rate_per_active_ms = user.transactions_per_day / user.active_length_ms
        return user.next_active_moment(after_ms, rng.expovariate(rate_per_active_ms))

    # --- normal traffic ------------------------------------------------------------------------

    def _normal(self, user: UserHabits, rng: random.Random) -> _Draft:
        """A transaction that fits the user's habits."""
        params = self.params
        if rng.random() < params.new_merchant_share:
            merchant = merchant_name(rng.randrange(params.merchant_pool_size))
        else:
            merchant = rng.choice(user.usual_merchants)
        country = user.home_country
        if rng.random() < params.travel_share:
            country = rng.choice(ALL_COUNTRIES)
        return _Draft(
            self._habitual_amount(user, rng),
            merchant,
            country,
            self._channel(user, rng),
            NORMAL_SCENARIO,
        )

    def _habitual_amount(self, user: UserHabits, rng: random.Random) -> float:
        """Log-normal around the user's median, redrawn (then clamped) above the cap."""
        cap = self.params.amount_cap
        amount = cap
        for _ in range(MAX_AMOUNT_REDRAWS):
            amount = _cents(rng.lognormvariate(user.log_median, user.amount_sigma))
            if amount <= cap:
                return amount
        return min(amount, cap)

    def _channel(self, user: UserHabits, rng: random.Random) -> str:
        """Online or point of sale, in the user's own proportion."""
        return ONLINE if rng.random() < user.online_share else POS

    # --- fraud incidents -----------------------------------------------------------------------

    def _incident(
        self,
        scenario: str,
        user: UserHabits,
        history: _UserHistory,
        time_ms: int,
        rng: random.Random,
    ) -> list[tuple[int, _Draft]]:
        """The timed transactions of one fraud incident starting at ``time_ms``."""
        if scenario == LARGE_AMOUNT:
            return [(time_ms, self._large_amount(user, rng))]
        if scenario == HABIT_SPIKE:
            return [(time_ms, self._habit_spike(user, rng))]
        if scenario == ACCOUNT_TAKEOVER:
            return [(time_ms, self._account_takeover(user, history, rng))]
        if scenario == VELOCITY_BURST:
            return self._velocity_burst(user, time_ms, rng)
        if scenario == CARD_TESTING:
            return self._card_testing(user, history, time_ms, rng)
        raise ValueError(f"unknown scenario {scenario!r}")

    def _large_amount(self, user: UserHabits, rng: random.Random) -> _Draft:
        """One amount above the rule threshold."""
        threshold = self.params.rule_threshold
        amount = _cents(threshold * _log_uniform(rng, *self.params.large_amount_multiplier_bounds))
        amount = max(amount, _cents(threshold + MIN_AMOUNT))  # strictly above despite rounding
        merchant = merchant_name(rng.randrange(self.params.merchant_pool_size))
        return _Draft(amount, merchant, user.home_country, self._channel(user, rng), LARGE_AMOUNT)

    def _below_threshold_multiple(
        self, user: UserHabits, bounds: tuple[float, float], rng: random.Random
    ) -> float:
        """A multiple of the user's median that still stays under the rule threshold."""
        limit = self.params.below_threshold_limit
        high = min(user.median_amount * bounds[1], limit)
        low = min(user.median_amount * bounds[0], high)
        return _cents(_log_uniform(rng, low, high))

    def _habit_spike(self, user: UserHabits, rng: random.Random) -> _Draft:
        """An amount far above the user's habit at a usual merchant, below the rule."""
        amount = self._below_threshold_multiple(
            user, self.params.habit_spike_multiplier_bounds, rng
        )
        merchant = rng.choice(user.usual_merchants)
        return _Draft(amount, merchant, user.home_country, self._channel(user, rng), HABIT_SPIKE)

    def _account_takeover(
        self, user: UserHabits, history: _UserHistory, rng: random.Random
    ) -> _Draft:
        """A high (for this user) online payment at a new merchant from a new country."""
        amount = self._below_threshold_multiple(
            user, self.params.account_takeover_multiplier_bounds, rng
        )
        merchant = self._unfamiliar_merchant(user, history, rng)
        known = history.countries | {user.home_country}
        candidates = [c for c in ALL_COUNTRIES if c not in known]
        country = rng.choice(candidates) if candidates else f"X{len(known)}"
        return _Draft(amount, merchant, country, ONLINE, ACCOUNT_TAKEOVER)

    def _unfamiliar_merchant(
        self, user: UserHabits, history: _UserHistory, rng: random.Random
    ) -> str:
        """A merchant outside the user's habits that the user never paid before."""
        for _ in range(MAX_NEW_MERCHANT_DRAWS):
            merchant = merchant_name(rng.randrange(self.params.merchant_pool_size))
            if merchant not in history.merchants and merchant not in user.usual_merchants:
                return merchant
        return merchant_name(self.params.merchant_pool_size + len(history.merchants))

    def _velocity_burst(
        self, user: UserHabits, time_ms: int, rng: random.Random
    ) -> list[tuple[int, _Draft]]:
        """Many ordinary-looking payments from one card, seconds apart."""
        params = self.params
        burst: list[tuple[int, _Draft]] = []
        for position in range(rng.randint(*params.velocity_burst_size_bounds)):
            if position:
                time_ms += int(
                    rng.uniform(*params.velocity_burst_gap_seconds) * MILLISECONDS_PER_SECOND
                )
            merchant = merchant_name(rng.randrange(params.merchant_pool_size))
            amount = self._habitual_amount(user, rng)
            burst.append(
                (time_ms, _Draft(amount, merchant, user.home_country, ONLINE, VELOCITY_BURST))
            )
        return burst

    def _card_testing(
        self, user: UserHabits, history: _UserHistory, time_ms: int, rng: random.Random
    ) -> list[tuple[int, _Draft]]:
        """Tiny online payments at one unfamiliar merchant in quick succession."""
        params = self.params
        merchant = self._unfamiliar_merchant(user, history, rng)
        country = rng.choice(ALL_COUNTRIES)
        burst: list[tuple[int, _Draft]] = []
        for position in range(rng.randint(*params.card_testing_size_bounds)):
            if position:
                time_ms += int(
                    rng.uniform(*params.card_testing_gap_seconds) * MILLISECONDS_PER_SECOND
                )
            amount = _cents(rng.uniform(*params.card_testing_amount_bounds))
            burst.append((time_ms, _Draft(amount, merchant, country, ONLINE, CARD_TESTING)))
        return burst
