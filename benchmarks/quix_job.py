"""fraudstream's job written with Quix Streams: what a Python user would pick instead.

    python benchmarks/quix_job.py --bootstrap 127.0.0.1:9092 --topic IN --alerts-topic OUT \\
        --count 60000 --state-dir DIR --result result.json

JSON parse (Quix's orjson deserializer), per-user running amount statistics (count, mean,
variance by Welford's recursion) in Quix's RocksDB state, the amount rule, River's
HalfSpaceTrees with fraudstream's defaults (25 trees of height 5, window 1000) on four [0, 1]
features, scored before learning, alerted events not learned, model alerts only after the
same warm-up as the worker, and alerts produced to ``--alerts-topic``. Everything else is
Quix's defaults. ``benchmarks/run.py`` starts it as a contender; it counts processed messages
with Quix's ``on_message_processed`` hook, stops after ``--count`` and writes the rate from
the first to the last processed message, messages per CPU-second over the same span and its peak
RSS as JSON to ``--result``.

Needs the ``bench`` extra (``pip install -e '.[bench]'``); quixstreams is imported only when
the job runs, so ``--help`` works without it.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fraudstream.settings import Settings

#: log1p(amount) / log1p(AMOUNT_CAP) puts amounts up to AMOUNT_CAP in [0, 1].
AMOUNT_CAP = 100_000.0
#: z-scores of the amount against the user's running mean squash into [0, 1] by tanh(z / 3).
Z_SCALE = 3.0
STATS_KEY = "amount-stats"


def features(tx: dict[str, Any], count: int, mean: float, m2: float) -> dict[str, float]:
    """Four inputs in [0, 1]: amount, amount above the user's habit, newness, hour of day."""
    amount = float(tx["amount"])
    sd = math.sqrt(m2 / count) if count > 1 else 0.0
    z = (amount - mean) / sd if sd > 0 else 0.0
    return {
        "amount": min(1.0, math.log1p(max(0.0, amount)) / math.log1p(AMOUNT_CAP)),
        "above_habit": math.tanh(max(0.0, z) / Z_SCALE),
        "newness": 1.0 / (1.0 + count),
        "hour": int(tx["timestamp"][11:13]) / 24.0,
    }


class Detection:
    """The per-message step: state in, alert (or None) out; the model lives in the process."""

    def __init__(self, settings: Settings) -> None:
        from river import anomaly

        detection = settings.detection
        self.amount_threshold = detection.amount_threshold
        self.score_threshold = detection.score_threshold
        self.warmup = detection.effective_warmup
        self.learned = 0
        self.alerts = 0
        self.model = anomaly.HalfSpaceTrees(
            n_trees=detection.hst_n_trees,
            height=detection.hst_height,
            window_size=detection.hst_window_size,
            seed=detection.hst_seed,
        )

    def __call__(self, tx: dict[str, Any], state: Any) -> dict[str, Any] | None:
        count, mean, m2 = state.get(STATS_KEY, (0, 0.0, 0.0))
        x = features(tx, count, mean, m2)
        score = self.model.score_one(x)
        amount = float(tx["amount"])
        reasons = []
        if amount > self.amount_threshold:
            reasons.append("amount")
        if self.learned >= self.warmup and score >= self.score_threshold:
            reasons.append("model")
        if not reasons:  # alerted events stay out of the model's picture of normal
            self.model.learn_one(x)
            self.learned += 1
        count += 1
        delta = amount - mean
        mean += delta / count
        m2 += delta * (amount - mean)
        state.set(STATS_KEY, (count, mean, m2))
        if not reasons:
            return None
        self.alerts += 1
        return {
            "transactionId": tx["transactionId"],
            "userId": tx["userId"],
            "amount": amount,
            "score": score,
            "reasons": reasons,
        }


class Progress:
    """Counts processed messages (Quix's ``on_message_processed``); stops the app at ``target``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.first = self.last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.stop: Any = None

    def __call__(self, topic: str, partition: int, offset: int) -> None:
        now, cpu = time.monotonic(), time.process_time()
        if not self.count:
            self.first, self.cpu_first = now, cpu
        self.count += 1
        self.last, self.cpu_last = now, cpu
        if self.count == self.target and self.stop is not None:
            self.stop()

    def rate(self) -> float:
        """Messages per second from the first to the last processed message."""
        return (self.count - 1) / (self.last - self.first) if self.count > 1 else 0.0

    def per_cpu_second(self) -> float:
        """Messages per second of the process's CPU time (all threads) over the same span."""
        cpu = self.cpu_last - self.cpu_first
        return (self.count - 1) / cpu if self.count > 1 and cpu > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--bootstrap", required=True, help="broker host:port")
    parser.add_argument("--topic", required=True, help="input topic (pre-produced)")
    parser.add_argument("--alerts-topic", required=True)
    parser.add_argument("--count", type=int, required=True, help="stop after this many")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--group", default=f"bench-quix-{time.time_ns()}")
    parser.add_argument("--result", type=Path, required=True, help="JSON figures go here")
    args = parser.parse_args()

    from quixstreams import Application

    progress = Progress(args.count)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
        on_message_processed=progress,
    )
    progress.stop = app.stop
    transactions = app.topic(args.topic, value_deserializer="json")
    # Tansu 0.6 describes topics without retention.ms, which Quix needs to derive the changelog
    # topic's config (KeyError otherwise); Kafka always describes it, so this changes nothing there.
    transactions.broker_config.extra_config.setdefault("retention.ms", "-1")
    alerts = app.topic(args.alerts_topic, value_serializer="json")
    sdf = app.dataframe(transactions)
    detection = Detection(Settings())
    sdf = sdf.apply(detection, stateful=True)
    sdf = sdf.filter(lambda alert: alert is not None)
    sdf.to_topic(alerts)
    app.run()

    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    figures = {
        "count": progress.count,
        "rate": progress.rate(),
        "perCpuSecond": progress.per_cpu_second(),
        "peakRssMiB": peak_rss_mib,
        "alerts": detection.alerts,
    }
    args.result.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
