"""The small interface every sink fills in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fraudstream.core.records import Alert, Reason, Transaction


@dataclass(frozen=True, slots=True)
class ProcessedRecord:
    """One transaction after detection: what a sink may want to store."""

    transaction: Transaction
    score: float
    alert: Alert | None
    #: Shadow rules' hits on the transaction (they never alert).
    shadow_hits: tuple[Reason, ...] = ()


class Sink(Protocol):
    """A destination for processed records and worker metrics.

    ``write`` is called on the stream's hot path and must never block or raise: a sink
    buffers, batches and retries on its own, and counts whatever it had to drop.
    """

    def write(self, record: ProcessedRecord) -> None:
        """Queue one processed transaction (and its alert, if any)."""

    def write_metrics(self, worker: str, metrics: dict[str, Any], at_epoch_s: float) -> None:
        """Queue one snapshot of the worker's own metrics."""

    def stats(self) -> dict[str, int]:
        """Counters: points queued, written, retried, dropped (and why)."""
        ...

    def close(self, timeout: float) -> None:
        """Drain what is buffered (up to ``timeout`` seconds), then release resources."""
