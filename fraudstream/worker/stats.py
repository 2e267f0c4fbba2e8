"""Counters and latency figures a worker keeps about itself (no I/O here)."""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fraudstream.core.records import DeadLetterReason, ReasonName

#: Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended.
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)


@dataclass
class LatencyHistogram:
    """Fixed-bucket histogram: constant memory whatever the traffic."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS_MS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    total: int = 0
    sum_ms: float = 0.0

    def observe(self, ms: float) -> None:
        """Record one latency in milliseconds."""
        self.counts[bisect.bisect_left(self.bounds, ms)] += 1
        self.total += 1
        self.sum_ms += ms

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding quantile ``q`` (None when empty)."""
        if self.total == 0:
            return None
        rank = q * self.total
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return float(self.bounds[i]) if i < len(self.bounds) else float("inf")
        return float("inf")


#: A reason alerting on more than this share of the transactions is worth a warning.
FLOOD_SHARE = 0.05
#: ... once this many transactions came (the first ones, while models warm up, say little).
FLOOD_AFTER_TRANSACTIONS = 1000


def flood_warnings(stats: WorkerStats, warned: set[str]) -> list[str]:
    """One log line for each reason that started flooding (:meth:`WorkerStats.flooding`) and
    is not in ``warned`` yet; adds it there, so each reason is named once per worker run.

    >>> stats = WorkerStats(transactions_in=4000)
    >>> stats.alerts_by_reason["amount_threshold"] = 1000
    >>> warned: set[str] = set()
    >>> print(flood_warnings(stats, warned)[0])  # doctest: +ELLIPSIS
    'amount_threshold' alerted on 25% of the 4,000 transactions ... FRAUDSTREAM_AMOUNT_THRESHOLD ...
    >>> flood_warnings(stats, warned)
    []
    """
    lines = []
    for reason, share in sorted(stats.flooding().items()):
        if reason in warned:
            continue
        warned.add(reason)
        hint = (
            "is FRAUDSTREAM_AMOUNT_THRESHOLD (or the rule's threshold) in this stream's currency "
            "and scale?"
            if reason == ReasonName.AMOUNT_THRESHOLD.value
            else "are its settings meant for this stream?"
        )
        lines.append(
            f"{reason!r} alerted on {share:.0%} of the {stats.transactions_in:,} transactions so "
            f"far; fraud is rarely more than a few percent of card payments: {hint}"
        )
    return lines


@dataclass
class WorkerStats:
    """What a worker has done since it started."""

    started_at: float = field(default_factory=time.time)
    transactions_in: int = 0
    alerts_out: int = 0
    alerts_by_reason: Counter[str] = field(default_factory=Counter)
    #: Hits of shadow rules, by rule id (they never alert).
    shadow_hits_by_rule: Counter[str] = field(default_factory=Counter)
    dlq_by_reason: Counter[str] = field(default_factory=Counter)
    redelivered: int = 0
    misrouted: int = 0  # messages whose Kafka key is not their userId
    duplicates: int = 0  # copies of a user's recent transaction (same id), not decided again
    batches: int = 0  # batches handled; messagesIn / batches is the mean batch size
    labels_in: int = 0  # valid labels read (used now, held for their transaction, or unknown)
    labels_by_verdict: Counter[str] = field(default_factory=Counter)  # labels learned from
    labels_corrected: int = 0  # fraud labels for transactions already learned as legit
    matured: int = 0  # transactions learned as legit after the horizon without a label
    latency_ms: LatencyHistogram = field(default_factory=LatencyHistogram)
    positions: dict[int, int] = field(default_factory=dict)  # partition -> last offset read
    consumer_lag: int | None = None  # messages behind the high watermark, all partitions
    events_per_second: float = 0.0  # over the last progress interval
    _last_rate_at: float = field(default_factory=time.monotonic)
    _last_rate_count: int = 0

    def update_rate(self) -> float:
        """Messages per second since the previous call (called by the progress timer)."""
        now = time.monotonic()
        elapsed = now - self._last_rate_at
        if elapsed > 0:
            self.events_per_second = (self.messages_in - self._last_rate_count) / elapsed
        self._last_rate_at, self._last_rate_count = now, self.messages_in
        return self.events_per_second

    @property
    def dlq_total(self) -> int:
        """Messages sent to the dead-letter topic."""
        return sum(self.dlq_by_reason.values())

    @property
    def messages_in(self) -> int:
        """Every message read, valid or not: transactions, copies of one, labels, dead letters.

        A valid label for an unknown transaction is in ``labels_in`` and on the DLQ: once.
        """
        unknown = self.dlq_by_reason[DeadLetterReason.UNKNOWN_TRANSACTION.value]
        return self.transactions_in + self.duplicates + self.labels_in + self.dlq_total - unknown

    def flooding(
        self, share: float = FLOOD_SHARE, after: int = FLOOD_AFTER_TRANSACTIONS
    ) -> dict[str, float]:
        """Reasons that alerted on more than ``share`` of the transactions, once ``after`` came.

        Fraud is rarely more than a few percent of card payments, so a reason past 5% is most
        likely set for another stream: an amount line in another currency or scale (10,000 is
        about 65 US dollars in yen), a rule written for other data.

        >>> stats = WorkerStats(transactions_in=2000)
        >>> stats.alerts_by_reason.update({"amount_threshold": 900, "habit_spike": 30})
        >>> stats.flooding()
        {'amount_threshold': 0.45}
        """
        if self.transactions_in < after:
            return {}
        seen = self.transactions_in
        return {r: n / seen for r, n in self.alerts_by_reason.items() if n > share * seen}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly snapshot, served by the worker's web view."""
        uptime = max(time.time() - self.started_at, 1e-9)
        return {
            "uptimeSeconds": round(uptime, 3),
            "messagesIn": self.messages_in,
            "transactionsIn": self.transactions_in,
            "alertsOut": self.alerts_out,
            "alertsByReason": dict(self.alerts_by_reason),
            "shadowHitsByRule": dict(self.shadow_hits_by_rule),
            "shadowHits": sum(self.shadow_hits_by_rule.values()),
            "dlq": self.dlq_total,
            "dlqByReason": dict(self.dlq_by_reason),
            "redelivered": self.redelivered,
            "misrouted": self.misrouted,
            "duplicates": self.duplicates,
            "batches": self.batches,
            "labelsIn": self.labels_in,
            "labelsByVerdict": dict(self.labels_by_verdict),
            "labelsCorrected": self.labels_corrected,
            "matured": self.matured,
            "consumerLag": self.consumer_lag,
            "eventsPerSecond": round(self.events_per_second, 1),
            "latencyMs": {
                "count": self.latency_ms.total,
                "p50": self.latency_ms.quantile(0.50),
                "p95": self.latency_ms.quantile(0.95),
                "p99": self.latency_ms.quantile(0.99),
            },
        }


def prometheus_text(stats: WorkerStats, prefix: str = "fraudstream") -> str:
    """The worker's counters in the Prometheus text exposition format."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {prefix}_{name} {help_text}")
        lines.append(f"# TYPE {prefix}_{name} {kind}")
        lines.extend(f"{prefix}_{name}{labels} {value}" for labels, value in samples)

    metric(
        "transactions_total",
        "counter",
        "Valid transactions processed.",
        [("", stats.transactions_in)],
    )
    metric(
        "alerts_total",
        "counter",
        "Alerts published, by reason (an alert with two reasons counts for both).",
        [(f'{{reason="{r}"}}', n) for r, n in sorted(stats.alerts_by_reason.items())]
        or [('{reason="amount_threshold"}', 0)],
    )
    metric(
        "shadow_hits_total",
        "counter",
        "Hits of shadow rules, by rule id (shadow rules never alert).",
        [(f'{{rule="{r}"}}', n) for r, n in sorted(stats.shadow_hits_by_rule.items())],
    )
    metric(
        "alerts_published_total", "counter", "Alert records published.", [("", stats.alerts_out)]
    )
    metric(
        "dead_letters_total",
        "counter",
        "Messages sent to the dead-letter topic, by reason.",
        [(f'{{reason="{r}"}}', n) for r, n in sorted(stats.dlq_by_reason.items())]
        or [('{reason="invalid_json"}', 0)],
    )
    metric(
        "labels_total",
        "counter",
        "Valid labels read, by verdict.",
        [(f'{{verdict="{v}"}}', n) for v, n in sorted(stats.labels_by_verdict.items())]
        or [('{verdict="fraud"}', 0)],
    )
    metric(
        "matured_total",
        "counter",
        "Transactions learned as legit after the maturity horizon without a label.",
        [("", stats.matured)],
    )
    metric(
        "redelivered_total",
        "counter",
        "Messages seen again after a restart.",
        [("", stats.redelivered)],
    )
    metric(
        "misrouted_total",
        "counter",
        "Messages whose key is not their userId.",
        [("", stats.misrouted)],
    )
    metric(
        "duplicates_total",
        "counter",
        "Copies of a recent transaction (same transactionId), skipped.",
        [("", stats.duplicates)],
    )
    if stats.consumer_lag is not None:
        metric(
            "consumer_lag",
            "gauge",
            "Messages behind the high watermark.",
            [("", stats.consumer_lag)],
        )
    metric(
        "events_per_second",
        "gauge",
        "Input rate over the last interval.",
        [("", stats.events_per_second)],
    )
    histogram = stats.latency_ms
    buckets: list[tuple[str, float]] = []
    cumulative = 0
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        cumulative += count
        buckets.append((f'_bucket{{le="{bound / 1000:g}"}}', cumulative))
    buckets.append(('_bucket{le="+Inf"}', histogram.total))
    buckets.append(("_sum", histogram.sum_ms / 1000))
    buckets.append(("_count", histogram.total))
    lines.append(f"# HELP {prefix}_processing_latency_seconds Record timestamp to processed.")
    lines.append(f"# TYPE {prefix}_processing_latency_seconds histogram")
    lines.extend(f"{prefix}_processing_latency_seconds{suffix} {v}" for suffix, v in buckets)
    return "\n".join(lines) + "\n"
