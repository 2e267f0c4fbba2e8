"""The transaction simulator of the *Fraud Detection Handbook*, as an event-time ordered stream.

Our own implementation of the simulator described in "Reproducible Machine Learning for Credit
Card Fraud Detection - Practical handbook" (Le Borgne, Siblini, Lebichot, Bontempi), chapter
"Simulated dataset", so detectors can be compared on the handbook's well-known fraud patterns:

* customers and terminals sit at uniform random points of a 100 x 100 grid; a customer pays only
  at terminals closer than ``radius`` (5: about 78 terminals each at the default density);
* per customer: mean amount uniform in [5, 100], standard deviation half of it, mean
  transactions per day uniform in [0, 4]; each day's count is Poisson;
* a transaction's second of the day is normal around noon (sd 20,000 s); draws outside the day
  are discarded, as in the handbook; an amount is normal around the customer's mean, a negative
  draw is replaced by a uniform one in [0, 2 x mean]; amounts are rounded to cents;
* fraud, labeled as in the handbook (a later scenario overrides an earlier label):
  (1) ``handbook_amount``: every amount above 220; (2) ``handbook_terminal``: each day 2 random
  terminals are compromised for 28 days (that day included), all their transactions are fraud;
  (3) ``handbook_customer``: each day 3 random customers are compromised for 14 days, a third
  of their transactions are multiplied by 5 and are fraud.

Differences from the handbook's notebook, all made so the stream can be generated day by day:

* scenario (3) marks each transaction of a compromised customer with probability 1/3 (the
  notebook draws exactly a third of the window's transactions, which needs the next 14 days);
* compromises are drawn on every simulated day (the notebook skips the last one);
* the numbers compromised per day scale with the population (2 per 10,000 terminals, 3 per
  5,000 customers; a fractional rate is spread over the days), so a small set keeps the
  handbook's fraud rates; at the default size they are exactly 2 and 3;
* times have millisecond resolution; draws use numpy's PCG64 seeded from ``seed``, so the
  stream is not the handbook's published dataset, only the same process.

The default set (5,000 customers, 10,000 terminals, 183 days) gives about 1.77 million
transactions (the handbook's draw: 1,754,155) of which 0.84 % are fraud. Memory holds one day
at a time (numpy arrays).

>>> from itertools import islice
>>> sim = HandbookSimulator(HandbookParameters(customers=20, terminals=50, days=2, seed=1))
>>> [tx.transaction_id for tx in islice(sim, 2)]
['hb-1-000000000', 'hb-1-000000001']
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import numpy.typing as npt

from producer.generator import DEFAULT_SEED
from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms

HANDBOOK_AMOUNT = "handbook_amount"
HANDBOOK_TERMINAL = "handbook_terminal"
HANDBOOK_CUSTOMER = "handbook_customer"
#: The handbook's fraud scenarios, in its numbering (1, 2, 3).
HANDBOOK_SCENARIOS: tuple[str, ...] = (HANDBOOK_AMOUNT, HANDBOOK_TERMINAL, HANDBOOK_CUSTOMER)
#: Scenario name of each code in :attr:`HandbookDay.scenario` (0 is legitimate traffic).
SCENARIO_BY_CODE: tuple[str, ...] = (NORMAL_SCENARIO, *HANDBOOK_SCENARIOS)
NORMAL_CODE, AMOUNT_CODE, TERMINAL_CODE, CUSTOMER_CODE = range(4)

DEFAULT_CUSTOMERS = 5000
DEFAULT_TERMINALS = 10_000
DEFAULT_DAYS = 183
DEFAULT_RADIUS = 5.0
#: The handbook's first simulated day.
HANDBOOK_START_TIME = datetime(2018, 4, 1, tzinfo=timezone.utc)

#: The handbook's daily compromises, and the population sizes they were set for.
HANDBOOK_TERMINALS_COMPROMISED_PER_DAY = 2
HANDBOOK_CUSTOMERS_COMPROMISED_PER_DAY = 3

SECONDS_PER_DAY = 86_400
MILLISECONDS_PER_DAY = SECONDS_PER_DAY * 1000
#: Absorbs float error in running totals of daily compromises.
COUNT_EPSILON = 1e-9

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class HandbookParameters:
    """Size, seed and every constant of the handbook's simulator (defaults: the handbook's)."""

    customers: int = DEFAULT_CUSTOMERS
    terminals: int = DEFAULT_TERMINALS
    days: int = DEFAULT_DAYS
    seed: int = DEFAULT_SEED
    #: Start of day 0; noon of day d is ``start_time + d days + 12 h``.
    start_time: datetime = HANDBOOK_START_TIME
    radius: float = DEFAULT_RADIUS
    grid_size: float = 100.0

    # --- legitimate traffic -------------------------------------------------------------------
    mean_amount_bounds: tuple[float, float] = (5.0, 100.0)
    std_amount_ratio: float = 0.5  # std of a customer's amounts = ratio x their mean
    transactions_per_day_bounds: tuple[float, float] = (0.0, 4.0)
    time_of_day_mean_seconds: float = SECONDS_PER_DAY / 2
    time_of_day_std_seconds: float = 20_000.0

    # --- fraud scenarios ----------------------------------------------------------------------
    fraud_amount_threshold: float = 220.0  # scenario 1: fraud strictly above
    #: Scenario 2; None: the handbook's 2 per 10,000 terminals.
    terminals_compromised_per_day: float | None = None
    terminal_compromise_days: int = 28
    #: Scenario 3; None: the handbook's 3 per 5,000 customers.
    customers_compromised_per_day: float | None = None
    customer_compromise_days: int = 14
    customer_fraud_share: float = 1 / 3
    customer_fraud_multiplier: float = 5.0

    def __post_init__(self) -> None:
        if self.customers < 1 or self.terminals < 1:
            raise ValueError("customers and terminals must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.radius <= 0 or self.grid_size <= 0:
            raise ValueError("radius and grid_size must be positive")
        low, high = self.mean_amount_bounds
        if not 0 < low <= high:
            raise ValueError("mean_amount_bounds must be positive and ordered")
        low, high = self.transactions_per_day_bounds
        if not 0 <= low <= high:
            raise ValueError("transactions_per_day_bounds must be >= 0 and ordered")
        if not 0 <= self.customer_fraud_share <= 1:
            raise ValueError("customer_fraud_share must be in [0, 1]")
        for name in ("terminals_compromised_per_day", "customers_compromised_per_day"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")

    @property
    def terminal_compromises_per_day(self) -> float:
        """Terminals compromised per day: as given, or the handbook's rate for this size."""
        if self.terminals_compromised_per_day is not None:
            return self.terminals_compromised_per_day
        return HANDBOOK_TERMINALS_COMPROMISED_PER_DAY * self.terminals / DEFAULT_TERMINALS

    @property
    def customer_compromises_per_day(self) -> float:
        """Customers compromised per day: as given, or the handbook's rate for this size."""
        if self.customers_compromised_per_day is not None:
            return self.customers_compromised_per_day
        return HANDBOOK_CUSTOMERS_COMPROMISED_PER_DAY * self.customers / DEFAULT_CUSTOMERS


def compromises_on_day(day: int, per_day: float) -> int:
    """How many are compromised on ``day``: days 0..day total ``per_day x (day+1)``, rounded.

    Rounding (not flooring) the running total keeps a fractional rate from lagging: 0.2 a
    day compromises on days 2, 7, 12, ... rather than 4, 9, 14, ...
    """
    return _rounded((day + 1) * per_day) - _rounded(day * per_day)


def _rounded(total: float) -> int:
    """Half-up rounding that absorbs float error (5 x 0.1 is 0.5, not 0.49999...)."""
    return math.floor(total + 0.5 + COUNT_EPSILON)


def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent random stream of the seed, so one part never shifts another's draws."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed % 2**64, stream])))


#: Random streams of :func:`_rng`.
POPULATION_STREAM, TRAFFIC_STREAM, FRAUD_STREAM = range(3)


@dataclass(frozen=True, slots=True)
class HandbookPopulation:
    """Customer profiles, terminal locations and the terminals each customer can use."""

    customer_xy: FloatArray  # (customers, 2)
    mean_amount: FloatArray
    std_amount: FloatArray
    transactions_per_day: FloatArray
    terminal_xy: FloatArray  # (terminals, 2)
    #: Customer c uses ``available[available_start[c]:available_start[c + 1]]`` (ascending).
    available_start: IntArray
    available: IntArray

    @property
    def available_count(self) -> IntArray:
        """Number of terminals within the radius of each customer."""
        return np.diff(self.available_start)

    def terminals_of(self, customer: int) -> IntArray:
        """The terminals ``customer`` pays at, ascending."""
        return self.available[self.available_start[customer] : self.available_start[customer + 1]]


def terminals_within(
    customer_xy: FloatArray, terminal_xy: FloatArray, radius: float
) -> tuple[IntArray, IntArray]:
    """Per customer, the terminals strictly closer than ``radius`` (CSR: starts, flat ids).

    Terminals are sorted by x once; each customer then only measures the strip within
    ``radius`` of its x, so the cost grows with customers x terminals-per-strip, not the grid.
    """
    order = np.argsort(terminal_xy[:, 0], kind="stable")
    sorted_x = terminal_xy[order, 0]
    sorted_y = terminal_xy[order, 1]
    lows = np.searchsorted(sorted_x, customer_xy[:, 0] - radius, side="left")
    highs = np.searchsorted(sorted_x, customer_xy[:, 0] + radius, side="right")
    radius_squared = radius * radius
    chunks: list[IntArray] = []
    counts = np.zeros(len(customer_xy), dtype=np.int64)
    for customer, (x, y) in enumerate(customer_xy.tolist()):
        low, high = int(lows[customer]), int(highs[customer])
        dx = sorted_x[low:high] - x
        dy = sorted_y[low:high] - y
        near = np.sort(order[low:high][dx * dx + dy * dy < radius_squared])
        chunks.append(near.astype(np.int64))
        counts[customer] = len(near)
    starts = np.zeros(len(customer_xy) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    return starts, flat


def draw_population(params: HandbookParameters) -> HandbookPopulation:
    """Customers and terminals of the grid, from the seed's own population stream."""
    rng = _rng(params.seed, POPULATION_STREAM)
    customer_xy = rng.uniform(0.0, params.grid_size, size=(params.customers, 2))
    mean_amount = rng.uniform(*params.mean_amount_bounds, size=params.customers)
    transactions_per_day = rng.uniform(*params.transactions_per_day_bounds, size=params.customers)
    terminal_xy = rng.uniform(0.0, params.grid_size, size=(params.terminals, 2))
    starts, flat = terminals_within(customer_xy, terminal_xy, params.radius)
    return HandbookPopulation(
        customer_xy=customer_xy,
        mean_amount=mean_amount,
        std_amount=mean_amount * params.std_amount_ratio,
        transactions_per_day=transactions_per_day,
        terminal_xy=terminal_xy,
        available_start=starts,
        available=flat,
    )


@dataclass(frozen=True, slots=True)
class HandbookDay:
    """One simulated day, columnar and in event-time order (what :meth:`days` yields).

    Row i is the transaction numbered ``first_number + i`` in the stream.
    """

    day: int
    first_number: int
    timestamp_ms: IntArray  # event time, epoch milliseconds, non-decreasing
    customer: IntArray
    terminal: IntArray
    amount: FloatArray  # as sent: scenario 3 amounts already multiplied
    scenario: npt.NDArray[np.int8]  # index into SCENARIO_BY_CODE
    compromised_terminals: IntArray  # terminals whose transactions are fraud today, ascending
    compromised_customers: IntArray  # customers under scenario 3 today, ascending

    def __len__(self) -> int:
        return len(self.timestamp_ms)

    @property
    def is_fraud(self) -> npt.NDArray[np.bool_]:
        """Ground truth of each row."""
        return self.scenario != NORMAL_CODE


class HandbookSimulator:
    """The handbook's simulated card transactions, generated day by day in event-time order.

    Iterate it for :class:`LabeledTransaction` records (userId = customer id, merchantId =
    terminal id, x/y = the terminal's place on the grid), or call :meth:`days` for numpy
    batches. Iterating again restarts the identical stream.
    """

    def __init__(self, params: HandbookParameters | None = None) -> None:
        self.params = params or HandbookParameters()
        self.population = draw_population(self.params)

    @property
    def customer_ids(self) -> list[str]:
        """userId of each customer: its index, as the handbook's CUSTOMER_ID."""
        return [str(index) for index in range(self.params.customers)]

    @property
    def terminal_ids(self) -> list[str]:
        """merchantId of each terminal: its index, as the handbook's TERMINAL_ID."""
        return [str(index) for index in range(self.params.terminals)]

    def __iter__(self) -> Iterator[LabeledTransaction]:
        return self._records()

    def _records(self) -> Iterator[LabeledTransaction]:
        """Every transaction as a record, numbered from 0 in emission order."""
        customer_ids = self.customer_ids
        terminal_ids = self.terminal_ids
        terminal_x = np.round(self.population.terminal_xy[:, 0], 4).tolist()
        terminal_y = np.round(self.population.terminal_xy[:, 1], 4).tolist()
        prefix = f"hb-{self.params.seed}-"
        number = 0
        for day in self.days():
            for time_ms, customer, terminal, amount, code in zip(
                day.timestamp_ms.tolist(),
                day.customer.tolist(),
                day.terminal.tolist(),
                day.amount.tolist(),
                day.scenario.tolist(),
                strict=True,
            ):
                yield LabeledTransaction(
                    transaction_id=f"{prefix}{number:09d}",
                    user_id=customer_ids[customer],
                    amount=amount,
                    timestamp_ms=time_ms,
                    scenario=SCENARIO_BY_CODE[code],
                    is_fraud=code != NORMAL_CODE,
                    merchant_id=terminal_ids[terminal],
                    x=terminal_x[terminal],
                    y=terminal_y[terminal],
                )
                number += 1

    def days(self) -> Iterator[HandbookDay]:
        """The stream as one numpy batch per simulated day, labels included."""
        params = self.params
        traffic = _rng(params.seed, TRAFFIC_STREAM)
        fraud = _rng(params.seed, FRAUD_STREAM)
        # Day (exclusive) until which each terminal / customer stays compromised.
        terminal_until = np.zeros(params.terminals, dtype=np.int64)
        customer_until = np.zeros(params.customers, dtype=np.int64)
        start_ms = epoch_ms(params.start_time)
        number = 0
        for day in range(params.days):
            self._compromise(
                fraud,
                day,
                terminal_until,
                params.terminal_compromises_per_day,
                params.terminal_compromise_days,
            )
            self._compromise(
                fraud,
                day,
                customer_until,
                params.customer_compromises_per_day,
                params.customer_compromise_days,
            )
            batch = self._day(traffic, fraud, day, start_ms, number, terminal_until, customer_until)
            number += len(batch)
            yield batch

    @staticmethod
    def _compromise(
        rng: np.random.Generator, day: int, until: IntArray, per_day: float, duration: int
    ) -> None:
        """Draw today's newly compromised ids (distinct) and extend their compromise."""
        count = min(compromises_on_day(day, per_day), len(until))
        if count:
            chosen = rng.choice(len(until), size=count, replace=False)
            until[chosen] = np.maximum(until[chosen], day + duration)

    def _day(
        self,
        traffic: np.random.Generator,
        fraud: np.random.Generator,
        day: int,
        start_ms: int,
        first_number: int,
        terminal_until: IntArray,
        customer_until: IntArray,
    ) -> HandbookDay:
        """Draw one day's legitimate traffic, then label (and alter) its frauds."""
        params, population = self.params, self.population
        counts = traffic.poisson(population.transactions_per_day)
        customer = np.repeat(np.arange(params.customers, dtype=np.int64), counts)
        size = len(customer)
        seconds = traffic.normal(
            params.time_of_day_mean_seconds, params.time_of_day_std_seconds, size
        )
        mean = population.mean_amount[customer]
        amount = traffic.normal(mean, population.std_amount[customer])
        negative = amount < 0
        amount[negative] = traffic.uniform(0.0, 2 * mean[negative])
        available = population.available_count[customer]
        pick = (traffic.random(size) * available).astype(np.int64)

        time_of_day_ms = np.floor(seconds * 1000).astype(np.int64)
        keep = (time_of_day_ms > 0) & (time_of_day_ms < MILLISECONDS_PER_DAY) & (available > 0)
        order = np.flatnonzero(keep)
        order = order[np.argsort(time_of_day_ms[order], kind="stable")]
        customer = customer[order]
        amount = np.round(amount[order], 2)
        terminal = population.available[population.available_start[customer] + pick[order]]
        timestamp_ms = start_ms + day * MILLISECONDS_PER_DAY + time_of_day_ms[order]

        scenario = np.zeros(len(order), dtype=np.int8)
        scenario[amount > params.fraud_amount_threshold] = AMOUNT_CODE
        scenario[terminal_until[terminal] > day] = TERMINAL_CODE
        stolen = (customer_until[customer] > day) & (
            fraud.random(len(order)) < params.customer_fraud_share
        )
        amount[stolen] = np.round(amount[stolen] * params.customer_fraud_multiplier, 2)
        scenario[stolen] = CUSTOMER_CODE
        return HandbookDay(
            day=day,
            first_number=first_number,
            timestamp_ms=timestamp_ms,
            customer=customer,
            terminal=terminal,
            amount=amount,
            scenario=scenario,
            compromised_terminals=np.flatnonzero(terminal_until > day),
            compromised_customers=np.flatnonzero(customer_until > day),
        )
