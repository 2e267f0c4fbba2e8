"""Throughput side by side on one broker: ceiling, bare Faust, full worker, core per stage.

    python benchmarks/run.py            # 60,000 pre-produced transactions per contender
    python benchmarks/run.py --quick    # 15,000

Every contender reads the same kind of pre-produced stream from the same embedded Tansu broker;
rates are counted from the first to the last message each one processed. Prints events/s, the
ratios the performance issue asks for, and peak RSS. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (
    Deployment,
    drain_rate,
    influxdb,
    produce_sync,
    rss_mib,
    transactions,
)
from fraudstream.core.behaviour import BehaviourFeatures, UserHistory, hst_view
from fraudstream.core.detector import Detector
from fraudstream.core.parsing import parse_transaction
from fraudstream.core.records import Alert, Source, Transaction
from fraudstream.core.rules import AmountThresholdRule
from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.ports import free_port
from fraudstream.local.tansu import TansuBroker
from fraudstream.settings import Settings
from tests.support.influxdb_server import InfluxV2Proxy


async def ceiling(bootstrap: str, topic: str, count: int) -> float:
    """Raw aiokafka consumption + orjson decoding."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )
    await consumer.start()
    seen, first, last = 0, 0.0, 0.0
    try:
        deadline = time.monotonic() + 120
        while seen < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    orjson.loads(message.value or b"{}")
                    if not seen:
                        first = time.monotonic()
                    seen += 1
                    last = time.monotonic()
    finally:
        await consumer.stop()
    return (seen - 1) / (last - first) if seen > 1 else 0.0


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def bare_faust(
    broker: TansuBroker, topic: str, count: int, same: bool, workdir: Path
) -> tuple[float, float]:
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
        rate = timed / (state["last"] - state["first"]) if timed > 0 else 0.0
        return rate, rss
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def full_worker(
    broker: TansuBroker,
    count: int,
    messages: list[tuple[bytes, bytes]],
    influx: InfluxV2Proxy,
    workdir: Path,
) -> tuple[float, float]:
    """The real worker (validation, table, rule, HST, alerts, InfluxDB sink)."""
    deployment = Deployment(broker, workdir / "full", influx=influx)
    (worker,) = deployment.start_workers(1)
    try:
        produce_sync(broker.bootstrap, deployment.input_topic, messages)
        rate = drain_rate(deployment, count)
        assert worker.process is not None
        return rate, rss_mib(worker.process.pid, "VmHWM")
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

    rule = AmountThresholdRule(config.amount_threshold)
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

    start = time.perf_counter()
    for tx, vector in zip(txs_ok, features, strict=True):
        Alert("id", tx, now, 0.5, [], vector).to_json()
    timings["alert record"] = time.perf_counter() - start

    detector, histories = Detector(config), {}
    start = time.perf_counter()
    for i, tx in enumerate(txs_ok):
        detector.process(tx, histories.setdefault(tx.user_id, UserHistory()), 0, i, now)
    timings["Detector.process"] = time.perf_counter() - start
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
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    count = 15_000 if args.quick else 60_000
    messages = transactions(count)
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-bench-"))
    results: dict[str, Any] = {"machine": machine(), "messages": count}
    print(results["machine"], file=sys.stderr)

    print("core stages ...", file=sys.stderr)
    results["coreMicrosecondsPerEvent"] = core_stages(messages)

    with influxdb(workdir) as proxy, TansuBroker(log_path=workdir / "tansu.log") as broker:
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        ensure_topics_sync(broker.bootstrap, [topic], 4)
        produce_sync(broker.bootstrap, topic, messages)
        print("ceiling (aiokafka + orjson) ...", file=sys.stderr)
        results["ceiling"] = asyncio.run(ceiling(broker.bootstrap, topic, count))
        print("bare Faust, default settings ...", file=sys.stderr)
        results["bareFaustDefault"], results["bareFaustDefaultRssMiB"] = bare_faust(
            broker, topic, count, same=False, workdir=workdir
        )
        print("bare Faust, fraudstream's settings ...", file=sys.stderr)
        results["bareFaustSame"], results["bareFaustSameRssMiB"] = bare_faust(
            broker, topic, count, same=True, workdir=workdir
        )
        print("full worker with InfluxDB sink ...", file=sys.stderr)
        results["fullWorker"], results["fullWorkerRssMiB"] = full_worker(
            broker, count, messages, proxy, workdir
        )

    full = results["fullWorker"]
    results["ratios"] = {
        "full/bareFaustDefault": full / results["bareFaustDefault"],
        "full/bareFaustSame": full / results["bareFaustSame"],
        "full/ceiling": full / results["ceiling"],
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\nmachine: {results['machine']}\nmessages per contender: {count}\n")
    print(f"{'contender':<40}{'events/s':>12}{'peak RSS MiB':>14}")
    print(f"{'ceiling: aiokafka + orjson':<40}{results['ceiling']:>12,.0f}{'-':>14}")
    print(
        f"{'bare Faust agent, default settings':<40}{results['bareFaustDefault']:>12,.0f}"
        f"{results['bareFaustDefaultRssMiB']:>14.0f}"
    )
    print(
        f"{'bare Faust agent, same settings':<40}{results['bareFaustSame']:>12,.0f}"
        f"{results['bareFaustSameRssMiB']:>14.0f}"
    )
    full_rss = results["fullWorkerRssMiB"]
    print(f"{'full fraudstream worker + InfluxDB':<40}{full:>12,.0f}{full_rss:>14.0f}")
    print("\nratios: " + "  ".join(f"{k} {v:.2f}" for k, v in results["ratios"].items()))
    print("\ndetection core alone, µs per event (events/s):")
    for stage, micros in results["coreMicrosecondsPerEvent"].items():
        print(f"  {stage:<20}{micros:>8.1f}  ({1e6 / micros:>10,.0f}/s)")


if __name__ == "__main__":
    main()
