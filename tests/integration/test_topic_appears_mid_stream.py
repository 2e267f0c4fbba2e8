"""A topic the worker subscribes to appears while it streams: the group rebalances mid-stream.

The worker now creates the topics it reads before it subscribes (``FRAUDSTREAM_DECLARE_TOPICS``,
first test); the rebalance test turns that off, as a deployment whose worker may not create
topics does, and someone else creates the labels topic mid-stream.

Seen with ``fraudstream evaluate`` on Kafka 4.1: the worker subscribed to a labels topic that
did not exist yet; the consumer's periodic metadata refresh (``metadata_max_age_ms``, 5 min by
default) found it and the group rebalanced while the worker drained a backlog. Here the refresh
runs every few seconds (Faust reads ``CONSUMER_METADATA_MAX_AGE_MS`` from the environment), so
the rebalance lands a few seconds into a backlog with labels already waiting on the new topic.
Every record must be read after the rebalance: transactions, and the labels written to the new
topic before its partitions were assigned. The labels were lost only when the seek after the
rebalance stopped a batch holding them: a race. Before the fix 3 of 9 runs lost all 50 (none
of the last 3, on a quieter machine), so a pass here proves less than a failure.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from fraudstream.kafka.history import topic_partitions
from fraudstream.local.worker_process import WorkerProcess
from tests.conftest import PARTITIONS, Pipeline
from tests.integration.test_crash import PacedProducer, stream
from tests.integration.test_labels import label
from tests.support.records import unique_processed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOTAL = 20_000
RATE = 5_000  # tx/s: a backlog the worker drains for tens of seconds
LABELS = 50
METADATA_MAX_AGE_MS = 10_000  # the refresh that finds the labels topic, after the labels are in
STALL_SECONDS = 30.0  # no new message read for this long, with some unread: the worker stalled


def generations(worker: WorkerProcess) -> list[int]:
    """The group generations the worker's Faust app started, from its log.

    Faust's own line, not aiokafka's "Joined group", which the log throttle may fold.
    """
    log = worker.log_path.read_text(errors="replace")
    return [int(n) for n in re.findall(r"generation id (\d+) app consumers id", log)]


def distinct_read(stats: dict[str, Any]) -> int:
    """Records the worker applied once each: transactions (redeliveries aside) and labels."""
    return unique_processed(stats) + int(stats["labelsIn"])


def read_until_stalled(worker: WorkerProcess, expected: int) -> float:
    """Wait until the worker applied ``expected`` records or stopped reading; its longest pause.

    A pause is a stretch without any message read (redeliveries included).
    """
    read, last_change, longest = -1, time.monotonic(), 0.0
    while time.monotonic() - last_change < STALL_SECONDS:
        stats = worker.stats()
        now = time.monotonic()
        if int(stats["messagesIn"]) != read:
            longest = max(longest, now - last_change)
            read, last_change = int(stats["messagesIn"]), now
        if distinct_read(stats) >= expected:
            return longest
        time.sleep(0.1)
    return max(longest, time.monotonic() - last_change)


def test_the_worker_creates_a_missing_labels_topic_before_it_subscribes_so_no_rebalance_follows(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(
        labels_topic_exists=False, CONSUMER_METADATA_MAX_AGE_MS=str(METADATA_MAX_AGE_MS)
    )
    worker = pipeline.start_worker()
    bootstrap = pipeline.broker.bootstrap
    partitions = asyncio.run(topic_partitions(bootstrap, pipeline.labels_topic))
    assert partitions == list(range(PARTITIONS)), "created with the input's partition count"
    records = stream(seed=6)[:2_000]
    pipeline.send(
        [label(str(r["transactionId"]), str(r["userId"])) for r in records[:LABELS]],
        topic=pipeline.labels_topic,
    )
    producer = PacedProducer(bootstrap, pipeline.input_topic, records, RATE)
    producer.start()
    producer.join(timeout=60)
    assert producer.error is None
    read_until_stalled(worker, len(records) + LABELS)
    # past a metadata refresh: a topic created after the subscription would have rebalanced by now
    time.sleep(METADATA_MAX_AGE_MS / 1000 + 2)
    stats = worker.stats()
    assert unique_processed(stats) == len(records)
    assert stats["labelsIn"] == LABELS
    assert len(generations(worker)) == 1, "the group rebalanced: the topic came after subscribing"


def test_a_subscribed_topic_created_mid_stream_rebalances_and_the_worker_reads_every_record(
    pipeline_factory: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = pipeline_factory(
        labels_topic_exists=False,
        CONSUMER_METADATA_MAX_AGE_MS=str(METADATA_MAX_AGE_MS),
        FRAUDSTREAM_DECLARE_TOPICS="false",
    )
    worker = pipeline.start_worker()
    started = time.monotonic()
    records = stream(seed=5)[:TOTAL]
    producer = PacedProducer(pipeline.broker.bootstrap, pipeline.input_topic, records, RATE)
    producer.start()
    # Labels of the first transactions, on the topic the worker subscribed to before it existed.
    pipeline.send(
        [label(str(r["transactionId"]), str(r["userId"])) for r in records[:LABELS]],
        topic=pipeline.labels_topic,
    )
    labels_sent_after = time.monotonic() - started
    producer.join(timeout=120)
    assert producer.error is None and producer.sent == TOTAL

    longest_pause = read_until_stalled(worker, TOTAL + LABELS)
    stats = worker.stats()
    joined = generations(worker)
    with capsys.disabled():
        print(
            f"\ntopic appears mid-stream: inputs={TOTAL} labels={LABELS} "
            f"(sent {labels_sent_after:.1f}s after ready) read={stats['messagesIn']} "
            f"transactions={stats['transactionsIn']} labels read={stats['labelsIn']} "
            f"processed={unique_processed(stats)} "
            f"(redelivered {stats['redelivered']}) longest pause in reading {longest_pause:.1f}s "
            f"group generations {joined}"
        )
    assert len(joined) >= 2, "the new topic did not rebalance the group: nothing was tested"
    assert unique_processed(stats) == TOTAL, "transactions lost or stuck"
    assert stats["labelsIn"] == LABELS, "labels on the new topic were never read"
