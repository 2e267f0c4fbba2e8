"""A third labeled stream, designed unlike the other two: personas, places, categories, channels.

Neither fraudstream's scenario generator nor the handbook's simulator was the model for it; it
exists to show how detection moves on a stream nothing was tuned on. Each user follows one of
five personas (commuter, family, online shopper, traveller, rare spender) with log-normal
amounts of very different medians and spreads, their own daily rate, a peak hour, a home place
and a few favourite merchants nearby. Merchants have a place (degrees around Europe), a
category, a country and an online flag. Frauds, labeled by scenario:

* ``card_testing``: 3-10 tiny amounts (0.5-3) online at one new merchant minutes apart, then
  1-2 cash-outs at 5-15 x the user's median;
* ``account_takeover``: 1-3 online payments within an hour, far away, in a new country and a
  new category, at 3-8 x the median;
* ``compromised_merchant``: every third day one merchant is skimmed for 10 days: every payment
  there is fraud, with ordinary amounts (only labels can reveal it);
* ``slow_drain``: 4-8 online payments over two days at new merchants, at 1-2 x the median.

The whole stream is drawn at once and sorted by event time (about 270,000 transactions for
the default 3,000 users and 60 days: ~100 MB), from ``random.Random(seed)``: the same seed gives
the same stream.

>>> records = list(PersonaSimulator(PersonaParameters(users=30, days=10, seed=1)))
>>> records == sorted(records, key=lambda r: r.timestamp_ms)
True
>>> records[0].transaction_id
'pe-1-000000000'
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms

DAY_MS = 86_400_000
CARD_TESTING = "card_testing"
ACCOUNT_TAKEOVER = "account_takeover"
COMPROMISED_MERCHANT = "compromised_merchant"
SLOW_DRAIN = "slow_drain"
#: The stream's fraud scenarios.
PERSONA_SCENARIOS: tuple[str, ...] = (
    CARD_TESTING,
    ACCOUNT_TAKEOVER,
    COMPROMISED_MERCHANT,
    SLOW_DRAIN,
)
CATEGORIES = (
    "grocery", "fuel", "restaurant", "transport", "retail", "electronics", "travel", "digital",
)  # fmt: skip
MERCHANT_COUNTRIES = ("DE", "FR", "IT", "ES", "NL", "PL")
TAKEOVER_COUNTRIES = ("US", "BR", "NG", "TH", "RU", "VN")
TAKEOVER_CATEGORIES = ("electronics", "digital", "travel")


@dataclass(frozen=True, slots=True)
class Persona:
    """How one kind of card holder spends."""

    median: tuple[float, float]  # range of the user's median amount (drawn log-uniformly)
    sigma: tuple[float, float]  # range of the spread of log amounts
    per_day: tuple[float, float]  # range of the mean transactions per day
    online: float  # share of payments made online at merchants that are not online-only
    travel: float  # share of payments at any merchant, anywhere
    categories: tuple[str, ...]  # where the user shops besides their favourites


PERSONAS: dict[str, Persona] = {
    "commuter": Persona(
        (5, 30), (0.2, 0.5), (2, 6), 0.1, 0.005, ("grocery", "transport", "restaurant")
    ),
    "family": Persona((30, 120), (0.4, 0.8), (1, 3), 0.2, 0.01, ("grocery", "fuel", "retail")),
    "online": Persona(
        (15, 80), (0.8, 1.3), (0.5, 3), 0.8, 0.0, ("digital", "retail", "electronics")
    ),
    "traveller": Persona(
        (40, 300), (0.6, 1.2), (0.5, 2), 0.4, 0.25, ("travel", "restaurant", "retail")
    ),
    "rare": Persona(
        (20, 400), (0.5, 1.0), (0.05, 0.3), 0.3, 0.02, ("retail", "electronics", "grocery")
    ),
}


@dataclass(frozen=True, slots=True)
class PersonaParameters:
    """Size, seed and start of the persona stream."""

    users: int = 3_000
    days: int = 60
    seed: int = 7
    start_time: datetime = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    #: Chance that a user's turn is a fraud incident instead of a payment.
    incident_probability: float = 0.0025

    def __post_init__(self) -> None:
        if self.users < 1 or self.days < 1:
            raise ValueError("users and days must be at least 1")


@dataclass(frozen=True, slots=True)
class _Merchant:
    id: str
    category: str
    latitude: float
    longitude: float
    online: bool
    country: str


class PersonaSimulator:
    """The persona stream as :class:`LabeledTransaction` records in event-time order."""

    def __init__(self, params: PersonaParameters | None = None) -> None:
        self.params = params or PersonaParameters()

    def __iter__(self) -> Iterator[LabeledTransaction]:
        drafts = self._draw()
        drafts.sort(key=lambda record: record.timestamp_ms)
        prefix = f"pe-{self.params.seed}-"
        for number, draft in enumerate(drafts):
            yield replace(draft, transaction_id=f"{prefix}{number:09d}")

    def _draw(self) -> list[LabeledTransaction]:
        params = self.params
        rng = random.Random(params.seed)
        merchants = [
            _Merchant(
                f"M{i}",
                rng.choice(CATEGORIES),
                rng.uniform(40, 55),
                rng.uniform(-5, 20),
                rng.random() < 0.3,
                rng.choice(MERCHANT_COUNTRIES),
            )
            for i in range(max(500, params.users // 2))
        ]
        by_category: dict[str, list[int]] = {category: [] for category in CATEGORIES}
        for index, merchant in enumerate(merchants):
            by_category[merchant.category].append(index)
        start = epoch_ms(params.start_time)
        end = start + params.days * DAY_MS
        skimmed: dict[int, list[tuple[int, int]]] = {}
        for day in range(0, params.days, 3):
            victim = rng.randrange(len(merchants))
            window = (start + day * DAY_MS, start + (day + 10) * DAY_MS)
            skimmed.setdefault(victim, []).append(window)
        out: list[LabeledTransaction] = []
        for number in range(params.users):
            persona = PERSONAS[rng.choice(list(PERSONAS))]
            median = math.exp(rng.uniform(math.log(persona.median[0]), math.log(persona.median[1])))
            sigma = rng.uniform(*persona.sigma)
            rate = rng.uniform(*persona.per_day)
            home = (rng.uniform(42, 53), rng.uniform(-2, 18))
            near = sorted(
                range(len(merchants)),
                key=lambda i: (
                    (merchants[i].latitude - home[0]) ** 2 + (merchants[i].longitude - home[1]) ** 2
                ),
            )[:60]
            favourites = rng.sample(near, k=min(len(near), rng.randint(3, 10)))
            peak_ms = rng.uniform(8, 20) * 3_600_000

            def emit(
                at_ms: float,
                amount: float,
                index: int,
                scenario: str,
                channel: str | None = None,
                country: str | None = None,
                far: bool = False,
                user: str = f"P{number}",
                persona: Persona = persona,
            ) -> None:
                merchant = merchants[index]
                if far:
                    place = (rng.uniform(-30, 60), rng.uniform(-100, 140))
                else:
                    place = (merchant.latitude, merchant.longitude)
                moment = int(at_ms)
                if scenario == NORMAL_SCENARIO and any(
                    start_ms <= moment < end_ms for start_ms, end_ms in skimmed.get(index, ())
                ):
                    scenario = COMPROMISED_MERCHANT
                if channel is None:
                    online = merchant.online or rng.random() < persona.online
                    channel = "online" if online else "pos"
                out.append(
                    LabeledTransaction(
                        transaction_id="",
                        user_id=user,
                        amount=round(max(0.01, amount), 2),
                        timestamp_ms=moment,
                        scenario=scenario,
                        is_fraud=scenario != NORMAL_SCENARIO,
                        merchant_id=merchant.id,
                        country=country or merchant.country,
                        channel=channel,
                        x=round(place[1], 5),
                        y=round(place[0], 5),
                        category=merchant.category,
                    )
                )

            turn = start + rng.expovariate(rate) * DAY_MS
            while turn < end:
                day_start = turn - (turn - start) % DAY_MS
                at = day_start + (peak_ms + rng.gauss(0, 3 * 3_600_000)) % DAY_MS
                if rng.random() < params.incident_probability:
                    kind = rng.choice((CARD_TESTING, ACCOUNT_TAKEOVER, SLOW_DRAIN))
                    target = rng.randrange(len(merchants))
                    if kind == CARD_TESTING:
                        for _ in range(rng.randint(3, 10)):
                            emit(at, rng.uniform(0.5, 3), target, kind, "online")
                            at += rng.uniform(20, 240) * 1000
                        for _ in range(rng.randint(1, 2)):
                            cash_out = rng.randrange(len(merchants))
                            emit(at, median * rng.uniform(5, 15), cash_out, kind, "online")
                            at += rng.uniform(60, 600) * 1000
                    elif kind == ACCOUNT_TAKEOVER:
                        country = rng.choice(TAKEOVER_COUNTRIES)
                        category = rng.choice(TAKEOVER_CATEGORIES)
                        for _ in range(rng.randint(1, 3)):
                            index = rng.choice(by_category[category])
                            amount = median * rng.uniform(3, 8)
                            emit(at, amount, index, kind, "online", country, far=True)
                            at += rng.uniform(120, 3600) * 1000
                    else:
                        for _ in range(rng.randint(4, 8)):
                            index = rng.randrange(len(merchants))
                            emit(at, median * rng.uniform(1, 2), index, kind, "online")
                            at += rng.uniform(2, 10) * 3_600_000
                else:
                    if rng.random() < persona.travel:
                        index = rng.randrange(len(merchants))
                    elif rng.random() < 0.8:
                        index = rng.choice(favourites)
                    else:
                        pool = by_category[rng.choice(persona.categories)]
                        index = rng.choice(pool) if pool else rng.choice(near)
                    emit(at, math.exp(rng.gauss(math.log(median), sigma)), index, NORMAL_SCENARIO)
                turn += rng.expovariate(rate) * DAY_MS
        return out
