"""Direct delivery: the batch loop takes Faust's Messages, tracked and acked as its stream would.

The app is a real Faust app without a broker: its consumer's ack bookkeeping (what offsets a
commit may reach) and its flow control are the real ones.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import faust
import pytest
from faust import streams as faust_streams
from faust.transport import conductor as faust_conductor
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from fraudstream.worker.patches import _DELIVERIES, DirectDelivery

TOPIC = "tx"


def message(offset: int, generation: int = 0, partition: int = 0) -> ConsumerMessage:
    return ConsumerMessage(
        TOPIC, partition, offset, 0.0, 0, None, b"k", b"v", None, generation_id=generation
    )


def delivery_for(app: faust.App) -> DirectDelivery:
    app.topics._acking_topics.add(TOPIC)  # type: ignore[attr-defined]  # the agent's channel acks
    app.flow_control.resume()
    return DirectDelivery(app, [TOPIC], maxsize=100)


def run(coroutine_function):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine_function())


def test_a_batch_is_what_was_queued_in_order_and_at_most_max_events() -> None:
    async def go() -> tuple[list[int], list[int]]:
        app = faust.App("direct-1", broker="kafka://127.0.0.1:1")
        delivery = delivery_for(app)
        on_message = delivery._on_message(TP(TOPIC, 0))
        for offset in range(7):
            await on_message(message(offset))
        first = await delivery.take(max_events=5, max_wait=0.01)
        second = await delivery.take(max_events=5, max_wait=0.01)
        return [d.message.offset for d in first], [d.message.offset for d in second]

    assert run(go) == ([0, 1, 2, 3, 4], [5, 6])


def test_a_backlog_already_waiting_is_taken_as_one_larger_batch() -> None:
    """At least ``backlog`` messages waiting: that many in one batch; fewer: ``max_events``."""

    async def go() -> list[int]:
        app = faust.App("direct-backlog", broker="kafka://127.0.0.1:1")
        delivery = delivery_for(app)
        on_message = delivery._on_message(TP(TOPIC, 0))
        for offset in range(14):
            await on_message(message(offset))
        sizes = []
        for _ in range(3):  # 14 waiting, then 6, then 1
            sizes.append(len(await delivery.take(max_events=5, max_wait=0.001, backlog=8)))
        return sizes

    assert run(go) == [8, 5, 1]


def test_messages_of_an_earlier_group_generation_are_dropped_like_faust_streams_drop_them() -> None:
    async def go() -> list[int]:
        app = faust.App("direct-2", broker="kafka://127.0.0.1:1")
        delivery = delivery_for(app)
        on_message = delivery._on_message(TP(TOPIC, 0))
        app.consumer_generation_id = 3
        for offset, generation in ((0, 2), (1, 2), (2, 3)):
            await on_message(message(offset, generation))
        return [d.message.offset for d in await delivery.take(10, 0.005)]

    assert run(go) == [2]


def test_taken_messages_are_unacked_until_done_then_a_commit_may_pass_them() -> None:
    async def go() -> tuple[int, int | None, int, int | None]:
        app = faust.App("direct-3", broker="kafka://127.0.0.1:1")
        consumer = app.consumer
        delivery = delivery_for(app)
        on_message = delivery._on_message(TP(TOPIC, 0))
        for offset in range(3):
            await on_message(message(offset))
        batch = await delivery.take(10, 0.005)
        unacked_in_hand = len(consumer.unacked)
        before = consumer._new_offset(TP(TOPIC, 0))  # type: ignore[attr-defined]
        delivery.done(batch)
        return (
            unacked_in_hand,
            before,
            len(consumer.unacked),
            consumer._new_offset(TP(TOPIC, 0)),  # type: ignore[attr-defined]
        )

    # while in hand a rebalance's wait_empty waits for them and nothing is committable;
    # once done, the commit reaches the offset after the last
    assert run(go) == (3, None, 0, 3)


def test_nothing_is_handed_out_while_the_flow_is_stopped_for_a_rebalance() -> None:
    async def go() -> list[ConsumerMessage]:
        app = faust.App("direct-4", broker="kafka://127.0.0.1:1")
        delivery = delivery_for(app)
        delivery.queue.put_nowait(message(0))  # fetched before the flow stopped
        app.flow_control.suspend()
        return [d.message for d in await delivery.take(10, 0.005)]

    assert run(go) == []


def test_install_replaces_only_the_callbacks_of_the_agent_topics() -> None:
    async def go() -> tuple[bool, bool]:
        app = faust.App("direct-5", broker="kafka://127.0.0.1:1")
        delivery = delivery_for(app)
        delivery.install()
        mine = app.topics._build_handler(TP(TOPIC, 0), set())  # type: ignore[attr-defined]
        other = app.topics._build_handler(TP("changelog", 0), set())  # type: ignore[attr-defined]
        ours = "DirectDelivery._on_message"
        return ours in getattr(mine, "__qualname__", ""), ours in getattr(other, "__qualname__", "")

    assert run(go) == (True, False)


def test_faust_still_builds_delivery_callbacks_and_filters_stale_events_where_we_hook_in() -> None:
    """Fails when a Faust upgrade moves what DirectDelivery replaces or mirrors."""
    build = inspect.getsource(faust_conductor.Conductor._build_handler)
    assert "ConductorHandler(self, tp, channels)" in build
    assert "self._compiler.build(self, tp, channels)" in build
    assert "self._build_handler(tp" in inspect.getsource(
        faust_conductor.Conductor._update_callback_map
    )
    compiled = inspect.getsource(faust_conductor.ConductorCompiler.build)
    for step in ("acquire_flow_control()", "wait_until_producer_ebb()", "put_nowait_enhanced"):
        assert step in compiled, step
    stream = inspect.getsource(faust_streams.Stream._py_aiter)
    for step in (
        "message.generation_id != self.app.consumer_generation_id",
        "not self.app.flow_control.is_active()",
        "add_unacked(message)",
    ):
        assert step in stream, step


def test_faust_still_waits_only_where_deliver_now_looks() -> None:
    """deliver_now takes a message when none of these would wait: their conditions must stay
    the ones it checks, or it would queue a message Faust's callback would have held back."""
    from faust.transport.producer import ProducerBuffer
    from mode.utils.queues import FlowControlEvent

    assert "if self._suspend.is_set():" in inspect.getsource(FlowControlEvent.acquire)
    assert "if self.size > self.max_messages:" in inspect.getsource(ProducerBuffer.wait_until_ebb)
    on_message = inspect.getsource(faust_conductor.Conductor._compile_message_handler)
    assert "async with self._tp_to_callback_lock:" in on_message


def routed(app: faust.App) -> DirectDelivery:
    """A delivery installed on ``app`` with the conductor routing partition 0 to it."""
    delivery = delivery_for(app)
    delivery.install()
    conductor: Any = app.topics
    conductor._tp_to_callback[TP(TOPIC, 0)] = conductor._build_handler(TP(TOPIC, 0), set())
    conductor._tp_to_callback[TP("changelog", 0)] = conductor._build_handler(
        TP("changelog", 0), set()
    )
    return delivery


def test_a_message_nothing_would_hold_up_is_queued_at_once_without_the_callback() -> None:
    async def go() -> tuple[bool, list[int]]:
        delivery = routed(faust.App("direct-6", broker="kafka://127.0.0.1:1"))
        taken = delivery.deliver_now(message(0))
        return taken, [d.message.offset for d in await delivery.take(10, 0.005)]

    assert run(go) == (True, [0])


@pytest.mark.parametrize(
    "holdup",
    [
        "flow stopped",
        "queue full",
        "conductor locked",
        "conductor about to be locked",
        "producer buffer full",
        "other",
    ],
)
def test_a_message_the_callback_would_wait_for_is_left_to_faust(holdup: str) -> None:
    """Whatever would make the conductor or the callback wait keeps Faust's own path."""

    async def go() -> tuple[bool, int]:
        app = faust.App("direct-7", broker="kafka://127.0.0.1:1")
        delivery = routed(app)
        one = message(0)
        if holdup == "flow stopped":
            app.flow_control.suspend()
        elif holdup == "queue full":
            for offset in range(100):
                delivery.queue.put_nowait(message(offset))
        elif holdup == "conductor locked":
            await app.topics._tp_to_callback_lock.acquire()  # type: ignore[attr-defined]
        elif holdup == "conductor about to be locked":  # released, with a waiter next in line
            lock = app.topics._tp_to_callback_lock  # type: ignore[attr-defined]
            await lock.acquire()
            waiter = asyncio.ensure_future(lock.acquire())
            await asyncio.sleep(0)
            lock.release()
            assert not lock.locked() and not waiter.done()
        elif holdup == "producer buffer full":
            app.producer.buffer.max_messages = -1
        else:
            one = ConsumerMessage("changelog", 0, 0, 0.0, 0, None, b"k", b"v", None)
        before = delivery.queue.qsize()
        return delivery.deliver_now(one), delivery.queue.qsize() - before

    assert run(go) == (False, 0)


def test_a_filling_queue_holds_the_fetch_loop_and_never_takes_its_partition_out_of_the_fetch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's fetch back-pressure drops a partition whose buffer passes 80% from the fetch, and
    its fetch loop then sleeps a second when none is left: the batch loop emptied the queue and
    waited ~0.5 s for more, twice per 100 batches. A full queue makes the callback wait instead,
    until the batch loop takes."""
    from faust.transport.consumer import Consumer

    taken_out: list[TP] = []
    monkeypatch.setattr(Consumer, "on_buffer_full", lambda self, tp: taken_out.append(tp))

    async def go() -> tuple[int, bool, bool, list[int]]:
        delivery = routed(faust.App("direct-10", broker="kafka://127.0.0.1:1"))
        queued = sum(delivery.deliver_now(message(offset)) for offset in range(101))
        on_message = delivery.app.topics._tp_to_callback[TP(TOPIC, 0)]  # type: ignore[attr-defined]
        put = asyncio.ensure_future(on_message(message(100)))
        await asyncio.sleep(0.01)
        waited = not put.done()
        first = await delivery.take(max_events=60, max_wait=0.001)
        await asyncio.sleep(0.01)
        rest = await delivery.take(max_events=100, max_wait=0.001)
        offsets = [d.message.offset for d in first + rest]
        return queued, waited, put.done(), offsets

    assert run(go) == (100, True, True, list(range(101)))
    assert taken_out == []


def test_faust_still_sleeps_a_second_when_back_pressure_left_no_partition_to_fetch() -> None:
    """Why DirectDelivery has no fetch back-pressure: when this no longer holds, it may again."""
    from faust.transport.consumer import Consumer

    wait = inspect.getsource(Consumer._wait_next_records)
    assert "if is_client_only or active_partitions:" in wait
    assert "await self.sleep(1)" in wait
    assert "active_partitions.discard(tp)" in inspect.getsource(Consumer.on_buffer_full)


def test_install_gives_the_fetch_loop_the_apps_delivery_without_creating_the_consumer() -> None:
    """The consumer must be Faust's to create at start, after the exactly-once hooks."""
    from faust.transport.consumer import Consumer

    from fraudstream.worker import patches

    app = faust.App("direct-8", broker="kafka://127.0.0.1:1")
    delivery = delivery_for(app)
    delivery.install()
    assert app._consumer is None  # type: ignore[attr-defined]  # Faust makes it at start
    assert patches._DELIVERIES[app] is delivery
    assert hasattr(Consumer._drain_messages, "__fraudstream_original__")


async def drain(
    app: faust.App,
    fetches: list[list[ConsumerMessage]],
    after_fetch: dict[int, Any],
    while_fetching: dict[int, Any] | None = None,
) -> list[int]:
    """Run the patched fetch loop over ``fetches`` (one ``getmany`` each); what it queued.

    ``after_fetch[i]`` is awaited once fetch ``i`` has handed out its messages, as a
    rebalance's seek runs between two fetches; ``while_fetching[i]`` before, while
    ``getmany`` waits for the broker.
    """
    consumer: Any = app.consumer
    fetcher: Any = type("Fetcher", (), {"_stopped": asyncio.Event()})()
    calls = iter(enumerate(fetches))

    async def getmany(timeout: float) -> Any:
        try:
            i, fetched = next(calls)
        except StopIteration:
            fetcher._stopped.set()
            return
        if while_fetching and i in while_fetching:
            await while_fetching[i]()
        for one in fetched:
            yield one.tp, one
        if i in after_fetch:
            await after_fetch[i]()

    consumer.getmany = getmany
    await consumer._drain_messages(fetcher)
    queue = _DELIVERIES[app].queue
    return [queue.get_nowait().offset for _ in range(queue.qsize())]


def sought(delivery: DirectDelivery, generation: int) -> None:
    """A seek to committed offsets began and was done in ``generation``."""
    delivery.seek_started()
    delivery.seek_ended(generation)


def seek_to(app: faust.App, committed: int) -> Any:
    """A seek to committed offsets that finds ``committed`` for partition 0."""
    from fraudstream.worker.patches import stop_flow_while_seeking

    stop_flow_while_seeking()
    consumer: Any = app.consumer

    async def seek_to_committed() -> dict[TP, int]:
        return {TP(TOPIC, 0): committed}

    consumer.seek_to_committed = seek_to_committed
    return consumer.perform_seek


def test_records_fetched_after_a_rebalance_wait_for_the_seek_to_committed_offsets() -> None:
    """Faust resumes the input partitions before it seeks them: what the fetcher reads in
    between (from where it was, with read offsets of the last generation) is skipped and
    read again after the seek, so each record is applied once, in its partition's order."""

    async def go() -> tuple[list[int], int | None, bool]:
        app = faust.App("direct-9", broker="kafka://127.0.0.1:1")
        delivery = routed(app)
        consumer: Any = app.consumer
        sought(delivery, 1)  # the first generation's seek
        app.consumer_generation_id = 3  # the session expired; the worker rejoined
        consumer._read_offset[TP(TOPIC, 0)] = 10  # where generation 1 had read to
        fetched = [message(offset, generation=3) for offset in range(4, 14)]
        queued = await drain(app, [fetched, fetched], {0: seek_to(app, 4)})
        return queued, consumer._read_offset[TP(TOPIC, 0)], bool(consumer._gap[TP(TOPIC, 0)])

    # without the wait: 10..13 first (applied before 4..9), then 4..13 again
    assert run(go) == (list(range(4, 14)), 13, False)


def test_a_record_held_while_a_seek_begins_is_skipped_and_fetched_again() -> None:
    async def go() -> list[int]:
        app = faust.App("direct-10", broker="kafka://127.0.0.1:1")
        delivery = routed(app)
        consumer: Any = app.consumer
        sought(delivery, 0)
        perform_seek = seek_to(app, 5)

        async def commit_then_seek(*args: Any, **kwargs: Any) -> bool:
            await perform_seek()  # e.g. the getmany that finds the flow stopped
            return True

        consumer._commit_every, consumer._n_acked = 1, 1  # the next record waits for a commit
        consumer.commit = commit_then_seek
        first = [message(5)]
        return await drain(app, [first, [message(5), message(6)]], {})

    assert run(go) == [5, 6]


def test_records_of_a_generation_sought_are_delivered_as_fetched() -> None:
    async def go() -> list[int]:
        app = faust.App("direct-11", broker="kafka://127.0.0.1:1")
        delivery = routed(app)
        app.consumer_generation_id = 2
        sought(delivery, 2)
        return await drain(app, [[message(0, 2), message(1, 2)], [message(2, 2)]], {})

    assert run(go) == [0, 1, 2]


def test_records_fetched_once_a_seek_completed_during_the_wait_are_delivered() -> None:
    """A seek that completes while ``getmany`` waits has already moved the positions the
    batch is read from: its records are delivered, not skipped (nothing would fetch them
    again: a restarted worker read none of its backlog)."""

    async def go() -> list[int]:
        app = faust.App("direct-12", broker="kafka://127.0.0.1:1")
        routed(app)
        app.consumer_generation_id = 3
        fetched = [message(offset, generation=3) for offset in range(0, 3)]
        return await drain(app, [fetched], {}, while_fetching={0: seek_to(app, 0)})

    assert run(go) == [0, 1, 2]


class FakeKafka:
    """What the delivery asks of aiokafka's consumer: its assignment, and pausing it."""

    def __init__(self, assigned: set[TP], paused: set[TP]) -> None:
        self.assigned, self.paused_now = assigned, set(paused)

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def paused(self) -> set[TP]:
        return set(self.paused_now)

    def pause(self, *tps: TP) -> None:
        self.paused_now.update(tps)

    def resume(self, *tps: TP) -> None:
        self.paused_now.difference_update(tps)


def test_a_seek_pauses_the_input_partitions_until_it_ends() -> None:
    """No fetch hands out input records while the seek moves positions one partition at a
    time (they would be skipped as stale and never fetched again); partitions paused for
    other reasons, and those of other topics, stay as they were. Pausing and resuming run
    in the consumer thread's loop, where aiokafka waits on the pause's future."""

    async def go() -> tuple[set[TP], set[TP], int | None]:
        app = faust.App("direct-13", broker="kafka://127.0.0.1:1")
        delivery = routed(app)
        held, other = TP(TOPIC, 1), TP("fraudstream-changelog", 0)
        kafka = FakeKafka({TP(TOPIC, 0), held, other}, paused={held})
        thread: Any = app.consumer._thread  # type: ignore[attr-defined]
        thread._consumer, thread.thread_loop = kafka, asyncio.get_running_loop()
        delivery.seek_started()
        await asyncio.sleep(0)
        during = kafka.paused()
        delivery.seek_ended(4)
        await asyncio.sleep(0)
        return during, kafka.paused(), delivery.sought_generation

    assert run(go) == ({TP(TOPIC, 0), TP(TOPIC, 1)}, {TP(TOPIC, 1)}, 4)


def test_a_failed_seek_leaves_delivery_as_it_was() -> None:
    app = faust.App("direct-14", broker="kafka://127.0.0.1:1")
    delivery = routed(app)
    app.consumer_generation_id = 2
    sought(delivery, 2)
    delivery.seek_started()
    stopped = delivery.fetched_after_seek(delivery.seeks)
    delivery.seek_ended(None)
    assert (stopped, delivery.fetched_after_seek(delivery.seeks)) == (False, True)


def test_overlapping_seeks_deliver_nothing_until_the_last_one_ends() -> None:
    """``getmany`` seeks too when it finds the flow stopped by recovery's seek. The first of
    the two to end must not let records through while the other still moves positions:
    the input partitions stay paused, and what a fetch hands out in between is skipped and
    read again after the last seek, so each record is applied once, in order."""

    async def go() -> tuple[list[int], set[TP]]:
        app = faust.App("direct-15", broker="kafka://127.0.0.1:1")
        delivery = routed(app)
        consumer: Any = app.consumer
        kafka = FakeKafka({TP(TOPIC, 0)}, paused=set())
        thread: Any = consumer._thread
        thread._consumer, thread.thread_loop = kafka, asyncio.get_running_loop()
        sought(delivery, 1)
        app.consumer_generation_id = 3
        consumer._read_offset[TP(TOPIC, 0)] = 10
        perform_seek = seek_to(app, 4)
        gates = [asyncio.Event(), asyncio.Event()]
        order = iter(gates)

        async def seek_to_committed() -> dict[TP, int]:
            await next(order).wait()
            return {TP(TOPIC, 0): 4}

        consumer.seek_to_committed = seek_to_committed
        seeks: list[asyncio.Task[None]] = []
        paused_between: set[TP] = set()

        async def recovery_then_getmany_seek() -> None:
            nonlocal paused_between
            seeks.extend(asyncio.create_task(perform_seek()) for _ in gates)
            await asyncio.sleep(0)  # both have begun
            gates[0].set()
            await seeks[0]  # recovery's seek is done, getmany's still runs
            await asyncio.sleep(0)
            paused_between = kafka.paused()

        async def last_seek_ends() -> None:
            gates[1].set()
            await seeks[1]

        stale = [message(offset, generation=3) for offset in range(10, 14)]
        again = [message(offset, generation=3) for offset in range(4, 14)]
        queued = await drain(
            app, [stale, stale, again], {0: recovery_then_getmany_seek, 1: last_seek_ends}
        )
        return queued, paused_between

    # with one seek state: 10..13 delivered when the first seek ends, then 4..13 again
    assert run(go) == (list(range(4, 14)), {TP(TOPIC, 0)})


@pytest.mark.parametrize(
    ("first", "second", "delivers"),
    [(5, None, True), (None, 5, True), (None, None, False)],
    ids=["first-done", "second-done", "both-failed"],
)
def test_overlapping_seeks_count_as_done_if_either_was(
    first: int | None, second: int | None, delivers: bool
) -> None:
    """Both seek to the same committed offsets: one done sets every input position."""
    app = faust.App("direct-16", broker="kafka://127.0.0.1:1")
    delivery = routed(app)
    app.consumer_generation_id = 5
    delivery.seek_started()
    delivery.seek_started()
    delivery.seek_ended(first)
    between = delivery.fetched_after_seek(delivery.seeks)
    delivery.seek_ended(second)
    assert (between, delivery.fetched_after_seek(delivery.seeks)) == (False, delivers)
