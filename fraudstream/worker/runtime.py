"""Everything a running worker holds, built at worker start rather than at import.

:class:`WorkerRuntime` reads the model checkpoint, opens the InfluxDB sink, patches Faust's
fetch wait, throttles noisy loggers and starts the broker watchdog, in :meth:`start`; the
agent, the timers and the web views all reach the same instance through the app.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import sys
import time
from datetime import datetime, timezone
from typing import Any, NoReturn

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from fraudstream import native
from fraudstream.core.detector import Detector
from fraudstream.core.rule_definitions import RuleDefinition, RuleSet, seed_definitions
from fraudstream.kafka.connection import (
    AuthFailureWatch,
    aiokafka_security,
    bootstrap_of,
    connection_failure,
    ssl_context,
    write_refused_for_size,
)
from fraudstream.kafka.rules_topic import RulesTopic
from fraudstream.kafka.topics import ensure_topics
from fraudstream.log_throttle import throttle_noisy_loggers
from fraudstream.settings import Settings
from fraudstream.sinks.base import Sink
from fraudstream.sinks.influx import InfluxSink
from fraudstream.worker.checkpoint import ModelCheckpoint
from fraudstream.worker.collector import tune_garbage_collector
from fraudstream.worker.handler import BatchHandler, BatchOffsets
from fraudstream.worker.outbox import BatchOutbox
from fraudstream.worker.patches import (
    DirectDelivery,
    highwaters_from_the_broker,
    kafka_producer,
    route_transactions,
    set_current_event,
    set_fetch_max_wait,
    set_producer_request_timeout,
    stop_flow_while_seeking,
)
from fraudstream.worker.rules import RulesFollower
from fraudstream.worker.state import StateChanges
from fraudstream.worker.stats import WorkerStats, flood_warnings
from fraudstream.worker.supervision import (
    EXIT_BROKER_UNREACHABLE,
    EXIT_STATE_NOT_SAVED,
    EXIT_TRANSACTION_FAILED,
    BrokerWatch,
    BrokerWatchdog,
)
from fraudstream.worker.tables import FaustState
from fraudstream.worker.transactions import (
    PartitionTransactions,
    TransactionFailed,
)

log = logging.getLogger("fraudstream")


#: How long the start waits for topic creation before it goes on without.
DECLARE_TOPICS_TIMEOUT_SECONDS = 20.0


class WorkerRuntime:
    """The detector, the profile store, the sink, the stats and the supervision of one worker."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        state: FaustState,
        outbox: BatchOutbox,
    ) -> None:
        self.app = app
        self.settings = settings
        self.state = state
        self.outbox = outbox
        #: Set under exactly-once: the batch's transactions, one per input partition.
        self.transactions: PartitionTransactions | None = None
        if settings.worker.processing_guarantee == "exactly_once":
            kafka = settings.kafka
            self.transactions = PartitionTransactions(
                self.new_transactional_producer,
                outbox,
                state.flush,
                app_id=kafka.app_id,
                group_id=kafka.app_id,
                input_topics=(kafka.input_topic, kafka.labels_topic),
            )
        self.stats = WorkerStats()
        self.flood_warned: set[str] = set()  # alert reasons already warned about
        #: Whether the checkpoint holds the amount unit and the clock step (core.units, .clock).
        self.units_saved = False
        #: Empty until the rules topic is read (the agent waits for that); then kept in step.
        self.rules = RuleSet()
        self.detector = Detector(settings.detection.detector_config(), rules=self.rules)
        self.rules_follower: RulesFollower | None = None
        self.checkpoint = ModelCheckpoint(settings.checkpoint_file)
        self.worker_name = settings.worker.worker_name or socket.gethostname()
        self.sink: Sink | None = None
        self.watchdog: BrokerWatchdog | None = None
        self.auth_watch = AuthFailureWatch()
        #: Set at start when the agent takes batches straight from the consumer.
        self.delivery: DirectDelivery | None = None
        detection = settings.detection
        self.handler = BatchHandler(
            self.detector,
            state,
            self.stats,
            outbox,
            self.flush_changes,
            self.exit_state_not_saved,
            max_message_bytes=settings.worker.max_message_bytes,
            fields=settings.fields.mapping(),
            labels_topic=settings.kafka.labels_topic if detection.labels_enabled else None,
            set_current_event=set_current_event,
        )

    def start(self) -> None:
        """Worker start: patches, log throttling, checkpoint, sink and broker watchdog."""
        worker = self.settings.worker
        # A refused SASL login surfaces as "Unable to bootstrap": say what it was on the way out.
        self.auth_watch.__enter__()
        atexit.register(self.explain_auth_failure)
        set_fetch_max_wait(self.settings.kafka.consumer_fetch_max_wait_ms)
        set_producer_request_timeout(self.settings.kafka.producer_request_timeout)
        stop_flow_while_seeking()
        route_transactions(self.transactions)  # None (at-least-once) leaves Faust's own
        highwaters_from_the_broker()
        if worker.direct_delivery:
            maxsize = self.app.conf.stream_buffer_maxsize
            self.delivery = DirectDelivery(self.app, self.settings.consumed_topics, maxsize)
            self.delivery.install()
        tune_garbage_collector(worker.gc_young_threshold)
        log.info("detection core: %s", native.require_current().describe())
        if worker.log_repeat_interval:  # aiokafka logs every retry (~120 lines/s with no broker)
            throttle_noisy_loggers(worker.log_repeat_interval)
        self.restore_model()
        kafka = self.settings.kafka
        topic = RulesTopic(
            bootstrap_of(kafka.broker_url), kafka.rules_topic, aiokafka_security(kafka)
        )
        seeds = self.seed_definitions()  # now: a setting that cannot be a rule stops the start
        self.rules_follower = RulesFollower(self.rules, topic, lambda: seeds)
        if self.settings.influx.influx_enabled:
            self.sink = InfluxSink.from_settings(self.settings.influx)
            self.sink.start()
            self.handler.sink = self.sink
        if self.watchdog is None:
            watch = BrokerWatch(
                bootstrap_of(self.settings.kafka.broker_url),
                ssl_context=ssl_context(self.settings.kafka),
            )
            self.watchdog = BrokerWatchdog(
                watch,
                interval=worker.broker_check_interval,
                give_up_after=worker.broker_unavailable_timeout,
                give_up=self.exit_broker_unreachable,
                log=log,
            )
            self.watchdog.start()

    async def declare_topics(self) -> None:
        """Create the missing topics the worker reads and writes, before its consumer subscribes.

        A topic it reads created later would rebalance the group mid-stream, and a broker's
        auto-creation picks its own partition count. A refusal (no CREATE ACL, no broker yet)
        is logged and the start goes on: the broker watchdog judges an unreachable broker.
        """
        kafka = self.settings.kafka
        if not kafka.declare_topics:
            return
        topics = self.settings.worker_topics
        try:
            await asyncio.wait_for(
                ensure_topics(
                    bootstrap_of(kafka.broker_url),
                    topics,
                    kafka.partitions,
                    aiokafka_security(kafka),
                ),
                DECLARE_TOPICS_TIMEOUT_SECONDS,
            )
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            log.warning(
                "could not create the topics %s (%s); starting with what exists",
                ", ".join(topics),
                type(exc).__name__ if not str(exc) else exc,
            )

    def seed_definitions(self) -> tuple[RuleDefinition, ...]:
        """Version 1 of the built-in rules from this worker's settings, stamped now."""
        return seed_definitions(self.settings.detection, datetime.now(timezone.utc))

    async def follow_rules(self) -> None:
        """Read the rules topic, then apply its changes until the worker stops."""
        if self.rules_follower is None:
            raise RuntimeError("the runtime is not started")
        await self.rules_follower.run()

    async def rules_loaded(self) -> None:
        """Return once the rules topic has been read to its end."""
        if self.rules_follower is None:
            raise RuntimeError("the runtime is not started")
        await self.rules_follower.loaded.wait()

    def explain_auth_failure(self) -> None:
        """At exit after a refused login, one line that says so (the password is never shown)."""
        if self.auth_watch.failed:
            log.critical(
                "%s", connection_failure(RuntimeError("login refused"), self.settings.kafka, True)
            )

    def restore_model(self) -> None:
        """Continue from the last model checkpoint, so a restart does not re-learn from scratch."""
        blob = self.checkpoint.load()
        if blob is None:
            log.info(
                "no model checkpoint at %s: the model starts its warm-up", self.checkpoint.path
            )
            return
        refused = self.detector.restore_model_state(blob)
        if refused:
            log.warning("model checkpoint %s not used: %s", self.checkpoint.path, refused)
        else:
            learned = self.detector.scorer.learned
            log.info("model restored from %s (%d learned)", self.checkpoint.path, learned)

    def save_model(self) -> None:
        """Checkpoint the model; a crash loses at most one interval of learning."""
        self.checkpoint.save(self.detector.model_state())

    async def flush_changes(self, changes: StateChanges, offsets: BatchOffsets) -> None:
        """The batch's writes onto the broker before Faust may acknowledge its offsets.

        At-least-once: the outputs onto their topics and the state changes onto the changelogs,
        as record batches through Faust's own producer. Exactly-once: outputs, changes and
        offsets in one transaction per input partition.

        Once the detector has decided the unit it reads amounts in and the step of the stream's
        clock, the checkpoint is written first: state learned with them must never be committed
        without them, or a worker restarted after a crash would decide again, maybe otherwise
        (:mod:`fraudstream.core.units`, :mod:`fraudstream.core.clock`).
        """
        detector = self.detector
        if not self.units_saved and detector.unit.decided and detector.clock.decided:
            self.units_saved = True
            log.info("%s; %s", detector.unit.describe(), detector.clock.describe())
            self.save_model()
        if self.transactions is None:
            producer = kafka_producer(self.app)  # outputs and changelogs acknowledged at once
            await asyncio.gather(self.outbox.flush(producer), self.state.flush(changes, producer))
            return
        try:
            await self.transactions.commit_batch(changes, offsets)
        except TransactionFailed as failure:
            self.exit_transaction_failed(failure)

    def new_transactional_producer(self, transactional_id: str) -> AIOKafkaProducer:
        """An idempotent, transactional producer for one input partition's transactions."""
        kafka = self.settings.kafka
        return AIOKafkaProducer(
            bootstrap_servers=bootstrap_of(kafka.broker_url),
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=kafka.producer_linger_ms,
            max_batch_size=kafka.producer_max_batch_bytes,
            request_timeout_ms=int(kafka.producer_request_timeout * 1000),
            **aiokafka_security(kafka),
        )

    def consumer_lag(self) -> int | None:
        """Messages between what this worker processed and the high watermark of its partitions."""
        lag = 0
        topic = self.settings.kafka.input_topic
        assigned = [tp for tp in self.app.consumer.assignment() if tp.topic == topic]
        if not assigned:
            return None
        for tp in assigned:
            highwater = self.app.consumer.highwater(tp)
            if highwater is None:
                return None
            processed = self.stats.positions.get(tp.partition)
            lag += max(0, highwater - (processed + 1 if processed is not None else 0))
        return lag

    def refresh_stats(self) -> dict[str, Any]:
        """Update the derived figures (rate, lag) and return a snapshot of every counter."""
        self.stats.update_rate()
        lag = self.consumer_lag()
        if lag is not None:  # keep the last known lag while partitions are being reassigned
            self.stats.consumer_lag = lag
        return self.stats.to_dict()

    def report_progress(self) -> None:
        """A progress line in the log (and a metrics point), so operators see the worker move;
        and a warning, once, for each alert reason that flags far more than fraud can explain."""
        snapshot = self.refresh_stats()
        for line in flood_warnings(self.stats, self.flood_warned):
            log.warning("%s", line)
        if self.sink is not None:
            self.sink.write_metrics(self.worker_name, snapshot, time.time())
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

    async def shutdown(self) -> None:
        """Checkpoint the model, then give buffered points a bounded time to reach InfluxDB."""
        self.save_model()
        if self.transactions is not None:
            await self.transactions.stop()
        if self.sink is not None:
            self.sink.write_metrics(self.worker_name, self.refresh_stats(), time.time())
            loop = asyncio.get_running_loop()
            timeout = self.settings.influx.influx_close_timeout
            await loop.run_in_executor(None, self.sink.close, timeout)

    def exit_state_not_saved(self) -> NoReturn:
        """Leave before Faust commits offsets whose outputs or state changes did not reach Kafka.

        The producer has already retried for ``producer_request_timeout``; a restarted worker
        processes those messages again from the last commit, so nothing is lost.
        """
        log.critical(
            "cannot write a batch's alerts, dead letters or state changes to Kafka: exiting "
            "with status %d so a supervisor restarts the worker (offsets since the last commit "
            "will be processed again)",
            EXIT_STATE_NOT_SAVED,
            exc_info=True,
        )
        hint = write_refused_for_size(sys.exc_info()[1])
        if hint:
            log.critical(hint)
        logging.shutdown()
        os._exit(EXIT_STATE_NOT_SAVED)

    def exit_transaction_failed(self, failure: TransactionFailed) -> NoReturn:
        """Leave before Faust acknowledges a batch whose transaction did not commit.

        The transaction is aborted (or will be, by the partition's next owner), so nothing of
        the batch is visible to ``read_committed`` readers; the restarted worker processes it
        again from the last committed transaction. A fenced producer lands here too: another
        worker owns the partition now.
        """
        log.critical(
            "%s: exiting with status %d so a supervisor restarts the worker (it resumes from "
            "the last committed transaction)",
            failure,
            EXIT_TRANSACTION_FAILED,
            exc_info=failure.__cause__,
        )
        hint = write_refused_for_size(failure)
        if hint:
            log.critical(hint)
        logging.shutdown()
        os._exit(EXIT_TRANSACTION_FAILED)

    def exit_broker_unreachable(self, down_for: float) -> None:
        """Leave with status 3 so a supervisor restarts the worker, instead of hanging."""
        log.critical(
            "broker %s unreachable for %.0f s: exiting with status %d so a supervisor restarts "
            "the worker (offsets since the last commit will be processed again)",
            bootstrap_of(self.settings.kafka.broker_url),
            down_for,
            EXIT_BROKER_UNREACHABLE,
        )
        logging.shutdown()
        # Faust's own shutdown can hang without a broker (seen > 90 s): leave at once.
        os._exit(EXIT_BROKER_UNREACHABLE)
