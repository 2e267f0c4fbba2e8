"""Two workers share the partitions by userId and keep every user's state in one place."""

from __future__ import annotations

import pytest

from tests.conftest import Pipeline
from tests.support.records import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USERS = 24
HISTORY = 12


def test_two_workers_split_the_load_and_each_user_keeps_one_profile(pipeline: Pipeline) -> None:
    first = pipeline.start_worker()
    second = pipeline.start_worker()

    def partitions(worker: object) -> int:
        return int(worker.get_json("/health")[1].get("assignedPartitions", 0))  # type: ignore[attr-defined]

    wait_until(lambda: partitions(first) > 0 and partitions(second) > 0, timeout=90, interval=0.5)
    assert partitions(first) + partitions(second) == 4

    history = [
        {
            "transactionId": f"h-{u}-{i}",
            "userId": f"user-{u}",
            "amount": 20 + i % 4,
            "timestamp": 1_733_320_000 + 3600 * i,
        }
        for i in range(HISTORY)
        for u in range(USERS)
    ]
    spikes = [
        {
            "transactionId": f"spike-{u}",
            "userId": f"user-{u}",
            "amount": 15_000,
            "timestamp": 1_733_320_000 + 3600 * HISTORY,
        }
        for u in range(USERS)
    ]
    pipeline.send_json(history + spikes)
    total = len(history) + len(spikes)
    wait_until(
        lambda: first.stats()["messagesIn"] + second.stats()["messagesIn"] >= total, timeout=120
    )

    counts = (first.stats()["messagesIn"], second.stats()["messagesIn"])
    assert sum(counts) == total and min(counts) > 0, counts
    alerts = pipeline.read(
        pipeline.alerts_topic,
        until=lambda got: (
            {a["transactionId"] for _, a in got} >= {s["transactionId"] for s in spikes}
        ),
    )
    by_tx = {a["transactionId"]: a for _, a in alerts if a["transactionId"].startswith("spike-")}
    assert len(by_tx) == USERS
    # Each spike was scored against the user's history: a worker without it would see a new
    # user (neutral z-score 0).
    assert all(a["features"]["z_habit"] > 1.5 for a in by_tx.values())
