"""Exactly-once batches: outputs, changelog and offsets in one transaction, acked only after it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest
from aiokafka import TopicPartition

from fraudstream.core.detector import Detector
from fraudstream.core.pending import DAY, PendingStore
from fraudstream.worker.changelog import BatchProducer
from fraudstream.worker.handler import BatchHandler
from fraudstream.worker.outbox import BatchOutbox
from fraudstream.worker.state import StateChanges, WorkerState
from fraudstream.worker.stats import WorkerStats
from fraudstream.worker.transactions import PartitionTransactions, TransactionFailed
from tests.unit.worker.test_handler import CONFIG, NOW, FakeEvent, FakeMessage, tx
from tests.unit.worker.test_outbox import FakeBatch

INPUT, ALERTS, DLQ = "tx", "alerts", "dlq"


class FakeProducer:
    """Records every call in order; ``fail_on`` names the call that raises."""

    def __init__(self, log: list[tuple[Any, ...]], tid: str, fail_on: str = "") -> None:
        self.log, self.tid, self.fail_on = log, tid, fail_on

    def _call(self, *entry: Any) -> None:
        self.log.append((self.tid, *entry))
        if entry[0] == self.fail_on:
            raise RuntimeError(f"{entry[0]} refused")

    async def start(self) -> None:
        self._call("start")

    async def stop(self) -> None:
        self._call("stop")

    async def begin_transaction(self) -> None:
        self._call("begin")

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self._call(f"batch:{topic}", partition, len(batch.records))
        return _done(type("Meta", (), {"offset": 0})())

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    async def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None:
        self._call("offsets", dict(offsets), group_id)

    async def commit_transaction(self) -> None:
        self._call("commit")

    async def abort_transaction(self) -> None:
        self._call("abort")


def _done(value: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


class Exited(Exception):
    """Stands in for the worker's exit."""


def exit_worker() -> NoReturn:
    raise Exited


@dataclass
class Rig:
    handler: BatchHandler
    transactions: PartitionTransactions
    log: list[tuple[Any, ...]]
    acked: list[int]

    def run(self, *messages: FakeMessage) -> None:
        """One batch; the ack stands for Faust's, which follows ``handle`` returning."""

        async def go() -> None:
            await self.transactions.on_rebalance([TopicPartition(INPUT, p) for p in range(2)], [])
            await self.handler.handle([FakeEvent(m) for m in messages])
            self.acked.extend(m.offset for m in messages)

        asyncio.run(go())


def rig(fail_on: str = "") -> Rig:
    log: list[tuple[Any, ...]] = []
    outbox = BatchOutbox(ALERTS, DLQ)
    pending = PendingStore({}, horizon=7 * DAY, late_window=DAY, max_entries=100)
    state = WorkerState({}, pending, {}, partitions=2)

    async def write_changes(changes: StateChanges, producer: BatchProducer) -> None:
        await changes.profiles.flush(producer, "profiles-changelog")

    transactions = PartitionTransactions(
        lambda tid: FakeProducer(log, tid, fail_on),
        outbox,
        write_changes,
        app_id="app",
        group_id="app",
        input_topics=[INPUT],
    )
    handler = BatchHandler(
        Detector(CONFIG),
        state,
        WorkerStats(),
        outbox,
        transactions.commit_batch,
        exit_worker,
        clock=lambda: NOW,
    )
    return Rig(handler, transactions, log, [])


def big(offset: int, partition: int = 0, user: str = "u1") -> FakeMessage:
    """A transaction over the amount threshold: it alerts."""
    message = tx(offset, user=user, amount=50_000.0)
    message.partition, message.topic = partition, INPUT
    return message


def calls(r: Rig, tid: str) -> list[str]:
    return [entry[1] for entry in r.log if entry[0] == tid and entry[1] != "start"]


def test_alerts_changelog_and_offsets_go_in_one_transaction_committed_before_the_ack() -> None:
    r = rig()
    r.run(big(7), big(8))
    assert calls(r, "app-tx-0") == [
        "begin",
        f"batch:{ALERTS}",
        "batch:profiles-changelog",
        "offsets",
        "commit",
    ]
    [alerts] = [e for e in r.log if e[1] == f"batch:{ALERTS}"]
    assert alerts[3] == 2, "both alerts in one record batch"
    [offsets] = [e for e in r.log if e[1] == "offsets"]
    assert offsets[2] == {TopicPartition(INPUT, 0): 9}, "the next offset to read, in the txn"
    assert r.acked == [7, 8]


def test_each_input_partition_commits_in_its_own_transaction() -> None:
    r = rig()
    r.run(big(3, partition=0, user="u1"), big(5, partition=1, user="u2"))
    assert calls(r, "app-tx-0")[-2:] == ["offsets", "commit"]
    assert calls(r, "app-tx-1")[-2:] == ["offsets", "commit"]
    changelog = {(e[0], e[2]) for e in r.log if e[1] == "batch:profiles-changelog"}
    assert changelog == {("app-tx-0", 0), ("app-tx-1", 1)}, "a partition's records, its txn"


@pytest.mark.parametrize(
    "failing", [f"batch:{ALERTS}", "batch:profiles-changelog", "offsets", "commit"]
)
def test_a_failed_transaction_is_aborted_and_the_batch_never_acked(failing: str) -> None:
    r = rig(fail_on=failing)
    with pytest.raises(Exited):
        r.run(big(7))
    assert calls(r, "app-tx-0")[-1] == "abort"
    assert ("commit" in calls(r, "app-tx-0")) == (failing == "commit"), "never committed"
    assert r.acked == []


def test_a_batch_from_a_partition_this_worker_does_not_own_fails() -> None:
    async def go() -> None:
        r = rig()
        await r.transactions.on_rebalance([TopicPartition(INPUT, 0)], [])
        await r.transactions.commit_batch(StateChanges(), {(INPUT, 3): 1})

    with pytest.raises(TransactionFailed, match="partition 3"):
        asyncio.run(go())


def test_a_revoked_partition_stops_its_producer_and_a_new_one_starts_once() -> None:
    async def go() -> list[tuple[Any, ...]]:
        r = rig()
        await r.transactions.on_rebalance([TopicPartition(INPUT, 0)], [])
        await r.transactions.on_rebalance([TopicPartition(INPUT, 0)], [])
        await r.transactions.on_rebalance([TopicPartition(INPUT, 1)], [TopicPartition(INPUT, 0)])
        return r.log

    assert asyncio.run(go()) == [
        ("app-tx-0", "start"),
        ("app-tx-0", "stop"),
        ("app-tx-1", "start"),
    ]


def test_changes_left_from_a_revoked_partition_are_skipped_not_fatal() -> None:
    async def go() -> list[tuple[Any, ...]]:
        r = rig()
        await r.transactions.on_rebalance([TopicPartition(INPUT, 0)], [])
        stale = StateChanges()
        stale.pending.put(3, b"t-old", None)  # a label matured in a partition given away
        await r.transactions.commit_batch(stale, {(INPUT, 0): 4})
        return r.log

    log = asyncio.run(go())
    assert [e[1] for e in log if e[0] == "app-tx-0"] == ["start", "begin", "offsets", "commit"]
    assert not [e for e in log if e[0] == "app-tx-3"]
