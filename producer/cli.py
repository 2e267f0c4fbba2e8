"""``python -m producer``: realistic, labeled load on the transactions topic (or stdout)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, get_args

from aiokafka.errors import KafkaError

from fraudstream.arguments import (
    closed_share,
    non_negative_float,
    parse_duration_ms,
    positive_float,
    positive_int,
    share,
)
from fraudstream.kafka.connection import AuthFailureWatch, bootstrap_of
from fraudstream.settings import FieldSettings, KafkaSettings
from producer.banksim import BANKSIM_START_TIME
from producer.csv_replay import (
    CSV_FORMATS,
    DEFAULT_LABEL_COLUMN,
    CsvFormatError,
    CsvReplay,
    CsvScan,
)
from producer.generator import (
    DEFAULT_FRAUD_SHARE,
    DEFAULT_RULE_THRESHOLD,
    DEFAULT_SEED,
    DEFAULT_START_TIME,
    DEFAULT_USERS,
    FRAUD_SCENARIOS,
    GeneratorParameters,
    ScenarioGenerator,
)
from producer.handbook import (
    DEFAULT_CUSTOMERS,
    DEFAULT_DAYS,
    DEFAULT_RADIUS,
    DEFAULT_TERMINALS,
    HANDBOOK_START_TIME,
    HandbookParameters,
    HandbookSimulator,
)
from producer.kafka import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_TOPIC,
    LABEL_HEADER,
    SCENARIO_HEADER,
    ProduceSummary,
    produce,
    produce_to_stream,
)
from producer.labels import DEFAULT_LABELS_TOPIC, DelayedLabels
from producer.paysim import PAYSIM_START_TIME
from producer.records import LabeledTransaction, disordered, epoch_ms, format_timestamp_ms
from producer.sized import SIZED_GENERATORS, sized_simulator
from producer.sparkov import SPARKOV_START_TIME
from producer.tabformer import TABFORMER_START_TIME

DEFAULT_RATE = 1000.0
SCENARIO_GENERATOR = "scenarios"
HANDBOOK_GENERATOR = "handbook"
PERSONA_GENERATOR = "personas"
SPARKOV_GENERATOR = "sparkov"
BANKSIM_GENERATOR = "banksim"
TABFORMER_GENERATOR = "tabformer"
PAYSIM_GENERATOR = "paysim"
#: ``--generator`` choices; the first is the default.
GENERATORS = (
    SCENARIO_GENERATOR,
    HANDBOOK_GENERATOR,
    PERSONA_GENERATOR,
    SPARKOV_GENERATOR,
    BANKSIM_GENERATOR,
    TABFORMER_GENERATOR,
    PAYSIM_GENERATOR,
)
#: Flags of the scenarios generator alone, by their ``args`` attribute (``None``: not given).
SCENARIO_ONLY_FLAGS = {"fraud_share": "--fraud-share", "scenarios": "--scenarios"}
BROKER_URL_ENV = "FRAUDSTREAM_BROKER_URL"
TOPIC_ENV = "FRAUDSTREAM_INPUT_TOPIC"
LABELS_TOPIC_ENV = "FRAUDSTREAM_LABELS_TOPIC"
PASSWORD_ENV = "FRAUDSTREAM_BROKER_SASL_PASSWORD"
#: Security flag -> settings field; a flag wins over its FRAUDSTREAM_BROKER_* variable.
SECURITY_FLAGS = {
    "security_protocol": "broker_security_protocol",
    "sasl_mechanism": "broker_sasl_mechanism",
    "sasl_username": "broker_sasl_username",
    "ssl_cafile": "broker_ssl_cafile",
    "ssl_certfile": "broker_ssl_certfile",
    "ssl_keyfile": "broker_ssl_keyfile",
}
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def default_bootstrap() -> str:
    """``FRAUDSTREAM_BROKER_URL`` without ``kafka://``, else localhost:9092."""
    url = os.environ.get(BROKER_URL_ENV, "").strip()
    return bootstrap_of(url) if url else DEFAULT_BOOTSTRAP


def parse_start_time(text: str) -> datetime:
    """``now`` or an ISO-8601 moment (no zone means UTC)."""
    if text.strip().lower() == "now":
        return datetime.now(timezone.utc).replace(microsecond=0)
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not ISO-8601 or 'now': {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_scenarios(text: str) -> tuple[str, ...]:
    """Comma-separated scenario names; ``all`` or ``none`` as shortcuts."""
    value = text.strip().lower()
    if value == "all":
        return FRAUD_SCENARIOS
    if value in ("none", ""):
        return ()
    names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    unknown = [name for name in names if name not in FRAUD_SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(FRAUD_SCENARIOS)}"
        )
    return names


def _duration_ms(text: str) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m producer``."""
    parser = argparse.ArgumentParser(
        prog="python -m producer",
        description="Generate (or replay from CSV) labeled card transactions and send them "
        "to Kafka as JSON keyed by userId. Labels go to the ground-truth file and headers, "
        "never into the message.",
    )
    kafka = parser.add_argument_group("output")
    kafka.add_argument(
        "--bootstrap",
        default=default_bootstrap(),
        help=f"Kafka bootstrap servers (default: ${BROKER_URL_ENV} without kafka://, else "
        f"{DEFAULT_BOOTSTRAP}; now %(default)s)",
    )
    kafka.add_argument(
        "--topic",
        default=os.environ.get(TOPIC_ENV, DEFAULT_TOPIC),
        help=f"topic to send to (default: ${TOPIC_ENV}, else {DEFAULT_TOPIC})",
    )
    kafka.add_argument(
        "--dry-run", action="store_true", help="print JSON lines to stdout instead of sending"
    )
    kafka.add_argument(
        "--no-headers",
        dest="headers",
        action="store_false",
        help=f"omit the Kafka headers {SCENARIO_HEADER} and {LABEL_HEADER}",
    )
    kafka.add_argument(
        "--ground-truth",
        type=Path,
        metavar="FILE",
        help="write one JSON line per transaction: transactionId, userId, scenario, is_fraud",
    )
    kafka.add_argument(
        "--send-times",
        action="store_true",
        help="add sentAt (epoch seconds) to each ground-truth line",
    )
    kafka.add_argument("--quiet", action="store_true", help="no progress line on stderr")

    security = parser.add_argument_group(
        "broker security",
        "Same settings as the worker: each flag defaults to its FRAUDSTREAM_BROKER_* variable "
        f"(e.g. FRAUDSTREAM_BROKER_SECURITY_PROTOCOL). The SASL password is read only from "
        f"${PASSWORD_ENV}: a command line is visible to every user of the machine.",
    )
    fields = KafkaSettings.model_fields
    security.add_argument(
        "--security-protocol",
        choices=get_args(fields["broker_security_protocol"].annotation),
        help="PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    security.add_argument(
        "--sasl-mechanism",
        choices=get_args(fields["broker_sasl_mechanism"].annotation),
        help="with SASL_* protocols (default: PLAIN)",
    )
    security.add_argument("--sasl-username", help="SASL user name")
    security.add_argument(
        "--ssl-cafile", metavar="FILE", help="CA bundle for TLS (default: the system CAs)"
    )
    security.add_argument("--ssl-certfile", metavar="FILE", help="client certificate (mTLS)")
    security.add_argument("--ssl-keyfile", metavar="FILE", help="client key (mutual TLS)")

    pace = parser.add_argument_group("pace and length")
    pace.add_argument(
        "--rate",
        type=non_negative_float,
        help="messages per second, 0 = as fast as possible; with --speedup a cap on top of "
        f"event-time pacing (default: {DEFAULT_RATE:g}; with --speedup, 0: no cap)",
    )
    pace.add_argument("--count", type=positive_int, help="stop after this many messages")
    pace.add_argument(
        "--duration", type=non_negative_float, help="stop after this many seconds of sending"
    )
    pace.add_argument(
        "--speedup",
        type=non_negative_float,
        default=0.0,
        help="pace by event time: gaps divided by X (1 = real time; default 0 = off); "
        "uncapped unless --rate is given too",
    )
    pace.add_argument(
        "--disorder",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="send each transaction as if up to SECONDS late (uniform, seeded by --seed), out of "
        "event-time order as from several terminals; timestamps unchanged (default: 0, in order)",
    )

    synth = parser.add_argument_group("synthetic traffic (ignored with --csv)")
    synth.add_argument(
        "--generator",
        choices=GENERATORS,
        default=SCENARIO_GENERATOR,
        help="scenarios: users with habits and five fraud scenarios (default); handbook: the "
        "Fraud Detection Handbook's simulator (terminals on a grid, compromised terminals and "
        "cards); personas: a third stream (spending personas, places, categories; card testing, "
        "takeovers, skimmed merchants, slow drains), with --users and --days; sparkov: after "
        "the Sparkov simulator behind Kaggle's fraudTrain.csv (customer profiles, categories; "
        "fraud episodes of large night-time payments), --users customers over --days; "
        "banksim: after the BankSim simulator behind Kaggle's bs140513_032310.csv (daily "
        "payments in 15 categories; cloned cards: short episodes of large payments), --users "
        "customers over --days; tabformer: shaped like IBM's synthetic card transactions "
        "(MCCs, chip/swipe/online, states and countries; compromised cards, ~0.2 %% fraud), "
        "--users over --days; paysim: after the PaySim mobile-money simulator behind Kaggle's "
        "PS_20174392719_1491204439457_log.csv (hourly steps, five types; takeovers: a TRANSFER "
        "of the whole balance to a mule who CASH_OUTs it), 3 x --users a day over --days",
    )
    synth.add_argument(
        "--users",
        type=positive_int,
        default=DEFAULT_USERS,
        help="simulated card holders of --generator scenarios, personas, sparkov, banksim, "
        "tabformer or paysim "
        "(default: %(default)s)",
    )
    synth.add_argument(
        "--fraud-share",
        type=share,
        help=f"--generator {SCENARIO_GENERATOR} only: fraction of transactions that are fraud "
        f"(default: {DEFAULT_FRAUD_SHARE})",
    )
    synth.add_argument(
        "--scenarios",
        type=parse_scenarios,
        help=f"--generator {SCENARIO_GENERATOR} only: its fraud scenarios, comma-separated, "
        f"'all' (default) or 'none'; from: {', '.join(FRAUD_SCENARIOS)}",
    )
    synth.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="same seed, same stream (default: %(default)s)",
    )
    synth.add_argument(
        "--start-time",
        type=parse_start_time,
        help="event time of the stream's start and of PaySim's step 0: ISO-8601 or 'now' "
        f"(default: {format_timestamp_ms(epoch_ms(DEFAULT_START_TIME))}, with --generator "
        f"handbook {format_timestamp_ms(epoch_ms(HANDBOOK_START_TIME))}, with sparkov "
        f"{format_timestamp_ms(epoch_ms(SPARKOV_START_TIME))}, with banksim "
        f"{format_timestamp_ms(epoch_ms(BANKSIM_START_TIME))}, with tabformer "
        f"{format_timestamp_ms(epoch_ms(TABFORMER_START_TIME))}, with paysim "
        f"{format_timestamp_ms(epoch_ms(PAYSIM_START_TIME))})",
    )
    synth.add_argument(
        "--rule-threshold",
        type=float,
        default=DEFAULT_RULE_THRESHOLD,
        help="the detector's amount rule: large_amount goes above it, the other scenarios "
        "stay below (default: %(default)s)",
    )
    synth.add_argument(
        "--normal-amount-cap",
        type=float,
        help="largest amount of normal traffic (default: the rule threshold)",
    )

    handbook = parser.add_argument_group(
        "handbook simulator (--generator handbook)",
        "The defaults are the handbook's set: about 1.77 million transactions, 0.84 % fraud. "
        "Compromises per day scale with the population, so smaller sets keep its fraud rates.",
    )
    handbook.add_argument(
        "--customers",
        type=positive_int,
        default=DEFAULT_CUSTOMERS,
        help="card holders (default: %(default)s)",
    )
    handbook.add_argument(
        "--terminals",
        type=positive_int,
        default=DEFAULT_TERMINALS,
        help="payment terminals (default: %(default)s)",
    )
    handbook.add_argument(
        "--days",
        type=positive_int,
        default=DEFAULT_DAYS,
        help="days simulated, also of --generator personas, sparkov, banksim, tabformer and "
        "paysim "
        "(default: %(default)s)",
    )
    handbook.add_argument(
        "--radius",
        type=positive_float,
        default=DEFAULT_RADIUS,
        help="customers pay at terminals closer than this on the 100x100 grid "
        "(default: %(default)s)",
    )

    labels = parser.add_argument_group(
        "delayed fraud labels",
        "Chargebacks for the frauds, published as the stream's event time reaches "
        "transaction time + --label-delay (JSON: transactionId, userId, label, labeledAt, "
        "source; keyed by userId). Off unless --label-delay is given. With --dry-run the "
        "labels are printed among the transactions.",
    )
    labels.add_argument(
        "--label-delay",
        type=_duration_ms,
        metavar="DURATION",
        help="event time from a fraud to its label, e.g. 7d, 36h, 90m, 30s (bare numbers: seconds)",
    )
    labels.add_argument(
        "--label-delay-max",
        type=_duration_ms,
        metavar="DURATION",
        help="each fraud's label comes between --label-delay and this late (uniform, seeded), as "
        "chargebacks come days to weeks late (default: exactly --label-delay)",
    )
    labels.add_argument(
        "--labels-topic",
        default=os.environ.get(LABELS_TOPIC_ENV, DEFAULT_LABELS_TOPIC),
        help=f"topic the labels go to (default: ${LABELS_TOPIC_ENV}, else {DEFAULT_LABELS_TOPIC})",
    )
    labels.add_argument(
        "--label-share",
        type=closed_share,
        default=1.0,
        help="share of frauds that ever get a label (default: %(default)s)",
    )

    replay = parser.add_argument_group("CSV replay")
    replay.add_argument("--csv", type=Path, metavar="FILE", help="replay this CSV (or .csv.gz)")
    replay.add_argument(
        "--csv-format",
        choices=CSV_FORMATS,
        default="generic",
        help=(
            "paysim, or generic: header userId,amount,timestamp[,label] or the names "
            "FRAUDSTREAM_FIELD_* give (default: %(default)s)"
        ),
    )
    replay.add_argument(
        "--label-column",
        default=DEFAULT_LABEL_COLUMN,
        metavar="NAME",
        help=(
            "the generic CSV's ground-truth column: 0/1, true/false, yes/no or fraud/legit"
            " (default: %(default)s)"
        ),
    )
    return parser


def resolve_defaults(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill the defaults that depend on other flags, refusing flags the run would ignore.

    --rate defaults to no cap with --speedup (event time paces; a hidden 1,000 msg/s cap would
    silently slow a fast replay), else to DEFAULT_RATE. --fraud-share and --scenarios shape
    only the scenarios generator: given with another, they are a usage error, not ignored.
    """
    if args.rate is None:
        args.rate = 0.0 if args.speedup > 0 else DEFAULT_RATE
    if args.generator != SCENARIO_GENERATOR:
        given = [
            flag for name, flag in SCENARIO_ONLY_FLAGS.items() if getattr(args, name) is not None
        ]
        if given:
            parser.error(
                f"{given[0]} applies only to --generator {SCENARIO_GENERATOR}, not {args.generator}"
            )
    if args.fraud_share is None:
        args.fraud_share = DEFAULT_FRAUD_SHARE
    if args.scenarios is None:
        args.scenarios = FRAUD_SCENARIOS


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line parsed, with :func:`resolve_defaults` applied (usage errors exit 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_defaults(parser, args)
    return args


def start_time_of(args: argparse.Namespace) -> datetime:
    """--start-time, else the chosen source's own default (handbook 2018-04-01, sparkov 2020,
    banksim 2014, tabformer 2019, paysim 2017)."""
    if args.start_time is not None:
        start: datetime = args.start_time
        return start
    if args.csv is None and args.generator == HANDBOOK_GENERATOR:
        return HANDBOOK_START_TIME
    if args.csv is None and args.generator == SPARKOV_GENERATOR:
        return SPARKOV_START_TIME
    if args.csv is None and args.generator == BANKSIM_GENERATOR:
        return BANKSIM_START_TIME
    if args.csv is None and args.generator == TABFORMER_GENERATOR:
        return TABFORMER_START_TIME
    if args.csv is None and args.generator == PAYSIM_GENERATOR:
        return PAYSIM_START_TIME
    return DEFAULT_START_TIME


def build_records(
    args: argparse.Namespace,
) -> tuple[Iterable[LabeledTransaction], CsvScan | None]:
    """The records to send (limited by --count) and, for CSV, its validation report."""
    scan: CsvScan | None = None
    records: Iterable[LabeledTransaction]
    if args.csv is not None:
        replay = CsvReplay(
            args.csv, args.csv_format, start_time_of(args), args.fields, args.label_column
        )
        scan = replay.scan()
        records = replay
    elif args.generator in SIZED_GENERATORS:
        records = sized_simulator(
            args.generator, args.users, args.days, args.seed, start_time_of(args)
        )
    elif args.generator == HANDBOOK_GENERATOR:
        records = HandbookSimulator(
            HandbookParameters(
                customers=args.customers,
                terminals=args.terminals,
                days=args.days,
                seed=args.seed,
                start_time=start_time_of(args),
                radius=args.radius,
            )
        )
    else:
        records = ScenarioGenerator(
            GeneratorParameters(
                seed=args.seed,
                users=args.users,
                fraud_share=args.fraud_share,
                scenarios=args.scenarios,
                start_time=start_time_of(args),
                rule_threshold=args.rule_threshold,
                normal_amount_cap=args.normal_amount_cap,
            )
        )
    if args.disorder > 0.0:
        records = disordered(records, args.disorder, seed=args.seed)
    if args.count is not None:
        records = itertools.islice(records, args.count)
    return records, scan


def build_labels(args: argparse.Namespace) -> DelayedLabels | None:
    """The delayed-label queue of --label-delay/--label-share, or None when labels are off."""
    if args.label_delay is None:
        if args.label_delay_max is not None:
            raise ValueError("--label-delay-max needs --label-delay (the shortest delay)")
        return None
    if args.label_delay_max is not None and args.label_delay_max < args.label_delay:
        raise ValueError("--label-delay-max must be at least --label-delay")
    return DelayedLabels(
        args.label_delay, args.label_share, seed=args.seed, max_delay_ms=args.label_delay_max
    )


def describe_source(args: argparse.Namespace) -> str:
    """What the records come from, for the start line."""
    if args.csv is not None:
        return f"{args.csv} ({args.csv_format})"
    if args.generator == PERSONA_GENERATOR:
        return f"the persona stream, seed {args.seed} ({args.users:,} users, {args.days} days)"
    if args.generator == SPARKOV_GENERATOR:
        return (
            f"the Sparkov-like stream, seed {args.seed} ({args.users:,} customers, "
            f"{args.days} days)"
        )
    if args.generator == BANKSIM_GENERATOR:
        return (
            f"the BankSim-like stream, seed {args.seed} ({args.users:,} customers, "
            f"{args.days} days)"
        )
    if args.generator == TABFORMER_GENERATOR:
        return (
            f"the TabFormer-shaped stream, seed {args.seed} ({args.users:,} users, "
            f"{args.days} days)"
        )
    if args.generator == PAYSIM_GENERATOR:
        return f"the PaySim-like stream, seed {args.seed} ({args.users:,} users, {args.days} days)"
    if args.generator == HANDBOOK_GENERATOR:
        return (
            f"the handbook simulator, seed {args.seed} ({args.customers:,} customers, "
            f"{args.terminals:,} terminals, {args.days} days)"
        )
    return f"seed {args.seed}"


def broker_security(args: argparse.Namespace) -> Mapping[str, Any]:
    """aiokafka's SASL/TLS arguments from the worker's settings, the flags winning.

    The mapping is the worker's own (:func:`fraudstream.security.aiokafka_security`), so the
    producer connects to whatever broker the worker connects to.
    """
    from fraudstream.kafka.connection import aiokafka_security  # only when sending

    overrides = {
        field: getattr(args, flag)
        for flag, field in SECURITY_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    return aiokafka_security(KafkaSettings(**overrides))


async def _run(
    args: argparse.Namespace,
    records: Iterable[LabeledTransaction],
    security: Mapping[str, Any] | None,
    labels: DelayedLabels | None = None,
) -> ProduceSummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_signal() -> None:
        # First Ctrl-C: finish cleanly with a summary; second: give up at once.
        if stop.is_set() and main_task is not None:
            main_task.cancel()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal)
    progress = None if args.quiet else sys.stderr
    if args.dry_run:
        return await produce_to_stream(
            records,
            sys.stdout.buffer,
            rate=args.rate,
            speedup=args.speedup,
            duration=args.duration,
            progress=progress,
            ground_truth_path=args.ground_truth,
            record_send_times=args.send_times,
            stop=stop,
            labels=labels,
            fields=args.fields,
        )
    return await produce(
        records,
        bootstrap=args.bootstrap,
        topic=args.topic,
        rate=args.rate,
        headers=args.headers,
        progress=progress,
        ground_truth_path=args.ground_truth,
        record_send_times=args.send_times,
        speedup=args.speedup,
        duration=args.duration,
        stop=stop,
        security=security,
        labels=labels,
        labels_topic=args.labels_topic,
        fields=args.fields,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = parse_arguments(argv)
    try:
        # Messages (and generic CSV columns) use the worker's input mapping, FRAUDSTREAM_FIELD_*.
        args.fields = FieldSettings().mapping()
        records, scan = build_records(args)
        labels = build_labels(args)
    except (CsvFormatError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.ground_truth is not None and not args.ground_truth.resolve().parent.is_dir():
        # found before anything is sent; later it read as a failure to reach the broker
        print(
            f"error: --ground-truth {args.ground_truth}: its directory does not exist",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        security = None if args.dry_run else broker_security(args)
    except (OSError, ValueError) as exc:  # unreadable CA/cert file, SASL without a user
        print(f"error: broker security: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        target = "stdout" if args.dry_run else f"{args.bootstrap} topic {args.topic}"
        start = format_timestamp_ms(epoch_ms(start_time_of(args)))
        source = describe_source(args)
        print(f"producing to {target} from {source}, event time from {start}", file=sys.stderr)
        if labels is not None:
            where = "stdout" if args.dry_run else f"topic {args.labels_topic}"
            days = f"{args.label_delay / 86_400_000:g}"
            if labels.max_delay_ms > labels.delay_ms:
                days += f"-{labels.max_delay_ms / 86_400_000:g}"
            print(
                f"fraud labels to {where}, {days} days of event time "
                f"after each fraud, for {args.label_share:.0%} of the frauds",
                file=sys.stderr,
            )
    watch = AuthFailureWatch()
    try:
        with watch:
            summary = asyncio.run(_run(args, records, security, labels))
    except BrokenPipeError:
        # The reader of --dry-run output went away (e.g. `| head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (KafkaError, OSError) as exc:
        if watch.failed:
            print(
                f"error: the broker at {args.bootstrap} refused the SASL login: authentication "
                "failed; check the user name and password (--sasl-username, "
                "FRAUDSTREAM_BROKER_SASL_PASSWORD)",
                file=sys.stderr,
            )
        else:
            print(f"error: cannot produce to {args.bootstrap}: {exc!r}", file=sys.stderr)
        return EXIT_FAILED
    print(summary.describe(), file=sys.stderr)
    if scan is not None:
        print(scan.describe(replayed=summary.sent), file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK
