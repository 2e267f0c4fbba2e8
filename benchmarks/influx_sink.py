"""Measure the points per second InfluxSink sustains into a real InfluxDB (1.x behind the v2 proxy).

Starts its own ``influxd`` (Debian's 1.6 here) and :class:`InfluxV2Proxy`, writes ``--records``
processed transactions (``--alert-ratio`` of them with an alert) through the sink as fast as the
stream side can call ``write()``, pausing only when the buffer is 80 % full (so nothing is dropped
and the rate measured is what the writer thread sustains), then ``close()``s the sink and checks
the count in InfluxDB. Prints the settings used, the hot-path cost per ``write()`` and points/s.

    .venv/bin/python benchmarks/influx_sink.py --records 200000
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script

from fraudstream.core.records import Alert, Reason, ReasonKind, Transaction, alert_id_for
from fraudstream.sinks.base import ProcessedRecord
from fraudstream.sinks.influx import InfluxSink
from tests.support.influxdb_server import InfluxServer, InfluxV2Proxy

TOKEN = "benchmark-token"
ORG = "fraud-detection-org"
BUCKET = "fraud-detection-bucket"


def build_records(n: int, users: int, alert_ratio: float, seed: int) -> list[ProcessedRecord]:
    """``n`` processed transactions, 1 ms apart, ending now, over ``users`` users."""
    rng = random.Random(seed)
    start_ms = int(time.time() * 1000) - n
    records = []
    for i in range(n):
        tx = Transaction(
            transaction_id=f"bench-{i}",
            user_id=f"user-{rng.randrange(users)}",
            amount=round(rng.lognormvariate(4, 1.2), 2),
            timestamp=datetime.fromtimestamp((start_ms + i) / 1000, tz=timezone.utc),
        )
        score = rng.random()
        alert = None
        if rng.random() < alert_ratio:
            reasons = rng.choice(
                [
                    ["amount_threshold"],
                    ["half_space_trees"],
                    ["amount_threshold", "half_space_trees"],
                ]
            )
            alert = Alert(
                alert_id=alert_id_for(tx),
                transaction=tx,
                detected_at=datetime.now(timezone.utc),
                score=score,
                reasons=[Reason(ReasonKind.RULE, r) for r in reasons],
                features={},
                risk=score,
            )
        records.append(ProcessedRecord(tx, score, alert))
    return records


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures; exit 1 if a point went missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--alert-ratio", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--flush-interval", type=float, default=1.0)
    parser.add_argument("--max-buffered-points", type=int, default=100_000)
    parser.add_argument("--no-transactions", action="store_true", help="alerts only")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    records = build_records(args.records, args.users, args.alert_ratio, args.seed)
    version = subprocess.run(
        ["influxd", "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with InfluxServer() as server, InfluxV2Proxy(server.url, token=TOKEN) as proxy:
        server.create_database(BUCKET)
        sink = InfluxSink(
            proxy.url,
            TOKEN,
            ORG,
            BUCKET,
            write_transactions=not args.no_transactions,
            batch_size=args.batch_size,
            flush_interval=args.flush_interval,
            max_buffered_points=args.max_buffered_points,
        )
        sink.start()
        high_water = int(args.max_buffered_points * 0.8)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        in_write = 0.0
        paused = 0
        for lo in range(0, len(records), 1000):
            chunk = records[lo : lo + 1000]
            t0 = time.perf_counter()
            for record in chunk:
                sink.write(record)
            in_write += time.perf_counter() - t0
            while sink.stats()["buffered"] > high_water:
                paused += 1
                time.sleep(0.002)
        queued_at = time.perf_counter()
        sink.close(timeout=120)
        finished = time.perf_counter()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        stats = sink.stats()
        stored = server.query('SELECT count("amount") FROM "transactions"', BUCKET) + server.query(
            'SELECT count("amount") FROM "fraud_alerts"', BUCKET
        )
        in_db = sum(int(row["count"]) for row in stored)

    elapsed = finished - started
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(f"influxd: {version}; proxy: InfluxV2Proxy (v2 /api/v2/write -> v1 /write, gzip kept)")
    print(
        f"settings: records={args.records} users={args.users} alert_ratio={args.alert_ratio} "
        f"write_transactions={not args.no_transactions} batch_size={args.batch_size} "
        f"flush_interval={args.flush_interval}s max_buffered_points={args.max_buffered_points} "
        "gzip=on precision=ns"
    )
    print(f"stats: {stats}")
    print(f"points in InfluxDB: {in_db}")
    print(
        f"hot path: {in_write / len(records) * 1e6:.2f} us per write() "
        f"({len(records) / in_write:,.0f} records/s on the caller's thread); "
        f"waited for the buffer {paused} times"
    )
    print(
        f"throughput: {stats['written']:,} points in {elapsed:.2f} s = "
        f"{stats['written'] / elapsed:,.0f} points/s end to end "
        f"(last write() at {queued_at - started:.2f} s; CPU of this process {cpu:.1f} s)"
    )
    lost = stats["queued"] - stats["written"]
    if lost or in_db != stats["written"]:
        print(f"LOST {lost} points (InfluxDB holds {in_db})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
