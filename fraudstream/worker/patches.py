"""Every use of Faust's or aiokafka's private API, each checked against one version.

faust-streaming and aiokafka have no public API for these; each function names what it
touches. :data:`CHECKED_AGAINST` is the version each was read against, and
``tests/unit/worker/test_patches.py`` fails when the installed version or the private code
no longer matches, so an upgrade revisits this file instead of breaking silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import faust
from aiokafka import TopicPartition
from faust import streams as faust_streams
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT
from faust.utils.terminal import SpinnerHandler

#: Package -> version prefix the private uses below were read against.
CHECKED_AGAINST = {"faust-streaming": "0.15.", "aiokafka": "0.14."}

_WRAPPED = "__fraudstream_original__"


def set_fetch_max_wait(milliseconds: int) -> None:
    """Make every worker consumer created from now on wait at most ``milliseconds`` per fetch.

    faust-streaming 0.15 hard-codes ``fetch_max_wait_ms=1500`` in
    ``AIOKafkaConsumerThread._create_worker_consumer``. A broker that holds a fetch until
    that deadline even when data arrives (Tansu does; measured: p50 delivery 376 ms at 1500,
    7 ms at 20) then adds that much latency to every alert. Real Kafka answers as soon as
    data is there, so a lower value only costs a few more idle fetch requests per second.
    Calling it again replaces the earlier value (the original method is wrapped once).
    """
    cls = faust_aiokafka.AIOKafkaConsumerThread
    current = cls._create_worker_consumer
    original: Callable[..., Any] = getattr(current, _WRAPPED, current)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = (
            milliseconds  # aiokafka reads it when start() builds its Fetcher
        )
        return consumer

    setattr(create_worker_consumer, _WRAPPED, original)
    cls._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


def set_producer_request_timeout(seconds: float | None) -> None:
    """Make producers created from now on give up on a request unanswered for ``seconds``.

    aiokafka uses one ``request_timeout_ms`` both as the deadline for delivering a record and
    as how long it waits for the answer to one request on one connection; Faust passes its
    ``producer_request_timeout``, 1200 s, to both. A connection that goes silent with a request
    on it (the broker's host died without closing it, a NAT or load balancer dropped it) then
    holds every later record for that broker for 20 minutes: aiokafka keeps one produce
    request in flight per broker, and only the request timeout ends the wait, as no FIN or
    reset ever comes. This shortens only the wait per request, on the producer's client
    (``Producer._new_producer``, ``client._request_timeout_ms``), which hands it to every
    connection it opens; the delivery deadline stays Faust's, so shorter outages are ridden
    out. ``None`` restores Faust's behaviour.
    """
    cls = faust_aiokafka.Producer
    current = cls._new_producer
    original: Callable[..., Any] = getattr(current, _WRAPPED, current)
    timeout_ms = None if seconds is None else int(seconds * 1000)

    def new_producer(self: Any, transactional_id: str | None = None) -> Any:
        producer = original(self, transactional_id)
        if timeout_ms is not None:
            producer.client._request_timeout_ms = timeout_ms
        return producer

    setattr(new_producer, _WRAPPED, original)
    cls._new_producer = new_producer  # type: ignore[method-assign]


def stop_flow_while_seeking() -> None:
    """Make the consumer's seek to committed offsets stop the flow of records fetched before it.

    After a rebalance Faust resumes the input partitions, then seeks them to their committed
    offsets (``Recovery.on_recovery_completed``): in between, the fetcher reads on from the
    position the consumer had before. When the group session expired (a broker paused past
    the session timeout) the last commit was refused, so that position is ahead of the
    committed offset. ``Consumer._drain_messages`` keeps handing out the batch fetched there
    after the seek: its next record lies past the committed offset, so Faust records the
    skipped offsets as a gap and later commits them as done, or the record resets the read
    offset and the records the seek asked for are dropped as already read. Either way,
    records the worker never processed were committed (seen on Kafka 4.1: read 2998 of 3000,
    committed 3000) or never read again. ``Consumer.getmany`` stops a batch as soon as the
    flow is stopped, so stopping it for the seek ends the stale batch before the seek sets
    the read offsets; the flow resumes afterwards if it was running.

    The records that batch held are gone from the fetcher, so the seek must set the position
    of every input partition, or they are never read: aiokafka's ``seek_to_committed`` leaves
    a partition without a committed offset (or committed at 0) where it was. That is every
    partition of a topic created while the worker runs (its labels topic, found by the
    metadata refresh, which rebalances the group): seen on Kafka 4.1, 0 of 50 labels read.
    The seek therefore also puts such partitions where ``consumer_auto_offset_reset`` starts
    a new one (:func:`_seek_uncommitted`); changelog partitions stay with table recovery.
    """
    thread = faust_aiokafka.AIOKafkaConsumerThread
    current_seek = thread.seek_to_committed
    original_seek: Callable[..., Any] = getattr(current_seek, _WRAPPED, current_seek)

    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        committed: Mapping[Any, int] = await original_seek(self)
        uncommitted = {
            tp: offset
            for tp, offset in committed.items()
            if not offset and not self.consumer._is_changelog_tp(tp)
        }
        if uncommitted:
            await self.call_thread(
                _seek_uncommitted,
                self._ensure_consumer(),
                uncommitted,
                self.consumer.app.conf.consumer_auto_offset_reset,
            )
        return committed

    setattr(seek_to_committed, _WRAPPED, original_seek)
    thread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]

    cls = faust_consumer.Consumer
    current = cls.perform_seek
    original: Callable[..., Any] = getattr(current, _WRAPPED, current)

    async def perform_seek(self: Any) -> None:
        delivery = _DELIVERIES.get(self.app)
        generation = self.app.consumer_generation_id
        if delivery is not None:
            delivery.seek_started()
        was_flowing = self.flow_active
        self.stop_flow()
        sought = False
        try:
            await original(self)
            sought = True
        finally:
            if delivery is not None:
                delivery.seek_ended(generation if sought else None)
            if was_flowing:
                self.resume_flow()

    setattr(perform_seek, _WRAPPED, original)
    cls.perform_seek = perform_seek  # type: ignore[method-assign]


def highwaters_from_the_broker() -> None:
    """Make table recovery ask the broker for each changelog's end, in exactly_once mode too.

    In ``exactly_once`` mode ``AIOKafkaConsumerThread._highwaters`` returns aiokafka's
    ``last_stable_offset(tp)``, which is only known after a fetch response for that partition
    and is ``None`` before: recovery then takes the highwater for -1, finds nothing to read
    and starts the worker with empty tables (seen on Kafka 4.1: 2 of 3 restarts after a
    kill -9 recovered no profile). ``end_offsets`` sends ListOffsets with the consumer's
    isolation level, so under ``read_committed`` the broker answers the last stable offset
    itself; at-least-once Faust already calls it. Calling this twice wraps Faust once.
    """
    cls = faust_aiokafka.AIOKafkaConsumerThread
    current = cls._highwaters
    original: Callable[..., Any] = getattr(current, _WRAPPED, current)

    async def _highwaters(self: Any, partitions: Any) -> Any:
        return await self._ensure_consumer().end_offsets(partitions)

    setattr(_highwaters, _WRAPPED, original)
    cls._highwaters = _highwaters  # type: ignore[method-assign]


class RebalanceHooks(Protocol):
    """What takes over Faust's transaction hooks (:class:`PartitionTransactions` is one)."""

    async def on_rebalance(self, assigned: Any, revoked: Any) -> None:
        """Partitions moved: stop and start the transactional producers to match."""


def route_transactions(hooks: RebalanceHooks | None) -> None:
    """Hand Faust's exactly-once transaction hooks to ``hooks``; ``None`` restores Faust's.

    With ``processing_guarantee="exactly_once"`` Faust consumes with ``read_committed``,
    measures highwaters at the last stable offset and recovers tables past aborted records,
    which the worker needs; but its ``TransactionManager`` (``faust.transport.consumer``) would
    also run transactions of its own: one producer per partition begun at assignment, offsets
    committed in them every commit interval, failures logged and ignored. The worker commits
    each batch in its own transactions instead, so: ``on_rebalance`` (called by
    ``App._on_partitions_assigned`` before table recovery) goes to ``hooks``, and ``commit``
    (called by ``Consumer._commit_offsets`` instead of a consumer commit) commits nothing and
    reports success, as the offsets were committed with the batch's transaction.
    """
    cls = faust_consumer.TransactionManager
    originals = {
        name: getattr(getattr(cls, name), _WRAPPED, getattr(cls, name))
        for name in ("on_rebalance", "commit")
    }
    if hooks is None:
        for name, original in originals.items():
            setattr(cls, name, original)
        return

    async def on_rebalance(self: Any, assigned: Any, revoked: Any, newly_assigned: Any) -> None:
        await hooks.on_rebalance(assigned, revoked)

    async def commit(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        return True  # the batch's transaction carried these offsets

    for name, patched in (("on_rebalance", on_rebalance), ("commit", commit)):
        setattr(patched, _WRAPPED, originals[name])
        setattr(cls, name, patched)


async def _seek_uncommitted(
    consumer: Any, offsets: Mapping[TopicPartition, int | None], auto_offset_reset: str
) -> None:
    """Seek partitions committed at 0 there, and those never committed as a new one starts."""
    for tp, offset in offsets.items():
        if offset == 0:
            consumer.seek(tp, 0)
    never = [tp for tp, offset in offsets.items() if offset is None]
    if never and auto_offset_reset == "earliest":
        await consumer.seek_to_beginning(*never)
    elif never and auto_offset_reset == "latest":
        await consumer.seek_to_end(*never)


def raise_root_logger_level() -> None:
    """Undo the DEBUG root level Faust sets for its start-up spinner at ``-l warn`` and above.

    With the root at DEBUG every ``log.debug`` in aiokafka and Faust builds a record that the
    handlers then drop: ~3% of the worker's CPU in a profile. Call it once start-up is done.
    """
    root = logging.getLogger()
    levels = [h.level for h in root.handlers if not isinstance(h, SpinnerHandler)]
    if levels and root.level < min(levels):
        root.setLevel(min(levels))


def kafka_producer(app: faust.App) -> Any:
    """The started aiokafka producer under Faust's, for record batches Faust has no API for.

    Records sent through it are flushed by the ``producer.flush()`` Faust runs before every
    offset commit, like Faust's own sends (``Producer._ensure_producer`` is private).
    """
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


def set_current_event(event: EventT) -> None:
    """Make ``event`` the one tables see, in this task only.

    Tables and the RocksDB store take the partition of a key from the current event; in a
    batch from ``take_events`` Faust leaves it at the last one fetched. Only the context
    variable (``faust.streams._current_event``) is set: the stream's own attribute is what
    ``take_events`` reads while it fills the next batch in another task.
    """
    faust_streams._current_event.set(weakref.ref(event))


@contextlib.contextmanager
def without_current_event() -> Iterator[None]:
    """Tables read as from no event meanwhile: the RocksDB store then looks a key up in
    whichever of its partitions holds it, not only in the current event's."""
    token = faust_streams._current_event.set(None)
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class Delivered:
    """One fetched message as the batch handler takes it (a Faust ``Event`` has ``message`` too).

    Tables find the partition of a write through the current event, a weak reference: the
    batch's list keeps these alive while it is handled.
    """

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: Any) -> None:
        self.message = message


#: The attribute that marks a conductor callback as :class:`DirectDelivery`'s own.
_OURS = "_fraudstream_delivery"
#: While a batch fills, how often the taker looks for more messages, s.
_FILL_POLL_SECONDS = 0.001


class DirectDelivery:
    """The agent's messages from Faust's consumer straight to the batch handler, no Faust events.

    Faust hands every fetched message through its conductor (an ``asyncio.Lock``, a decoded
    ``Event``, a channel queue), its stream (sensors, context variables, the ``take_events``
    buffer with its futures) and a per-event ack. :meth:`install` gives the conductor a
    delivery callback of our own for the partitions of ``topics`` (``Conductor._build_handler``
    is the one place that callback is made, by Faust's Cython ``ConductorHandler`` or its
    ``ConductorCompiler``): it queues the ``Message`` itself, with Faust's
    flow control and producer-buffer wait, on a queue that flow control clears at a rebalance
    like the stream's. A full queue holds the fetch loop until the batch loop takes from it,
    rather than Faust's fetch back-pressure: that takes a partition whose buffer passes 80%
    out of the fetch, and with no partition left the fetch loop sleeps a whole second
    (``Consumer._wait_next_records``), long after the batch loop has emptied the queue
    (measured: twice per 100 batches the batch loop waited ~0.5 s for messages, 11% of a
    drain). :meth:`take` does what the stream does on
    delivery: it drops messages fetched in an earlier group generation or while the flow is
    stopped (they are fetched again after the seek), and tracks the rest as unacknowledged,
    so a rebalance's ``wait_empty`` waits for the batch in hand. :meth:`done` acknowledges
    them through ``Consumer.ack``: commits still never pass a message not yet handled.
    """

    def __init__(self, app: faust.App, topics: Iterable[str], maxsize: int) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.queue: Any = app.FlowControlQueue(maxsize=maxsize, clear_on_resume=True)
        #: The group generation whose seek to committed offsets completed last (None while
        #: one runs), and how many seeks have begun: what :meth:`fetched_after_seek` reads.
        self.sought_generation: int | None = None
        self.seeks = 0
        #: Seeks running now: they overlap when ``Consumer.getmany``, finding the flow
        #: stopped by recovery's seek, seeks too. What :attr:`sought_generation` becomes when
        #: the last ends: the one before them, or the generation of the latest done.
        self._seeking = 0
        self._sought_next: int | None = None
        self._paused: set[TopicPartition] = set()

    def seek_started(self) -> None:
        """A seek to committed offsets begins: what was fetched before it is stale.

        The input partitions are paused in aiokafka until the last overlapping seek ends,
        so that no fetch hands out records between a seek setting one partition's position
        and its end (they would be taken for stale, skipped, and never fetched again).
        """
        self.seeks += 1
        self._seeking += 1
        if self._seeking == 1:
            self._sought_next = self.sought_generation
            self._in_consumer_thread(self._pause_inputs)
        self.sought_generation = None

    def seek_ended(self, generation: int | None) -> None:
        """A seek ends: begun in ``generation`` and done, or failed (``None``).

        When the last overlapping seek ends, and one of them was done, every input
        partition's position was set (``stop_flow_while_seeking``), so what is fetched from
        then on may be delivered; the first to end cannot say so while another still moves
        positions. All failed, delivery goes on as before they began (Faust logs the failure
        and goes on, or its recovery fails the worker).
        """
        if generation is not None:
            self._sought_next = generation
        self._seeking -= 1
        if self._seeking:
            return
        self.sought_generation = self._sought_next
        self._in_consumer_thread(self._resume_inputs)

    def _in_consumer_thread(self, call: Callable[[Any], None]) -> None:
        """Run ``call(aiokafka consumer)`` in Faust's consumer thread, where aiokafka lives.

        There, not here: pausing makes a future on the running loop, which aiokafka's fetch
        routine then waits on. Queued behind this thread's earlier requests, ahead of later
        ones (the seek's), like every call Faust makes there. Nothing before it started.
        """
        thread: Any = getattr(self.app.consumer, "_thread", None)
        kafka = getattr(thread, "_consumer", None)
        if kafka is not None:
            with contextlib.suppress(RuntimeError):  # its loop closed: the worker stops
                thread.thread_loop.call_soon_threadsafe(call, kafka)

    def _pause_inputs(self, kafka: Any) -> None:
        inputs = {tp for tp in kafka.assignment() if tp.topic in self.topics}
        paused = inputs - kafka.paused()
        kafka.pause(*paused)
        self._paused |= paused

    def _resume_inputs(self, kafka: Any) -> None:
        paused, self._paused = self._paused, set()
        kafka.resume(*(paused & kafka.assignment()))

    def fetched_after_seek(self, seeks: int) -> bool:
        """Whether a message fetched when :attr:`seeks` was ``seeks`` may be delivered.

        Only if this generation's seek to committed offsets had completed and none began
        since. "Fetched" is when ``getmany`` handed out its batch's first record, not when
        it was called: a seek that completes while it waits has already moved the positions
        the batch is read from. Faust resumes the input partitions before that seek
        (``Recovery.on_recovery_completed``), so after a rebalance the fetcher reads from
        positions the seek then moves, while Faust's read offsets are still those of the
        last generation (or none). Delivered, such a message is applied before records of
        its partition that come before it, which the seek fetches again: their users'
        histories then take them for redeliveries, and Faust may record a gap it later
        commits as done (seen on Kafka 4.1 after a session expired: 2,924 of 3,000 records
        applied). Skipped, it is fetched again after the seek, which sets every input
        partition's position.
        """
        return self.seeks == seeks and self.sought_generation == self.app.consumer_generation_id

    def install(self) -> None:
        """Route the conductor's callbacks for ``topics``' partitions here (before they exist)."""
        conductor = self.app.topics
        original = conductor._build_handler  # type: ignore[attr-defined]

        def build_handler(tp: Any, channels: Any) -> Any:
            if tp.topic in self.topics:
                return self._on_message(tp)
            return original(tp, channels)

        conductor._build_handler = build_handler  # type: ignore[attr-defined]
        # Faust creates the consumer when the worker starts; making it here, earlier, would
        # make it before the exactly-once transaction hooks are in place. The fetch loop
        # finds this delivery through its app instead.
        _DELIVERIES[self.app] = self
        cls = faust_consumer.Consumer
        if not hasattr(cls._drain_messages, _WRAPPED):
            patched = _drain_delivering_now(cls._drain_messages)
            setattr(patched, _WRAPPED, cls._drain_messages)
            cls._drain_messages = patched  # type: ignore[method-assign]

    def deliver_now(self, message: Any) -> bool:
        """Queue ``message`` if its delivery callback would finish without waiting; else False.

        What the conductor and :meth:`_on_message`'s callback do when nothing makes them wait:
        the conductor's lock is free, the partition's callback is ours, the flow is on, the
        producer's buffer is under its bound and the queue has room. Faust's fetch loop runs
        the callback inside ``wait_first`` (four tasks and an ``asyncio.wait`` per message);
        a message this takes needs none of that, and one it refuses goes the usual way.
        """
        conductor: Any = self.app.topics
        lock = conductor._tp_to_callback_lock
        if lock.locked() or any(not waiter.cancelled() for waiter in lock._waiters or ()):
            return False  # asyncio.Lock.acquire would wait: the callbacks are being changed
        ours = getattr(conductor._tp_to_callback.get(message.tp), _OURS, False)
        queue = self.queue
        if (
            not ours
            or self.app.flow_control._suspend.is_set()
            or self.app.producer.buffer.size > self.app.producer.buffer.max_messages
            or queue.full()
        ):
            return False
        queue.put_nowait(message)
        return True

    def _on_message(self, tp: Any) -> Callable[[Any], Any]:
        """The conductor's callback for one partition (what ``ConductorCompiler.build`` makes,
        less the fetch back-pressure: a full queue makes it wait instead)."""
        app = self.app
        queue = self.queue
        acquire_flow_control = app.flow_control.acquire
        wait_until_producer_ebb = app.producer.buffer.wait_until_ebb

        async def on_message(message: Any) -> None:
            await acquire_flow_control()
            await wait_until_producer_ebb()
            await queue.put(message)  # while the queue is full: until the batch loop takes

        setattr(on_message, _OURS, True)
        return on_message

    async def take(self, max_events: int, max_wait: float, backlog: int = 0) -> list[Delivered]:
        """The next batch: waits for one message, then up to ``max_wait`` s for ``max_events``.

        When ``backlog`` messages or more are already waiting, the batch takes that many at
        once instead: they are late already, and fewer, larger batches drain them faster (a
        batch ends with one round trip to the broker however large it is).
        """
        queue = self.queue
        if backlog > max_events and queue.qsize() >= backlog:
            max_events = backlog
        messages = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while len(messages) < max_events:
            while len(messages) < max_events and not queue.empty():
                messages.append(queue.get_nowait())
            remaining = deadline - loop.time()
            if len(messages) >= max_events or remaining <= 0:
                break
            await asyncio.sleep(min(remaining, _FILL_POLL_SECONDS))
        return self._admit(messages)

    def _admit(self, messages: list[Any]) -> list[Delivered]:
        """What Faust's stream does as it yields an event: skip the stale, track the rest."""
        app = self.app
        generation = app.consumer_generation_id
        if not app.flow_control.is_active():
            return []
        track = app.consumer.track_message
        batch = []
        for message in messages:
            if message.generation_id != generation:
                continue  # fetched before the rebalance: read again from the committed offset
            if not message.tracked:
                message.tracked = True
                track(message)
            batch.append(Delivered(message))
        return batch

    def done(self, batch: list[Delivered]) -> None:
        """The batch is handled and its changes flushed: its offsets may be committed."""
        ack = self.app.consumer.ack
        inbound = self.app.monitor.stream_inbound_time  # Faust's stall check reads it
        now = time.monotonic()
        for delivered in batch:
            message = delivered.message
            ack(message)
            inbound[message.tp] = now


#: The app -> its installed :class:`DirectDelivery` (what the patched fetch loop looks up).
_DELIVERIES: weakref.WeakKeyDictionary[Any, DirectDelivery] = weakref.WeakKeyDictionary()


def _drain_delivering_now(original: Callable[..., Any]) -> Callable[..., Any]:
    """Faust 0.15's ``Consumer._drain_messages``, offering each message to the app's
    :meth:`DirectDelivery.deliver_now` first (``original`` for an app without one).

    Copied from faust-streaming 0.15.3 (``tests/unit/worker/test_patches.py`` fails when the
    original changes) with two changes, marked below: a message ``deliver_now`` takes is not
    run through ``wait_first``, and a message of the delivery's topics fetched before the
    latest seek to committed offsets is skipped without touching read offsets or gaps
    (:meth:`DirectDelivery.fetched_after_seek`). Everything else (read offsets, gaps,
    commits, yielding to the event loop every 100 messages, stopping) is Faust's own.
    """

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        delivery = _DELIVERIES.get(self.app)
        if delivery is None:
            return await original(self, fetcher)
        deliver_now = delivery.deliver_now
        fetched_after_seek = delivery.fetched_after_seek
        delivered_topics = delivery.topics
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = faust_consumer.CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                seeks = -1  # fraudstream: see below
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        if seeks < 0:  # fraudstream: the records came in just now
                            seeks = delivery.seeks
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        # fraudstream: an input message fetched before the seek to
                        # committed offsets is neither delivered nor read (see
                        # DirectDelivery.fetched_after_seek); checked again after the awaits
                        stale = tp.topic in delivered_topics and not fetched_after_seek(seeks)
                        if stale:
                            continue
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset:
                                acks_enabled = acks_enabled_for(message.topic)
                                if acks_enabled:
                                    await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if tp.topic in delivered_topics and not fetched_after_seek(seeks):
                                continue  # fraudstream: a seek began during the awaits above
                            if not deliver_now(message):  # fraudstream
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )
                    unset_flag(flag_consumer_fetching)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)

    return _drain_messages
