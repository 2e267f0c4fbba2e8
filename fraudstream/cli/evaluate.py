"""``fraudstream evaluate``: a labeled stream through the real worker, scored against the truth.

The headline figures come from the real pipeline (producer -> broker -> worker -> decisions
and alerts topics); ``--offline`` feeds the same messages, labels included and in the same
order, to the worker's own batch handler in this process, without Kafka. The sources: the
producer's scenario generator, the simulator published with the fraud-detection handbook
(Le Borgne et al.), whose published baselines are printed beside the figures, the persona stream,
a Sparkov-like stream (after the simulator behind Kaggle's fraudTrain.csv), a BankSim-like
stream (after the simulator behind Kaggle's bs140513_032310.csv), a stream shaped like IBM's
synthetic card transactions with frauds ten times rarer, a PaySim-like mobile-money stream
(after the simulator behind Kaggle's PS_20174392719_1491204439457_log.csv), and a labeled CSV
of the user's own (read through the input mapping, as ``python -m producer --csv`` does). With
``--label-delay`` the frauds' labels follow the transactions on the labels topic, and every
stream but the scenarios is run a second time without labels, so the report shows what labels
add.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, NoReturn

import orjson
from aiokafka import AIOKafkaConsumer

from fraudstream.cli.exits import EXIT_NOT_CONNECTED
from fraudstream.core.detector import Detector
from fraudstream.core.pending import DAY, PendingStore
from fraudstream.core.quality import Outcome, ablation, assess, ranking
from fraudstream.core.rules import DEFAULT_AMOUNT_THRESHOLD
from fraudstream.local.pipeline import BrokerUnreachable, LocalPipeline, local_pipeline
from fraudstream.local.worker_process import WorkerFailed
from fraudstream.settings import Settings
from fraudstream.worker.collector import worker_collector
from fraudstream.worker.handler import BatchHandler, BatchOffsets
from fraudstream.worker.state import StateChanges, WorkerState
from fraudstream.worker.stats import WorkerStats
from producer.csv_replay import DEFAULT_LABEL_COLUMN, CsvFormat, CsvFormatError, CsvReplay
from producer.generator import GeneratorParameters, ScenarioGenerator
from producer.handbook import HandbookParameters, HandbookSimulator
from producer.kafka import produce
from producer.labels import DelayedLabels
from producer.records import LabeledTransaction, disordered
from producer.sized import SIZED_GENERATORS, sized_simulator

#: Give up waiting for the worker after this long without it reading anything.
CATCH_UP_TIMEOUT_SECONDS = 120.0
#: Messages handed to the batch handler at once offline (the worker's default batch size).
OFFLINE_BATCH = 500
#: The offline pass says how far it got this often (a handbook run takes minutes).
OFFLINE_PROGRESS_SECONDS = 10.0
INPUT, LABELS = "transactions-input", "fraud-labels"

#: Published on the handbook's simulated data (test week, 7-day label delay, offline models):
#: ROC AUC, average precision, card precision@100.
HANDBOOK_BASELINES = {
    "logistic regression": (0.871, 0.606, 0.291),
    "random forest": (0.867, 0.658, 0.287),
    "XGBoost": (0.862, 0.639, 0.273),
    "tuned XGBoost": (0.869, 0.687, 0.303),
    "tuned neural network": (0.876, 0.675, 0.303),
    "Isolation Forest (with label-derived terminal features)": (0.808, 0.164, 0.190),
}


#: What ``fraudstream evaluate`` can run: a generator's stream, or a labeled CSV.
StreamSource = Literal[
    "scenarios", "handbook", "personas", "sparkov", "banksim", "tabformer", "paysim", "csv"
]


@dataclass(frozen=True)
class EvaluateOptions:
    """Which labeled stream to evaluate and how."""

    count: int = 20_000
    users: int = 1_000
    fraud_share: float = 0.02
    seed: int = 42
    rate: float = 0.0  # tx/s; 0 = as fast as the producer goes
    offline: bool = False
    as_json: bool = False
    generator: StreamSource = "scenarios"
    #: Handbook stream size (its published set: 5,000 / 10,000 / 183).
    customers: int = 5_000
    terminals: int = 10_000
    days: int = 70
    #: Event-time delay of the frauds' labels; None = no labels.
    label_delay_ms: int | None = None
    #: With labels: each fraud's delay drawn uniformly up to this (None: exactly the delay).
    label_delay_max_ms: int | None = None
    label_share: float = 1.0
    #: Days before figures count (warm-up, first labels); None: the handbook's 35, and for
    #: the other streams the detector's calibration length in transactions.
    skip_days: int | None = None
    #: A labeled CSV to evaluate (``generator="csv"``), and its format.
    csv: Path | None = None
    csv_format: CsvFormat = "generic"
    label_column: str = DEFAULT_LABEL_COLUMN
    #: Also run the same stream without labels (default for the handbook with labels).
    without_labels: bool | None = None
    #: Optional roles (:data:`~fraudstream.core.fields.OPTIONAL_ROLES`) left out of every
    #: message, to measure what a stream without those fields loses.
    drop_fields: tuple[str, ...] = ()
    #: Every amount multiplied by this (the amount rule's line with it), to measure that the
    #: detector reads a stream in another unit (cents: 100) as it reads it in its own.
    amount_factor: float = 1.0
    #: Each transaction delivered as if up to this many seconds late (0: in event-time order),
    #: to measure what out-of-order arrivals cost.
    disorder_seconds: float = 0.0


#: Days the handbook, persona, Sparkov-like and BankSim-like streams are scored after, unless
#: told otherwise (labels 7 days late need a few weeks before the classifier has learned from
#: them).
SKIP_DAYS = {
    "handbook": 35,
    "personas": 21,
    "sparkov": 20,
    "banksim": 30,
    "tabformer": 21,
    "paysim": 5,
}


def labeled_stream(options: EvaluateOptions, settings: Settings) -> Iterator[LabeledTransaction]:
    """The deterministic labeled stream ``options`` names, without its ``drop_fields``, its
    amounts multiplied by ``amount_factor``, out of order by up to ``disorder_seconds``."""
    stream = _source(options, settings)
    if options.drop_fields:
        stream = (record.without(options.drop_fields) for record in stream)
    if options.amount_factor != 1.0:
        factor = options.amount_factor
        stream = (replace(record, amount=record.amount * factor) for record in stream)
    if options.disorder_seconds > 0.0:
        stream = disordered(stream, options.disorder_seconds, seed=options.seed)
    return stream


def _source(options: EvaluateOptions, settings: Settings) -> Iterator[LabeledTransaction]:
    if options.generator == "csv":
        if options.csv is None:
            raise ValueError("the csv source needs a file (--csv FILE)")
        replay = CsvReplay(
            options.csv,
            options.csv_format,
            fields=settings.fields.mapping(),
            label_column=options.label_column,
            require_labels=True,
        )
        _say(options, replay.scan().describe())  # bad rows are skipped, with line numbers
        return iter(replay)
    if options.generator in SIZED_GENERATORS:
        return iter(sized_simulator(options.generator, options.users, options.days, options.seed))
    if options.generator == "handbook":
        handbook = HandbookParameters(
            customers=options.customers,
            terminals=options.terminals,
            days=options.days,
            seed=options.seed,
        )
        return iter(HandbookSimulator(handbook))
    params = GeneratorParameters(
        seed=options.seed, users=options.users, fraud_share=options.fraud_share
    )
    return itertools.islice(ScenarioGenerator(params), options.count)


@dataclass(frozen=True, slots=True)
class Truth:
    """What the evaluation keeps of each sent transaction."""

    scenario: str
    is_fraud: bool
    amount: float
    day: int
    card: str


def remember_truth(
    records: Iterable[LabeledTransaction], truth: dict[str, Truth], start_ms: list[int]
) -> Iterator[LabeledTransaction]:
    """Pass ``records`` through, keeping each one's ground truth (compactly) on the way."""
    for record in records:
        if not start_ms:
            start_ms.append(record.timestamp_ms)
        day = (record.timestamp_ms - start_ms[0]) // 86_400_000
        truth[record.transaction_id] = Truth(
            record.scenario, bool(record.is_fraud), record.amount, int(day), record.user_id
        )
        yield record


def decided_after(
    outcomes: list[Outcome], decisions: dict[str, dict[str, Any]], skip: int
) -> list[Outcome]:
    """The outcomes of the transactions decided after the worker's first ``skip`` decisions.

    Online the worker reads its input partitions a fetched chunk at a time, not in the order
    they were sent, so a transaction sent after the first ``skip`` may be decided while the
    model still warms up (measured offline with four partitions read 1,000 messages at a time:
    937 of 18,000, 38 of them frauds). ``decisions`` holds them in the order they were made
    (offline) or arrived (online, at most a fetch apart); one with no decision keeps its place
    in the stream.

    >>> sent = [Outcome(t, "normal", False, 1.0) for t in "abcd"]
    >>> [o.transaction_id for o in decided_after(sent, dict.fromkeys("cab"), 2)]
    ['b', 'd']
    """
    rank = {tx_id: k for k, tx_id in enumerate(decisions)}
    return [o for i, o in enumerate(outcomes) if rank.get(o.transaction_id, i) >= skip]


def calibration_length(settings: Settings) -> int:
    """Transactions before the model may alert: its warm-up plus the threshold's calibration."""
    detection = settings.detection
    calibration = detection.score_quantile_min_samples if detection.score_quantile else 0
    return detection.effective_warmup + calibration


class _Collector:
    """The batch handler's outbox offline: keeps decisions, counts the rest."""

    sends_decisions = True  # every decision is what evaluate joins to the truth

    def __init__(self) -> None:
        self.decisions: dict[str, dict[str, Any]] = {}
        self.dead_letters = 0

    async def send_alert(self, key: bytes, value: bytes, *, partition: int) -> None:
        """Alerts are also in the decisions."""

    async def send_dead_letter(self, key: bytes | None, value: bytes, *, partition: int) -> None:
        self.dead_letters += 1

    async def send_decision(self, key: bytes, value: bytes, *, partition: int) -> None:
        decision = orjson.loads(value)
        self.decisions.setdefault(decision["transactionId"], decision)

    async def send_shadow_hit(self, key: bytes, value: bytes, *, partition: int) -> None:
        """The settings' rules have no shadow rules."""


def run_offline(
    records: Iterable[LabeledTransaction],
    settings: Settings,
    labels: DelayedLabels | None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The stream and its labels through the worker's batch handler, in order, without Kafka.

    ``progress(transactions, seconds)`` is told how many transactions were decided so far, every
    :data:`OFFLINE_PROGRESS_SECONDS` of the pass.
    """
    detection = settings.detection
    pending = PendingStore(
        {},
        detection.label_horizon_days * DAY,
        detection.label_late_window_days * DAY,
        detection.pending_max_entries,
        detection.held_labels_max_entries,
    )
    state = WorkerState(
        {}, pending, {}, partitions=1, cached_histories=settings.worker.cached_histories
    )
    outbox = _Collector()

    async def discard(changes: StateChanges, offsets: BatchOffsets) -> None:
        """No changelog offline."""

    def never() -> NoReturn:
        raise AssertionError("discard() never fails")

    detector = Detector(detection.detector_config())
    handler = BatchHandler(
        detector,
        state,
        WorkerStats(),
        outbox,
        discard,
        never,
        max_message_bytes=settings.worker.max_message_bytes,
        fields=settings.fields.mapping(),
        labels_topic=LABELS if labels is not None else None,
    )

    fields = settings.fields.mapping()

    def messages() -> Iterator[SimpleNamespace]:
        for offset, record in enumerate(records):
            for label in labels.observe(record) if labels is not None else ():
                yield _message(LABELS, label.key, label.message_json(), offset)
            yield _message(INPUT, record.key, record.message_json(fields), offset)

    async def run() -> None:
        stream = messages()
        decided = 0
        started = reported = time.monotonic()
        while batch := list(itertools.islice(stream, OFFLINE_BATCH)):
            await handler.handle(batch)
            decided += sum(1 for event in batch if event.message.topic == INPUT)
            now = time.monotonic()
            if progress is not None and now - reported >= OFFLINE_PROGRESS_SECONDS:
                progress(decided, now - started)
                reported = now

    asyncio.run(run())
    classifier = detector.classifier
    learned = {"ready": classifier.ready, "frauds": classifier.frauds, "legit": classifier.legit}
    scale = detector.behaviour.scale.to_dict()
    return outbox.decisions, {
        "classifier": learned,
        "amountUnit": detector.unit.known,
        "timestampStep": detector.clock.seconds,
        "scaleEvidence": scale,
    }


def _message(topic: str, key: bytes, value: bytes, offset: int) -> SimpleNamespace:
    message = SimpleNamespace(
        topic=topic, partition=0, offset=offset, key=key, value=value, timestamp=0.0
    )
    return SimpleNamespace(message=message)


def run_online(
    records: Iterable[LabeledTransaction],
    options: EvaluateOptions,
    workdir: Path,
    labels: DelayedLabels | None,
    extra_env: dict[str, str],
) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, Any]]:
    """Producer -> broker -> real worker -> decisions topic; returns decisions and latencies."""
    tag = uuid.uuid4().hex[:8]
    # Own topics and group, so an evaluation never mixes with a real deployment.
    own_names = {
        "FRAUDSTREAM_APP_ID": f"fraudstream-evaluate-{tag}",
        "FRAUDSTREAM_INPUT_TOPIC": f"evaluate-{tag}-transactions",
        "FRAUDSTREAM_ALERTS_TOPIC": f"evaluate-{tag}-alerts",
        "FRAUDSTREAM_DLQ_TOPIC": f"evaluate-{tag}-dlq",
        "FRAUDSTREAM_LABELS_TOPIC": f"evaluate-{tag}-labels",
        "FRAUDSTREAM_DECISIONS_TOPIC": f"evaluate-{tag}-decisions",
        # the settings' rules, not whatever a deployment's rules topic holds
        "FRAUDSTREAM_RULES_TOPIC": f"evaluate-{tag}-rules",
        "FRAUDSTREAM_SHADOW_TOPIC": f"evaluate-{tag}-shadow",
        **extra_env,
    }
    with local_pipeline(workdir, lambda text: _say(options, text), own_names) as pipeline:
        _say(options, "producing the labeled stream" + (" and its labels" if labels else ""))
        return asyncio.run(_produce_and_collect(records, options, pipeline, labels))


async def _produce_and_collect(
    records: Iterable[LabeledTransaction],
    options: EvaluateOptions,
    pipeline: LocalPipeline,
    labels: DelayedLabels | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, Any]]:
    settings, worker, bootstrap = pipeline.settings, pipeline.worker, pipeline.bootstrap
    sent_at: dict[str, float] = {}
    decisions: dict[str, dict[str, Any]] = {}
    alert_latency_ms: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        settings.kafka.decisions_topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **pipeline.security,
    )
    await consumer.start()

    async def collect() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            arrived = time.time()
            for messages in batches.values():
                for message in messages:
                    decision = orjson.loads(message.value or b"{}")
                    tx_id = decision["transactionId"]
                    if tx_id in decisions:
                        continue
                    decisions[tx_id] = decision
                    if decision["alert"] and tx_id in sent_at:
                        alert_latency_ms[tx_id] = (arrived - sent_at[tx_id]) * 1000.0

    reader = asyncio.create_task(collect())
    try:
        summary = await produce(
            records,
            bootstrap=bootstrap,
            topic=settings.kafka.input_topic,
            rate=options.rate,
            headers=False,  # the truth stays out of what the worker reads
            security=pipeline.security,
            progress=None if options.as_json else sys.stderr,
            on_sent=lambda record, at: sent_at.__setitem__(record.transaction_id, at),
            labels=labels,
            labels_topic=settings.kafka.labels_topic,
            fields=settings.fields.mapping(),
        )
        sent = summary.sent + (summary.labels_sent if labels is not None else 0)
        _say(options, "waiting for the worker to catch up and its decisions to arrive")
        if not await worker.caught_up(
            sent,
            lambda stats: len(decisions) >= stats["transactionsIn"],
            CATCH_UP_TIMEOUT_SECONDS,
            lambda read, total: _say(
                options,
                f"worker read {read:,} of {total:,} messages; {len(decisions):,} decisions in",
            ),
            lambda: len(decisions),
        ):
            print(
                f"warning: the worker stopped making progress for {CATCH_UP_TIMEOUT_SECONDS:.0f} s "
                "before catching up; the figures cover what it decided",
                file=sys.stderr,
            )
        worker_stats = worker.stats()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
    return decisions, alert_latency_ms, worker_stats


def outcomes_of(
    truth: dict[str, Truth],
    decisions: dict[str, dict[str, Any]],
    latencies: dict[str, float] | None = None,
) -> list[Outcome]:
    """Each sent transaction with what the detector decided (in sending order)."""
    outcomes = []
    for tx_id, known in truth.items():
        decision = decisions.get(tx_id)
        reasons = tuple(decision["reasons"]) if decision is not None else ()
        outcomes.append(
            Outcome(
                tx_id,
                known.scenario,
                known.is_fraud,
                known.amount,
                reasons,
                (latencies or {}).get(tx_id),
                risk=decision["risk"] if decision is not None else None,
                parts=decision["parts"] if decision is not None else {},
                day=known.day,
                card=known.card,
            )
        )
    return outcomes


def evaluate(options: EvaluateOptions) -> dict[str, Any]:
    """Run the evaluation (and the no-label run where asked) and return every figure."""
    settings = Settings()
    detection = settings.detection
    if options.amount_factor != 1.0 and detection.amount_threshold is not None:
        # a set amount line is in the stream's amounts (unset, the amount unit scales it)
        line = detection.amount_threshold * options.amount_factor
        settings = settings.model_copy(
            update={"detection": detection.model_copy(update={"amount_threshold": line})}
        )
    runs = {"labels" if options.label_delay_ms is not None else "noLabels": options}
    without = options.without_labels
    if without is None:
        without = options.generator != "scenarios" and options.label_delay_ms is not None
    if without and options.label_delay_ms is not None:
        runs["noLabels"] = replace(options, label_delay_ms=None)
    report: dict[str, Any] = {
        "mode": "offline" if options.offline else "online",
        "stream": _describe(options),
        "runs": {},
    }
    if report["stream"]["labels"] is not None:  # what the worker is told of the labels' share
        report["stream"]["labels"]["coverageSetting"] = settings.detection.label_coverage
        if options.label_share < settings.detection.label_coverage:
            _say(
                options,
                f"note: {options.label_share:.0%} of the frauds get a label, and the worker "
                f"assumes {settings.detection.label_coverage:.0%} "
                "(FRAUDSTREAM_LABEL_COVERAGE; see 'Labels for only some of the "
                "frauds' in docs/detection.md)",
            )
    for name, run_options in runs.items():
        _say(options, f"--- run: {name}")
        report["runs"][name] = _one_run(run_options, settings)
    return report


def _one_run(options: EvaluateOptions, settings: Settings) -> dict[str, Any]:
    truth: dict[str, Truth] = {}
    start: list[int] = []
    records = remember_truth(labeled_stream(options, settings), truth, start)
    labels = (
        DelayedLabels(
            options.label_delay_ms,
            options.label_share,
            seed=options.seed,
            max_delay_ms=options.label_delay_max_ms,
        )
        if options.label_delay_ms is not None
        else None
    )
    started = time.monotonic()
    latencies: dict[str, float] = {}
    if options.offline:
        if labels is None:
            detection = settings.detection.model_copy(update={"labels_enabled": False})
            settings = settings.model_copy(update={"detection": detection})
        # the worker's collector setting, so the pass costs what it costs in a worker
        with worker_collector(settings.worker.gc_young_threshold):
            decisions, worker = run_offline(records, settings, labels, _offline_progress(options))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="fraudstream-evaluate-"))
        env = {} if labels is not None else {"FRAUDSTREAM_LABELS_ENABLED": "false"}
        if settings.detection.amount_threshold is not None:
            env["FRAUDSTREAM_AMOUNT_THRESHOLD"] = repr(settings.detection.amount_threshold)
        decisions, latencies, worker = run_online(records, options, workdir, labels, env)
    seconds = time.monotonic() - started
    outcomes = outcomes_of(truth, decisions, latencies)
    skip_days = options.skip_days
    if skip_days is None:
        skip_days = SKIP_DAYS.get(options.generator)
    if skip_days is not None:
        scored = [o for o in outcomes if o.day >= skip_days]
        skipped = f"first {skip_days} days"
    else:
        skip = calibration_length(settings)
        scored = decided_after(outcomes, decisions, skip)
        skipped = f"first {skip} transactions decided"
    threshold = settings.detection.amount_threshold
    if threshold is None:  # 10,000 of the unit the run read amounts in
        threshold = DEFAULT_AMOUNT_THRESHOLD * (worker.get("amountUnit") or 1.0)
    return {
        "skipped": skipped,
        "seconds": round(seconds, 1),
        "transactionsPerSecond": round(len(outcomes) / seconds) if seconds else None,
        "workerEventsPerSecond": worker.get("eventsPerSecond"),
        "classifier": worker["classifier"],
        "amountUnit": worker.get("amountUnit"),
        "timestampStep": worker.get("timestampStep"),
        "scaleEvidence": worker.get("scaleEvidence"),
        "decisions": len(decisions),
        "afterWarmUp": assess(scored, threshold).to_dict(),
        "wholeStream": assess(outcomes, threshold).to_dict(),
        "ranking": ranking(scored),
        "ablation": ablation(scored),
    }


def _describe(options: EvaluateOptions) -> dict[str, Any]:
    described = _describe_source(options)
    if options.drop_fields:
        described["droppedFields"] = list(options.drop_fields)
    if options.amount_factor != 1.0:
        described["amountFactor"] = options.amount_factor
    if options.disorder_seconds > 0.0:
        described["disorderSeconds"] = options.disorder_seconds
    return described


def _describe_source(options: EvaluateOptions) -> dict[str, Any]:
    labels = (
        None
        if options.label_delay_ms is None
        else {"delayDays": options.label_delay_ms / 86_400_000, "share": options.label_share}
    )
    if labels is not None and options.label_delay_max_ms is not None:
        labels["maxDelayDays"] = options.label_delay_max_ms / 86_400_000
    if options.generator == "csv":
        return {
            "generator": "csv",
            "file": str(options.csv),
            "format": options.csv_format,
            "labels": labels,
        }
    if options.generator in SIZED_GENERATORS:
        return {
            "generator": options.generator,
            "users": options.users,
            "days": options.days,
            "seed": options.seed,
            "labels": labels,
        }
    if options.generator == "handbook":
        return {
            "generator": "handbook",
            "customers": options.customers,
            "terminals": options.terminals,
            "days": options.days,
            "seed": options.seed,
            "labels": labels,
        }
    return {
        "generator": "scenarios",
        "count": options.count,
        "users": options.users,
        "fraudShare": options.fraud_share,
        "seed": options.seed,
        "labels": labels,
    }


def render(report: dict[str, Any]) -> str:
    """The report as a human reads it."""
    lines = [f"fraudstream evaluate ({report['mode']}): {report['stream']}"]
    for name, run in report["runs"].items():
        lines.append("")
        lines.append(
            f"== {'with labels' if name == 'labels' else 'without labels'}: figures after the "
            f"{run['skipped']} (whole stream in brackets); {run['seconds']} s"
        )
        lines.extend(_render_run(run))
    if report["stream"]["generator"] == "handbook":
        lines.append("")
        lines.append("handbook's published baselines (offline, test week):  AUC    AP     CP@100")
        for model, (auc, ap, cp) in HANDBOOK_BASELINES.items():
            lines.append(f"  {model:<52} {auc:.3f}  {ap:.3f}  {cp:.3f}")
    return "\n".join(lines)


def _render_run(run: dict[str, Any]) -> list[str]:
    after, whole = run["afterWarmUp"], run["wholeStream"]
    lines = []
    rows = [
        ("transactions", "transactions"),
        ("frauds", "frauds"),
        ("alerts", "alerts"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("F1", "f1"),
        ("false-positive rate", "falsePositiveRate"),
    ]
    for label, key in rows:
        lines.append(f"  {label:<30} {_fmt(after[key]):>8}  [{_fmt(whole[key])}]")
    ranked = run["ranking"]
    if ranked:
        overall, block = ranked["overall"], ranked["blockMean"]
        lines.append(
            f"  ranking by risk score: ROC AUC {_fmt(overall['rocAuc'])}, AP "
            f"{_fmt(overall['averagePrecision'])}, card precision@100 "
            f"{_fmt(overall['cardPrecisionAt100'])}; mean of {ranked['blocks']} 7-day blocks: "
            f"{_fmt(block['rocAuc'])} / {_fmt(block['averagePrecision'])} / "
            f"{_fmt(block['cardPrecisionAt100'])}"
        )
    lines.append("  recall by scenario:")
    for scenario, recall in after["recallByScenario"].items():
        whole_recall = _fmt(whole["recallByScenario"].get(scenario))
        lines.append(f"    {scenario:<28} {_fmt(recall):>8}  [{whole_recall}]")
    lines.append(f"  alerts by reason: {after['alertsByReason']}")
    if run.get("amountUnit") not in (None, 1.0):
        lines.append(f"  amounts read in units of {run['amountUnit']:g} (fraudstream.core.units)")
    if run.get("timestampStep"):
        lines.append(
            f"  timestamps in steps of {run['timestampStep']:,} s (fraudstream.core.clock)"
        )
    scenarios = list(after["recallByScenario"])
    lines.append(
        "  each part alone (same run):  alerts  precision  recall  AP    | recall by scenario"
    )
    for part, figures in run["ablation"].items():
        per = " ".join(_fmt(figures["recallByScenario"].get(s)) for s in scenarios)
        lines.append(
            f"    {part:<24} {figures['alerts']:>7}  {_fmt(figures['precision']):>9}  "
            f"{_fmt(figures['recall']):>6}  {_fmt(figures['averagePrecision']):>5} | {per}"
        )
    latency = whole["latencyMs"]
    if latency["count"]:
        lines.append(
            f"  produce-to-alert latency ms: p50 {latency['p50']}  p95 {latency['p95']}  "
            f"p99 {latency['p99']}  ({latency['count']} alerts)"
        )
    return lines


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _offline_progress(options: EvaluateOptions) -> Callable[[int, float], None] | None:
    """A progress line for the offline pass, unless the report is JSON for a script."""
    if options.as_json:
        return None

    def report(transactions: int, seconds: float) -> None:
        rate = transactions / seconds if seconds > 0 else 0.0
        _say(options, f"offline: {transactions:,} transactions decided ({rate:,.0f}/s)")

    return report


def _say(options: EvaluateOptions, text: str) -> None:
    if not options.as_json:
        print(text, file=sys.stderr, flush=True)


def main(options: EvaluateOptions) -> int:
    """CLI entry: print the report (or JSON); 130 on Ctrl-C, 1 when the broker or worker failed."""
    try:
        report = evaluate(options)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (WorkerFailed, BrokerUnreachable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_CONNECTED
    except (CsvFormatError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(orjson.dumps(report).decode() if options.as_json else render(report))
    return 0
