"""Throughput side by side on one broker: ceiling, bare Faust, Quix Streams, fraudstream.

    python benchmarks/run.py                  # 60,000 pre-produced transactions per contender
    python benchmarks/run.py --quick          # 15,000
    python benchmarks/run.py --rounds 5       # every contender 5 times (default 3)
    python benchmarks/run.py --broker tansu   # on the embedded Tansu instead of Apache Kafka

Every contender reads the same kind of pre-produced stream from the same broker (Apache Kafka
from Maven Central jars by default; see fraudstream/local/apache_kafka.py); rates are counted
from the first to the last message each one processed. The contenders: raw aiokafka + orjson
(the ceiling), a decode-only Faust agent (Faust's defaults, and fraudstream's settings), the
same job written with Quix Streams (benchmarks/quix_job.py; needs the ``bench`` extra, else it
is skipped with the reason), and the fraudstream worker without and with its InfluxDB sink (and,
to show what direct delivery saves, without the sink through Faust's events and stream; and,
doing the Quix job's job, without the sink and without labels, which that job does not take;
with ``--native`` the worker and that job again from a copy of the package whose core is compiled
by mypyc, as the container image runs it).
Every contender runs once per round, forwards in one round and backwards in the next, after
a warm-up drain of the broker's JVM; one run of a worker moves by up to ±11% on this shared
machine (measured: the same worker eight times in a row, 8,875-11,114 events/s), so the figures are
medians over the rounds and each ratio the median of its ratios within a round. Prints
events/s, events per second of each contender's own CPU time (the two cores are shared
with the broker, InfluxDB and whatever else runs, so this is the steadier cost figure), the
ratios the performance issues ask for, peak RSS and the detection core per stage. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (
    BROKERS,
    Broker,
    Deployment,
    broker_name,
    compiled_copy,
    drain,
    influxdb,
    new_broker,
    produce_sync,
    rss_mib,
    transactions,
)
from fraudstream.core.behaviour import BehaviourFeatures, UserHistory, hst_view
from fraudstream.core.detector import Detector
from fraudstream.core.parsing import parse_transaction
from fraudstream.core.records import Source, Transaction
from fraudstream.core.rules import AmountThresholdRule
from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.ports import free_port
from fraudstream.settings import Settings
from tests.support.influxdb_server import InfluxV2Proxy

#: The Quix Streams job's own deadline: it stops itself after ``count`` messages.
QUIX_TIMEOUT_SECONDS = 600


#: Rows of the report, in order.
LABELS = {
    "ceiling": "ceiling: aiokafka + orjson",
    "bareFaustDefault": "bare Faust agent, default settings",
    "bareFaustSame": "bare Faust agent, same settings",
    "quix": "same job in Quix Streams",
    "faustPath": "worker, no sink, Faust's stream path",
    "noSink": "fraudstream worker, no InfluxDB sink",
    "noSinkNative": "the same, compiled (the image; --native)",
    "sameJob": "worker, no sink, no labels (Quix's job)",
    "sameJobNative": "the same, core compiled (--native)",
    "full": "full fraudstream worker + InfluxDB",
}
#: Throughput ratios printed (when both contenders ran).
RATIOS = [
    ("full", "bareFaustDefault"),
    ("full", "bareFaustSame"),
    ("full", "ceiling"),
    ("noSink", "quix"),
    ("noSinkNative", "quix"),
    ("sameJob", "quix"),
    ("sameJobNative", "quix"),
    ("sameJobNative", "bareFaustDefault"),
    ("noSink", "faustPath"),
    ("full", "quix"),
]


@dataclass(frozen=True)
class Figures:
    """One contender's throughput: by the clock, by its own CPU time, and its peak RSS."""

    rate: float  # events/s from the first to the last processed message
    #: Events per second of the contender's own CPU time (all its threads) over the same span:
    #: what it costs, whatever share of the two shared cores its neighbours took meanwhile.
    per_cpu_second: float
    peak_rss_mib: float | None = None
    alerts: int | None = None  # alerts produced, for the contenders that detect


async def ceiling(bootstrap: str, topic: str, count: int) -> Figures:
    """Raw aiokafka consumption + orjson decoding, in this process."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )
    await consumer.start()
    seen, first, last, cpu_first, cpu_last = 0, 0.0, 0.0, 0.0, 0.0
    try:
        deadline = time.monotonic() + 120
        while seen < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    orjson.loads(message.value or b"{}")
                    if not seen:
                        first, cpu_first = time.monotonic(), time.process_time()
                    seen += 1
                last, cpu_last = time.monotonic(), time.process_time()
    finally:
        await consumer.stop()
    if seen < 2:
        return Figures(0.0, 0.0)
    return Figures((seen - 1) / (last - first), (seen - 1) / (cpu_last - cpu_first))


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def bare_faust(broker: Broker, topic: str, count: int, same: bool, workdir: Path) -> Figures:
    """A decode-only Faust agent in its own process."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_BROKER_URL": broker.url,
        "BENCH_TOPIC": topic,
        "BENCH_APP_ID": f"bench-bare-{uuid.uuid4().hex[:6]}",
        "BENCH_WEB_PORT": str(port),
        "BENCH_SAME_SETTINGS": "1" if same else "0",
        "BENCH_DATA_DIR": str(workdir / f"bare-{same}"),
    }
    log = open(workdir / f"bare-{same}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faust",
            *(["-L", "uvloop"] if same and Settings().worker.event_loop == "uvloop" else []),
            "-A",
            "benchmarks.bare_faust_app",
            "worker",
            "-l",
            "warn",
            "--web-port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        state: dict[str, Any] = {"count": 0}
        deadline = time.monotonic() + 300
        while state["count"] < count and time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"bare Faust worker exited; see {workdir}")
            time.sleep(0.5)
            try:
                state = get_json(f"http://127.0.0.1:{port}/count")
            except OSError:
                continue
        rss = rss_mib(process.pid, "VmHWM")
        timed = state["count"] - state["firstCount"]  # decoded after the first timestamp
        if timed <= 0:
            return Figures(0.0, 0.0, rss)
        return Figures(
            timed / (state["last"] - state["first"]),
            timed / (state["cpuLast"] - state["cpuFirst"]),
            rss,
        )
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def quix_streams(broker: Broker, topic: str, count: int, workdir: Path) -> Figures | str:
    """The same job in Quix Streams (benchmarks/quix_job.py) in its own process, or why not."""
    if importlib.util.find_spec("quixstreams") is None:
        return "quixstreams is not installed: pip install -e '.[bench]'"
    alerts_topic = f"{topic}-quix-alerts"
    ensure_topics_sync(broker.bootstrap, [alerts_topic], 4)
    result, log_path = workdir / "quix.json", workdir / "quix.log"
    with open(log_path, "wb") as log:
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).with_name("quix_job.py")),
                    "--bootstrap",
                    broker.bootstrap,
                    "--topic",
                    topic,
                    "--alerts-topic",
                    alerts_topic,
                    "--count",
                    str(count),
                    "--state-dir",
                    str(workdir / "quix-state"),
                    "--result",
                    str(result),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=QUIX_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"did not process {count} messages within {QUIX_TIMEOUT_SECONDS}s ({log_path})"
    if done.returncode != 0 or not result.is_file():
        lines = log_path.read_text(errors="replace").strip().splitlines()
        return f"exited with {done.returncode}: {lines[-1] if lines else '?'} ({log_path})"
    figures = json.loads(result.read_text())
    return Figures(
        figures["rate"], figures["perCpuSecond"], figures["peakRssMiB"], figures["alerts"]
    )


def full_worker(
    broker: Broker,
    count: int,
    messages: list[tuple[bytes, bytes]],
    influx: InfluxV2Proxy | None,
    workdir: Path,
    direct_delivery: bool = True,
    labels: bool = True,
    package_root: Path | None = None,
) -> Figures:
    """The real worker (validation, table, rules, HST, alerts, and the InfluxDB sink if given).

    ``direct_delivery=False`` hands messages through Faust's events and stream instead;
    ``labels=False`` runs it with ``FRAUDSTREAM_LABELS_ENABLED=false``; ``package_root`` runs
    the package found there (a compiled copy) instead of this checkout's.
    """
    name = ("full" if influx is not None else "no-sink") + ("" if direct_delivery else "-faust")
    name += ("" if labels else "-no-labels") + ("" if package_root is None else "-native")
    env = {
        "FRAUDSTREAM_DIRECT_DELIVERY": str(direct_delivery).lower(),
        "FRAUDSTREAM_LABELS_ENABLED": str(labels).lower(),
    }
    deployment = Deployment(
        broker, workdir / name, influx=influx, extra_env=env, package_root=package_root
    )
    (worker,) = deployment.start_workers(1)
    try:
        produce_sync(broker.bootstrap, deployment.input_topic, messages)
        drained = drain(deployment, count)
        assert worker.process is not None
        rss = rss_mib(worker.process.pid, "VmHWM")
        return Figures(drained.rate, drained.per_cpu_second, rss, worker.stats()["alertsOut"])
    finally:
        deployment.stop()


def core_stages(messages: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Microseconds per event for each stage of the detection core, and end to end."""
    settings = Settings()
    config = settings.detection.detector_config()
    raws = [value for _, value in messages]
    now = datetime.now(timezone.utc)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    txs = [parse_transaction(raw, Source("b", 0, i), 65536) for i, raw in enumerate(raws)]
    timings["parse"] = time.perf_counter() - start
    txs_ok = [t for t in txs if isinstance(t, Transaction)]

    histories: dict[str, UserHistory] = {}
    behaviour = BehaviourFeatures(config.velocity_tau)
    start = time.perf_counter()
    features = []
    for i, tx in enumerate(txs_ok):
        history = histories.setdefault(tx.user_id, UserHistory())
        features.append(behaviour.features(history, tx))
        behaviour.update(history, tx, 0, i, suspicious=False)
    timings["features"] = time.perf_counter() - start

    rule = AmountThresholdRule(settings.detection.amount_line)
    start = time.perf_counter()
    for tx in txs_ok:
        rule.check(tx, UserHistory(), {})
    timings["rule"] = time.perf_counter() - start

    scorer = Detector(config).scorer
    start = time.perf_counter()
    for vector in features:
        view = hst_view(vector)
        scorer.score(view)
        scorer.learn(view)
    timings["score+learn"] = time.perf_counter() - start

    detector, histories = Detector(config), {}
    alerts = []
    start = time.perf_counter()
    for i, tx in enumerate(txs_ok):
        decision = detector.process(tx, histories.setdefault(tx.user_id, UserHistory()), 0, i, now)
        if decision.alert is not None:
            alerts.append(decision.alert)
    process_seconds = time.perf_counter() - start

    # Only alerting decisions encode an alert (~2% of this stream), so the stage is timed on
    # those and spread over every event, as the worker pays it.
    start = time.perf_counter()
    for alert in alerts:
        alert.to_json()
    timings["alert record"] = time.perf_counter() - start
    timings["Detector.process"] = process_seconds
    return {stage: seconds / len(txs_ok) * 1e6 for stage, seconds in timings.items()}


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "?",
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    import aiokafka
    import faust
    import river

    return (
        f"{os.cpu_count()} cores ({model}), {int(mem) // 1024 // 1024} GiB, "
        f"Python {platform.python_version()}, faust-streaming {faust.__version__}, "
        f"aiokafka {aiokafka.__version__}, river {river.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="15,000 messages instead of 60,000")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of every contender, forwards then backwards (default: 3)",
    )
    parser.add_argument(
        "--broker", choices=BROKERS, default="kafka", help="broker to run on (default: kafka)"
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="also the worker and the Quix job's job with the core compiled (fraudstream "
        "native build, on a copy of the package, as the container image ships; needs a C "
        "compiler)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    count = 15_000 if args.quick else 60_000
    messages = transactions(count)
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-bench-"))
    results: dict[str, Any] = {"machine": machine(), "messages": count, "rounds": args.rounds}
    print(results["machine"], file=sys.stderr)

    print("core stages ...", file=sys.stderr)
    results["coreMicrosecondsPerEvent"] = core_stages(messages)

    rounds: list[dict[str, Figures]] = []
    with influxdb(workdir) as proxy, new_broker(args.broker, workdir) as broker:
        results["broker"] = broker_name(broker)
        print(f"broker: {results['broker']}", file=sys.stderr)
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        ensure_topics_sync(broker.bootstrap, [topic], 4)
        produce_sync(broker.bootstrap, topic, messages)
        # The broker's JVM compiles its hot paths during the first reads: a drain nobody is
        # measured on, so that no contender pays for it.
        print("warm-up (ceiling, not counted) ...", file=sys.stderr)
        asyncio.run(ceiling(broker.bootstrap, topic, count))
        compiled = compiled_copy(workdir / "compiled") if args.native else None
        if isinstance(compiled, str):
            results["nativeSkipped"] = compiled
            print(f"  skipped: {compiled}", file=sys.stderr)
            compiled = None
        plan = contender_plan(broker, topic, count, messages, proxy, compiled)
        for round_number in range(args.rounds):
            # forwards, then backwards: a drift of the machine's speed during the run
            # favours nobody, and nobody is always first or last
            order = plan if round_number % 2 == 0 else plan[::-1]
            this_round: dict[str, Figures] = {}
            rounds.append(this_round)
            for name, run in order:
                print(
                    f"round {round_number + 1}/{args.rounds}: {LABELS[name]} ...", file=sys.stderr
                )
                round_dir = workdir / f"round-{round_number + 1}"
                round_dir.mkdir(exist_ok=True)
                outcome = run(round_dir)
                if isinstance(outcome, str):
                    results["quixSkipped"] = outcome
                    print(f"  skipped: {outcome}", file=sys.stderr)
                    continue
                this_round[name] = outcome
                print(
                    f"  {outcome.rate:,.0f}/s, {outcome.per_cpu_second:,.0f} per CPU-s",
                    file=sys.stderr,
                )

    runs = {
        name: [r[name] for r in rounds if name in r]
        for name in LABELS
        if any(name in r for r in rounds)
    }
    contenders = {name: median_figures(figures) for name, figures in runs.items()}
    results["contenders"] = {
        name: {**asdict(contenders[name]), "runs": [asdict(f) for f in figures]}
        for name, figures in runs.items()
    }
    # Ratios are taken round by round (both contenders in the same round, so on the same
    # machine weather), and their median is printed.
    ratios = {
        f"{a}/{b}": paired_ratio(rounds, a, b, "rate") for a, b in RATIOS if a in runs and b in runs
    }
    # The Quix job has no InfluxDB sink and takes no labels: like for like, fraudstream is the
    # worker without its sink, with its labels (the default) and without them (the same job).
    cost_ratios = {
        f"{name}/quixPerCpuSecond": paired_ratio(rounds, name, "quix", "per_cpu_second")
        for name in ("noSink", "noSinkNative", "sameJob", "sameJobNative")
        if "quix" in runs and name in runs
    }
    results["ratios"] = ratios
    results.update(cost_ratios)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"\nmachine: {results['machine']}\nbroker: {results['broker']}\n"
        f"messages per contender: {count}, rounds: {args.rounds} "
        "(medians; the spread is the lowest and highest events/s)\n"
    )
    print(
        f"{'contender':<40}{'events/s':>12}{'spread':>18}{'per CPU-s':>12}"
        f"{'peak RSS MiB':>14}{'alerts':>8}"
    )
    for name, label in LABELS.items():
        if name not in contenders:
            print(f"{label:<40}{'skipped':>12}{'-':>18}{'-':>12}{'-':>14}{'-':>8}")
            continue
        figures = contenders[name]
        rates = [f.rate for f in runs[name]]
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        rss = "-" if figures.peak_rss_mib is None else f"{figures.peak_rss_mib:.0f}"
        alerts = "-" if figures.alerts is None else str(figures.alerts)
        print(
            f"{label:<40}{figures.rate:>12,.0f}{spread:>18}{figures.per_cpu_second:>12,.0f}"
            f"{rss:>14}{alerts:>8}"
        )
    if "quixSkipped" in results:
        print(f"\nQuix Streams skipped: {results['quixSkipped']}")
    if "nativeSkipped" in results:
        print(f"\ncompiled core skipped: {results['nativeSkipped']}")
    print("\nratios (events/s): " + "  ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    for name, what in (
        ("noSink", "worker without its InfluxDB sink, labels on (the default)"),
        ("noSinkNative", "the same with the core compiled by mypyc: the container image"),
        ("sameJob", "without its sink and without labels: the Quix job's job"),
        ("sameJobNative", "the same with the core compiled by mypyc"),
    ):
        if f"{name}/quixPerCpuSecond" in results:
            print(
                f"fraudstream / Quix Streams: {ratios[f'{name}/quix']:.2f} by the clock, "
                f"{results[f'{name}/quixPerCpuSecond']:.2f} per CPU-second ({what})"
            )
    print("\ndetection core alone, µs per event (events/s):")
    for stage, micros in results["coreMicrosecondsPerEvent"].items():
        print(f"  {stage:<20}{micros:>8.1f}  ({1e6 / micros:>10,.0f}/s)")


def contender_plan(
    broker: Broker,
    topic: str,
    count: int,
    messages: list[tuple[bytes, bytes]],
    proxy: InfluxV2Proxy,
    compiled: Path | None = None,
) -> list[tuple[str, Callable[[Path], Figures | str]]]:
    """Every contender, as a run in a directory of its round's own (state, logs, results);
    with ``compiled`` (a copy of the package with its core compiled), the worker without its
    sink (what the container image runs) and the Quix job's job from it too."""
    plan: list[tuple[str, Callable[[Path], Figures | str]]] = [
        ("ceiling", lambda _: asyncio.run(ceiling(broker.bootstrap, topic, count))),
        ("bareFaustDefault", lambda d: bare_faust(broker, topic, count, False, d)),
        ("bareFaustSame", lambda d: bare_faust(broker, topic, count, True, d)),
        ("quix", lambda d: quix_streams(broker, topic, count, d)),
        ("noSink", lambda d: full_worker(broker, count, messages, None, d)),
        (
            "sameJob",
            lambda d: full_worker(broker, count, messages, None, d, labels=False),
        ),
        (
            "faustPath",
            lambda d: full_worker(broker, count, messages, None, d, direct_delivery=False),
        ),
        ("full", lambda d: full_worker(broker, count, messages, proxy, d)),
    ]
    if compiled is not None:
        plan.append(
            (
                "noSinkNative",
                lambda d: full_worker(broker, count, messages, None, d, package_root=compiled),
            )
        )
        plan.append(
            (
                "sameJobNative",
                lambda d: full_worker(
                    broker, count, messages, None, d, labels=False, package_root=compiled
                ),
            )
        )
    return plan


def median_figures(runs: list[Figures]) -> Figures:
    """Each figure's median over the rounds (the highest peak RSS: a bound, not a typical)."""
    rss = [f.peak_rss_mib for f in runs if f.peak_rss_mib is not None]
    alerts = [f.alerts for f in runs if f.alerts is not None]
    return Figures(
        statistics.median(f.rate for f in runs),
        statistics.median(f.per_cpu_second for f in runs),
        max(rss) if rss else None,
        round(statistics.median(alerts)) if alerts else None,
    )


def paired_ratio(rounds: list[dict[str, Figures]], a: str, b: str, figure: str) -> float:
    """The median over the rounds that ran both of ``a``'s figure over ``b``'s.

    >>> rounds = [{"x": Figures(10.0, 5.0), "y": Figures(20.0, 5.0)}, {"y": Figures(9.0, 1.0)},
    ...           {"x": Figures(30.0, 6.0), "y": Figures(20.0, 5.0)}]
    >>> paired_ratio(rounds, "x", "y", "rate")
    1.0
    """
    return statistics.median(
        getattr(r[a], figure) / getattr(r[b], figure) for r in rounds if a in r and b in r
    )


if __name__ == "__main__":
    main()
