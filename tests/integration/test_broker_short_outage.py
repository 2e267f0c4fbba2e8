"""A broker that goes away for a while and comes back: the same worker process rides it out.

Tansu keeps everything in memory, so restarting it would lose the topics, the committed
offsets and the group. The two outages here keep the broker's state:

* ``freeze``: the test's own Tansu process is stopped with ``SIGSTOP`` and continued with
  ``SIGCONT``. The kernel still accepts TCP connections on its port but nothing answers, as
  with a broker in a long GC pause, on a hung disk or behind a path that drops packets. The
  worker's connections stay open and its group session does not expire (the broker's clock
  stops too); what is tested is that the worker notices a silent broker and waits for it.
* ``cut``: the broker advertises a TCP proxy in front of it, and the proxy resets every
  connection and refuses new ones, as when the broker process or its host dies, then
  listens again. The broker keeps running, so the worker's group session expires: the worker
  must reconnect, rejoin the group and recover its table, which is the path a real restart
  of a Kafka broker takes. It runs on Tansu and on Apache Kafka (its own broker, since
  the cut reaches every client of it); the broker's SIGKILL and restart on Kafka are in
  ``test_real_kafka_faults.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fraudstream.local.apache_kafka import ApacheKafka, KafkaUnavailable
from fraudstream.local.ports import free_port
from fraudstream.local.tansu import BrokerUnavailable, TansuBroker
from tests.conftest import Pipeline
from tests.integration.test_crash import PacedProducer, stream
from tests.support.environment import require
from tests.support.records import AMOUNT_RULE_ONLY_ENV, unique_processed, wait_until
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TOTAL = 9_000
RATE = 300  # tx/s: a 30 s stream, with the outage in the middle
OUTAGE_AFTER = 1_500  # messages the worker has processed before the broker goes away
OUTAGE_SECONDS = 12.0  # > fetch wait, heartbeat interval and session timeout; < the exit timeout
UNAVAILABLE_TIMEOUT = 60  # the worker's FRAUDSTREAM_BROKER_UNAVAILABLE_TIMEOUT here


@dataclass
class Outage:
    """A broker of the test's own and a way to take it away and give it back."""

    kind: str
    broker: TansuBroker | ApacheKafka
    proxy: TcpProxy | None = None

    def begin(self) -> None:
        """Make the broker unavailable."""
        if self.proxy is not None:
            self.proxy.cut()
        else:
            _signal(self.broker, signal.SIGSTOP)  # type: ignore[arg-type]  # Tansu only

    def end(self) -> None:
        """Bring it back with all its state."""
        if self.proxy is not None:
            self.proxy.restore()
        else:
            _signal(self.broker, signal.SIGCONT)  # type: ignore[arg-type]  # Tansu only


@pytest.fixture(params=["freeze", "cut", "cut-kafka"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    """A broker of this test alone: taking it away must not stall the other tests."""
    proxy = None
    broker: TansuBroker | ApacheKafka
    try:
        if request.param == "cut-kafka":
            proxy_port = free_port()
            kafka = ApacheKafka(tmp_path / "kafka", advertised_port=proxy_port)
            proxy = TcpProxy(("127.0.0.1", kafka.port), port=proxy_port).start()
            broker = kafka.start()
        elif request.param == "cut":
            port = free_port()
            proxy = TcpProxy(("127.0.0.1", port)).start()
            broker = TansuBroker(
                port=port, advertised_port=proxy.port, log_path=tmp_path / "tansu.log"
            ).start()
        else:
            broker = TansuBroker(log_path=tmp_path / "tansu.log").start()
    except KafkaUnavailable as exc:
        require(f"Apache Kafka unavailable: {exc}")
    except BrokerUnavailable as exc:
        require(f"embedded broker unavailable: {exc}")
    yield Outage(request.param, broker, proxy)
    if isinstance(broker, TansuBroker):
        _signal(broker, signal.SIGCONT)  # a frozen broker would ignore SIGTERM until continued
    broker.stop()
    if proxy is not None:
        proxy.stop()


def _signal(broker: TansuBroker, signum: signal.Signals) -> None:
    """Send ``signum`` to the broker process."""
    assert broker.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(broker.process.pid, signum)


def test_worker_rides_out_a_short_broker_outage_and_loses_no_alert(
    outage: Outage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = Pipeline(
        outage.broker,
        tmp_path,
        **AMOUNT_RULE_ONLY_ENV,  # only the amount rule alerts: the expected set is exact
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
            outage.broker.bootstrap,
            pipeline.input_topic,
            records,
            RATE,
            request_timeout_ms=120_000,
            max_batch_size=1024 * 1024,
        )
        producer.start()
        worker.wait_processed(OUTAGE_AFTER, timeout=120)

        sent_before = producer.sent
        outage.begin()
        began_at = time.monotonic()
        # The outage lasts OUTAGE_SECONDS, and until the worker has noticed it.
        wait_until(
            lambda: (
                time.monotonic() - began_at >= OUTAGE_SECONDS
                and "unreachable for" in worker.log_path.read_text(errors="replace")
            ),
            timeout=OUTAGE_SECONDS + 10,
            interval=0.1,
            what="the worker to log the outage",
        )
        outage.end()
        ended_at = time.monotonic()
        outage_seconds = ended_at - began_at
        sent_during = producer.sent - sent_before
        # Beyond what was sent before the outage, a message must have passed the restored broker.
        try:
            wait_until(
                lambda: worker.stats()["messagesIn"] > sent_before,
                timeout=UNAVAILABLE_TIMEOUT,
                interval=0.1,
                what="the worker to process again after the outage",
            )
        except pytest.fail.Exception:
            # Which side stalled: the test's producer (nothing new on the broker) or the worker.
            on_broker = len(pipeline.read(pipeline.input_topic, timeout=10, settle=1.0))
            pytest.fail(
                f"the worker did not process again after the outage: sent before it "
                f"{sent_before}, handed to the producer {producer.sent}, on the broker "
                f"{on_broker}, read by the worker {worker.stats()['messagesIn']}"
            )
        resumed_after = time.monotonic() - ended_at

        producer.join(timeout=180)
        assert producer.error is None and producer.sent == TOTAL
        # A produce request cut after the broker wrote it is sent again by the producer, so
        # the input may hold a transaction twice (at-least-once on the producer side too).
        inputs = pipeline.read(
            pipeline.input_topic,
            timeout=120,
            until=lambda got: len({tx["transactionId"] for _, tx in got}) >= TOTAL,
            settle=1.0,
        )
        wait_until(
            lambda: unique_processed(worker.stats()) >= len(inputs),
            timeout=180,
            interval=0.2,
            what="the worker to process every input record",
        )
        stats = worker.stats()
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
    sent_after = TOTAL - sent_before - sent_during
    with capsys.disabled():
        print(
            f"\nbroker {outage.kind}: outage={outage_seconds:.1f}s inputs={TOTAL} "
            f"(before={sent_before} during={sent_during} after={sent_after}) "
            f"alerts expected={len(expected)} seen={len(seen)} records on topic={len(alerts)} "
            f"duplicates={len(alerts) - len(seen)} input records={len(inputs)} "
            f"processed={stats['transactionsIn']} "
            f"(redelivered {stats['redelivered']}, copies {stats['duplicates']}) "
            f"resumed {resumed_after:.1f}s after it ended"
        )
    # Each input record reached the detector once, or again as a recognised redelivery.
    assert len({tx["transactionId"] for _, tx in inputs}) == TOTAL
    assert unique_processed(stats) == len(inputs)
    assert expected - seen == set(), "alerts lost across the broker outage"
    assert seen - expected == set(), "alerts for transactions that should not alert"
    assert all(len(ids) == 1 for ids in by_transaction.values()), "a duplicate changed its id"
    assert survived, "the worker process did not survive the outage"
    assert "unreachable for" in log, "the worker did not log the outage"
    assert "reachable again" in log, "the worker did not log the recovery"
