"""``fraudstream evaluate``: a labeled stream through the real worker, scored against the truth.

The headline figures come from the real pipeline (producer -> broker -> worker -> alerts
topic); ``--offline`` pushes the same stream through the detection core only, for tuning.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from fraudstream.core.detector import Detector
from fraudstream.core.features import UserProfile
from fraudstream.core.parsing import parse_transaction
from fraudstream.core.quality import Outcome, assess
from fraudstream.core.records import Source, Transaction
from fraudstream.local.pipeline import LocalPipeline, local_pipeline
from fraudstream.local.worker_process import WorkerFailed
from fraudstream.settings import Settings
from producer.generator import GeneratorParameters, ScenarioGenerator
from producer.kafka import produce
from producer.records import LabeledTransaction

CATCH_UP_TIMEOUT_SECONDS = 300.0


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


def labeled_stream(options: EvaluateOptions) -> list[LabeledTransaction]:
    """The producer's deterministic labeled stream."""
    params = GeneratorParameters(
        seed=options.seed, users=options.users, fraud_share=options.fraud_share
    )
    return list(itertools.islice(ScenarioGenerator(params), options.count))


def calibration_length(settings: Settings) -> int:
    """Transactions before the model may alert: its warm-up plus the threshold's calibration."""
    return settings.detection.effective_warmup + settings.detection.score_quantile_min_samples


def run_offline(records: list[LabeledTransaction], settings: Settings) -> list[Outcome]:
    """The same stream through the detection core, in order, without Kafka."""
    detector = Detector(settings.detection.detector_config())
    profiles: dict[str, UserProfile] = {}
    now = datetime.now(timezone.utc)
    outcomes = []
    for offset, record in enumerate(records):
        tx = parse_transaction(
            record.message_json(), Source("offline", 0, offset), settings.worker.max_message_bytes
        )
        if not isinstance(tx, Transaction):
            continue
        profile = profiles.setdefault(tx.user_id, UserProfile())
        decision = detector.process(tx, profile, 0, offset, now)
        reasons = tuple(decision.alert.reason_names) if decision.alert else ()
        outcomes.append(_outcome(record, reasons, None))
    return outcomes


def run_online(
    records: list[LabeledTransaction], options: EvaluateOptions, workdir: Path
) -> list[Outcome]:
    """Producer -> broker -> real worker -> alerts topic, joined to the truth."""
    tag = uuid.uuid4().hex[:8]
    # Own topics and group, so an evaluation never mixes with a real deployment.
    own_names = {
        "FRAUDSTREAM_APP_ID": f"fraudstream-evaluate-{tag}",
        "FRAUDSTREAM_INPUT_TOPIC": f"evaluate-{tag}-transactions",
        "FRAUDSTREAM_ALERTS_TOPIC": f"evaluate-{tag}-alerts",
        "FRAUDSTREAM_DLQ_TOPIC": f"evaluate-{tag}-dlq",
    }
    with local_pipeline(workdir, lambda text: _say(options, text), own_names) as pipeline:
        _say(options, f"producing {len(records)} labeled transactions")
        sent_at, arrivals = asyncio.run(_produce_and_collect(records, options, pipeline))
    outcomes = []
    for record in records:
        alert = arrivals.get(record.transaction_id)
        if alert is None:
            outcomes.append(_outcome(record, (), None))
            continue
        reasons, arrived = alert
        latency = (arrived - sent_at[record.transaction_id]) * 1000.0
        outcomes.append(_outcome(record, reasons, latency))
    return outcomes


async def _produce_and_collect(
    records: list[LabeledTransaction], options: EvaluateOptions, pipeline: LocalPipeline
) -> tuple[dict[str, float], dict[str, tuple[tuple[str, ...], float]]]:
    settings, worker, bootstrap = pipeline.settings, pipeline.worker, pipeline.bootstrap
    sent_at: dict[str, float] = {}
    arrivals: dict[str, tuple[tuple[str, ...], float]] = {}
    consumer = AIOKafkaConsumer(
        settings.kafka.alerts_topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        **pipeline.security,
    )
    await consumer.start()

    async def collect() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            arrived = time.time()
            for messages in batches.values():
                for message in messages:
                    alert = orjson.loads(message.value or b"{}")
                    reasons = tuple(r["name"] for r in alert["reasons"])
                    arrivals.setdefault(alert["transactionId"], (reasons, arrived))

    reader = asyncio.create_task(collect())
    try:
        await produce(
            records,
            bootstrap=bootstrap,
            topic=settings.kafka.input_topic,
            rate=options.rate,
            headers=False,  # labels stay out of what the worker reads
            security=pipeline.security,
            progress=None if options.as_json else sys.stderr,
            on_sent=lambda record, at: sent_at.__setitem__(record.transaction_id, at),
        )
        _say(options, "waiting for the worker to catch up and its alerts to arrive")
        if not await worker.caught_up(
            len(records),
            lambda stats: len(arrivals) >= stats["alertsOut"],
            CATCH_UP_TIMEOUT_SECONDS,
        ):
            print("warning: the worker did not catch up before the deadline", file=sys.stderr)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
    return sent_at, arrivals


def evaluate(options: EvaluateOptions) -> dict[str, Any]:
    """Run the evaluation and return every figure (whole stream and after calibration)."""
    settings = Settings()
    records = labeled_stream(options)
    if options.offline:
        outcomes = run_offline(records, settings)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="fraudstream-evaluate-"))
        outcomes = run_online(records, options, workdir)
    skip = calibration_length(settings)
    return {
        "mode": "offline" if options.offline else "online",
        "stream": {
            "count": options.count,
            "users": options.users,
            "fraudShare": options.fraud_share,
            "seed": options.seed,
        },
        "calibrationTransactions": skip,
        "afterCalibration": assess(outcomes[skip:], settings.detection.amount_threshold).to_dict(),
        "wholeStream": assess(outcomes, settings.detection.amount_threshold).to_dict(),
    }


def render(report: dict[str, Any]) -> str:
    """The report as a human reads it."""
    lines = [
        f"fraudstream evaluate ({report['mode']}): {report['stream']}",
        f"figures after the first {report['calibrationTransactions']} transactions "
        "(model warm-up + threshold calibration); whole stream in brackets",
    ]
    after, whole = report["afterCalibration"], report["wholeStream"]
    rows = [
        ("transactions", "transactions"),
        ("frauds", "frauds"),
        ("alerts", "alerts"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("F1", "f1"),
        ("false-positive rate", "falsePositiveRate"),
        ("caught only by the model", "shareCaughtOnlyByModel"),
        ("caught only by rules", "shareCaughtOnlyByRules"),
        ("model recall < rule threshold", "modelRecallUnderRuleThreshold"),
    ]
    for label, key in rows:
        verdict = after["targets"].get(key)
        mark = "" if verdict is None else ("  PASS" if verdict else "  FAIL")
        lines.append(f"  {label:<30} {_fmt(after[key]):>8}  [{_fmt(whole[key])}]{mark}")
    lines.append("  recall by scenario:")
    for scenario, recall in after["recallByScenario"].items():
        whole_recall = _fmt(whole["recallByScenario"].get(scenario))
        lines.append(f"    {scenario:<28} {_fmt(recall):>8}  [{whole_recall}]")
    lines.append(f"  alerts by reason: {after['alertsByReason']}")
    latency = whole["latencyMs"]
    if latency["count"]:
        lines.append(
            f"  produce-to-alert latency ms: p50 {latency['p50']}  p95 {latency['p95']}  "
            f"p99 {latency['p99']}  ({latency['count']} alerts)"
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _outcome(
    record: LabeledTransaction, reasons: tuple[str, ...], latency_ms: float | None
) -> Outcome:
    return Outcome(
        record.transaction_id,
        record.scenario,
        bool(record.is_fraud),
        record.amount,
        reasons,
        latency_ms,
    )


def _say(options: EvaluateOptions, text: str) -> None:
    if not options.as_json:
        print(text, file=sys.stderr, flush=True)


def main(options: EvaluateOptions) -> int:
    """CLI entry: print the report (or JSON); 130 on Ctrl-C, 1 when the worker failed."""
    try:
        report = evaluate(options)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except WorkerFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(orjson.dumps(report).decode() if options.as_json else render(report))
    return 0
