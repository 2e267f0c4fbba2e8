"""Worker memory against the number of distinct users: RSS after 100,000 and 1,000,000 users.

    python benchmarks/memory.py                  # 100,000 then 1,000,000 users (~10 min here)
    python benchmarks/memory.py --users 10000,100000

One worker with the default in-memory table store (no InfluxDB sink, so only state grows) reads
one transaction per new user; after each step it reports the worker's resident memory, the
growth per user, and the size of the profiles as stored in the changelog (what a RocksDB store
or a restore would hold). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script

from benchmarks.harness import (
    BROKERS,
    Deployment,
    drain_rate,
    new_broker,
    produce_sync,
    rss_mib,
    say,
    transactions,
)

#: Transactions before the baseline, so the model's fixed memory is part of it.
WARMUP_TRANSACTIONS = 3000
#: Changelog records sampled for the stored size of a profile.
SAMPLE_RECORDS = 20_000
CHUNK = 50_000


def new_users(first: int, last: int, seed: int) -> list[tuple[bytes, bytes]]:
    """One transaction for each user id in [first, last), at varied merchants and countries."""
    rng = random.Random(seed)
    out = []
    for n in range(first, last):
        user = f"user-{n}"
        record = {
            "transactionId": f"m{n}",
            "userId": user,
            "amount": round(rng.lognormvariate(3, 1), 2),
            "timestamp": 1_733_320_000 + n * 0.001,
            "merchantId": f"merchant-{rng.randrange(5000)}",
            "country": rng.choice(["DE", "FR", "US", "GB", "NL"]),
        }
        out.append((user.encode(), orjson.dumps(record)))
    return out


async def stored_profile_sizes(bootstrap: str, topic: str) -> dict[str, float]:
    """Mean and max bytes of profile values in the changelog (a sample of it)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    sizes: list[int] = []
    try:
        while len(sizes) < SAMPLE_RECORDS:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batches:
                break
            sizes.extend(len(m.value or b"") for ms in batches.values() for m in ms)
    finally:
        await consumer.stop()
    return {"mean": sum(sizes) / max(1, len(sizes)), "max": float(max(sizes, default=0))}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", default="100000,1000000", help="distinct users, ascending")
    parser.add_argument(
        "--broker", choices=BROKERS, default="kafka", help="broker to run on (default: kafka)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    steps = [int(u) for u in args.users.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-memory-"))
    results: dict[str, Any] = {"steps": []}
    with new_broker(args.broker, workdir) as broker:
        deployment = Deployment(broker, workdir)
        (worker,) = deployment.start_workers(1)
        assert worker.process is not None
        pid = worker.process.pid
        try:
            warm = transactions(WARMUP_TRANSACTIONS, prefix="warm-")
            produce_sync(broker.bootstrap, deployment.input_topic, warm)
            drain_rate(deployment, len(warm))
            sent = len(warm)
            results["baselineRssMiB"] = baseline = rss_mib(pid)
            say(f"baseline after {sent} warm-up transactions: {baseline:.0f} MiB")
            users_before, rss_before = 0, baseline
            for target in steps:
                for first in range(users_before, target, CHUNK):
                    last = min(target, first + CHUNK)
                    produce_sync(
                        broker.bootstrap, deployment.input_topic, new_users(first, last, first)
                    )
                    sent += last - first
                    drain_rate(deployment, sent)
                    say(f"  {last:,} users, RSS {rss_mib(pid):.0f} MiB")
                rss = rss_mib(pid)
                step = {
                    "users": target,
                    "rssMiB": rss,
                    "profilesHeld": worker.stats()["profiles"]["users"],
                    "bytesPerUserSinceBaseline": (rss - baseline) * 2**20 / target,
                    "bytesPerUserThisStep": (rss - rss_before) * 2**20 / (target - users_before),
                }
                results["steps"].append(step)
                users_before, rss_before = target, rss
            changelog = f"{deployment.env['FRAUDSTREAM_APP_ID']}-user-profiles-changelog"
            results["storedProfileBytes"] = asyncio.run(
                stored_profile_sizes(broker.bootstrap, changelog)
            )
        finally:
            deployment.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"worker RSS after warm-up: {results['baselineRssMiB']:.0f} MiB (memory table store)\n")
    print(f"{'users':>12}{'RSS MiB':>10}{'B/user (all)':>14}{'B/user (step)':>15}")
    for step in results["steps"]:
        print(
            f"{step['users']:>12,}{step['rssMiB']:>10.0f}"
            f"{step['bytesPerUserSinceBaseline']:>14.0f}{step['bytesPerUserThisStep']:>15.0f}"
        )
    mean, biggest = results["storedProfileBytes"]["mean"], results["storedProfileBytes"]["max"]
    print(f"\nprofile as stored (changelog value): mean {mean:.0f} B, max {biggest:.0f} B")


if __name__ == "__main__":
    main()
