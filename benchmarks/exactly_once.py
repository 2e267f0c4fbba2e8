"""What exactly-once costs: the same backlog drained under each processing guarantee.

    python benchmarks/exactly_once.py                         # 40,000 messages, 2 rounds
    python benchmarks/exactly_once.py --messages 20000 --rounds 1 --batch 100

For each round and each guarantee: a fresh app (own topics and consumer group) with one
worker on 4 partitions, started before the messages are produced, then the rate from the first
to the last message processed, and the events per second of the worker's CPU time (which
does not depend on what else the shared cores ran). The guarantees alternate within a round
so a busy neighbour slows both. The InfluxDB sink is off: it is the same under both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script

from benchmarks.harness import BROKERS, Deployment, drain, new_broker, produce_sync, say
from benchmarks.harness import transactions as generated_transactions

GUARANTEES = ("at_least_once", "exactly_once")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=40_000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per guarantee")
    parser.add_argument("--partitions", type=int, default=4, help="input topic partitions")
    parser.add_argument("--batch", type=int, default=500, help="FRAUDSTREAM_BATCH_MAX_EVENTS")
    parser.add_argument(
        "--broker", choices=BROKERS, default="kafka", help="broker to run on (default: kafka)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-eos-"))
    messages = generated_transactions(args.messages)
    runs: list[dict[str, Any]] = []
    with new_broker(args.broker, workdir) as broker:
        for round_ in range(args.rounds):
            for guarantee in GUARANTEES:
                say(f"round {round_ + 1}: {guarantee} ...")
                env = {
                    "FRAUDSTREAM_PROCESSING_GUARANTEE": guarantee,
                    "FRAUDSTREAM_BATCH_MAX_EVENTS": str(args.batch),
                }
                deployment = Deployment(
                    broker,
                    workdir / f"{guarantee}-{round_}",
                    partitions=args.partitions,
                    extra_env=env,
                )
                try:
                    deployment.start_workers(1)
                    produce_sync(broker.bootstrap, deployment.input_topic, messages)
                    result = drain(deployment, len(messages))
                    batches = deployment.workers[0].stats()["batches"]
                finally:
                    deployment.stop()
                runs.append(
                    {
                        "guarantee": guarantee,
                        "round": round_ + 1,
                        "rate": result.rate,
                        "perCpuSecond": result.per_cpu_second,
                        "batches": batches,
                    }
                )
    summary = {
        guarantee: {
            "rate": statistics.median(r["rate"] for r in runs if r["guarantee"] == guarantee),
            "perCpuSecond": statistics.median(
                r["perCpuSecond"] for r in runs if r["guarantee"] == guarantee
            ),
        }
        for guarantee in GUARANTEES
    }
    ratio = summary["exactly_once"]["rate"] / summary["at_least_once"]["rate"]
    cpu_ratio = summary["exactly_once"]["perCpuSecond"] / summary["at_least_once"]["perCpuSecond"]
    if args.json:
        print(json.dumps({"runs": runs, "summary": summary, "ratio": ratio}, indent=2))
        return
    print(
        f"{os.cpu_count()} cores, {args.partitions} partitions, {args.messages:,} messages, "
        f"batches of up to {args.batch}, one worker\n"
    )
    print(f"{'guarantee':<15}{'round':>6}{'events/s':>10}{'per CPU s':>11}{'batches':>9}")
    for r in runs:
        print(
            f"{r['guarantee']:<15}{r['round']:>6}{r['rate']:>10.0f}{r['perCpuSecond']:>11.0f}"
            f"{r['batches']:>9}"
        )
    print(
        f"\nexactly_once / at_least_once: {ratio:.2f} of the events/s (medians), "
        f"{cpu_ratio:.2f} of the events per CPU second"
    )


if __name__ == "__main__":
    main()
