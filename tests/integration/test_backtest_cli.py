"""``fraudstream backtest`` over a real topic: a range by time, ground truth from a file or
the labels topic, and nothing written to the broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from fraudstream.kafka.history import topic_partitions
from tests.conftest import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: Broker time of the first record, ms; one record per second after it.
T0_MS = 1_733_320_000_000
#: Transaction id, user, amount; t1, t4 and t5 are frauds. New users: only amount rules fire.
STREAM = [
    ("t1", "u1", 800.0),
    ("t2", "u2", 600.0),
    ("t3", "u3", 20.0),
    ("t4", "u4", 12_000.0),
    ("t5", "u5", 30.0),
]
CANDIDATE = [
    {
        "id": "amount_threshold",
        "version": 2,
        "mode": "active",
        "kind": {"type": "amount_threshold", "threshold": 500},
    },
    {"id": "big", "mode": "shadow", "kind": {"type": "expression", "expression": "amount > 700"}},
]


def produce(pipeline: Pipeline) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.broker.bootstrap)
        await producer.start()
        try:
            for i, (tx_id, user, amount) in enumerate(STREAM):
                value = {
                    "transactionId": tx_id,
                    "userId": user,
                    "amount": amount,
                    "timestamp": (T0_MS + 86_400_000 * i) // 1000,
                }
                await producer.send_and_wait(
                    pipeline.input_topic,
                    orjson.dumps(value),
                    key=user.encode(),
                    timestamp_ms=T0_MS + 1000 * i,
                )
            for tx_id in ("t1", "t4", "t5"):
                label = {"transactionId": tx_id, "userId": "u", "label": "fraud"}
                await producer.send_and_wait(pipeline.labels_topic, orjson.dumps(label), key=b"u")
        finally:
            await producer.stop()

    asyncio.run(go())


def run(pipeline: Pipeline, tmp_path: Path, *args: str) -> dict[str, Any]:
    candidate = tmp_path / "candidate.json"
    candidate.write_bytes(orjson.dumps(CANDIDATE))
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream", "backtest", str(candidate), "--json", *args],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


def hits(report: dict[str, Any], which: str) -> dict[str, tuple[Any, ...]]:
    return {
        r["rule"]: (r["version"], r["mode"], r["hits"], r["precision"], r["recall"])
        for r in report[which]["rules"]
    }


def test_backtest_reports_hits_precision_and_recall_per_rule_from_a_ground_truth_file(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    produce(pipeline)
    truth = tmp_path / "truth.csv"
    truth.write_text("transactionId,label\nt1,fraud\nt2,legit\nt4,fraud\nt5,1\n")
    report = run(pipeline, tmp_path, "--ground-truth", str(truth))
    assert (report["transactions"], report["frauds"]) == (5, 3)
    candidate = hits(report, "candidate")
    assert candidate["amount_threshold"] == (2, "active", 3, 0.6667, 0.6667)
    assert candidate["big"] == (1, "shadow", 2, 1.0, 0.6667)
    assert hits(report, "inForce")["amount_threshold"] == (1, "active", 1, 1.0, 0.3333)
    # nothing live was touched: no rules topic appeared, the workers' group never existed
    assert asyncio.run(topic_partitions(pipeline.broker.bootstrap, pipeline.rules_topic)) == []
    assert pipeline.committed() == 0


def test_backtest_over_a_time_range_with_the_labels_topic_as_ground_truth(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    produce(pipeline)
    report = run(
        pipeline,
        tmp_path,
        "--labels-from-topic",
        "--from-time",
        "2024-12-04T13:46:41Z",  # T0 + 1 s: t2 onwards
        "--to-time",
        "2024-12-04T13:46:44Z",  # T0 + 4 s: before t5
    )
    assert (report["transactions"], report["frauds"]) == (3, 1)  # t2, t3, t4; t4 is fraud
    assert hits(report, "candidate")["amount_threshold"] == (2, "active", 2, 0.5, 1.0)
