"""A real Apache Kafka broker frozen for longer than the consumer group's session timeout.

``kafka.pause()`` stops the JVM with ``SIGSTOP``: the worker's connections stay open and
nothing answers, as in a long GC pause or on a hung disk. Unlike a frozen Tansu (whose group
clock stops with it), Kafka's group coordinator measures the session by the wall clock: when
the broker goes on, the session timer of the worker's member is long overdue and fires,
unless the heartbeat the worker sent during the pause (still unread in its socket) reaches
the coordinator first and renews the session. Both happen (seen: the member expired in most
runs, kept in some); either way the worker must go on by itself, rejoining the group under a
new generation when it was expired, without losing an alert. It must not hang.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fraudstream.local.apache_kafka import ApacheKafka
from fraudstream.local.worker_process import WorkerProcess
from tests.conftest import Pipeline
from tests.integration.test_crash import PacedProducer, stream
from tests.support.records import AMOUNT_RULE_ONLY_ENV, unique_processed, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOTAL = 3_000
RATE = 200  # tx/s: a 15 s stream, with the pause in the middle
PAUSE_AFTER = 800  # messages the worker has processed before the broker freezes
SESSION_TIMEOUT = 6.0  # s: the defaults' 30 s scaled by 1/5, as are the timeouts below
PAUSE_SECONDS = 2.5 * SESSION_TIMEOUT
#: Worker settings of both runs: only the amount rule alerts, and the default supervision
#: timings scaled like the session (a produce request is given up after a session timeout,
#: the worker exits after four without a broker), so the pause outlasts what it does there.
WORKER_ENV = {
    **AMOUNT_RULE_ONLY_ENV,
    "FRAUDSTREAM_BROKER_SESSION_TIMEOUT": str(SESSION_TIMEOUT),
    "FRAUDSTREAM_BROKER_REBALANCE_TIMEOUT": str(SESSION_TIMEOUT),
    "FRAUDSTREAM_BROKER_HEARTBEAT_INTERVAL": "2",
    "FRAUDSTREAM_PRODUCER_REQUEST_TIMEOUT": str(SESSION_TIMEOUT),
    "FRAUDSTREAM_BROKER_CHECK_INTERVAL": "1",
    "FRAUDSTREAM_BROKER_UNAVAILABLE_TIMEOUT": str(4 * SESSION_TIMEOUT),
}


def alerts_by_transaction(alerts: list[tuple[bytes, dict[str, Any]]]) -> dict[str, set[tuple]]:
    """What identifies each alert on the topic (id, user, amount, reasons), per transaction."""
    seen: dict[str, set[tuple]] = defaultdict(set)
    for key, alert in alerts:
        reasons = tuple(sorted(str(reason) for reason in alert["reasons"]))
        seen[alert["transactionId"]].add(
            (alert["alertId"], key, alert["userId"], alert["amount"], reasons)
        )
    return seen


def read_so_far(worker: WorkerProcess) -> int:
    """Messages the worker has read, or -1 while its web server does not answer."""
    try:
        return int(worker.stats()["messagesIn"])
    except (OSError, ValueError):
        return -1


def unique_processed_by(worker: WorkerProcess) -> int:
    """:func:`unique_processed` of the worker's stats (-1 while it does not answer)."""
    try:
        return unique_processed(worker.stats())
    except (OSError, ValueError):
        return -1


def generations(worker: WorkerProcess) -> list[int]:
    """The consumer-group generations the worker joined, in order, from its log."""
    return [
        int(n)
        for n in re.findall(
            r"Joined group '[^']*' \(generation (\d+)\)",
            worker.log_path.read_text(errors="replace"),
        )
    ]


def reference_alerts(
    kafka: ApacheKafka, tmp_path: Path, records: list[dict[str, object]], expected: int
) -> dict[str, set[tuple]]:
    """The alerts a worker with the same settings publishes for the same stream, unpaused."""
    tmp_path.mkdir()
    clean = Pipeline(kafka, tmp_path, **WORKER_ENV)
    worker = clean.start_worker()
    clean.send_json(records)
    worker.wait_processed(len(records), timeout=120)
    alerts = clean.read(
        clean.alerts_topic, until=lambda got: len({a["transactionId"] for _, a in got}) >= expected
    )
    clean.close()
    return alerts_by_transaction(alerts)


def test_a_broker_paused_past_the_session_timeout_loses_no_alert_and_the_worker_resumes(
    kafka: ApacheKafka,
    pipeline_factory: Callable[..., Pipeline],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = stream(seed=29)[:TOTAL]
    expected = {str(r["transactionId"]) for r in records if float(r["amount"]) > 10_000}  # type: ignore[arg-type]
    pipeline = pipeline_factory(**WORKER_ENV)
    worker = pipeline.start_worker()
    assert worker.process is not None
    pid = worker.process.pid
    # The pause holds the producer's requests unanswered: give them longer than the pause.
    producer = PacedProducer(
        kafka.bootstrap, pipeline.input_topic, records, RATE, request_timeout_ms=120_000
    )
    producer.start()
    worker.wait_processed(PAUSE_AFTER, timeout=120)

    kafka.pause()
    paused_at = time.monotonic()
    try:
        wait_until(
            lambda: "unreachable for" in worker.log_path.read_text(errors="replace"),
            timeout=PAUSE_SECONDS,
            interval=0.2,
            what="the worker to notice the frozen broker",
        )
        time.sleep(max(0.0, paused_at + PAUSE_SECONDS - time.monotonic()))
        read_in_pause = read_so_far(worker)  # its web server answers: the event loop runs
    finally:
        kafka.resume()  # the broker is the session's: leave it healthy for the other tests
    resumed_at = time.monotonic()
    pause_seconds = resumed_at - paused_at

    # The worker goes on: it reads past what it had read by the end of the pause, and its
    # health check answers 200 again (after a rejoin, once its tables are recovered).
    wait_until(
        lambda: read_so_far(worker) > read_in_pause >= PAUSE_AFTER,
        timeout=4 * SESSION_TIMEOUT,
        interval=0.1,
        what="the worker to process again after the pause",
    )
    resumed_after = time.monotonic() - resumed_at
    worker.wait_ready(timeout=4 * SESSION_TIMEOUT)
    healthy_after = time.monotonic() - resumed_at
    producer.join(timeout=120)
    assert producer.error is None and producer.sent == TOTAL
    inputs = pipeline.read(
        pipeline.input_topic,
        timeout=60,
        until=lambda got: len({tx["transactionId"] for _, tx in got}) >= TOTAL,
    )
    # Each input record reaches the detector once, or again as a recognised redelivery:
    # a record committed without being processed would never count.
    wait_until(
        lambda: unique_processed_by(worker) >= len(inputs),
        timeout=60,
        interval=0.2,
        what="the worker to process every input record",
    )
    stats = worker.stats()
    alerts = pipeline.read(
        pipeline.alerts_topic,
        timeout=60,
        until=lambda got: expected <= {a["transactionId"] for _, a in got},
        settle=2.0,
    )
    survived = worker.alive() and worker.process.pid == pid
    log = worker.log_path.read_text(errors="replace")
    joined = generations(worker)
    pipeline.close()

    paused = alerts_by_transaction(alerts)
    unpaused = reference_alerts(kafka, tmp_path / "unpaused", records, len(expected))
    with capsys.disabled():
        print(
            f"\nbroker pause: paused={pause_seconds:.1f}s (session timeout {SESSION_TIMEOUT:.0f}s) "
            f"inputs={TOTAL} input records={len(inputs)} read={stats['messagesIn']} "
            f"(redelivered {stats['redelivered']}, copies {stats['duplicates']}) "
            f"alerts expected={len(expected)} "
            f"seen={len(paused)} unpaused run={len(unpaused)} records on topic={len(alerts)} "
            f"duplicates={len(alerts) - len(paused)} "
            f"read again {resumed_after:.1f}s and healthy {healthy_after:.1f}s after the pause, "
            f"group generations {joined} "
            f"(session {'expired, rejoined' if len(joined) > 1 else 'kept'})"
        )
    # a producer's retry across the pause puts some records on the topic twice (3,430 records
    # for 3,000 sends in one run): the worker recognises the copies, counted as duplicates
    assert unique_processed(stats) == len(inputs)
    assert set(unpaused) == expected, "the unpaused run itself did not alert as expected"
    assert set(paused) == expected, "alerts lost (or extra) across the broker pause"
    assert all(len(versions) == 1 for versions in paused.values()), "a duplicate differs"
    assert paused == unpaused, "the alerts differ from those of a run without the pause"
    assert survived, "the worker process did not survive the pause"
    assert "reachable again" in log, "the worker did not log the recovery"
