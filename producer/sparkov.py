"""A fourth labeled stream, after Sparkov, the simulator behind Kaggle's ``fraudTrain.csv``.

Imitates Brandon Harris' Sparkov_Data_Generation (github.com/namebrandon/Sparkov_Data_Generation),
re-implemented here. The profile numbers (transactions per day, AM share, category weights,
amount means and spreads, of the legitimate and the fraud profiles) are copied from Sparkov's
``profiles/*.json``, Copyright (c) 2016-2022 Brandon Harris, under the MIT licence (its
permission notice is Sparkov's ``LICENSE.md``); the code is ours, and simpler (one weekday
weighting for all profiles, 50 made-up merchants per category, homes around 25 US cities).

A customer's age group, gender and urban or rural home pick a profile. Days are weighted by
weekday and season; one uniform draw picks both a payment's category and its half-day (so gas
and groceries fall in the morning), the hour is uniform within it (hours count from the start's
time of day, midnight UTC by default); amounts are Gamma with the category's mean and spread,
at one of its merchants (``fraud_...``, as in Kaggle's file) within a degree of the home. The
user id is a Luhn-valid card number.

What distinguishes fraud: ``days`` x 0.13 % of the cards get one episode of 1-7 days, 2-19
payments from the profile's fraud twin: other categories (groceries at a till, online shopping
and misc. online lead), large amounts (means ~1,000 online shopping, ~800 misc. online and
shopping at a till, ~300 groceries; gas ~10, the card tests) and 80 % of them moved to
22:00-04:00. The card's legitimate payments on a day with a fraud are dropped, as in Sparkov.
Frauds are labeled by category: ``net_shopping``, ``pos_shopping``, ``grocery``, ``gas_test``,
``other``. About 160 transactions a customer over 60 days, 0.4-0.6 % of them fraud.

>>> records = list(SparkovSimulator(SparkovParameters(customers=30, days=10, seed=1)))
>>> records == sorted(records, key=lambda r: r.timestamp_ms)
True
>>> records[0].transaction_id
'sp-1-000000000'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms

#: Sparkov's categories, in the order of its profiles (the cumulative weights follow it).
SPARKOV_CATEGORIES: tuple[str, ...] = (
    "gas_transport", "grocery_net", "grocery_pos", "misc_net", "misc_pos", "shopping_net",
    "shopping_pos", "entertainment", "food_dining", "health_fitness", "home", "kids_pets",
    "personal_care", "travel",
)  # fmt: skip
NET_SHOPPING = "net_shopping"
POS_SHOPPING = "pos_shopping"
GROCERY = "grocery"
GAS_TEST = "gas_test"
OTHER = "other"
#: The stream's fraud scenarios: the category a fraud was drawn in.
SPARKOV_SCENARIOS: tuple[str, ...] = (NET_SHOPPING, POS_SHOPPING, GROCERY, GAS_TEST, OTHER)
SCENARIO_OF_CATEGORY = {
    "shopping_net": NET_SHOPPING,
    "misc_net": NET_SHOPPING,
    "shopping_pos": POS_SHOPPING,
    "misc_pos": POS_SHOPPING,
    "grocery_pos": GROCERY,
    "grocery_net": GROCERY,
    "gas_transport": GAS_TEST,
}
#: Day 0 of the stream by default (2020-01-01, a Wednesday, in the post-holiday lull).
SPARKOV_START_TIME = datetime(2020, 1, 1, tzinfo=timezone.utc)
DEFAULT_SPARKOV_SEED = 1
MERCHANTS_PER_CATEGORY = 50
COUNTRY = "US"
DAY_S = 86_400
HOUR_S = 3_600
#: Weekday weights, Monday to Sunday (Sparkov's 25-50 rural profiles; the others differ little).
WEEKDAY_WEIGHTS = (80, 90, 100, 100, 125, 150, 150)
#: Age groups of Sparkov's profiles and their shares of the customers.
AGE_GROUPS = ("young", "2550", "50up")
AGE_SHARES = (0.15, 0.45, 0.40)
#: Share of fraud payments moved to the night edges of their half-day (22-24 h, 0-4 h).
NIGHT_SHARE = 0.8
LONGEST_EPISODE_DAYS = 7
HOME_CITIES = (
    (40.7, -74.0), (34.0, -118.2), (41.9, -87.6), (29.8, -95.4), (33.4, -112.1),
    (39.9, -75.2), (29.4, -98.5), (32.8, -96.8), (37.3, -121.9), (30.3, -97.7),
    (39.8, -86.2), (35.2, -80.8), (47.6, -122.3), (39.7, -105.0), (42.4, -71.1),
    (36.2, -86.8), (45.5, -122.7), (35.1, -90.0), (38.3, -85.8), (43.0, -89.4),
    (41.3, -96.0), (44.9, -93.3), (35.5, -97.5), (33.7, -84.4), (46.9, -100.8),
)  # fmt: skip
#: Made-up merchant names are built from these.
SURNAMES = (
    "Abbott", "Bahringer", "Bartoletti", "Bechtelar", "Boyer", "Carroll", "Cartwright", "Cormier",
    "Daniel", "Dibbert", "Douglas", "Ebert", "Emmerich", "Fadel", "Feeney", "Gislason", "Glover",
    "Gorczany", "Grant", "Haley", "Hamill", "Heller", "Hermann", "Hickle", "Huel", "Jast", "Jerde",
    "Johnston", "Kassulke", "Kerluke", "Kiehn", "Koepp", "Kovacek", "Kuhic", "Kuvalis", "Labadie",
    "Lakin", "Lang", "Lemke", "Lockman", "Marvin", "Medhurst", "Mertz", "Mosciski", "Murray",
    "Nitzsche", "Ondricka", "Padberg", "Parker", "Prosacco", "Quitzon", "Reichel", "Robel",
    "Rutherford", "Schmitt", "Smitham", "Sporer", "Stokes", "Tillman", "Tromp", "Wehner", "Weber",
    "Welch", "Wiegand", "Witting", "Zieme",
)  # fmt: skip
COMPANY_SUFFIXES = ("Inc", "LLC", "Ltd", "Group", "PLC")
#: Card number prefixes and lengths (Visa, Mastercard, Amex, Discover, JCB, Diners).
CARD_PREFIXES = (
    ("4", 16), ("51", 16), ("55", 16), ("34", 15), ("37", 15), ("6011", 16), ("3528", 16),
    ("30", 14),
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class SparkovProfile:
    """One of Sparkov's profiles: a kind of card holder (or of the fraud on their card)."""

    per_day: tuple[int, int]  # range of the transactions per day (one integer per customer)
    am_share: float  # share of payments in the AM half-day
    weights: tuple[float, ...]  # category weights, in SPARKOV_CATEGORIES order
    means: tuple[float, ...]  # mean amount per category
    stdevs: tuple[float, ...]  # spread of the amount per category
    cumulative: npt.NDArray[np.float64] = field(init=False, repr=False)
    shape: npt.NDArray[np.float64] = field(init=False, repr=False)
    scale: npt.NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        weights = np.array(self.weights, float)
        means, stdevs = np.array(self.means, float), np.array(self.stdevs, float)
        object.__setattr__(self, "cumulative", np.cumsum(weights / weights.sum()))
        object.__setattr__(self, "shape", means**2 / stdevs**2)  # Gamma of that mean and spread
        object.__setattr__(self, "scale", stdevs**2 / means)


def _profile(low: int, high: int, am: int, weights: str, means: str, stdevs: str) -> SparkovProfile:
    """A profile as Sparkov's JSON gives it: numbers per category in SPARKOV_CATEGORIES order."""

    def numbers(text: str) -> tuple[float, ...]:
        values = tuple(float(word) for word in text.split())
        assert len(values) == len(SPARKOV_CATEGORIES)
        return values

    return SparkovProfile((low, high), am / 100, numbers(weights), numbers(means), numbers(stdevs))


# Sparkov's profiles/*.json (MIT licence, Copyright (c) 2016-2022 Brandon Harris): transactions
# per day min and max, AM %, then per category the weight, the mean amount and its spread.
PROFILES: dict[str, SparkovProfile] = {
    "young_urban": _profile(
        0, 6, 20,
        "200 60 75 80 100 125 150 120 120 100 85 125 100 55",
        "60 40 70 50 50 50 50 50 30 50 50 50 35 50",
        "15 20 20 150 150 300 300 50 50 50 50 50 50 600",
    ),
    "young_rural": _profile(
        0, 6, 20,
        "150 80 50 100 100 100 100 130 140 110 50 75 100 35",
        "60 30 60 120 140 90 150 90 20 40 40 50 35 40",
        "15 20 20 60 90 120 35 30 50 50 50 50 50 600",
    ),
    "2550_M_urban": _profile(
        1, 5, 30,
        "150 80 150 75 100 100 125 110 110 100 150 110 75 45",
        "70 50 60 50 60 60 60 60 40 60 60 60 35 60",
        "15 20 20 150 150 300 300 75 50 50 50 50 50 600",
    ),
    "2550_M_rural": _profile(
        1, 4, 45,
        "50 50 150 30 100 100 100 105 100 90 150 110 50 45",
        "70 50 100 100 35 95 135 75 60 75 80 50 75 500",
        "5 5 10 20 5 10 12 7 6 2 8 5 5 50",
    ),
    "2550_F_urban": _profile(
        1, 6, 30,
        "50 100 150 75 100 150 175 100 110 100 150 135 125 35",
        "70 60 200 100 80 100 100 100 60 60 60 60 55 60",
        "15 20 20 150 100 200 225 75 40 50 50 50 50 600",
    ),
    "2550_F_rural": _profile(
        1, 6, 30,
        "225 50 150 75 100 110 150 90 100 90 150 135 125 35",
        "60 50 100 60 50 50 50 50 30 50 50 50 45 50",
        "15 20 20 150 150 300 250 50 50 50 50 50 50 600",
    ),
    "50up_urban": _profile(
        0, 3, 60,
        "150 25 150 50 100 75 150 115 120 80 150 150 120 60",
        "70 90 90 55 60 80 45 50 80 40 60 80 45 60",
        "15 20 20 150 150 200 200 75 50 50 50 50 50 600",
    ),
    "50up_rural": _profile(
        1, 4, 50,
        "225 15 150 100 65 125 110 120 90 125 150 150 120 60",
        "60 50 130 60 50 50 50 50 50 50 50 50 50 60",
        "15 20 20 150 150 150 150 50 50 50 50 50 50 600",
    ),
}  # fmt: skip
_FRAUD_WEIGHTS = "100 25 300 155 25 300 100 20 10 5 5 10 15 15"
_FRAUD_MEANS = "10 10 300 800 8 1000 800 500 120 20 250 20 20 10"
_FRAUD_STDEVS = "2 2 20 80 1 100 80 50 12 2 25 2 2 1"
#: The fraud twin of each profile (Sparkov's profiles/fraud_*.json).
FRAUD_PROFILES: dict[str, SparkovProfile] = {
    "young_urban": _profile(8, 16, 50, _FRAUD_WEIGHTS, _FRAUD_MEANS, _FRAUD_STDEVS),
    "young_rural": _profile(
        5, 19, 40, _FRAUD_WEIGHTS,
        "10 10 300 800 8 1000 1200 500 120 20 250 20 20 10",
        _FRAUD_STDEVS,
    ),
    "2550_M_urban": _profile(7, 12, 50, _FRAUD_WEIGHTS, _FRAUD_MEANS, _FRAUD_STDEVS),
    "2550_M_rural": _profile(8, 14, 30, _FRAUD_WEIGHTS, _FRAUD_MEANS, _FRAUD_STDEVS),
    "2550_F_urban": _profile(
        2, 16, 60,
        "50 10 150 75 100 150 175 100 110 100 150 135 125 35",
        "10 12 350 800 8 1000 800 500 120 20 250 20 20 10",
        _FRAUD_STDEVS,
    ),
    "2550_F_rural": _profile(
        7, 16, 50,
        "95 10 200 75 100 200 200 90 100 90 150 135 125 35",
        "10 8 350 800 800 1000 900 500 120 20 250 20 20 10",
        "2 2 20 80 80 100 120 50 12 2 25 2 2 1",
    ),
    "50up_urban": _profile(
        7, 12, 30,
        "100 15 275 165 25 280 150 22 10 5 5 10 15 15",
        "10 10 300 800 8 1000 950 400 120 20 250 20 20 10",
        "2 2 20 80 1 90 80 40 12 2 25 2 2 1",
    ),
    "50up_rural": _profile(
        4, 15, 30,
        "90 35 300 155 25 285 115 30 10 5 5 15 35 15",
        "20 15 325 800 50 1000 825 600 120 20 400 5 50 1",
        _FRAUD_STDEVS,
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SparkovParameters:
    """Size, seed and start of the Sparkov-like stream."""

    customers: int = 1_000
    days: int = 60
    seed: int = DEFAULT_SPARKOV_SEED
    #: Start of day 0: its date sets the weekday and season weights, its time of day hour 0.
    start_time: datetime = SPARKOV_START_TIME
    #: A card's chance of a fraud episode is ``days`` times this (at most 0.99).
    episode_probability_per_day: float = 0.0013

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days < 1:
            raise ValueError("customers and days must be at least 1")
        if not 0 <= self.episode_probability_per_day <= 1:
            raise ValueError("episode_probability_per_day must be in [0, 1]")


def day_weights(start: datetime, days: int) -> npt.NDArray[np.float64]:
    """Sparkov's weight of each simulated day: its weekday's weight x its season's."""
    weights = []
    for day in range(days):
        date = (start + timedelta(days=day)).astimezone(timezone.utc)
        month_day = date.month * 100 + date.day
        if month_day <= 228:
            season = 75  # post-holiday lull
        elif 524 <= month_day <= 901:
            season = 125  # summer
        elif month_day >= 1130:
            season = 200  # holidays
        else:
            season = 100
        weights.append(WEEKDAY_WEIGHTS[date.weekday()] * season)
    return np.array(weights, float)


def _merchant_names(rng: np.random.Generator) -> list[list[str]]:
    """50 distinct made-up company names per category, prefixed ``fraud_`` as in Kaggle's file."""
    taken: set[str] = set()
    out: list[list[str]] = []
    for _ in SPARKOV_CATEGORIES:
        names: list[str] = []
        while len(names) < MERCHANTS_PER_CATEGORY:
            a, b, c = (str(name) for name in rng.choice(SURNAMES, 3, replace=False))
            kind = int(rng.integers(4))
            suffix = str(rng.choice(COMPANY_SUFFIXES))  # drawn whichever kind is chosen
            name = (f"{a}-{b}", f"{a}, {b} and {c}", f"{a} {suffix}", f"{a} and Sons")[kind]
            if name not in taken:
                taken.add(name)
                names.append("fraud_" + name)
        out.append(names)
    return out


def _card_number(rng: np.random.Generator, taken: set[str]) -> str:
    """A new Luhn-valid card number of a random issuer."""
    while True:
        prefix, length = CARD_PREFIXES[int(rng.integers(len(CARD_PREFIXES)))]
        digits = [int(d) for d in prefix]
        digits += [int(d) for d in rng.integers(0, 10, length - len(prefix) - 1)]
        total = 0
        for position, digit in enumerate(reversed(digits)):
            doubled = digit * 2 if position % 2 == 0 else digit
            total += doubled - 9 if doubled > 9 else doubled
        number = "".join(map(str, digits)) + str((10 - total % 10) % 10)
        if number not in taken:
            taken.add(number)
            return number


#: Seconds from the start, amounts and category numbers of a customer's drawn payments.
_Batch: TypeAlias = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]


def _sample(
    rng: np.random.Generator,
    profile: SparkovProfile,
    days: npt.NDArray[np.int64],
    fraud: bool,
) -> _Batch:
    """Second of the stream, amount and category of a payment on each of ``days``.

    As in Sparkov, one uniform draw picks both the category and the half-day.
    """
    n = len(days)
    u = rng.random(n)
    category = np.minimum(
        np.searchsorted(profile.cumulative, u, side="left"), len(SPARKOV_CATEGORIES) - 1
    )
    am = u <= profile.am_share
    hour = np.where(am, rng.integers(0, 12, n), rng.integers(12, 24, n))
    if fraud:  # most frauds move to the night edges of their half-day
        night = rng.random(n) < NIGHT_SHARE
        hour = np.where(night & am, rng.integers(0, 4, n), hour)
        hour = np.where(night & ~am, rng.integers(22, 24, n), hour)
    amount = rng.gamma(profile.shape[category], profile.scale[category])
    amount = np.where(amount < 1, rng.uniform(1, 10, n), amount)
    seconds = days * DAY_S + hour * HOUR_S + rng.integers(0, HOUR_S, n)
    return seconds.astype(np.int64), np.round(amount, 2), category.astype(np.int64)


@dataclass(slots=True)
class _Columns:
    """The drawn stream, one entry per transaction, in draw order."""

    seconds: list[npt.NDArray[np.int64]] = field(default_factory=list)
    amount: list[npt.NDArray[np.float64]] = field(default_factory=list)
    category: list[npt.NDArray[np.int64]] = field(default_factory=list)
    merchant: list[npt.NDArray[np.int64]] = field(default_factory=list)
    latitude: list[npt.NDArray[np.float64]] = field(default_factory=list)
    longitude: list[npt.NDArray[np.float64]] = field(default_factory=list)
    fraud: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    customer: list[npt.NDArray[np.int64]] = field(default_factory=list)


class SparkovSimulator:
    """The Sparkov-like stream as :class:`LabeledTransaction` records in event-time order."""

    def __init__(self, params: SparkovParameters | None = None) -> None:
        self.params = params or SparkovParameters()

    def __iter__(self) -> Iterator[LabeledTransaction]:
        cards, merchants, columns = self._draw()
        seconds = np.concatenate(columns.seconds)
        order = np.argsort(seconds, kind="stable")  # ties keep the draw order
        at_ms = (epoch_ms(self.params.start_time) + seconds[order] * 1000).tolist()
        amount = np.concatenate(columns.amount)[order].tolist()
        category = np.concatenate(columns.category)[order].tolist()
        merchant = np.concatenate(columns.merchant)[order].tolist()
        latitude = np.round(np.concatenate(columns.latitude)[order], 6).tolist()
        longitude = np.round(np.concatenate(columns.longitude)[order], 6).tolist()
        fraud = np.concatenate(columns.fraud)[order].tolist()
        customer = np.concatenate(columns.customer)[order].tolist()
        prefix = f"sp-{self.params.seed}-"
        for number in range(len(at_ms)):
            name = SPARKOV_CATEGORIES[category[number]]
            is_fraud = bool(fraud[number])
            yield LabeledTransaction(
                transaction_id=f"{prefix}{number:09d}",
                user_id=cards[customer[number]],
                amount=amount[number],
                timestamp_ms=at_ms[number],
                scenario=SCENARIO_OF_CATEGORY.get(name, OTHER) if is_fraud else NORMAL_SCENARIO,
                is_fraud=is_fraud,
                merchant_id=merchants[category[number]][merchant[number]],
                country=COUNTRY,
                channel=_channel(name),
                x=longitude[number],
                y=latitude[number],
                category=name,
            )

    def _draw(self) -> tuple[list[str], list[list[str]], _Columns]:
        params = self.params
        rng = np.random.default_rng(params.seed)
        merchants = _merchant_names(rng)
        weights = day_weights(params.start_time, params.days)
        episode_probability = min(0.99, params.days * params.episode_probability_per_day)
        cards: list[str] = []
        taken: set[str] = set()
        columns = _Columns()
        for number in range(params.customers):
            age = AGE_GROUPS[int(rng.choice(len(AGE_GROUPS), p=AGE_SHARES))]
            gender = "F" if rng.random() < 0.5 else "M"
            area = "rural" if rng.random() < 0.5 else "urban"
            key = f"2550_{gender}_{area}" if age == "2550" else f"{age}_{area}"
            city = HOME_CITIES[int(rng.integers(len(HOME_CITIES)))]
            home = (city[0] + rng.normal(0, 1.5), city[1] + rng.normal(0, 2.0))
            cards.append(_card_number(rng, taken))
            # (second, amount, category) of the frauds, then of the legitimate payments
            batches: list[tuple[_Batch, bool]] = []
            fraud_days: npt.NDArray[np.int64] = np.empty(0, np.int64)
            if rng.random() < episode_probability:
                profile = FRAUD_PROFILES[key]
                length = int(rng.integers(1, LONGEST_EPISODE_DAYS + 1))
                first = int(rng.integers(1, max(2, params.days - LONGEST_EPISODE_DAYS)))
                episode = np.arange(first, min(first + length, params.days))
                if episode.size:  # a one-day stream has no day after the first
                    count = int(rng.integers(profile.per_day[0], profile.per_day[1] + 1))
                    fraud_days = rng.choice(
                        episode, count, p=weights[episode] / weights[episode].sum()
                    )
                    batches.append((_sample(rng, profile, fraud_days, fraud=True), True))
            profile = PROFILES[key]
            per_day = int(rng.integers(profile.per_day[0], profile.per_day[1] + 1))
            days = rng.choice(params.days, params.days * per_day, p=weights / weights.sum())
            seconds, amount, category = _sample(rng, profile, days, fraud=False)
            keep = ~np.isin(days, fraud_days)  # Sparkov: a day with fraud has no legit payment
            batches.append(((seconds[keep], amount[keep], category[keep]), False))
            for (seconds, amount, category), is_fraud in batches:
                n = len(seconds)
                columns.seconds.append(seconds)
                columns.amount.append(amount)
                columns.category.append(category)
                columns.merchant.append(rng.integers(0, MERCHANTS_PER_CATEGORY, n))
                columns.latitude.append(home[0] + rng.uniform(-1, 1, n))
                columns.longitude.append(home[1] + rng.uniform(-1, 1, n))
                columns.fraud.append(np.full(n, is_fraud))
                columns.customer.append(np.full(n, number, np.int64))
        return cards, merchants, columns


def _channel(category: str) -> str | None:
    """``online`` or ``pos`` where Sparkov's category names it (``*_net``, ``*_pos``)."""
    if category.endswith("_net"):
        return "online"
    if category.endswith("_pos"):
        return "pos"
    return None
