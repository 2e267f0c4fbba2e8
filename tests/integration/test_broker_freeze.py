"""A broker that stops answering for a while: the same worker process rides it out.

How the outage is made: the test's own Tansu process is frozen with ``SIGSTOP`` and thawed
with ``SIGCONT``. Tansu keeps everything in memory, so a restart would lose the topics, the
committed offsets and the group; a frozen process keeps them all and comes back exactly as it
was. It is also the harder case for the worker: the kernel still accepts TCP connections on
the frozen broker's port, but nothing ever answers, as with a broker stuck in a long GC
pause, on a hung disk or behind a network path that drops packets. A proxy that refuses
connections would only test the easy case (a refused connect is noticed at once).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudstream.tansu import BrokerUnavailable, TansuBroker
from tests.conftest import Pipeline
from tests.integration.test_crash import PacedProducer, stream
from tests.support.environment import require
from tests.support.records import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TOTAL = 9_000
RATE = 300  # tx/s: a 30 s stream, with the freeze in the middle
FREEZE_AFTER = 1_500  # messages the worker has processed before the broker freezes
OUTAGE_SECONDS = 12.0  # > fetch wait, heartbeat interval and session timeout; < the exit timeout
UNAVAILABLE_TIMEOUT = 60  # the worker's FRAUDSTREAM_BROKER_UNAVAILABLE_TIMEOUT here


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    """A broker of this test alone: freezing it must not stall the other tests."""
    try:
        broker = TansuBroker(log_path=tmp_path / "tansu.log").start()
    except BrokerUnavailable as exc:
        require(f"embedded broker unavailable: {exc}")
    yield broker
    _signal(broker, signal.SIGCONT)  # a frozen broker would ignore SIGTERM until thawed
    broker.stop()


def _signal(broker: TansuBroker, signum: signal.Signals) -> None:
    """Send ``signum`` to the broker process."""
    assert broker.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(broker.process.pid, signum)


def test_worker_rides_out_a_frozen_broker_and_loses_no_alert(
    own_broker: TansuBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = Pipeline(
        own_broker,
        tmp_path,
        FRAUDSTREAM_MODEL_WARMUP=str(10**9),  # only the rule alerts: the expected set is exact
        FRAUDSTREAM_BROKER_CHECK_INTERVAL="1",
        FRAUDSTREAM_BROKER_UNAVAILABLE_TIMEOUT=str(UNAVAILABLE_TIMEOUT),
    )
    try:
        records = stream(seed=23)[:TOTAL]
        expected = {str(r["transactionId"]) for r in records if float(r["amount"]) > 10_000}  # type: ignore[arg-type]
        worker = pipeline.start_worker()
        assert worker.process is not None
        pid = worker.process.pid
        # A generous request timeout: sends handed over during the freeze wait for the broker.
        producer = PacedProducer(
            own_broker.bootstrap,
            pipeline.input_topic,
            records,
            RATE,
            request_timeout_ms=120_000,
            max_batch_size=1024 * 1024,
        )
        producer.start()
        worker.wait_processed(FREEZE_AFTER, timeout=120)

        sent_before = producer.sent
        _signal(own_broker, signal.SIGSTOP)
        frozen_at = time.monotonic()
        # The outage lasts OUTAGE_SECONDS, and until the worker has noticed it.
        wait_until(
            lambda: (
                time.monotonic() - frozen_at >= OUTAGE_SECONDS
                and "unreachable for" in worker.log_path.read_text(errors="replace")
            ),
            timeout=OUTAGE_SECONDS + 10,
            interval=0.1,
            what="the worker to log the outage",
        )
        _signal(own_broker, signal.SIGCONT)
        thawed_at = time.monotonic()
        outage = thawed_at - frozen_at
        sent_during = producer.sent - sent_before
        # Beyond what was sent before the freeze, a message must have passed the thawed broker.
        wait_until(
            lambda: worker.stats()["messagesIn"] > sent_before,
            timeout=UNAVAILABLE_TIMEOUT,
            interval=0.1,
            what="the worker to process again after the thaw",
        )
        resumed_after = time.monotonic() - thawed_at

        producer.join(timeout=180)
        assert producer.error is None and producer.sent == TOTAL
        stats = worker.wait_processed(TOTAL, timeout=180)
        alerts = pipeline.read(
            pipeline.alerts_topic,
            timeout=120,
            until=lambda got: expected <= {a["transactionId"] for _, a in got},
            settle=3.0,
        )
        survived = worker.alive() and worker.process.pid == pid
    finally:
        pipeline.close()

    by_transaction: dict[str, set[str]] = defaultdict(set)
    for _, alert in alerts:
        by_transaction[alert["transactionId"]].add(alert["alertId"])
    seen = set(by_transaction)
    log = worker.log_path.read_text(errors="replace")
    with capsys.disabled():
        print(
            f"\nbroker freeze: outage={outage:.1f}s inputs={TOTAL} (before={sent_before} "
            f"during={sent_during} after={TOTAL - sent_before - sent_during}) "
            f"alerts expected={len(expected)} seen={len(seen)} records on topic={len(alerts)} "
            f"duplicates={len(alerts) - len(seen)} processed={stats['transactionsIn']} "
            f"(redelivered {stats['redelivered']}) resumed {resumed_after:.1f}s after the thaw"
        )
    # Each input reached the detector once, or again as a recognised redelivery.
    assert stats["transactionsIn"] - stats["redelivered"] == TOTAL
    assert expected - seen == set(), "alerts lost across the broker outage"
    assert seen - expected == set(), "alerts for transactions that should not alert"
    assert all(len(ids) == 1 for ids in by_transaction.values()), "a duplicate changed its id"
    assert survived, "the worker process did not survive the outage"
    assert "unreachable for" in log, "the worker did not log the outage"
    assert "reachable again" in log, "the worker did not log the recovery"
