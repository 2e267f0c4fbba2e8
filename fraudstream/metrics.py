"""Counters and latency figures a worker keeps about itself (no I/O here)."""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class WorkerStats:
    """What a worker has done since it started."""

    started_at: float = field(default_factory=time.time)
    transactions_in: int = 0
    alerts_out: int = 0
    alerts_by_reason: Counter[str] = field(default_factory=Counter)
    dlq_by_reason: Counter[str] = field(default_factory=Counter)
    redelivered: int = 0
    misrouted: int = 0  # messages whose Kafka key is not their userId
    latency_ms: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def dlq_total(self) -> int:
        """Messages sent to the dead-letter topic."""
        return sum(self.dlq_by_reason.values())

    @property
    def messages_in(self) -> int:
        """Every message read, valid or not."""
        return self.transactions_in + self.dlq_total

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly snapshot, served by the worker's web view."""
        uptime = max(time.time() - self.started_at, 1e-9)
        return {
            "uptimeSeconds": round(uptime, 3),
            "messagesIn": self.messages_in,
            "transactionsIn": self.transactions_in,
            "alertsOut": self.alerts_out,
            "alertsByReason": dict(self.alerts_by_reason),
            "dlq": self.dlq_total,
            "dlqByReason": dict(self.dlq_by_reason),
            "redelivered": self.redelivered,
            "misrouted": self.misrouted,
            "latencyMs": {
                "count": self.latency_ms.total,
                "p50": self.latency_ms.quantile(0.50),
                "p95": self.latency_ms.quantile(0.95),
                "p99": self.latency_ms.quantile(0.99),
            },
        }
