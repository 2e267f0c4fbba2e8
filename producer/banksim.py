"""A fifth labeled stream, after BankSim, the simulator behind Kaggle's ``bs140513_032310.csv``.

Imitates BankSim (Lopez-Rojas and Axelsson, "BankSim: A Bank Payment Simulation for Fraud
Detection Research", EMSS 2014), re-implemented here; the code is ours. The published file
holds 594,643 payments of 4,112 customers at 50 merchants in 15 categories over 180 daily steps,
7,200 of them fraud (1.21 %). It has no geography (every zip code is 28007), no time of day and
no channel: a payment has a day, a customer, a merchant, a category and an amount.

The numbers per category (payments, frauds, mean legitimate and mean fraud amount) are the
published file's statistics; everything else is our assumption: the spreads, each customer's
rate (Gamma, mean 0.8 payments a day, shape 2) and spending level (lognormal, mean 1, sigma
0.3), the favourite merchant per category (80 % of a customer's payments in it), and the shape
of a fraud episode.

Legitimate payments: each day a Poisson number per customer, the category drawn with the file's
legitimate payments per category as weights (transportation is 86 % of them), the amount Gamma
with the category's legitimate mean times the customer's level and a coefficient of variation
of 0.6.

What distinguishes fraud, after the paper's "theft / cloned card" scenario ("a high number of
unusual transactions with high value in a short period"): ``days`` x 0.19 % of the customers
get one episode of 1-10 days (Geometric, mean 3.2) with 2 + Poisson(3) frauds spread uniformly
over its days, while the customer's own payments go on. A fraud's category is drawn with the
file's fraud counts as weights (none in transportation, food or contents; most of travel and
leisure is fraud), its merchant uniformly within the category but the category's first merchant
three times as likely, its amount Gamma with the category's fraud mean (about four times the
legitimate one, whatever the customer's level) and a coefficient of variation of 0.5. Frauds are
labeled by category group: ``health_beauty``, ``sports_toys``, ``travel_hotels``, ``leisure``,
``other_shopping``. About 57,000 payments at the default 1,000 customers over 70 days,
1.0-1.5 % of them fraud (1.2 % on average).

BankSim has only the day: each day's payments are shuffled and spread evenly over the day, the
k-th of n at ``k x 86,400,000 // n`` ms, as :class:`producer.csv_replay.CsvReplay` spreads a
step's rows (``FRAUDSTREAM_FIELD_TIMESTAMP_UNIT=d``), so the stream written as a BankSim CSV in
event-time order replays with the same timestamps.

>>> records = list(BanksimSimulator(BanksimParameters(customers=30, days=10, seed=1)))
>>> records == sorted(records, key=lambda r: r.timestamp_ms)
True
>>> records[0].transaction_id, records[0].country
('bs-1-000000000', 'ES')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms


@dataclass(frozen=True, slots=True)
class BanksimCategory:
    """One of BankSim's categories as the published file has it."""

    name: str
    payments: int  # payments in the file, fraud included
    frauds: int  # frauds in the file
    legit_mean: float  # mean amount of its legitimate payments
    fraud_mean: float  # mean amount of its frauds (0: it has none)
    merchants: int  # of our 50 merchants (the file's spread, roughly)


#: BankSim's categories, with the published file's counts and mean amounts.
BANKSIM_CATEGORIES: tuple[BanksimCategory, ...] = (
    BanksimCategory("es_transportation", 505_119, 0, 26.96, 0.0, 3),
    BanksimCategory("es_food", 26_254, 0, 37.07, 0.0, 3),
    BanksimCategory("es_health", 16_133, 1_696, 103.7, 407.0, 5),
    BanksimCategory("es_wellnessandbeauty", 15_086, 718, 57.3, 229.0, 5),
    BanksimCategory("es_fashion", 6_454, 116, 62.4, 247.0, 4),
    BanksimCategory("es_barsandrestaurants", 6_373, 120, 41.2, 164.0, 4),
    BanksimCategory("es_hyper", 6_098, 280, 40.0, 169.0, 4),
    BanksimCategory("es_sportsandtoys", 4_002, 1_982, 89.0, 345.0, 4),
    BanksimCategory("es_tech", 2_370, 158, 100.0, 415.0, 3),
    BanksimCategory("es_home", 1_986, 302, 113.0, 457.0, 3),
    BanksimCategory("es_hotelservices", 1_744, 548, 107.0, 421.0, 3),
    BanksimCategory("es_otherservices", 912, 228, 76.0, 316.0, 2),
    BanksimCategory("es_contents", 885, 0, 44.5, 0.0, 2),
    BanksimCategory("es_travel", 728, 578, 670.0, 2660.0, 3),
    BanksimCategory("es_leisure", 499, 474, 78.0, 300.0, 2),
)
HEALTH_BEAUTY = "health_beauty"
SPORTS_TOYS = "sports_toys"
TRAVEL_HOTELS = "travel_hotels"
LEISURE = "leisure"
OTHER_SHOPPING = "other_shopping"
#: The stream's fraud scenarios: the group of the category a fraud was drawn in.
BANKSIM_SCENARIOS: tuple[str, ...] = (
    HEALTH_BEAUTY,
    SPORTS_TOYS,
    TRAVEL_HOTELS,
    LEISURE,
    OTHER_SHOPPING,
)
SCENARIO_OF_CATEGORY = {
    "es_health": HEALTH_BEAUTY,
    "es_wellnessandbeauty": HEALTH_BEAUTY,
    "es_sportsandtoys": SPORTS_TOYS,
    "es_travel": TRAVEL_HOTELS,
    "es_hotelservices": TRAVEL_HOTELS,
    "es_leisure": LEISURE,
}
#: Day 0 of the stream by default (BankSim's file is named for 2014).
BANKSIM_START_TIME = datetime(2014, 1, 1, tzinfo=timezone.utc)
DEFAULT_BANKSIM_SEED = 1
COUNTRY = "ES"
DAY_MS = 86_400_000
#: A customer's daily rate: Gamma of this mean (the file: ~0.8 payments a day) and shape.
MEAN_DAILY_RATE = 0.8
DAILY_RATE_SHAPE = 2.0
#: Spread (sigma of the log) of the customers' spending levels, whose mean is 1.
SPENDING_LEVEL_SIGMA = 0.3
#: Share of a customer's legitimate payments in a category made at their favourite merchant.
FAVOURITE_SHARE = 0.8
#: Coefficients of variation of the legitimate and the fraud amounts.
LEGIT_AMOUNT_CV = 0.6
FRAUD_AMOUNT_CV = 0.5
#: An episode lasts Geometric(this) days (1 or more), at most LONGEST_EPISODE_DAYS.
EPISODE_END_PROBABILITY = 0.3
LONGEST_EPISODE_DAYS = 10
#: An episode makes FEWEST_FRAUDS + Poisson(EXTRA_FRAUDS_MEAN) frauds.
FEWEST_FRAUDS = 2
EXTRA_FRAUDS_MEAN = 3.0
#: How much likelier a category's first merchant is to see its frauds than each other one.
FIRST_MERCHANT_FRAUD_WEIGHT = 3
#: Ids are a letter and this many digits (the file's are 'C1093826151', 'M348934600').
ID_DIGITS = (9, 10)


@dataclass(frozen=True, slots=True)
class BanksimParameters:
    """Size, seed and start of the BankSim-like stream."""

    customers: int = 1_000
    days: int = 70
    seed: int = DEFAULT_BANKSIM_SEED
    #: Start of day 0; each day's payments are spread evenly over the 24 hours from it.
    start_time: datetime = BANKSIM_START_TIME
    #: A customer's chance of a fraud episode is ``days`` times this (at most 1).
    episode_probability_per_day: float = 0.0019

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days < 1:
            raise ValueError("customers and days must be at least 1")
        if not 0 <= self.episode_probability_per_day <= 1:
            raise ValueError("episode_probability_per_day must be in [0, 1]")


def _ids(rng: np.random.Generator, letter: str, count: int) -> list[str]:
    """``count`` distinct ids like BankSim's: a letter, then 9 or 10 digits."""
    ids: list[str] = []
    taken: set[str] = set()
    while len(ids) < count:
        digits = ID_DIGITS[int(rng.integers(len(ID_DIGITS)))]
        name = f"{letter}{int(rng.integers(10 ** (digits - 1), 10**digits))}"
        if name not in taken:
            taken.add(name)
            ids.append(name)
    return ids


def _gamma(
    rng: np.random.Generator, mean: npt.NDArray[np.float64], cv: float
) -> npt.NDArray[np.float64]:
    """Gamma amounts of these means and coefficient of variation, in cents, at least 0.01."""
    shape = 1 / cv**2
    amount = rng.gamma(shape, mean / shape)
    return np.maximum(np.round(amount, 2), 0.01)


#: Merchants per category, and the index of each category's first merchant among all 50.
MERCHANTS_PER_CATEGORY = np.array([category.merchants for category in BANKSIM_CATEGORIES])
FIRST_MERCHANT = np.concatenate(([0], np.cumsum(MERCHANTS_PER_CATEGORY)[:-1]))


@dataclass(frozen=True, slots=True)
class _Payments:
    """Drawn payments, one entry each: day, customer, category, merchant, amount, label."""

    day: npt.NDArray[np.int64]
    customer: npt.NDArray[np.int64]  # index into the customers
    category: npt.NDArray[np.int64]  # index into BANKSIM_CATEGORIES
    merchant: npt.NDArray[np.int64]  # index into the 50 merchants
    amount: npt.NDArray[np.float64]
    fraud: npt.NDArray[np.bool_]

    def __add__(self, other: _Payments) -> _Payments:
        return _Payments(
            *(np.concatenate((mine, theirs)) for mine, theirs in zip(self, other, strict=True))
        )

    def __iter__(self) -> Iterator[npt.NDArray[Any]]:
        return iter(
            (self.day, self.customer, self.category, self.merchant, self.amount, self.fraud)
        )

    def __getitem__(self, order: npt.NDArray[np.int64]) -> _Payments:
        return _Payments(*(column[order] for column in self))


def _category_weights(counts: list[int]) -> npt.NDArray[np.float64]:
    weights = np.array(counts, float)
    return weights / weights.sum()


def _legit_payments(rng: np.random.Generator, params: BanksimParameters) -> _Payments:
    """The customers' own payments: a Poisson count a day at each customer's own rate."""
    rate = rng.gamma(DAILY_RATE_SHAPE, MEAN_DAILY_RATE / DAILY_RATE_SHAPE, params.customers)
    level = rng.lognormal(-(SPENDING_LEVEL_SIGMA**2) / 2, SPENDING_LEVEL_SIGMA, params.customers)
    favourite = rng.integers(0, MERCHANTS_PER_CATEGORY, (params.customers, len(BANKSIM_CATEGORIES)))
    counts = rng.poisson(rate[:, None], (params.customers, params.days))
    customer, day = np.nonzero(counts)
    repeats = counts[customer, day]
    customer, day = np.repeat(customer, repeats), np.repeat(day, repeats)
    n = len(day)
    weights = _category_weights([c.payments - c.frauds for c in BANKSIM_CATEGORIES])
    category = rng.choice(len(BANKSIM_CATEGORIES), n, p=weights)
    mean = np.array([c.legit_mean for c in BANKSIM_CATEGORIES])[category] * level[customer]
    amount = _gamma(rng, mean, LEGIT_AMOUNT_CV)
    # The favourite, else one of the category's other merchants.
    sizes = MERCHANTS_PER_CATEGORY[category]
    own = favourite[customer, category]
    other = (own + rng.integers(1, sizes)) % sizes
    at_favourite = rng.random(n) < FAVOURITE_SHARE
    merchant = FIRST_MERCHANT[category] + np.where(at_favourite, own, other)
    return _Payments(day, customer, category, merchant, amount, np.zeros(n, bool))


def _cloned_card_payments(rng: np.random.Generator, params: BanksimParameters) -> _Payments:
    """The frauds: at most one episode per customer, a few large payments over a few days."""
    probability = min(1.0, params.days * params.episode_probability_per_day)
    victims = np.flatnonzero(rng.random(params.customers) < probability)
    first_day = rng.integers(0, params.days, len(victims))
    length = rng.geometric(EPISODE_END_PROBABILITY, len(victims))
    length = np.minimum(length, LONGEST_EPISODE_DAYS)
    length = np.minimum(length, params.days - first_day)  # the stream ends first
    frauds = FEWEST_FRAUDS + rng.poisson(EXTRA_FRAUDS_MEAN, len(victims))
    customer = np.repeat(victims, frauds)
    n = len(customer)
    day = np.repeat(first_day, frauds) + (rng.random(n) * np.repeat(length, frauds)).astype(
        np.int64
    )
    weights = _category_weights([c.frauds for c in BANKSIM_CATEGORIES])
    category = rng.choice(len(BANKSIM_CATEGORIES), n, p=weights)
    mean = np.array([c.fraud_mean for c in BANKSIM_CATEGORIES])[category]
    amount = _gamma(rng, mean, FRAUD_AMOUNT_CV)  # not the customer's level: the thief's
    # Uniform over the category's merchants, but the first one has extra slots of its own.
    extra = FIRST_MERCHANT_FRAUD_WEIGHT - 1
    slot = rng.integers(0, MERCHANTS_PER_CATEGORY[category] + extra)
    merchant = FIRST_MERCHANT[category] + np.maximum(slot - extra, 0)
    return _Payments(day, customer, category, merchant, amount, np.ones(n, bool))


class BanksimSimulator:
    """The BankSim-like stream as :class:`LabeledTransaction` records in event-time order."""

    def __init__(self, params: BanksimParameters | None = None) -> None:
        self.params = params or BanksimParameters()

    def __iter__(self) -> Iterator[LabeledTransaction]:
        params = self.params
        rng = np.random.default_rng(params.seed)
        merchants = _ids(rng, "M", int(MERCHANTS_PER_CATEGORY.sum()))
        customers = _ids(rng, "C", params.customers)
        payments = _legit_payments(rng, params) + _cloned_card_payments(rng, params)
        # Each day's payments, legitimate and fraud together, in a random order.
        shuffled = rng.permutation(len(payments.day))
        payments = payments[shuffled[np.argsort(payments.day[shuffled], kind="stable")]]
        per_day = np.bincount(payments.day, minlength=params.days)
        rank = np.arange(len(payments.day)) - (np.cumsum(per_day) - per_day)[payments.day]
        # The k-th of a day's n payments at k x DAY_MS // n, as CsvReplay spreads a step's rows.
        offset = rank * DAY_MS // per_day[payments.day]
        at_ms = (epoch_ms(params.start_time) + payments.day * DAY_MS + offset).tolist()
        customer = payments.customer.tolist()
        category = payments.category.tolist()
        merchant = payments.merchant.tolist()
        amount = payments.amount.tolist()
        fraud = payments.fraud.tolist()
        prefix = f"bs-{params.seed}-"
        for number in range(len(at_ms)):
            name = BANKSIM_CATEGORIES[category[number]].name
            is_fraud = bool(fraud[number])
            yield LabeledTransaction(
                transaction_id=f"{prefix}{number:09d}",
                user_id=customers[customer[number]],
                amount=amount[number],
                timestamp_ms=at_ms[number],
                scenario=(
                    SCENARIO_OF_CATEGORY.get(name, OTHER_SHOPPING) if is_fraud else NORMAL_SCENARIO
                ),
                is_fraud=is_fraud,
                merchant_id=merchants[merchant[number]],
                country=COUNTRY,
                category=name,
            )
