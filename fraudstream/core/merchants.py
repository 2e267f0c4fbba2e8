"""Merchant (or terminal) profiles: volume and amounts from traffic, risk from labels.

The input is partitioned by user, so a merchant's transactions are spread over every input
partition. Each partition keeps its own :class:`MerchantStats` per merchant (in the worker, a
changelog-backed table keyed ``partition|merchant``, recovered and moved with the partition);
a reader merges the entries of the partitions it holds with :meth:`MerchantStats.merge`. One
worker holding every partition therefore sees each merchant exactly; with several workers
each sees the share of a merchant's traffic that its partitions carry, an unbiased sample of
its fraud rate. Why not a GlobalTable: faust-streaming's GlobalTable does not stay in step
across several instances (faust-streaming #283, open), and a repartition by merchant would
put labels and transactions of one user on different workers.

Label-derived risk, per window tau in 1, 7 and 30 days: ``(F + K * g) / (R + K)`` where ``F``
and ``R`` are the decayed counts of confirmed frauds and of all resolved transactions (frauds
plus transactions that matured without a fraud label), ``g`` the global fraud rate and ``K``
the prior weight (a Bayesian mean: one fraud out of one transaction is not 100 % risk). The
decay is in event time relative to the merchant's newest resolved transaction, because labels
always describe the past: relative to "now" every window would shrink alike, while relative
to the newest resolved day ``risk_1d`` is "the share of fraud on the last resolved day", like
the handbook's delay-shifted windows.

A merchant's risk counts compromised *cards*, not fraudulent payments: a fraud label for a card
that already had one at the merchant within :data:`CARD_WINDOW` adds nothing (neither a fraud
nor a resolved transaction), which is how fraud teams find a common point of purchase. A card
tested ten times in minutes at one shop says the card is stolen, not that the shop is; ten
cards with fraud at one shop say the shop is skimmed. Counted per payment, the persona stream
(seed 42, 7-day labels) had 1,781 legit payments at a 1-day risk above 0.2, against 105 of its
skimmed merchants' frauds; counted per card, 633 against 103. Each partition's view remembers
the last :data:`FRAUD_CARDS` cards counted there (a user's labels always reach the same
partition, so its view sees all of a card's frauds there); with 4, the handbook's compromised
terminals, whose customers come back, lost what 16 gain (AP 0.712 against 0.708).
"""

from __future__ import annotations

import math
import operator
import struct
from dataclasses import dataclass, fields

DAY = 86400.0
RISK_WINDOWS = (DAY, 7 * DAY, 30 * DAY)
#: Decay of the merchant's traffic counts (volume today against its usual volume).
VOLUME_WINDOWS = (DAY, 30 * DAY)
#: How long a confirmed fraud keeps counting as "recent" at the merchant.
RECENT_FRAUD_WINDOW = 7 * DAY
#: Prior weight of the global fraud rate, in resolved transactions.
PRIOR_WEIGHT = 5.0
#: The amount statistics remember about this many transactions (an exponential window).
AMOUNT_MEMORY = 200
_FORMAT = struct.Struct("<15d")
#: One remembered card after the fifteen doubles: its token and the event time of its fraud.
_CARD = struct.Struct("<Id")
#: How many cards with a counted fraud a partition's view of a merchant remembers (12 bytes
#: each in its encoding).
FRAUD_CARDS = 16
#: A card's second fraud at the same merchant within this much event time is not counted again.
CARD_WINDOW = RECENT_FRAUD_WINDOW
#: t_lab, fraud_30d and resolved_30d (fields 7, 10 and 13) out of an encoded view.
_RISK_30D = struct.Struct("<48xd16xd16xd")

FEATURE_NAMES = (
    "m_risk_1d",
    "m_risk_7d",
    "m_risk_30d",
    "m_evidence_30d",
    "m_fraud_recent",
    "m_volume_1d",
    "m_burst",
    "m_amount_z",
)


@dataclass(slots=True, init=False)
class MerchantStats:
    """Decayed traffic and label counts of one merchant, as seen from one partition.

    >>> stats = MerchantStats()
    >>> for day in range(10):
    ...     stats.observe(50.0, day * DAY)
    ...     stats.learn_label(fraud=day >= 8, event_time=day * DAY)
    >>> round(stats.features(10 * DAY, 50.0, global_rate=0.01)["m_risk_7d"], 2)
    0.18
    >>> MerchantStats.decode(stats.encode()) == stats
    True

    A card's repeated frauds count once (``card`` is a token of the user who paid):

    >>> tested = MerchantStats()
    >>> for minute in range(10):
    ...     tested.learn_label(True, minute * 60.0, card=7)
    >>> tested.fraud_30d, tested.resolved_30d
    (1.0, 1.0)
    """

    t_obs: float = 0.0
    count_1d: float = 0.0
    count_30d: float = 0.0
    seen: float = 0.0
    mu_log: float = 0.0
    var_log: float = 0.0
    t_lab: float = 0.0
    fraud_1d: float = 0.0
    fraud_7d: float = 0.0
    fraud_30d: float = 0.0
    resolved_1d: float = 0.0
    resolved_7d: float = 0.0
    resolved_30d: float = 0.0
    recent_fraud: float = 0.0
    t_recent: float = 0.0
    #: The last FRAUD_CARDS cards whose fraud was counted here: (token, event time), oldest
    #: first. Not merged across partitions: a merged view is read, never learns.
    fraud_cards: tuple[tuple[int, float], ...] = ()

    def __init__(
        self,
        t_obs: float = 0.0,
        count_1d: float = 0.0,
        count_30d: float = 0.0,
        seen: float = 0.0,
        mu_log: float = 0.0,
        var_log: float = 0.0,
        t_lab: float = 0.0,
        fraud_1d: float = 0.0,
        fraud_7d: float = 0.0,
        fraud_30d: float = 0.0,
        resolved_1d: float = 0.0,
        resolved_7d: float = 0.0,
        resolved_30d: float = 0.0,
        recent_fraud: float = 0.0,
        t_recent: float = 0.0,
        fraud_cards: tuple[tuple[int, float], ...] = (),
    ) -> None:
        # written out so that mypyc compiles it (see fraudstream.native)
        self.t_obs = t_obs
        self.count_1d = count_1d
        self.count_30d = count_30d
        self.seen = seen
        self.mu_log = mu_log
        self.var_log = var_log
        self.t_lab = t_lab
        self.fraud_1d = fraud_1d
        self.fraud_7d = fraud_7d
        self.fraud_30d = fraud_30d
        self.resolved_1d = resolved_1d
        self.resolved_7d = resolved_7d
        self.resolved_30d = resolved_30d
        self.recent_fraud = recent_fraud
        self.t_recent = t_recent
        self.fraud_cards = fraud_cards

    def encode(self) -> bytes:
        """120 bytes, fifteen little-endian doubles, then 12 bytes per remembered card (none for
        a merchant without card-attributed fraud, and for amount segments)."""
        head = _FORMAT.pack(*_FIELDS_OF(self))  # not astuple: it deep-copies (7% of a worker)
        if not self.fraud_cards:
            return head
        return head + b"".join(_CARD.pack(card, t) for card, t in self.fraud_cards)

    @classmethod
    def decode(cls, data: bytes | None) -> MerchantStats:
        """Inverse of :meth:`encode`; ``None`` gives a merchant never seen."""
        if not data:
            return cls()
        stats = cls(*_FORMAT.unpack_from(data))
        if len(data) > _FORMAT.size:
            stats.fraud_cards = tuple((c, t) for c, t in _CARD.iter_unpack(data[_FORMAT.size :]))
        return stats

    def observe(self, amount: float, event_time: float) -> None:
        """Count one transaction at the merchant and fold its amount in (log scale, clipped)."""
        gap = max(0.0, event_time - self.t_obs) if self.seen else 0.0
        self.count_1d = self.count_1d * math.exp(-gap / VOLUME_WINDOWS[0]) + 1.0
        self.count_30d = self.count_30d * math.exp(-gap / VOLUME_WINDOWS[1]) + 1.0
        self.t_obs = max(self.t_obs, event_time)
        self.seen += 1.0
        weight = 1.0 / min(self.seen, AMOUNT_MEMORY)
        residual = math.log1p(max(amount, 0.0)) - self.mu_log
        if self.seen > 5:  # one huge amount must not drag the merchant's typical amount
            bound = 3.0 * (math.sqrt(self.var_log) + 0.1)
            residual = max(-bound, min(bound, residual))
        self.mu_log += weight * residual
        self.var_log = (1.0 - weight) * (self.var_log + weight * residual * residual)

    def learn_label(
        self, fraud: bool, event_time: float, weight: float = 1.0, card: int | None = None
    ) -> None:
        """Count one resolved transaction (a fraud, or matured legit); ``weight`` -1 undoes one.

        A fraud of a ``card`` already counted here within :data:`CARD_WINDOW` is not counted
        (its time is renewed); without a card (an amount segment, an older pending entry)
        every fraud counts.
        """
        if fraud and card is not None and weight > 0.0 and self._repeats(card, event_time):
            return
        if event_time >= self.t_lab:
            gap = event_time - self.t_lab
            d1, d7, d30 = (math.exp(-gap / tau) for tau in RISK_WINDOWS)
            self.fraud_1d, self.fraud_7d, self.fraud_30d = (
                self.fraud_1d * d1,
                self.fraud_7d * d7,
                self.fraud_30d * d30,
            )
            self.resolved_1d, self.resolved_7d, self.resolved_30d = (
                self.resolved_1d * d1,
                self.resolved_7d * d7,
                self.resolved_30d * d30,
            )
            self.t_lab = event_time
            ages = [1.0, 1.0, 1.0]
        else:
            ages = [math.exp(-(self.t_lab - event_time) / tau) for tau in RISK_WINDOWS]
        w1, w7, w30 = (weight * a for a in ages)
        self.resolved_1d += w1
        self.resolved_7d += w7
        self.resolved_30d += w30
        if fraud:
            self.fraud_1d += w1
            self.fraud_7d += w7
            self.fraud_30d += w30
            if event_time >= self.t_recent:
                gap = event_time - self.t_recent
                self.recent_fraud = (
                    self.recent_fraud * math.exp(-gap / RECENT_FRAUD_WINDOW) + weight
                )
                self.t_recent = event_time
            else:
                age = self.t_recent - event_time
                self.recent_fraud += weight * math.exp(-age / RECENT_FRAUD_WINDOW)

    def _repeats(self, card: int, event_time: float) -> bool:
        """Whether ``card`` already had a fraud counted here within :data:`CARD_WINDOW`;
        remembers it either way (the newest FRAUD_CARDS cards, each at its latest fraud)."""
        known = [(c, t) for c, t in self.fraud_cards if c != card]
        previous = [t for c, t in self.fraud_cards if c == card]
        repeat = bool(previous) and abs(event_time - previous[0]) <= CARD_WINDOW
        latest = max(event_time, previous[0]) if previous else event_time
        self.fraud_cards = (*known[-(FRAUD_CARDS - 1) :], (card, latest))
        return repeat

    def risk_30d(self, global_rate: float) -> float:
        """The share of confirmed fraud over the last 30 days, shrunk towards ``global_rate``."""
        return (self.fraud_30d + PRIOR_WEIGHT * global_rate) / (self.resolved_30d + PRIOR_WEIGHT)

    def features(self, now: float, amount: float, global_rate: float) -> dict[str, float]:
        """What the merchant says about a transaction of ``amount`` at event time ``now``."""
        k, g = PRIOR_WEIGHT, global_rate
        out = {
            "m_risk_1d": (self.fraud_1d + k * g) / (self.resolved_1d + k),
            "m_risk_7d": (self.fraud_7d + k * g) / (self.resolved_7d + k),
            "m_risk_30d": self.risk_30d(g),
            "m_evidence_30d": math.log1p(self.resolved_30d),
            "m_fraud_recent": 0.0,
            "m_volume_1d": 0.0,
            "m_burst": 0.0,
            "m_amount_z": 0.0,
        }
        if self.t_recent:
            age = max(0.0, now - self.t_recent)
            out["m_fraud_recent"] = math.log1p(
                self.recent_fraud * math.exp(-age / RECENT_FRAUD_WINDOW)
            )
        if self.seen:
            gap = max(0.0, now - self.t_obs)
            today = self.count_1d * math.exp(-gap / VOLUME_WINDOWS[0])
            month = self.count_30d * math.exp(-gap / VOLUME_WINDOWS[1])
            out["m_volume_1d"] = math.log1p(today)
            out["m_burst"] = math.log((today + 1.0) / (month / 30.0 + 1.0))
            if self.seen > 5:
                spread = math.sqrt(self.var_log) + 0.1
                z = (math.log1p(max(amount, 0.0)) - self.mu_log) / spread
                out["m_amount_z"] = max(-10.0, min(10.0, z))
        return out

    @classmethod
    def merge(cls, stored: list[bytes]) -> MerchantStats:
        """One merchant's stats from several partitions' encoded views, decayed to a common
        time: counts add up, the amount statistics are pooled by their counts. Read for every
        transaction, from every partition the worker holds, so the views are merged as tuples
        without building a :class:`MerchantStats` for each.

        >>> a, b = MerchantStats(), MerchantStats()
        >>> a.observe(20.0, 0.0); b.observe(90.0, 3600.0); b.learn_label(True, 3600.0)
        >>> merged = MerchantStats.merge([a.encode(), b.encode()])
        >>> merged.seen, merged.fraud_30d, round(merged.count_1d, 3)
        (2.0, 1.0, 1.959)
        """
        if len(stored) == 1:
            return cls(*_FORMAT.unpack_from(stored[0]))
        if not stored:
            return cls()
        views = [_FORMAT.unpack_from(data) for data in stored]
        t_obs = max(v[0] for v in views)
        t_lab = max(v[6] for v in views)
        t_recent = max(v[14] for v in views)
        seen = sum(v[3] for v in views)
        count_1d = count_30d = mu_log = 0.0
        fraud_1d = fraud_7d = fraud_30d = resolved_1d = resolved_7d = resolved_30d = 0.0
        recent_fraud = 0.0
        tau_1, tau_7, tau_30 = RISK_WINDOWS
        # a view as new as the newest needs no decay (exp(-0) is exactly 1): the newest one,
        # and every view's label counts while no partition has seen a label
        for v in views:
            behind = t_obs - v[0]
            o1 = math.exp(-behind / VOLUME_WINDOWS[0]) if behind else 1.0
            o30 = math.exp(-behind / VOLUME_WINDOWS[1]) if behind else 1.0
            count_1d += v[1] * o1
            count_30d += v[2] * o30
            behind = t_lab - v[6]
            if behind:
                d1 = math.exp(-behind / tau_1)
                d7 = math.exp(-behind / tau_7)
                d30 = math.exp(-behind / tau_30)
            else:
                d1 = d7 = d30 = 1.0
            fraud_1d += v[7] * d1
            fraud_7d += v[8] * d7
            fraud_30d += v[9] * d30
            resolved_1d += v[10] * d1
            resolved_7d += v[11] * d7
            resolved_30d += v[12] * d30
            behind = t_recent - v[14]
            recent_fraud += v[13] * (math.exp(-behind / RECENT_FRAUD_WINDOW) if behind else 1.0)
            if seen:
                mu_log += v[4] * v[3] / seen
        var_log = 0.0
        if seen:
            var_log = sum(v[3] / seen * (v[5] + (v[4] - mu_log) ** 2) for v in views)
        return cls(
            t_obs, count_1d, count_30d, seen, mu_log, var_log, t_lab, fraud_1d, fraud_7d,
            fraud_30d, resolved_1d, resolved_7d, resolved_30d, recent_fraud, t_recent,
        )  # fmt: skip

    @classmethod
    def merge_risk_30d(cls, stored: list[bytes]) -> MerchantStats:
        """Only what :meth:`risk_30d` reads, from encoded partition views, with exactly the
        values :meth:`merge` gives them: an amount segment is read for every transaction and
        only its 30-day label counts matter, so the other twelve fields are neither decoded
        nor merged (a third of the cost with four partitions).

        >>> a, b = MerchantStats(), MerchantStats()
        >>> a.learn_label(True, 0.0); b.learn_label(False, 86400.0)
        >>> full = MerchantStats.merge([a.encode(), b.encode()]).risk_30d(0.01)
        >>> MerchantStats.merge_risk_30d([a.encode(), b.encode()]).risk_30d(0.01) == full
        True
        """
        views = [_RISK_30D.unpack_from(data) for data in stored]
        if len(views) == 1:
            t_lab, fraud, resolved = views[0]
            return cls(t_lab=t_lab, fraud_30d=fraud, resolved_30d=resolved)
        merged = cls()
        if not views:
            return merged
        merged.t_lab = t_lab = max(view[0] for view in views)
        tau = RISK_WINDOWS[2]
        for t_part, fraud, resolved in views:
            d30 = math.exp(-(t_lab - t_part) / tau)
            merged.fraud_30d += fraud * d30
            merged.resolved_30d += resolved * d30
        return merged


#: The fifteen counts of :class:`MerchantStats` in declaration order, as one tuple (for
#: :meth:`encode`).
_FIELDS_OF = operator.attrgetter(
    *(f.name for f in fields(MerchantStats) if f.name != "fraud_cards")
)
