"""Produce-to-alert latency of the full worker at fixed offered rates.

    python benchmarks/latency.py                       # 1000, 2000, 3000, 5000 tx/s, 20 s each
    python benchmarks/latency.py --rates 1000 --seconds 60
    python benchmarks/latency.py --native                 # the core compiled, as in the image

One worker (with its InfluxDB sink writing to a real InfluxDB) on Apache Kafka (``--broker tansu``:
the embedded broker); for each rate a paced producer sends transactions (1% above the amount
rule, so every run has hundreds of alerts) and a consumer of the alert topic stamps each
alert's arrival. Latency is arrival time minus the moment the transaction was handed to the
producer client, so it includes the producer's batching, the broker, the worker and the alert's
way back. A rate counts as sustained when the worker kept up (read >= 95% of what was sent by
the end of the sending window) and p99 stayed under a second. The first rate is sent for
``--warmup-seconds`` before anything is measured: a freshly started broker JVM and worker
answer slower for their first seconds (p99 66 ms in the first 30 s at 1,000 tx/s, 37 ms in the
next 30 s, measured). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script

from benchmarks.harness import (
    BROKERS,
    Deployment,
    as_row,
    compiled_copy,
    new_broker,
    optional_influxdb,
    percentile,
    say,
    transactions,
)

#: Producer batching of the load generator, as a client at these rates would configure it.
PRODUCER_LINGER_MS = 5
#: Pacing tick: the producer catches up with rate x elapsed this often.
TICK_SECONDS = 0.005


async def run_rate(
    deployment: Deployment, rate: float, seconds: float, tag: str = "r"
) -> dict[str, Any]:
    """Send ``rate`` tx/s for ``seconds``; return latency percentiles and whether it kept up."""
    bootstrap = deployment.broker.bootstrap
    prefix = f"{tag}{int(rate)}-"  # transaction ids are prefix + sequence number
    # users of its own: the earlier rates' users have histories this stream's times contradict
    messages = transactions(int(rate * seconds), seed=int(rate), prefix=prefix, user_prefix=prefix)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(
        deployment.alerts_topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    await consumer.seek_to_end()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=PRODUCER_LINGER_MS)
    await producer.start()

    async def collect() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            arrived = time.time()
            for records in batches.values():
                for record in records:
                    tx_id = orjson.loads(record.value or b"{}").get("transactionId")
                    if tx_id in sent_at:
                        latencies.append((arrived - sent_at.pop(tx_id)) * 1000.0)

    reader = asyncio.create_task(collect())
    processed_before = deployment.processed()
    try:
        start = time.monotonic()
        i = 0
        while i < len(messages):
            due = min(len(messages), int(rate * (time.monotonic() - start)) + 1)
            while i < due:
                key, value = messages[i]
                sent_at[f"{prefix}{i}"] = time.time()
                await producer.send(deployment.input_topic, value, key=key)
                i += 1
            await asyncio.sleep(TICK_SECONDS)
        await producer.flush()
        window = time.monotonic() - start
        read_in_window = deployment.processed() - processed_before
        deadline = time.monotonic() + 120
        while deployment.processed() - processed_before < len(messages):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the last alerts' way back
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    latencies.sort()
    p99 = percentile(latencies, 0.99)
    kept_up = read_in_window >= 0.95 * len(messages)
    return {
        "offeredRate": rate,
        "achievedSendRate": len(messages) / window,
        "readDuringSending": read_in_window / len(messages),
        "alerts": len(latencies),
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": p99,
        "max": latencies[-1] if latencies else None,
        "sustained": kept_up and p99 is not None and p99 < 1000.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rates", default="1000,2000,3000,5000", help="offered tx/s, ascending")
    parser.add_argument("--seconds", type=float, default=20.0, help="sending time per rate")
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=15.0,
        help="unmeasured sending at the first rate first (a fresh broker JVM and worker answer "
        "slower for their first seconds)",
    )
    parser.add_argument("--no-influx", action="store_true", help="worker without InfluxDB sink")
    parser.add_argument(
        "--broker", choices=BROKERS, default="kafka", help="broker to run on (default: kafka)"
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="run the worker from a copy of the package whose core is compiled (fraudstream "
        "native build), as the container image ships; needs a C compiler and mypy",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-latency-"))
    package_root = None
    if args.native:
        built = compiled_copy(workdir / "compiled")
        if isinstance(built, str):
            raise SystemExit(built)
        package_root = built
    results = []
    with (
        optional_influxdb(workdir, not args.no_influx) as influx,
        new_broker(args.broker, workdir) as broker,
    ):
        deployment = Deployment(broker, workdir, influx=influx, package_root=package_root)
        deployment.start_workers(1)
        try:
            if args.warmup_seconds > 0:
                say(f"warm-up: {rates[0]:,.0f} tx/s for {args.warmup_seconds:.0f} s, not measured")
                asyncio.run(run_rate(deployment, rates[0], args.warmup_seconds, tag="warmup"))
            for rate in rates:
                say(f"{rate:,.0f} tx/s for {args.seconds:.0f} s ...")
                results.append(asyncio.run(run_rate(deployment, rate, args.seconds)))
        finally:
            deployment.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    columns = [
        ("offeredRate", ",.0f", 10),
        ("achievedSendRate", ",.0f", 10),
        ("readDuringSending", ".2f", 8),
        ("alerts", "d", 8),
        ("p50", ".0f", 8),
        ("p95", ".0f", 8),
        ("p99", ".0f", 8),
        ("max", ".0f", 8),
    ]
    core = "core compiled" if args.native else "pure Python"
    sink = "InfluxDB sink off" if args.no_influx else "InfluxDB sink on"
    print(f"produce-to-alert latency, ms (one worker, {sink}, {core})\n")
    print(f"{'offered':>10}{'sent/s':>10}{'kept up':>8}{'alerts':>8}", end="")
    print(f"{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  sustained")
    for row in results:
        print(as_row(row, columns) + ("  yes" if row["sustained"] else "  no"))
    sustained = [r["offeredRate"] for r in results if r["sustained"]]
    print(f"\nhighest sustained rate tried: {max(sustained):,.0f} tx/s" if sustained else "")


if __name__ == "__main__":
    main()
