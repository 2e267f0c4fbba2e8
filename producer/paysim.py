"""A seventh labeled stream, after PaySim, the mobile-money simulator behind a Kaggle data set.

Imitates PaySim (Lopez-Rojas, Elmir and Axelsson, "PaySim: a financial mobile money simulator
for fraud detection", EMSS 2016) from its published description; the code is ours. The
published file, Kaggle's ``PS_20174392719_1491204439457_log.csv``, holds 6,362,620
transactions over 744 hourly steps (30 days), 8,213 of them fraud (0.129 %): CASH_OUT 35.2 %,
PAYMENT 33.8 %, CASH_IN 22.0 %, TRANSFER 8.4 %, DEBIT 0.65 %, with median (mean) amounts of
9,500 (13,000) for PAYMENT, 143,000 (168,000) CASH_IN, 147,000 (176,000) CASH_OUT, 486,000
(910,000) TRANSFER and 3,000 (5,500) DEBIT. Almost every origin account (``nameOrig``, ``C``
and digits) appears once in the whole file; a PAYMENT goes to a merchant (``M`` and digits),
the other types to customer accounts. A transaction has an hour, a type, an amount in cents,
an origin and a destination: no place, no category.

Those numbers are the targets; everything else is our assumption: the daily cycle
(:data:`HOURLY_WEIGHTS`, 3 % of a day's transactions between 00:00 and 07:00, 73 % between
09:00 and 19:00), lognormal amounts of the published median and mean per type, how often a
destination recurs (a merchant about 3 times over the stream, a customer account about 7),
0.15 % of the origins being an earlier origin again, and the timing of a fraud.

Sizing: PaySim's origins do not come back, so there are no card holders to count; ``users``
sets the volume, 3 transactions a day per user on average (PaySim's file is about 205,000 a
day, some 68,000 users). The default 1,000 users over 70 days make about 210,000 transactions
and 270 frauds. Each hour's count is Poisson with the hour's share of the day's.

What distinguishes fraud, as PaySim's fraudster does it: a fraudster takes over a customer
account (a new origin) and TRANSFERs its whole balance (lognormal, median 410,000, sigma 1.62;
above 10,000,000 it moves as several transfers of 10,000,000 and the rest) to a mule, a new
account, which CASH_OUTs the same amount soon after (Exponential, mean 20 minutes, at most 3
hours) to a customer account. The fraud amounts have a median of ~445,000 and a mean of ~1.45 M
(the file's: ~440,000, ~1.47 M, at most 10 M). Takeovers come at an even rate over the day, not
with its cycle, so at night they are a larger share. Frauds are labeled by type: ``transfer``
and ``cash_out``, as many of each. The user is the origin, the merchant the destination, the
channel the type in lower case (as :mod:`producer.csv_replay` reads PaySim's file).

Every transaction is at ``start_time`` + its hour + a uniform offset within the hour (PaySim
has only the step; :class:`producer.csv_replay.CsvReplay` spreads a step's rows evenly over it).
The stream is drawn hour by hour: only the hour's transactions and the cash-outs still to come
are held, and account ids are computed from their number, never stored.

>>> records = list(PaysimSimulator(PaysimParameters(users=30, days=3, seed=1)))
>>> records == sorted(records, key=lambda r: r.timestamp_ms)
True
>>> records[0].transaction_id, records[0].channel in {t.name for t in PAYSIM_TYPES}
('ps-1-000000000', True)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms


@dataclass(frozen=True, slots=True)
class PaysimType:
    """One of PaySim's transaction types as the published file has it."""

    name: str
    share: float  # percent of the file's transactions
    median: float  # median amount
    mean: float  # mean amount

    @property
    def sigma(self) -> float:
        """Spread of the log amount of a lognormal of this median and mean."""
        return math.sqrt(2 * math.log(self.mean / self.median))


CASH_OUT = "cash_out"
PAYMENT = "payment"
CASH_IN = "cash_in"
TRANSFER = "transfer"
DEBIT = "debit"
#: PaySim's types, named in lower case as :mod:`producer.csv_replay` reads them, with the
#: published file's shares and amounts.
PAYSIM_TYPES: tuple[PaysimType, ...] = (
    PaysimType(CASH_OUT, 35.2, 147_000, 176_000),
    PaysimType(PAYMENT, 33.8, 9_500, 13_000),
    PaysimType(CASH_IN, 22.0, 143_000, 168_000),
    PaysimType(TRANSFER, 8.4, 486_000, 910_000),
    PaysimType(DEBIT, 0.65, 3_000, 5_500),
)
TRANSFER_SCENARIO = "transfer"
CASH_OUT_SCENARIO = "cash_out"
#: The stream's fraud scenarios: the type of the fraud transaction.
PAYSIM_SCENARIOS: tuple[str, ...] = (TRANSFER_SCENARIO, CASH_OUT_SCENARIO)
#: Step 0 of the stream by default (Kaggle's file is named for 2017).
PAYSIM_START_TIME = datetime(2017, 1, 1, tzinfo=timezone.utc)
DEFAULT_PAYSIM_SEED = 1
HOUR_MS = 3_600_000
HOURS_PER_DAY = 24
#: Transactions a day per user, on average.
TRANSACTIONS_PER_USER_PER_DAY = 3
#: Relative number of transactions in each hour of the day, 00:00 to 23:00 (per mille).
HOURLY_WEIGHTS = (
    10, 5, 3, 2, 2, 3, 8, 20, 40, 60, 70, 75, 78, 78, 76, 75, 74, 72, 70, 64, 50, 35, 20, 10,
)  # fmt: skip
#: Payments per merchant and other transactions per customer account over the stream.
MERCHANT_RECURRENCE = 3
CUSTOMER_RECURRENCE = 7
#: Share of the legitimate transactions whose origin is an earlier origin again.
ORIGIN_REPEAT_SHARE = 0.0015
#: A taken-over account's balance: lognormal of this median and spread of the log.
BALANCE_MEDIAN = 410_000.0
BALANCE_SIGMA = 1.62
#: The largest amount one fraud transfer moves; a larger balance takes several.
LARGEST_FRAUD_TRANSFER = 10_000_000.0
#: The mule cashes out Exponential(this mean) after the transfer, at most LONGEST_CASH_OUT_MS.
CASH_OUT_DELAY_MEAN_MS = 20 * 60_000
LONGEST_CASH_OUT_MS = 3 * HOUR_MS
#: Between one transfer of a balance and its next: Exponential(this mean).
TRANSFER_GAP_MEAN_MS = 2 * 60_000
#: Account ids are a letter and the account's number scrambled (a bijection of 0..ID_SPACE-1).
ID_SPACE = 10**10
ID_MULTIPLIER = 6_364_136_223  # odd, not a multiple of 5: coprime with ID_SPACE
#: Numbers of the customer accounts that receive (apart from the origins, counted from 0).
RECEIVER_BASE = ID_SPACE // 2


@dataclass(frozen=True, slots=True)
class PaysimParameters:
    """Size, seed and start of the PaySim-like stream."""

    users: int = 1_000
    days: int = 70
    seed: int = DEFAULT_PAYSIM_SEED
    #: Start of step 0; step ``s`` is the hour from ``start_time`` + ``s`` hours, and the daily
    #: cycle's hours count from the start's time of day (midnight UTC by default).
    start_time: datetime = PAYSIM_START_TIME
    #: Share of the transactions that are fraud (the published file's 0.129 %).
    fraud_share: float = 0.00129

    def __post_init__(self) -> None:
        if self.users < 1 or self.days < 1:
            raise ValueError("users and days must be at least 1")
        if not 0 <= self.fraud_share < 1:
            raise ValueError("fraud_share must be in [0, 1)")


def _mean_transfers_per_takeover() -> float:
    """How many transfers a takeover makes on average: 1 + P(balance > k x 10 M) over k >= 1."""
    total, k = 1.0, 1
    while True:
        z = (math.log(k * LARGEST_FRAUD_TRANSFER / BALANCE_MEDIAN)) / BALANCE_SIGMA
        beyond = 0.5 * math.erfc(z / math.sqrt(2))
        if beyond < 1e-12:
            return total
        total, k = total + beyond, k + 1


#: One transaction before it gets its id: time, order drawn, origin, destination, type, amount,
#: scenario (origins and receivers as account numbers, merchants as negative ones).
_Drawn = tuple[int, int, int, int, str, float, str]

TYPE_NAMES = [kind.name for kind in PAYSIM_TYPES]
TYPE_SHARES = np.array([kind.share for kind in PAYSIM_TYPES]) / sum(k.share for k in PAYSIM_TYPES)
LOG_MEDIANS = np.log([kind.median for kind in PAYSIM_TYPES])
SIGMAS = np.array([kind.sigma for kind in PAYSIM_TYPES])
HOURLY_SHARES = np.array(HOURLY_WEIGHTS) / sum(HOURLY_WEIGHTS)
PAYMENT_INDEX = TYPE_NAMES.index(PAYMENT)


class PaysimSimulator:
    """The PaySim-like stream as :class:`LabeledTransaction` records in event-time order."""

    def __init__(self, params: PaysimParameters | None = None) -> None:
        self.params = params or PaysimParameters()

    def __iter__(self) -> Iterator[LabeledTransaction]:
        params = self.params
        rng = np.random.default_rng(params.seed)
        salt = int(rng.integers(ID_SPACE))

        def account(letter: str, number: int) -> str:
            return f"{letter}{(number * ID_MULTIPLIER + salt) % ID_SPACE}"

        per_day = TRANSACTIONS_PER_USER_PER_DAY * params.users
        volume = per_day * params.days
        merchants = max(1, round(volume * TYPE_SHARES[PAYMENT_INDEX] / MERCHANT_RECURRENCE))
        receivers = max(1, round(volume * (1 - TYPE_SHARES[PAYMENT_INDEX]) / CUSTOMER_RECURRENCE))
        frauds_per_day = per_day * params.fraud_share / (1 - params.fraud_share)
        takeovers_per_hour = frauds_per_day / 2 / _mean_transfers_per_takeover() / HOURS_PER_DAY
        start = epoch_ms(params.start_time)
        last_ms = start + params.days * HOURS_PER_DAY * HOUR_MS - 1
        origins = drawn = number = 0  # accounts named, transactions drawn, transactions sent
        pending: list[_Drawn] = []  # frauds drawn for later hours, a heap by time
        prefix = f"ps-{params.seed}-"
        for step in range(params.days * HOURS_PER_DAY):
            hour_ms = start + step * HOUR_MS
            # Legitimate: the hour's share of the day's, each type with its lognormal amount.
            n = int(rng.poisson(per_day * HOURLY_SHARES[step % HOURS_PER_DAY]))
            kind = rng.choice(len(PAYSIM_TYPES), n, p=TYPE_SHARES)
            amount = np.maximum(np.round(rng.lognormal(LOG_MEDIANS[kind], SIGMAS[kind]), 2), 0.01)
            at_ms = hour_ms + rng.integers(0, HOUR_MS, n)
            origin = origins + np.arange(n)
            again = (rng.random(n) < ORIGIN_REPEAT_SHARE) & (origin > 0)
            origin[again] = rng.integers(0, origin[again])  # an earlier origin
            origins += n
            to_merchant = rng.integers(0, merchants, n)
            to_receiver = RECEIVER_BASE + rng.integers(0, receivers, n)
            destination = np.where(kind == PAYMENT_INDEX, -1 - to_merchant, to_receiver)
            hour: list[_Drawn] = [
                (at, drawn + i, who, to, TYPE_NAMES[k], value, NORMAL_SCENARIO)
                for i, (at, who, to, k, value) in enumerate(
                    zip(
                        at_ms.tolist(),
                        origin.tolist(),
                        destination.tolist(),
                        kind.tolist(),
                        amount.tolist(),
                        strict=True,
                    )
                )
            ]
            drawn += n
            # Frauds: takeovers at an even rate, each a transfer and a cash-out per 10 M moved.
            for _ in range(int(rng.poisson(takeovers_per_hour))):
                victim, mule, origins = origins, origins + 1, origins + 2
                at = hour_ms + int(rng.integers(HOUR_MS))
                balance = round(float(rng.lognormal(math.log(BALANCE_MEDIAN), BALANCE_SIGMA)), 2)
                whole = int(balance // LARGEST_FRAUD_TRANSFER)
                rest = round(balance - whole * LARGEST_FRAUD_TRANSFER, 2)
                moved = [LARGEST_FRAUD_TRANSFER] * whole + ([rest] if rest >= 0.01 else [])
                for value in moved:
                    delay = rng.exponential(CASH_OUT_DELAY_MEAN_MS)
                    cash_out = at + 1 + int(min(delay, LONGEST_CASH_OUT_MS))
                    receiver = RECEIVER_BASE + int(rng.integers(receivers))
                    for fraud in (
                        (at, drawn, victim, mule, TRANSFER, value, TRANSFER_SCENARIO),
                        (cash_out, drawn + 1, mule, receiver, CASH_OUT, value, CASH_OUT_SCENARIO),
                    ):
                        heapq.heappush(pending, (min(fraud[0], last_ms), *fraud[1:]))
                    drawn += 2
                    at += 1 + int(rng.exponential(TRANSFER_GAP_MEAN_MS))
            end_ms = hour_ms + HOUR_MS
            while pending and pending[0][0] < end_ms:
                hour.append(heapq.heappop(pending))
            hour.sort()
            for at, _, who, to, kind_name, value, scenario in hour:
                yield LabeledTransaction(
                    transaction_id=f"{prefix}{number:09d}",
                    user_id=account("C", who),
                    amount=value,
                    timestamp_ms=at,
                    scenario=scenario,
                    is_fraud=scenario != NORMAL_SCENARIO,
                    merchant_id=account("M", -1 - to) if to < 0 else account("C", to),
                    channel=kind_name,
                )
                number += 1
