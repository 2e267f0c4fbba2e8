"""Fault suite: kill -9 the worker mid-stream, restart it, and account for every alert."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from fraudstream.local.worker_process import WorkerProcess
from tests.conftest import Pipeline
from tests.support.records import AMOUNT_RULE_ONLY_ENV

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TOTAL = 20_000
RATE = 1_500  # tx/s: the stream lasts ~13 s, long enough for three kills and restarts
KILLS = 3
RULE_SHARE = 0.02


def stream(seed: int = 11) -> list[dict[str, object]]:
    """Deterministic transactions; about 2% exceed the rule threshold."""
    rng = random.Random(seed)
    records = []
    for i in range(TOTAL):
        large = rng.random() < RULE_SHARE
        records.append(
            {
                "transactionId": f"crash-{i}",
                "userId": f"user-{rng.randrange(500)}",
                "amount": round(rng.uniform(10_500, 40_000) if large else rng.uniform(1, 300), 2),
                "timestamp": 1_733_320_000 + i * 0.05,
            }
        )
    return records


def stream_through_kills(
    pipeline: Pipeline, records: list[dict[str, object]]
) -> tuple[int, WorkerProcess]:
    """Stream ``records`` at RATE while the worker is killed -9 KILLS times mid-work and
    restarted; returns the kills and the last worker, still running."""
    worker = pipeline.start_worker()
    producer = PacedProducer(pipeline.broker.bootstrap, pipeline.input_topic, records, RATE)
    producer.start()
    for kills in range(1, KILLS + 1):
        target = TOTAL * kills // (KILLS + 2)
        worker.wait_processed(min(500, target // kills), timeout=120)  # mid-work, not idle
        while producer.sent < target:
            time.sleep(0.05)
        worker.kill()
        worker = pipeline.start_worker()
    producer.join(timeout=120)
    assert producer.error is None and producer.sent == TOTAL
    return KILLS, worker


class PacedProducer(threading.Thread):
    """Sends the stream at a fixed rate from its own thread and event loop."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        records: list[dict[str, object]],
        rate: float,
        **producer_options: object,
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.records, self.rate = bootstrap, topic, records, rate
        self.producer_options = producer_options
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._send())
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    async def _send(self) -> None:
        options = {"linger_ms": 5, "acks": "all", **self.producer_options}
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **options)
        await producer.start()
        try:
            start = time.monotonic()
            for i, record in enumerate(self.records):
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                key = str(record["userId"]).encode()
                await producer.send(self.topic, orjson.dumps(record), key=key)
                self.sent += 1
            await producer.flush()
        finally:
            await producer.stop()


@pytest.mark.parametrize("delivery", ["direct", "faust-stream"])
def test_kill_9_three_times_loses_no_alert_and_duplicates_share_their_id(
    delivery: str, pipeline_factory: type[Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the amount rule can alert here: the expected alerts are exactly its own. Both ways
    # messages reach the batch handler (FRAUDSTREAM_DIRECT_DELIVERY) must commit only what
    # was handled.
    direct = "true" if delivery == "direct" else "false"
    pipeline = pipeline_factory(**AMOUNT_RULE_ONLY_ENV, FRAUDSTREAM_DIRECT_DELIVERY=direct)
    records = stream()
    expected = {str(r["transactionId"]) for r in records if float(r["amount"]) > 10_000}  # type: ignore[arg-type]

    kills, worker = stream_through_kills(pipeline, records)

    alerts = pipeline.read(
        pipeline.alerts_topic,
        timeout=120,
        until=lambda got: expected <= {a["transactionId"] for _, a in got},
        settle=3.0,  # duplicates may trail the last new alert
    )
    by_transaction: dict[str, set[str]] = defaultdict(set)
    for _, alert in alerts:
        by_transaction[alert["transactionId"]].add(alert["alertId"])
    seen = set(by_transaction)
    duplicates = len(alerts) - len(seen)
    with capsys.disabled():
        print(
            f"\ncrash test ({delivery}): inputs={TOTAL} kills={kills} "
            f"alerts expected={len(expected)} alerts seen={len(seen)} "
            f"records on topic={len(alerts)} duplicates={duplicates} missing={len(expected - seen)}"
        )
    assert expected - seen == set(), "alerts lost after kill -9"
    assert seen - expected == set(), "alerts for transactions that should not alert"
    assert all(len(ids) == 1 for ids in by_transaction.values()), "a duplicate changed its id"
    assert worker.alive()
