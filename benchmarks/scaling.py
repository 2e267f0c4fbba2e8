"""Throughput against the number of worker processes sharing one input topic.

    python benchmarks/scaling.py                      # 1, 2 and 4 workers on 8 partitions
    python benchmarks/scaling.py --workers 1,2 --partitions 4 --messages 40000

For each worker count: a fresh app (own topics and consumer group) whose workers are started
and have settled their partition assignment *before* the messages are produced, then the
aggregate rate from the first to the last message processed. The InfluxDB sink is on, as in
production. On this 2-core machine anything beyond two processes competes for the same cores;
the figures show that rather than hide it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script

from benchmarks.harness import (
    BROKERS,
    Deployment,
    drain_rate,
    new_broker,
    optional_influxdb,
    produce_sync,
    say,
    transactions,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts to try")
    parser.add_argument("--partitions", type=int, default=8, help="input topic partitions")
    parser.add_argument("--messages", type=int, default=60_000, help="messages per run")
    parser.add_argument("--no-influx", action="store_true", help="workers without InfluxDB sink")
    parser.add_argument(
        "--broker", choices=BROKERS, default="kafka", help="broker to run on (default: kafka)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-scaling-"))
    messages = transactions(args.messages)
    results: list[dict[str, Any]] = []
    with (
        optional_influxdb(workdir, not args.no_influx) as influx,
        new_broker(args.broker, workdir) as broker,
    ):
        for count in counts:
            say(f"{count} worker(s) on {args.partitions} partitions ...")
            run_dir = workdir / f"workers-{count}"
            run_dir.mkdir()
            deployment = Deployment(broker, run_dir, partitions=args.partitions, influx=influx)
            try:
                deployment.start_workers(count)
                produce_sync(broker.bootstrap, deployment.input_topic, messages)
                rate = drain_rate(deployment, len(messages))
                shares = [w.stats()["messagesIn"] for w in deployment.workers]
            finally:
                deployment.stop()
            results.append({"workers": count, "rate": rate, "messagesPerWorker": shares})
    base = results[0]["rate"]
    for row in results:
        row["speedup"] = row["rate"] / base
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{os.cpu_count()} cores, {args.partitions} partitions, {args.messages:,} messages\n")
    print(f"{'workers':>8}{'events/s':>12}{'speed-up':>10}  messages per worker")
    for row in results:
        print(
            f"{row['workers']:>8}{row['rate']:>12,.0f}{row['speedup']:>10.2f}  "
            f"{row['messagesPerWorker']}"
        )


if __name__ == "__main__":
    main()
