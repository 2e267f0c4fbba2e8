"""Small helpers for sink tests: building processed records and polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from fraudstream.core.records import Alert, Reason, ReasonKind, Transaction, alert_id_for
from fraudstream.sinks.base import ProcessedRecord


def wait_until(
    predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.01, what: str = ""
) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def unique_processed(stats: dict[str, Any]) -> int:
    """Input records a worker handled once: those its detector applied and the copies it
    recognised (a producer's retry puts a record on the topic twice), not counting recognised
    redeliveries."""
    return int(stats["transactionsIn"]) - int(stats["redelivered"]) + int(stats["duplicates"])


def make_record(
    transaction_id: str,
    user_id: str = "user-1",
    amount: float = 12.5,
    timestamp: datetime | float = 1_700_000_000.123,
    score: float = 0.25,
    reasons: list[str] | None = None,
    risk: float = 0.75,
) -> ProcessedRecord:
    """A processed record; with ``reasons`` it carries an alert naming them."""
    if not isinstance(timestamp, datetime):
        timestamp = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    tx = Transaction(transaction_id, user_id, amount, timestamp)
    alert = None
    if reasons is not None:
        alert = Alert(
            alert_id=alert_id_for(tx),
            transaction=tx,
            detected_at=datetime.now(timezone.utc),
            score=score,
            reasons=[
                Reason(ReasonKind.RULE, name, {"detail": f"{name} fired"}) for name in reasons
            ],
            features={"log_amount": 0.5},
            risk=risk,
        )
    return ProcessedRecord(tx, score, alert)


#: Worker settings under which only the amount rule can alert: the fault tests know exactly
#: which alerts to expect (the per-user rules and the model would judge their synthetic
#: users, who pay every few seconds, and the classifier never gets labels there).
AMOUNT_RULE_ONLY_ENV = {
    "FRAUDSTREAM_MODEL_WARMUP": str(10**9),
    "FRAUDSTREAM_HABIT_SPIKE_ZSCORE": "1e9",
    "FRAUDSTREAM_UNFAMILIAR_PLACE_ZSCORE": "1e9",
    "FRAUDSTREAM_DEVIATION_ZSCORE": "1e9",
    "FRAUDSTREAM_DEVIATION_ZSCORE_AFTER_ALERT": "1e9",
    "FRAUDSTREAM_BURST_ZSCORE": "1e9",
    # the stream's raw-or-log evidence is process state, restored from the checkpoint after a
    # crash as the models are, and moves between batches, whose ends a crash moves: each user
    # on their own evidence, so profiles match a crash-free run's exactly
    "FRAUDSTREAM_SCALE_PRIOR_WEIGHT": "0",
}
