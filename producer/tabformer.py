"""A sixth labeled stream, shaped like IBM's synthetic card transactions (TabFormer).

IBM's data set (Altman, "Synthesizing Credit Card Transactions", 2019) has the columns of a
card processor's log: a merchant category code (MCC), how the card was used (chip, swipe or
online), the merchant's city and state (a country name abroad, nothing online) and a fraud
flag on about one payment in a thousand. This stream has that shape and that rarity; every
number in it is our assumption, not the published file's statistics (which are not available
here), and it was written after every default of the detector was set, to see how the labels
behave when frauds are rare: a few dozen a week in the whole stream.

Legitimate payments: each user has a home state, a rate (Gamma, mean 3 a day), a spending
level (lognormal, sigma 0.4), a usual hour, a share of chip over swipe, their own mix of 25 MCCs
(Dirichlet around the stream's), one to three usual merchants per MCC (90 % of their in-store
payments there, 85 % of their online ones at the first), and a few trips (Poisson, one per 60
days, 2-5 days; one in ten abroad) on which every in-store payment is at a new merchant in the
trip's state or country. An amount is the MCC's median times the level times a lognormal of
the MCC's spread (0.3-0.9).

Frauds: ``days`` x 0.06 % of the users get one compromised-card episode of 1-11 days, 2 +
Poisson(8) payments at any hour, each at a merchant new to the card, in the MCCs fraudsters
favour (department and discount stores, wholesale, electronics, clothing, jewellery, money
transfer, digital goods), at about 2.2 times (lognormal, sigma 0.6) the MCC's usual amount for
that user, while the user keeps paying. ``card_not_present`` (55 %): online; ``cloned_far``
(25 %): a cloned card swiped abroad (six in ten) or in another state; ``cloned_near`` (20 %):
swiped in the user's own state. About 210,000 payments at the default 1,000 users over 70
days; over seeds 1-20, 0.14-0.28 % of them fraud (mean 0.20 %), on 29-59 cards, the frauds'
mean amount 3.1-4.7 times the legitimate mean.

>>> records = list(TabformerSimulator(TabformerParameters(users=20, days=10, seed=1)))
>>> records == sorted(records, key=lambda r: r.timestamp_ms)
True
>>> records[0].channel in CHANNELS, records[0].category in {m.code for m in TABFORMER_MCCS}
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms


@dataclass(frozen=True, slots=True)
class Mcc:
    """A merchant category code and how its legitimate payments look."""

    code: str
    share: float  # of legitimate payments, before each user's own mix
    median: float  # median amount for a user of spending level 1
    sigma: float  # spread of the log amount
    online: float  # share of its payments made online


TABFORMER_MCCS: tuple[Mcc, ...] = (
    Mcc("5411", 0.12, 40, 0.7, 0.02),  # grocery stores
    Mcc("5499", 0.10, 18, 0.7, 0.0),  # convenience and food stores
    Mcc("5541", 0.10, 32, 0.5, 0.0),  # service stations
    Mcc("5812", 0.07, 38, 0.6, 0.02),  # restaurants
    Mcc("5814", 0.08, 10, 0.5, 0.05),  # fast food
    Mcc("5912", 0.06, 22, 0.8, 0.05),  # drug stores
    Mcc("4829", 0.05, 60, 0.9, 1.0),  # money transfer
    Mcc("5300", 0.05, 70, 0.8, 0.1),  # wholesale clubs
    Mcc("5311", 0.04, 55, 0.8, 0.2),  # department stores
    Mcc("4121", 0.04, 16, 0.5, 0.3),  # taxis
    Mcc("4784", 0.04, 6, 0.4, 0.5),  # tolls
    Mcc("7538", 0.02, 150, 0.7, 0.0),  # car repair
    Mcc("5310", 0.03, 40, 0.7, 0.1),  # discount stores
    Mcc("5942", 0.02, 25, 0.6, 0.4),  # book stores
    Mcc("5651", 0.02, 60, 0.7, 0.3),  # clothing
    Mcc("5732", 0.015, 120, 0.9, 0.4),  # electronics
    Mcc("4814", 0.02, 55, 0.3, 1.0),  # telecom
    Mcc("4900", 0.02, 110, 0.4, 1.0),  # utilities
    Mcc("7832", 0.02, 22, 0.4, 0.2),  # cinemas
    Mcc("5815", 0.03, 12, 0.6, 1.0),  # digital goods
    Mcc("3000", 0.005, 350, 0.6, 0.9),  # airlines
    Mcc("7011", 0.01, 180, 0.6, 0.5),  # hotels
    Mcc("5094", 0.003, 200, 0.9, 0.2),  # jewellery
    Mcc("5719", 0.01, 80, 0.8, 0.3),  # home furnishings
    Mcc("8021", 0.005, 180, 0.7, 0.0),  # dentists
)
CODES = tuple(mcc.code for mcc in TABFORMER_MCCS)
ONLINE = "Online Transaction"
CHIP = "Chip Transaction"
SWIPE = "Swipe Transaction"
#: The values of the channel field, as IBM's ``Use Chip`` column spells them.
CHANNELS = (CHIP, SWIPE, ONLINE)
STATES = (
    "CA", "TX", "FL", "NY", "PA", "OH", "IL", "MI", "GA", "NC", "NJ", "VA", "WA", "AZ", "MA",
    "TN", "IN", "MO", "MD", "WI", "CO", "MN", "SC", "AL", "LA", "KY", "OR", "OK", "CT", "IA",
)  # fmt: skip
ABROAD = (
    "Italy", "Mexico", "Canada", "Japan", "France", "Haiti", "China", "Germany",
    "Dominican Republic", "India",
)  # fmt: skip
#: MCCs of the frauds, swiped and online.
FRAUD_MCCS = (
    "5311",
    "5300",
    "5732",
    "5651",
    "5310",
    "5912",
    "5411",
    "5094",
    "4829",
    "5815",
    "5719",
)
ONLINE_FRAUD_MCCS = ("5311", "5300", "5732", "5651", "4829", "5815", "5094", "5719")
CARD_NOT_PRESENT = "card_not_present"
CLONED_FAR = "cloned_far"
CLONED_NEAR = "cloned_near"
#: The stream's fraud scenarios and their shares of the episodes.
TABFORMER_SCENARIOS: tuple[str, ...] = (CARD_NOT_PRESENT, CLONED_FAR, CLONED_NEAR)
SCENARIO_SHARES = (0.55, 0.25, 0.20)
TABFORMER_START_TIME = datetime(2019, 1, 1, tzinfo=timezone.utc)
DEFAULT_TABFORMER_SEED = 1
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TabformerParameters:
    """Size, seed and start of the TabFormer-shaped stream."""

    users: int = 1_000
    days: int = 70
    seed: int = DEFAULT_TABFORMER_SEED
    start_time: datetime = TABFORMER_START_TIME
    #: A user's chance of a compromised-card episode is ``days`` times this (at most 1).
    episode_probability_per_day: float = 0.0006

    def __post_init__(self) -> None:
        if self.users < 1 or self.days < 1:
            raise ValueError("users and days must be at least 1")
        if not 0 <= self.episode_probability_per_day <= 1:
            raise ValueError("episode_probability_per_day must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class _Payment:
    """One drawn payment before it gets its id."""

    at_ms: int
    user: str
    amount: float
    merchant: str
    place: str | None  # state or country; None online, as IBM's file leaves it empty
    channel: str
    mcc: str
    scenario: str


class TabformerSimulator:
    """The TabFormer-shaped stream as :class:`LabeledTransaction` records in event-time order."""

    def __init__(self, params: TabformerParameters | None = None) -> None:
        self.params = params or TabformerParameters()
        self._merchants = 0

    def _new_merchant(self, rng: np.random.Generator) -> str:
        self._merchants += 1
        return f"m{int(rng.integers(10**8, 10**9))}{self._merchants}"

    def __iter__(self) -> Iterator[LabeledTransaction]:
        params = self.params
        rng = np.random.default_rng(params.seed)
        self._merchants = 0
        payments: list[_Payment] = []
        for user in range(params.users):
            payments.extend(self._user(rng, str(user)))
        payments.sort(key=lambda payment: payment.at_ms)
        prefix = f"tf-{params.seed}-"
        for number, payment in enumerate(payments):
            fraud = payment.scenario != NORMAL_SCENARIO
            yield LabeledTransaction(
                transaction_id=f"{prefix}{number:09d}",
                user_id=payment.user,
                amount=payment.amount,
                timestamp_ms=payment.at_ms,
                scenario=payment.scenario,
                is_fraud=fraud,
                merchant_id=payment.merchant,
                country=payment.place,
                channel=payment.channel,
                category=payment.mcc,
            )

    def _user(self, rng: np.random.Generator, user: str) -> list[_Payment]:
        """One user's legitimate payments, then their fraud episode if they have one."""
        params = self.params
        start = epoch_ms(params.start_time)
        medians = np.array([mcc.median for mcc in TABFORMER_MCCS])
        shares = np.array([mcc.share for mcc in TABFORMER_MCCS])
        home = STATES[min(int(rng.exponential(8)), len(STATES) - 1)]
        rate = rng.gamma(3.0, 1.0)
        level = rng.lognormal(-0.08, 0.4)
        chip_share = rng.uniform(0.2, 0.9)
        usual_hour = rng.uniform(10, 19)
        mix = rng.dirichlet(shares / shares.sum() * 40)
        usual = {
            code: [self._new_merchant(rng) for _ in range(int(rng.integers(1, 4)))]
            for code in CODES
        }
        trips = []
        for _ in range(rng.poisson(params.days / 60)):
            first = int(rng.integers(0, params.days))
            abroad = rng.random() < 0.1
            where = (
                ABROAD[int(rng.integers(len(ABROAD)))]
                if abroad
                else STATES[int(rng.integers(len(STATES)))]
            )
            trips.append((first, first + int(rng.integers(2, 6)), where))
        out: list[_Payment] = []
        for moment in np.sort(rng.random(rng.poisson(rate * params.days)) * params.days):
            day = int(moment)
            hour = float(np.clip(rng.normal(usual_hour, 3.5), 5.5, 23.9))
            at_ms = start + day * DAY_MS + int(hour * HOUR_MS) + int(rng.integers(0, 60_000))
            k = int(rng.choice(len(CODES), p=mix))
            mcc = TABFORMER_MCCS[k]
            amount = round(float(mcc.median * level * rng.lognormal(0, mcc.sigma)), 2)
            trip = next((where for first, last, where in trips if first <= day < last), None)
            place: str | None
            if rng.random() < mcc.online:
                channel, place = ONLINE, None
                merchant = usual[mcc.code][0] if rng.random() < 0.85 else self._new_merchant(rng)
            else:
                channel = CHIP if rng.random() < chip_share else SWIPE
                if trip is not None:
                    place, merchant = trip, self._new_merchant(rng)
                else:
                    place = home
                    mine = usual[mcc.code]
                    regular = rng.random() < 0.9
                    merchant = (
                        mine[int(rng.integers(len(mine)))] if regular else self._new_merchant(rng)
                    )
            out.append(
                _Payment(at_ms, user, amount, merchant, place, channel, mcc.code, NORMAL_SCENARIO)
            )
        if rng.random() < min(1.0, params.days * params.episode_probability_per_day):
            out.extend(self._episode(rng, user, home, level, medians))
        return out

    def _episode(
        self, rng: np.random.Generator, user: str, home: str, level: float, medians: np.ndarray
    ) -> list[_Payment]:
        """A compromised card: a few payments a day at new merchants, for 1-11 days."""
        params = self.params
        start = epoch_ms(params.start_time)
        scenario = str(rng.choice(TABFORMER_SCENARIOS, p=SCENARIO_SHARES))
        first = int(rng.integers(0, params.days))
        length = min(int(rng.integers(1, 12)), params.days - first)  # the stream ends first
        count = 2 + int(rng.poisson(8))
        abroad = rng.random() < 0.6
        far = (
            ABROAD[int(rng.integers(len(ABROAD)))]
            if abroad
            else STATES[int(rng.integers(len(STATES)))]
        )
        out: list[_Payment] = []
        for _ in range(count):
            at_ms = start + int((first + rng.random() * length) * DAY_MS)
            factor = rng.lognormal(np.log(2.2), 0.6)
            place: str | None
            if scenario == CARD_NOT_PRESENT:
                code = ONLINE_FRAUD_MCCS[int(rng.integers(len(ONLINE_FRAUD_MCCS)))]
                channel, place = ONLINE, None
            else:
                code = FRAUD_MCCS[int(rng.integers(len(FRAUD_MCCS)))]
                channel, place = SWIPE, far if scenario == CLONED_FAR else home
            median = float(medians[CODES.index(code)])
            amount = round(median * level * factor * float(rng.lognormal(0, 0.3)), 2)
            out.append(
                _Payment(
                    at_ms, user, amount, self._new_merchant(rng), place, channel, code, scenario
                )
            )
        return out
