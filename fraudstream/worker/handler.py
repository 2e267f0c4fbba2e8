"""The worker's loop body: a fetched batch of messages in, decisions, alerts and state out.

:class:`BatchHandler` gets every collaborator passed in (detector, keyed state, stats, sink,
where alerts and dead letters go, how changelog records are flushed), so it runs the same
under Faust and in a unit test with plain dicts. A batch holds transactions and, when labels
are on, labels (both topics are partitioned by userId, so one user's labels reach the worker
that holds the user's transactions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, NoReturn, Protocol

from fraudstream.core.behaviour import UserHistory, token
from fraudstream.core.detector import Decision, Detector, RoundItem, SharedStats
from fraudstream.core.fields import FieldMapping
from fraudstream.core.labels import parse_label
from fraudstream.core.merchants import MerchantStats
from fraudstream.core.parsing import DEFAULT_FIELDS, parse_transaction
from fraudstream.core.pending import HeldLabel, PendingEntry, Resolution
from fraudstream.core.records import DeadLetterReason, Rejection, Source, Transaction, dead_letter
from fraudstream.core.rule_definitions import shadow_hit_json
from fraudstream.core.segments import segment_key
from fraudstream.sinks.base import ProcessedRecord, Sink
from fraudstream.worker.state import StateChanges, WorkerState
from fraudstream.worker.stats import WorkerStats

log = logging.getLogger("fraudstream")

#: Transactions matured without their label, with no label read since the worker started,
#: after which it says once that labels could be turned off. At 0.1% fraud, 10,000 matured
#: transactions of a deployment with labels come with ~10 labels (none: p ~ 5e-5).
NO_LABELS_HINT_MATURED = 10_000


class MessageLike(Protocol):
    """The parts of a consumed Kafka message the handler reads (Faust's ``Message`` has them)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float


class EventLike(Protocol):
    """A consumed event (Faust's ``Event``): the handler only reads its message."""

    @property
    def message(self) -> MessageLike:
        """The Kafka message behind the event."""


class Outbox(Protocol):
    """Where the handler's output records go (the alerts and dead-letter topics).

    ``partition`` is the input partition the record comes from: under exactly-once, the
    record goes out in that partition's transaction, with its offsets and changelog records.
    """

    async def send_alert(self, key: bytes, value: bytes, *, partition: int) -> None:
        """Publish one alert, keyed by userId."""

    async def send_dead_letter(self, key: bytes | None, value: bytes, *, partition: int) -> None:
        """Park one refused message."""

    @property
    def sends_decisions(self) -> bool:
        """Whether decisions go anywhere: when not, the handler does not encode them."""

    async def send_decision(self, key: bytes, value: bytes, *, partition: int) -> None:
        """Publish one transaction's decision (a no-op when the decisions topic is off)."""

    async def send_shadow_hit(self, key: bytes, value: bytes, *, partition: int) -> None:
        """Publish one shadow rule's hit, keyed by userId."""


#: The last offset a batch handled, per (topic, partition) it read.
BatchOffsets = dict[tuple[str, int], int]


class _Arrived(NamedTuple):
    """A parsed transaction with the event that brought it (one per message: a tuple)."""

    event: EventLike
    tx: Transaction


class BatchHandler:
    """Validate, score and route every message of a batch, then write its state once."""

    def __init__(
        self,
        detector: Detector,
        state: WorkerState,
        stats: WorkerStats,
        outbox: Outbox,
        flush_changes: Callable[[StateChanges, BatchOffsets], Awaitable[None]],
        on_state_not_saved: Callable[[], NoReturn],
        *,
        sink: Sink | None = None,
        max_message_bytes: int = 65536,
        fields: FieldMapping = DEFAULT_FIELDS,
        labels_topic: str | None = None,
        set_current_event: Callable[[Any], None] = lambda event: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.detector = detector
        self.state = state
        self.stats = stats
        self.outbox = outbox
        self.flush_changes = flush_changes
        self.on_state_not_saved = on_state_not_saved
        self.sink = sink
        self.max_message_bytes = max_message_bytes
        self.fields = fields
        self.labels_topic = labels_topic
        self.set_current_event = set_current_event
        self.clock = clock
        #: Newest event time per partition: a label waits until its partition's transactions
        #: pass its ``labeledAt`` (labels are keyed like transactions, so partitions match).
        self.partition_times: dict[int, float] = {}
        self.hinted_no_labels = False

    @property
    def event_time(self) -> float:
        """Newest event time seen on any partition: pending labels mature against it."""
        return max(self.partition_times.values(), default=0.0)

    async def handle(self, events: Sequence[EventLike]) -> None:
        """Every message of the batch in order, then maturity, then one write per changelog.

        Faust acknowledges the batch's offsets when this returns, so everything the batch
        changed is on the broker before that; if a changelog write fails, the worker leaves
        through ``on_state_not_saved`` before any commit. ``flush_changes`` gets the batch's
        changes and its last offsets (under exactly-once it commits both in transactions).
        """
        self.stats.batches += 1  # first, so a snapshot never counts a batch's messages without it
        offsets: BatchOffsets = {}
        transactions: list[EventLike] = []
        for event in events:
            message = event.message
            offsets[(message.topic, message.partition)] = message.offset
            if message.topic != self.labels_topic:
                transactions.append(event)
                continue
            # a label may resolve transactions before it: those are decided first
            await self.handle_transactions(transactions)
            transactions = []
            self.set_current_event(event)  # the partition tables and the RocksDB store write to
            try:
                await self.handle_label(message)
            except Exception as exc:  # one message must not stop the stream
                await self.dead_letter_failure(message, exc)
        await self.handle_transactions(transactions)
        for (topic, partition), offset in offsets.items():  # dead letters included: all handled
            if topic != self.labels_topic:
                self.stats.positions[partition] = offset
        try:
            await self.advance_pending()
        except Exception:  # the batch's state is still written; the entries wait for the next
            log.exception("pending labels could not advance after batch %d", self.stats.batches)
        self.stats.matured = self.state.pending.counts.matured
        self.hint_no_labels()
        self.detector.behaviour.scale.refresh()  # what the stream's users show, for the next batch
        changes = self.state.take_changes()
        try:
            await self.flush_changes(changes, offsets)
        except Exception:
            self.on_state_not_saved()

    async def advance_pending(self) -> None:
        """Event time moved: entries mature, known labels fall due, held labels expire."""
        for resolution in self.state.pending.advance(self.event_time):
            self.resolved(resolution)
        for transaction_id, held in self.state.pending.expire_held(self.partition_times):
            await self.dead_letter_unknown(transaction_id, held)

    def hint_no_labels(self) -> None:
        """Say once that labels could be off, when many transactions matured and none came.

        Keeping every transaction ready for its label costs ~40% of a worker's CPU (the
        classifier's input, the merchant statistics, the pending features): worth saying to a
        deployment whose labels topic stays empty.
        """
        if self.hinted_no_labels or self.labels_topic is None or self.stats.labels_in:
            return
        if self.stats.matured >= NO_LABELS_HINT_MATURED:
            self.hinted_no_labels = True
            log.warning(
                "%d transactions matured without a label and no label came on %r since this "
                "worker started: if this deployment has no labels, FRAUDSTREAM_LABELS_ENABLED"
                "=false skips what only labels use (~40%% less CPU per transaction)",
                self.stats.matured,
                self.labels_topic,
            )

    async def handle_transactions(self, events: Sequence[EventLike]) -> None:
        """Transaction messages in rounds: the n-th transaction of each user in the n-th round.

        Each user's transactions stay in order; a round holds one per user, so the detector
        scores it with Half-Space Trees in one pass (:meth:`Detector.process_round`). The
        order across users within a batch is the order the rounds give, as arbitrary as the
        interleaving of partitions in a fetch.
        """
        rounds: list[list[_Arrived]] = []
        depth: dict[str, int] = {}
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        for event in events:
            message = event.message
            source = Source(message.topic, message.partition, message.offset)
            try:
                parsed = parse_transaction(
                    message.value or b"", source, self.max_message_bytes, self.fields
                )
            except Exception as exc:  # one message must not stop the stream
                await self.dead_letter_failure(message, exc)
                continue
            if isinstance(parsed, Rejection):
                log.debug("dead letter %s at %s: %s", parsed.reason.value, source, parsed.detail)
                await self.send_dead_letter(message, source, parsed, now)
                continue
            n = depth.get(parsed.user_id, 0)
            depth[parsed.user_id] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(_Arrived(event, parsed))
        self.detector.observe_stream(one.tx for arrived in rounds for one in arrived)
        for arrived in rounds:
            await self.handle_round(arrived, now)

    async def handle_round(self, arrived: list[_Arrived], now: datetime) -> None:
        """Decide a round of distinct users' transactions, then publish what each produced."""
        items = []
        loaded = []
        for one in arrived:
            message, parsed = one.event.message, one.tx
            if message.key != parsed.user_id.encode():
                self.count_misrouted(message, parsed)
            try:
                history = self.state.load_history(parsed.user_id)
            except Exception as exc:  # a profile that does not decode: park, go on
                await self.dead_letter_failure(message, exc)
                continue
            if history.has_recent(parsed.transaction_id) and not history.has_applied(
                message.partition, message.offset
            ):
                self.skip_duplicate(one, history)
                continue
            loaded.append(one)
            items.append(RoundItem(parsed, history, message.partition, message.offset, now))
        arrived = loaded
        results: list[tuple[_Arrived, Decision | Exception]] = []

        def done(i: int, result: Decision | Exception) -> None:
            one = arrived[i]
            if isinstance(result, Decision):
                self.set_current_event(one.event)  # the partition the state writes go to
                try:
                    self.keep(one.tx, items[i].history, one.event.message.partition, result)
                except Exception as exc:
                    result = exc
            results.append((one, result))

        self.detector.process_round(items, self.shared_stats_of, done)
        for one, result in results:
            if isinstance(result, Exception):
                await self.dead_letter_failure(one.event.message, result)
            else:
                await self.publish(one.event.message, one.tx, result, now)

    def shared_stats_of(self, tx: Transaction) -> SharedStats:
        """What this worker knows of the transaction's merchant and amount segment now."""
        amount = self.detector.unit.scale(tx.amount)  # shared statistics read the detector's unit
        segment = self.state.segment(segment_key(tx.category, tx.channel, amount))
        return SharedStats(self.state.merchant(tx.merchant), segment)

    def skip_duplicate(self, one: _Arrived, history: UserHistory) -> None:
        """A copy of one of the user's recent transactions (its transactionId), sent again by a
        producer's retry: decided once, so counted and logged the first time, not decided again.

        Read as a payment, the copy was a burst at the instant of the first: a false alert.
        Its position is kept as applied, so the copy read again after a rebalance is a
        redelivery, not a second copy (it was counted twice before).
        """
        message, tx = one.event.message, one.tx
        history.mark_applied(message.partition, message.offset)
        self.set_current_event(one.event)  # the partition the state write goes to
        self.state.store_history(tx.user_id, history, message.partition)
        self.stats.duplicates += 1
        if self.stats.duplicates == 1:
            log.warning(
                "message at %s repeats transaction %r of user %r, decided already: skipped "
                "(counted as duplicates in /stats)",
                Source(message.topic, message.partition, message.offset),
                tx.transaction_id,
                tx.user_id,
            )

    def count_misrouted(self, message: MessageLike, tx: Transaction) -> None:
        """A message whose Kafka key is not its userId: counted, and logged the first time."""
        self.stats.misrouted += 1
        if self.stats.misrouted == 1:
            log.warning(
                "message at %s has key %r, not its userId %r: per-user state is only "
                "correct when producers key transactions by userId",
                Source(message.topic, message.partition, message.offset),
                message.key,
                tx.user_id,
            )

    def keep(
        self, tx: Transaction, history: UserHistory, partition: int, decision: Decision
    ) -> None:
        """The state a decision changed: the user's history, the merchant, pending features.

        The history is stored last and the transaction counted only then: when keeping its
        features raises, the message is parked unapplied, so its replay from the dead-letter
        topic is decided, not skipped as a copy of one already applied.
        """
        if decision.redelivered:
            self.stats.redelivered += 1
        else:
            self.remember(tx, partition, decision.model_input)
            self.state.store_history(tx.user_id, history, partition)
        self.stats.transactions_in += 1

    async def publish(
        self, message: MessageLike, tx: Transaction, decision: Decision, now: datetime
    ) -> None:
        """Send what a decision produced: its decision record, alert and shadow hits."""
        if self.sink is not None:
            self.sink.write(
                ProcessedRecord(tx, decision.score, decision.alert, decision.shadow_hits)
            )
        key = tx.user_id.encode()
        partition = message.partition
        if self.outbox.sends_decisions:  # encoding one costs ~3% of the handler's time
            await self.outbox.send_decision(key, decision.to_json(tx), partition=partition)
        if decision.alert is not None:
            await self.outbox.send_alert(key, decision.alert.to_json(), partition=partition)
            self.stats.alerts_out += 1
            self.stats.alerts_by_reason.update(decision.alert.reason_names)
        for hit in decision.shadow_hits:  # shadow rules: reported, never alerted
            await self.outbox.send_shadow_hit(
                key,
                shadow_hit_json(tx, hit, now, decision.alert is not None),
                partition=partition,
            )
            self.stats.shadow_hits_by_rule[hit.name] += 1

        if message.timestamp:
            self.stats.latency_ms.observe(max(0.0, (self.clock() - message.timestamp) * 1000.0))

    def remember(self, tx: Transaction, partition: int, model_input: tuple[float, ...]) -> None:
        """Count the transaction at its merchant and keep its features until its label.

        Without a labels topic nothing is kept: no label would ever resolve it. Nor is the
        merchant counted while the detector reads no classifier input (its statistics are
        part of that input and nothing else).
        """
        event_time = tx.epoch_seconds
        self.partition_times[partition] = max(self.partition_times.get(partition, 0.0), event_time)
        if not self.detector.reads_classifier_input:
            return
        amount = self.detector.unit.scale(tx.amount)  # shared statistics read the detector's unit
        if tx.merchant is not None:
            self.state.update_merchant(
                partition, tx.merchant, lambda stats: stats.observe(amount, event_time)
            )
        if self.labels_topic is None:
            return  # no labels will come: nothing to wait for
        segment = segment_key(tx.category, tx.channel, amount)
        card = token(tx.user_id)
        entry = PendingEntry(
            event_time, partition, tx.merchant, model_input, segment=segment, card=card
        )
        for resolution in self.state.pending.add(tx.transaction_id, entry):
            self.resolved(resolution)

    async def handle_label(self, message: MessageLike) -> None:
        """One label: the classifier and the merchant learn, or the label is dead-lettered."""
        source = Source(message.topic, message.partition, message.offset)
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        parsed = parse_label(message.value or b"", self.max_message_bytes)
        if isinstance(parsed, Rejection):
            await self.send_dead_letter(message, source, parsed, now)
            return
        self.stats.labels_in += 1
        resolution = self.state.pending.resolve(parsed.transaction_id, parsed.is_fraud)
        if resolution is None:
            labeled_at = parsed.labeled_at.timestamp() if parsed.labeled_at else None
            if labeled_at is not None and labeled_at > self.partition_times.get(
                source.partition, 0.0
            ):
                # Made after transactions this worker has not read yet: wait for them.
                held = HeldLabel(
                    labeled_at,
                    source.partition,
                    source.offset,
                    message.key,
                    message.value or b"",
                    parsed.is_fraud,
                )
                for transaction_id, old in self.state.pending.hold(parsed.transaction_id, held):
                    await self.dead_letter_unknown(transaction_id, old)
                return
            detail = (
                f"transaction {parsed.transaction_id!r} is not pending here: never seen by this "
                "worker, or its label came after the maturity horizon and the late window, or "
                "this label was read and learned before (read again after a restart)"
            )
            rejection = Rejection(DeadLetterReason.UNKNOWN_TRANSACTION, detail)
            await self.send_dead_letter(message, source, rejection, now)
            return
        self.resolved(resolution, self.partition_times.get(source.partition))

    def resolved(self, resolution: Resolution, label_time: float | None = None) -> None:
        """A transaction was labeled, matured or pushed out by the bound: count and learn it.
        ``label_time``: the event-time clock of the label's partition when the label came (a
        label held in the store brings its own ``labeledAt``)."""
        if resolution.by_label:
            self.stats.labels_by_verdict["fraud" if resolution.fraud else "legit"] += 1
        if not resolution.already_learned:
            self.learn(resolution, label_time)

    def learn(self, resolution: Resolution, label_time: float | None = None) -> None:
        """The classifier, the label rate, the merchant and the amount segment learn one
        resolved transaction (a fraud label's delay tells how complete labels are by age)."""
        entry, fraud = resolution.entry, resolution.fraud
        if label_time is None and entry.label is not None:
            label_time = entry.label[0]  # a label that waited for its time in the store
        delay = None
        if label_time is not None and fraud:
            delay = label_time - entry.event_time
        self.detector.learn_label(
            entry.features,
            fraud,
            entry.event_time,
            resolution.correction,
            matured=not resolution.by_label,
            delay=delay,
        )
        if resolution.correction:
            self.stats.labels_corrected += 1

        def change(stats: MerchantStats, card: int | None = None) -> None:
            if resolution.correction:
                stats.learn_label(False, entry.event_time, weight=-1.0)
            stats.learn_label(fraud, entry.event_time, card=card)

        if entry.merchant is not None:  # a merchant counts compromised cards, not payments
            self.state.update_merchant(
                entry.partition, entry.merchant, lambda stats: change(stats, entry.card)
            )
        if entry.segment is not None:  # a segment counts payments: how this kind of spend goes
            self.state.update_segment(entry.partition, entry.segment, change)

    async def dead_letter_unknown(self, transaction_id: str, held: HeldLabel) -> None:
        """Park a held label whose transaction never came (or that the store's bound pushed out)."""
        detail = (
            f"transaction {transaction_id!r} never reached this worker: its partition's "
            "transactions passed the label's labeledAt without it (or too many labels waited)"
        )
        rejection = Rejection(DeadLetterReason.UNKNOWN_TRANSACTION, detail)
        source = Source(self.labels_topic or "", held.partition, held.offset)
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        await self.park(held.raw, held.key, source, rejection, now)

    async def dead_letter_failure(self, message: MessageLike, exc: Exception) -> None:
        """Park a message whose processing raised on the DLQ, so the stream goes on.

        Left to Faust, the exception kills the agent; the restarted agent was seen not to
        resume consuming, so the worker would sit idle with a growing lag. The traceback is
        ``exc``'s own: a round's failures are parked after the round, outside their handler.
        """
        source = Source(message.topic, message.partition, message.offset)
        log.error(
            "processing failed at %s; message sent to the dead-letter topic",
            source,
            exc_info=exc,
        )
        rejection = Rejection(DeadLetterReason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        await self.send_dead_letter(message, source, rejection, now)

    async def send_dead_letter(
        self, message: MessageLike, source: Source, rejection: Rejection, now: datetime
    ) -> None:
        """Count a refused message by its reason and park it, with the reason, on the DLQ."""
        await self.park(message.value or b"", message.key, source, rejection, now)

    async def park(
        self, raw: bytes, key: bytes | None, source: Source, rejection: Rejection, now: datetime
    ) -> None:
        """Count a refused message's bytes by reason and put them, with the reason, on the DLQ."""
        self.stats.dlq_by_reason[rejection.reason.value] += 1
        record = dead_letter(raw, key, source, rejection, now)
        await self.outbox.send_dead_letter(key, record, partition=source.partition)
