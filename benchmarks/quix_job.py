"""fraudstream's job written with Quix Streams: what a Python user would pick instead.

    python benchmarks/quix_job.py --bootstrap 127.0.0.1:9092 --topic IN --alerts-topic OUT \\
        --count 60000 --state-dir DIR --result result.json

JSON parse (Quix's orjson deserializer), per-user running amount statistics (count, mean,
variance by Welford's recursion, and the last transaction's time) in Quix's RocksDB state, the
amount rule, River's HalfSpaceTrees with fraudstream's defaults (25 trees of height 5, window
1000) on four [0, 1] features (all 0 for ordinary traffic: a large amount, an amount far above
the user's running mean or many times it, a burst), scored before learning, alerted events not
learned, model alerts only after the worker's warm-up and at its threshold, and alerts produced
to ``--alerts-topic``; Quix's defaults otherwise. On the benchmark stream about 3% of events
alert (2% are fraud). ``benchmarks/run.py`` starts it as a contender; it counts processed
messages with Quix's ``on_message_processed`` hook, stops after ``--count`` and writes the rate
from the first to the last processed message, messages per CPU-second over the same span, its
peak RSS and its alert count as JSON to ``--result``.

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
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fraudstream.settings import Settings

#: Amounts above ORDINARY_AMOUNT count, on a log scale: log1p(amount / ORDINARY_AMOUNT - 1) / 5.
ORDINARY_AMOUNT = 1_000.0
#: Amount z-scores against the user's running mean count above HABIT_Z, as tanh((z - 2) / 2).
HABIT_Z = 2.0
#: Amounts above HABIT_TIMES the user's running mean count, as tanh((ratio - 3) / 10).
HABIT_TIMES = 3.0
#: Transactions a user needs before amounts are judged against their own mean (as the worker).
MIN_HISTORY = 5
#: A user's transactions this many seconds apart count as a burst: exp(-gap / BURST_TAU).
BURST_TAU_SECONDS = 30.0
STATS_KEY = "amount-stats"


def features(
    amount: float, seconds: float, count: int, mean: float, m2: float, previous: float
) -> dict[str, float]:
    """Four inputs in [0, 1], all 0 for a user's ordinary transaction (as fraudstream's are):
    a large amount, an amount far above the user's running mean, or many times it, a burst."""
    known = count >= MIN_HISTORY and mean > 0
    sd = math.sqrt(m2 / count) if known else 0.0
    z = (amount - mean) / sd if sd > 0 else 0.0
    return {
        "large": min(1.0, math.log1p(max(0.0, amount / ORDINARY_AMOUNT - 1.0)) / 5.0),
        "above_habit": math.tanh(max(0.0, z - HABIT_Z) / 2.0),
        "times_habit": math.tanh(max(0.0, amount / mean - HABIT_TIMES) / 10.0) if known else 0.0,
        "burst": math.exp(-max(0.0, seconds - previous) / BURST_TAU_SECONDS) if count else 0.0,
    }


class Detection:
    """The per-message step: state in, alert (or None) out; the model lives in the process."""

    def __init__(self, settings: Settings) -> None:
        from river import anomaly

        detection = settings.detection
        self.amount_threshold = detection.amount_line
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
        count, mean, m2, previous = state.get(STATS_KEY, (0, 0.0, 0.0, 0.0))
        amount = float(tx["amount"])
        # Python 3.10's fromisoformat does not take the "Z" suffix.
        seconds = datetime.fromisoformat(tx["timestamp"].replace("Z", "+00:00")).timestamp()
        x = features(amount, seconds, count, mean, m2, previous)
        score = self.model.score_one(x)
        reasons = []
        if amount > self.amount_threshold:
            reasons.append("amount")
        if self.learned >= self.warmup and score >= self.score_threshold:
            reasons.append("model")
        if not reasons:  # alerted events stay out of the model's picture of normal
            self.model.learn_one(x)
            self.learned += 1
        count += 1  # Welford's running mean and sum of squared deviations
        delta = amount - mean
        mean += delta / count
        m2 += delta * (amount - mean)
        state.set(STATS_KEY, (count, mean, m2, seconds))
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
