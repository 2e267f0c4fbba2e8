"""Labels through a real worker: the classifier learns, bad labels are dead-lettered, and what
waits for its label survives a restart (on Apache Kafka, whose end offsets recovery trusts)."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from tests.conftest import Pipeline

pytestmark = pytest.mark.integration

DAY = 86400


def transactions(count: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "transactionId": f"tx-{i}",
            "userId": f"user-{i % 7}",
            "amount": 20 + i % 9,
            "timestamp": 1_700_000_000 + 600 * i,
            "merchantId": f"T{i % 5}",
        }
        for i in range(start, start + count)
    ]


def label(tx_id: str, user: str, verdict: str = "fraud", **extra: str) -> tuple[bytes, bytes]:
    doc = {"transactionId": tx_id, "userId": user, "label": verdict, "source": "analyst", **extra}
    return user.encode(), orjson.dumps(doc)


def send_labels(pipeline: Pipeline, labels: list[tuple[bytes, bytes]]) -> None:
    pipeline.send(list(labels), topic=pipeline.labels_topic)


def test_labels_teach_the_classifier_and_bad_ones_reach_the_dead_letter_topic(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory()
    worker = pipeline.start_worker()
    pipeline.send_json(transactions(20))
    worker.wait_processed(20)
    send_labels(
        pipeline,
        [
            label("tx-3", "user-3"),
            label("tx-4", "user-4", "legit"),
            (b"user-1", b'{"transactionId": "tx-1", "label": "fraud"}'),  # no userId
            label("tx-never-sent", "user-2"),
        ],
    )
    stats = worker.wait_processed(24)
    assert stats["labelsByVerdict"] == {"fraud": 1, "legit": 1}
    assert stats["dlqByReason"] == {"invalid_label": 1, "unknown_transaction": 1}
    assert (stats["classifier"]["frauds"], stats["classifier"]["legit"]) == (1, 1)
    classifier = stats["classifier"]
    assert (classifier["threshold"], classifier["lineCertified"]) == (1.0, False), "two labels"
    assert classifier["bestLabelledPrecision"] == 0.0, "too few frauds to judge a part against"
    assert stats["pending"]["size"] == 18
    dead = {record["reason"]: record for _, record in pipeline.read(pipeline.dlq_topic, expected=2)}
    assert dead["unknown_transaction"]["source"]["topic"] == pipeline.labels_topic
    assert "tx-never-sent" in dead["unknown_transaction"]["error"]


def test_transactions_waiting_for_their_label_survive_a_worker_restart(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory()
    first = pipeline.start_worker()
    pipeline.send_json(transactions(30))
    first.wait_processed(30)
    assert first.stats()["pending"]["size"] == 30
    assert first.stop() == 0

    second = pipeline.start_worker()
    assert second.stats()["pending"]["size"] == 30, "pending labels not recovered"
    send_labels(pipeline, [label("tx-12", "user-5")])
    stats = second.wait_processed(1)
    assert stats["labelsByVerdict"] == {"fraud": 1}, stats
    assert stats["dlq"] == 0
    assert stats["classifier"]["frauds"] == 1


def test_labels_read_before_their_transactions_wait_for_them(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    # A worker behind on transactions reads the labels topic first: here the labels, made a
    # week after their transactions, are on the broker before the transactions are.
    pipeline = pipeline_factory()
    worker = pipeline.start_worker()
    # Made after tx-3 and tx-9 (23:43) and before the last transactions (01:23 next day), so
    # they are learned once the transaction stream reaches that moment, as they would be live.
    made = "2023-11-15T00:30:00Z"
    send_labels(
        pipeline,
        [
            label("tx-3", "user-3", labeledAt=made),
            label("tx-9", "user-2", labeledAt=made),
        ],
    )
    stats = worker.wait_processed(2)
    assert stats["pending"]["heldLabels"] == 2 and stats["dlq"] == 0
    pipeline.send_json(transactions(20))
    stats = worker.wait_processed(22)
    assert stats["labelsByVerdict"] == {"fraud": 2}, stats
    assert stats["classifier"]["frauds"] == 2
    assert stats["pending"]["heldLabels"] == 0 and stats["pending"]["heldResolved"] == 2
    assert stats["dlq"] == 0
