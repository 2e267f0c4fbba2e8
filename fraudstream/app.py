"""The Faust shell: app, topics, the profile table and the detection agent.

Run with ``faust -A fraudstream.app worker -l info`` or ``fraudstream worker``. All the
decisions are made by :class:`fraudstream.detector.Detector`; this module only moves
bytes between Kafka and the core.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn, cast

import faust
from faust.serializers import codecs
from faust.types import TP, EventT, Message, StreamT

from fraudstream.broker_watch import BrokerWatch, BrokerWatchdog
from fraudstream.changelog import ChangelogBatch
from fraudstream.checkpoint import ModelCheckpoint
from fraudstream.detector import Detector, DetectorConfig
from fraudstream.faust_tuning import (
    FraudstreamApp,
    kafka_producer,
    raise_root_logger_level,
    set_current_event,
    set_fetch_max_wait,
)
from fraudstream.features import UserProfile, decode_profile, encode_profile
from fraudstream.log_throttle import throttle_noisy_loggers
from fraudstream.metrics import WorkerStats
from fraudstream.schema import Rejection, Source, dead_letter, parse_transaction
from fraudstream.security import broker_credentials, ssl_context
from fraudstream.settings import Settings, get_settings
from fraudstream.sinks.base import ProcessedRecord, Sink
from fraudstream.sinks.influx import InfluxSink
from fraudstream.topics import bootstrap_of

log = logging.getLogger("fraudstream")


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings`` (no agents yet)."""
    app = FraudstreamApp(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=broker_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.partitions,
        store=settings.table_store,
        datadir=settings.data_dir,
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        consumer_auto_offset_reset="earliest",
        producer_linger=settings.producer_linger_ms / 1000.0,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
    )
    app.keep_monitor = settings.faust_monitor
    return app


settings = get_settings()
set_fetch_max_wait(settings.consumer_fetch_max_wait_ms)
if settings.log_repeat_interval:  # aiokafka logs every retry (~120 lines/s with no broker)
    throttle_noisy_loggers(settings.log_repeat_interval)
app = create_app(settings)

input_topic = app.topic(
    settings.input_topic,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
alerts_topic = app.topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
dlq_topic = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw")


class BytesTable(faust.Table):
    """A table whose values are bytes the caller encodes itself.

    Faust derives a table's codec from ``value_type`` and falls back to JSON, which would
    decode the changelog into dicts on recovery while live writes hold bytes.
    """

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else super()._serializer_from_type(typ)


#: userId -> UserProfile as JSON bytes; partitioned like the input topic, backed by a changelog.
#: orjson bytes rather than Faust's JSON codec: faster, and a few hundred bytes per user in memory.
profiles: BytesTable = app.tables.add(  # type: ignore[assignment]  # add() returns its argument
    BytesTable(
        app,
        name="user-profiles",
        partitions=settings.partitions,
        value_type=bytes,
        beacon=app.tables.beacon,
    )
)


def load_profile(user_id: str) -> UserProfile:
    """The user's profile from the table (an empty one for a new user)."""
    return decode_profile(profiles.get(user_id))


def store_profile(
    user_id: str, profile: UserProfile, partition: int, changes: ChangelogBatch
) -> None:
    """Write the profile to the table now and to its changelog when the batch is flushed.

    The changelog record goes to the partition of the event that changed the profile, as
    Faust's own ``profiles[user_id] = ...`` would send it, but once per user and batch.
    """
    value = encode_profile(profile)
    profiles.data[user_id] = value
    # Keys in the table's own codec (JSON), so Faust's recovery reads them back unchanged.
    changes.put(partition, codecs.dumps(profiles.key_serializer, user_id), value)


detector = Detector(DetectorConfig.from_settings(settings))
checkpoint = ModelCheckpoint(settings.checkpoint_file)


def restore_model() -> None:
    """Continue from the last model checkpoint, so a restart does not re-learn from scratch."""
    blob = checkpoint.load()
    if blob is None:
        log.info("no model checkpoint at %s: the model starts its warm-up", checkpoint.path)
        return
    refused = detector.restore_model_state(blob)
    if refused:
        log.warning("model checkpoint %s not used: %s", checkpoint.path, refused)
    else:
        log.info("model restored from %s (%d learned)", checkpoint.path, detector.scorer.learned)


restore_model()  # before the first event: the file is local and small
stats = WorkerStats()
worker_name = settings.worker_name or socket.gethostname()
sink: Sink | None = InfluxSink.from_settings(settings) if settings.influx_enabled else None


@app.agent(input_topic, concurrency=1)  # concurrency > 1 loses messages (faust-streaming #606)
async def detect(stream: StreamT) -> None:
    """Validate, score and route every message of the input topic, a fetched batch at a time.

    Faust acknowledges a batch's offsets when the loop body returns, so everything the batch
    changed (profiles in the changelog, alerts, dead letters) is sent before that.
    """
    batched = cast(faust.Stream, stream)  # take_events is on the class, not on StreamT
    async for events in batched.take_events(settings.batch_max_events, settings.batch_max_wait):
        await handle_batch(events)


async def handle_batch(events: Sequence[EventT]) -> None:
    """Every message of the batch in order, then one changelog write per partition."""
    stats.batches += 1  # first, so a snapshot never counts a batch's messages without it
    changes = ChangelogBatch()
    for event in events:
        set_current_event(event)  # the partition tables and the RocksDB store write to
        try:
            await handle_event(event, changes)
        except Exception as exc:  # one message must not stop the stream
            await dead_letter_failure(event, exc)
    if changes:
        await write_changelog(changes)


async def write_changelog(changes: ChangelogBatch) -> None:
    """Put the batch's profile changes on the broker, or stop before its offsets are committed."""
    topic = profiles.changelog_topic.get_topic_name()
    try:
        last_offsets = await changes.flush(kafka_producer(app), topic)
    except Exception:
        exit_state_not_saved()
    for partition, offset in last_offsets.items():
        profiles.data.set_persisted_offset(TP(topic, partition), offset)


#: Dead-letter reason for a message that passed validation but failed while being processed.
PROCESSING_ERROR = "processing_error"


async def dead_letter_failure(event: EventT, exc: Exception) -> None:
    """Park a message whose processing raised on the DLQ, so the stream goes on.

    Left to Faust, the exception kills the agent; the restarted agent was seen not to
    resume consuming, so the worker would sit idle with a growing lag.
    """
    source = source_of(event.message)
    log.exception("processing failed at %s; message sent to the dead-letter topic", source)
    rejection = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
    await send_dead_letter(event.message, source, rejection, datetime.now(timezone.utc))


def source_of(message: Message) -> Source:
    """Where a consumed message came from, as the core names it."""
    return Source(message.topic, message.partition, message.offset)


async def send_dead_letter(
    message: Any, source: Source, rejection: Rejection, now: datetime
) -> None:
    """Count a refused message by its reason and park it, with the reason, on the DLQ."""
    stats.dlq_by_reason[rejection.reason] += 1
    record = dead_letter(message.value or b"", message.key, source, rejection, now)
    await dlq_topic.send(key=message.key, value=record)


async def handle_event(event: EventT, changes: ChangelogBatch) -> None:
    """One message: a dead letter, or a transaction scored and maybe alerted."""
    message = event.message
    source = source_of(message)
    now = datetime.now(timezone.utc)
    parsed = parse_transaction(message.value or b"", source, settings.max_message_bytes)

    if isinstance(parsed, Rejection):
        log.debug("dead letter %s at %s: %s", parsed.reason, source, parsed.detail)
        await send_dead_letter(message, source, parsed, now)
        return

    key = parsed.user_id.encode()
    if message.key != key:
        stats.misrouted += 1
        if stats.misrouted == 1:
            log.warning(
                "message at %s has key %r, not its userId %r: per-user state is only correct "
                "when producers key transactions by userId",
                source,
                message.key,
                parsed.user_id,
            )

    profile = load_profile(parsed.user_id)
    decision = detector.process(parsed, profile, source.partition, source.offset, now)
    stats.transactions_in += 1
    if decision.redelivered:
        stats.redelivered += 1
    else:
        store_profile(parsed.user_id, profile, source.partition, changes)

    if sink is not None:
        sink.write(ProcessedRecord(parsed, decision.score, decision.alert))

    if decision.alert is not None:
        await alerts_topic.send(key=key, value=decision.alert.to_json())
        stats.alerts_out += 1
        stats.alerts_by_reason.update(decision.alert.reason_names)

    stats.positions[source.partition] = source.offset
    if message.timestamp:
        stats.latency_ms.observe(max(0.0, (time.time() - message.timestamp) * 1000.0))


@app.timer(interval=settings.model_checkpoint_interval)
async def save_model() -> None:
    """Checkpoint the model periodically; a crash loses at most one interval of learning."""
    checkpoint.save(detector.model_state())


@app.task
async def quiet_root_logger() -> None:
    """Stop building debug log records nobody reads (see :func:`raise_root_logger_level`)."""
    raise_root_logger_level()


@app.task
async def declare_topics() -> None:
    """Create the input, alert and dead-letter topics if missing, with the configured partitions."""
    for topic in (input_topic, alerts_topic, dlq_topic):
        await topic.maybe_declare()


def consumer_lag() -> int | None:
    """Messages between what this worker processed and the high watermark of its partitions."""
    lag = 0
    assigned = [tp for tp in app.consumer.assignment() if tp.topic == settings.input_topic]
    if not assigned:
        return None
    for tp in assigned:
        highwater = app.consumer.highwater(tp)
        if highwater is None:
            return None
        processed = stats.positions.get(tp.partition)
        lag += max(0, highwater - (processed + 1 if processed is not None else 0))
    return lag


def refresh_stats() -> dict[str, Any]:
    """Update the derived figures (rate, lag) and return a snapshot of every counter."""
    stats.update_rate()
    lag = consumer_lag()
    if lag is not None:  # keep the last known lag while partitions are being reassigned
        stats.consumer_lag = lag
    return stats.to_dict()


@app.timer(interval=settings.progress_interval)
async def report_progress() -> None:
    """A progress line in the log (and a metrics point), so operators see the worker move."""
    snapshot = refresh_stats()
    if sink is not None:
        sink.write_metrics(worker_name, snapshot, time.time())
    log.info(
        "progress: in=%d alerts=%d %s dlq=%d redelivered=%d rate=%.0f msg/s lag=%s p99<=%sms",
        snapshot["messagesIn"],
        snapshot["alertsOut"],
        snapshot["alertsByReason"],
        snapshot["dlq"],
        snapshot["redelivered"],
        snapshot["eventsPerSecond"],
        snapshot["consumerLag"],
        snapshot["latencyMs"]["p99"],
    )


#: Exit status when the broker stayed unreachable: a supervisor should restart the worker.
EXIT_BROKER_UNREACHABLE = 3
broker_watch = BrokerWatch(bootstrap_of(settings.broker_url), ssl_context=ssl_context(settings))


#: Exit status when profile changes could not be written to the changelog.
EXIT_STATE_NOT_SAVED = 4


def exit_state_not_saved() -> NoReturn:
    """Leave before Faust commits offsets whose profile changes did not reach the changelog.

    The producer has already retried for ``producer_request_timeout``; a restarted worker
    processes those messages again from the last commit, so nothing is lost.
    """
    log.critical(
        "cannot write profile changes to the changelog: exiting with status %d so a supervisor "
        "restarts the worker (offsets since the last commit will be processed again)",
        EXIT_STATE_NOT_SAVED,
        exc_info=True,
    )
    logging.shutdown()
    os._exit(EXIT_STATE_NOT_SAVED)


def exit_broker_unreachable(down_for: float) -> None:
    """Leave with status 3 so a supervisor restarts the worker, instead of hanging."""
    log.critical(
        "broker %s unreachable for %.0f s: exiting with status %d so a supervisor restarts "
        "the worker (offsets since the last commit will be processed again)",
        broker_watch.bootstrap,
        down_for,
        EXIT_BROKER_UNREACHABLE,
    )
    logging.shutdown()
    # Faust's own shutdown can hang without a broker (seen > 90 s): leave at once.
    os._exit(EXIT_BROKER_UNREACHABLE)


watchdog = BrokerWatchdog(
    broker_watch,
    interval=settings.broker_check_interval,
    give_up_after=settings.broker_unavailable_timeout,
    give_up=exit_broker_unreachable,
    log=log,
)


@app.on_worker_init.connect  # type: ignore[arg-type]  # mode's stub rejects plain receivers too
def start_watchdog(app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Ride out short broker outages; exit non-zero after a long one. Runs from worker start.

    "Unreachable" means no answer to a request, not only a refused connection: a frozen
    broker still accepts TCP connections, and the worker must not wait on it forever.
    """
    if not watchdog.is_alive():
        watchdog.start()


@app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode's stub rejects async receivers
async def on_shutdown(app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Checkpoint the model, then give buffered points a bounded time to reach InfluxDB."""
    checkpoint.save(detector.model_state())
    if sink is not None:
        sink.write_metrics(worker_name, refresh_stats(), time.time())  # the final counts
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sink.close, settings.influx_close_timeout)


# Web views register themselves on import (kept in their own module).
from fraudstream import web  # noqa: E402,F401
