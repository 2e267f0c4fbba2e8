"""The ``fraudstream`` command: worker, demo, tail, evaluate, replay-dlq, label, rules, backtest,
native."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from fraudstream.arguments import (
    broker_url,
    closed_share,
    duration_ms,
    iso_time_ms,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    share,
)

#: CLI flag -> settings field; a flag given on the command line wins over the environment.
SETTING_FLAGS = {
    "broker": "broker_url",
    "input_topic": "input_topic",
    "alerts_topic": "alerts_topic",
    "dlq_topic": "dlq_topic",
    "amount_threshold": "amount_threshold",
    "score_threshold": "score_threshold",
    "partitions": "partitions",
    "web_port": "web_port",
    "rules_topic": "rules_topic",
}
#: Sub-commands that take the setting flags and run on the settings as the environment has them.
SETTINGS_COMMANDS = frozenset({"worker", "tail", "replay-dlq", "label", "rules", "backtest"})
#: Exit status of a command refused for a bad setting (as argparse's for a bad flag).
EXIT_BAD_SETTINGS = 2


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", type=broker_url, help="Kafka URL, e.g. kafka://localhost:9092")
    parser.add_argument("--input-topic", help="transactions topic")
    parser.add_argument("--alerts-topic", help="alerts topic")
    parser.add_argument("--dlq-topic", help="dead-letter topic")
    parser.add_argument("--amount-threshold", type=float, help="rule fires above this amount")
    parser.add_argument("--score-threshold", type=float, help="model alert threshold")
    parser.add_argument("--partitions", type=int, help="partitions of the input topic")
    parser.add_argument("--web-port", type=int, help="worker web server port")


def _apply_setting_flags(args: argparse.Namespace) -> None:
    """Export given flags as FRAUDSTREAM_* variables so the settings class sees them."""
    for flag, field in SETTING_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[f"FRAUDSTREAM_{field.upper()}"] = str(value)


def _exit_on_bad_settings() -> None:
    """Read the settings now, and exit 2 with one line per bad ``FRAUDSTREAM_*`` variable.

    Read later, deep in a command or in Faust's worker, a bad value is a pydantic traceback.
    """
    from pydantic import ValidationError

    from fraudstream.settings import ENV_PREFIX, get_settings

    try:
        get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            loc = "_".join(str(part) for part in error["loc"])
            name = f"{ENV_PREFIX}{loc.upper()}" if loc else ""
            message = error["msg"].removeprefix("Value error, ")
            line = message if message.startswith(name) else f"{name}: {message}"
            print(f"error: {line}", file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    from fraudstream.core.fields import OPTIONAL_ROLES  # light: no River, no Faust

    parser = argparse.ArgumentParser(prog="fraudstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run the detection worker (Faust)")
    _add_setting_flags(worker)
    worker.add_argument("-l", "--loglevel", default=None, help="debug, info, warn, error, crit")

    tail = sub.add_parser("tail", help="print alerts (and dead letters) as they arrive")
    _add_setting_flags(tail)
    tail.add_argument("--dlq", action="store_true", help="also follow the dead-letter topic")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    tail.add_argument("--json", action="store_true", help="print raw JSON instead of a summary")
    tail.add_argument("--max", type=int, default=0, help="stop after this many records")
    tail.add_argument("--idle-timeout", type=float, default=0, help="stop after N idle seconds")

    replay = sub.add_parser(
        "replay-dlq", help="re-send dead-lettered payloads to the topic they came from"
    )
    _add_setting_flags(replay)
    replay.add_argument("--reason", action="append", default=[], help="only this reason")
    replay.add_argument("--idle-timeout", type=float, default=3.0, help="stop after N idle s")
    replay.add_argument("--dry-run", action="store_true", help="count, send nothing")

    evaluate = sub.add_parser(
        "evaluate",
        help="labeled stream through the real worker: precision, recall, AUC, AP, CP@100",
        description="Runs a labeled stream (and, with --label-delay, its delayed fraud labels) "
        "through a real worker on the embedded broker (or FRAUDSTREAM_BROKER_URL, with topics "
        "and a group of its own) and joins every decision to the ground truth. --offline feeds "
        "the same messages to the worker's batch handler in this process, without Kafka.",
    )
    evaluate.add_argument(
        "--generator",
        choices=("scenarios", "handbook", "personas", "sparkov", "banksim", "tabformer", "paysim"),
        default="scenarios",
        help="the producer's scenarios (default), the fraud-detection handbook's simulator, the "
        "third stream (personas), the Sparkov-like stream (sparkov: after the simulator "
        "behind Kaggle's fraudTrain.csv), the BankSim-like stream (banksim: after the "
        "simulator behind Kaggle's bs140513_032310.csv), or a stream shaped like IBM's "
        "synthetic card transactions with ~0.2%% fraud (tabformer), or the PaySim-like "
        "mobile-money stream (paysim: after the simulator behind Kaggle's PS_..._log.csv)",
    )
    evaluate.add_argument(
        "--count", type=positive_int, default=20_000, help="scenarios: transactions"
    )
    evaluate.add_argument(
        "--users",
        type=positive_int,
        default=1_000,
        help="scenarios, personas, sparkov, banksim, tabformer, paysim: users",
    )
    evaluate.add_argument("--fraud-share", type=share, default=0.02, help="scenarios: fraud share")
    evaluate.add_argument(
        "--customers", type=positive_int, default=5_000, help="handbook: customers"
    )
    evaluate.add_argument(
        "--terminals", type=positive_int, default=10_000, help="handbook: terminals"
    )
    evaluate.add_argument(
        "--days",
        type=positive_int,
        default=70,
        help="handbook, personas, sparkov, banksim, tabformer, paysim: days (70)",
    )
    evaluate.add_argument(
        "--skip-days",
        type=int,
        default=None,
        help="days before figures count (handbook: 35, personas: 21, sparkov: 20, banksim: 30, "
        "tabformer: 21, paysim: 5; "
        "scenarios: the detector's calibration)",
    )
    evaluate.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="FILE",
        help="evaluate this labeled CSV instead of a generator (columns as FRAUDSTREAM_FIELD_* "
        "name them, plus label and optional scenario)",
    )
    evaluate.add_argument(
        "--csv-format", choices=("generic", "paysim"), default="generic", help="(generic)"
    )
    evaluate.add_argument(
        "--label-column",
        default="label",
        metavar="NAME",
        help=(
            "the generic CSV's ground-truth column: 0/1, true/false, yes/no or fraud/legit"
            " (default: %(default)s)"
        ),
    )
    evaluate.add_argument(
        "--label-delay",
        type=duration_ms,
        default=None,
        metavar="DURATION",
        help="send the frauds' labels this much event time later, e.g. 7d (default: no labels)",
    )
    evaluate.add_argument(
        "--label-delay-max",
        type=duration_ms,
        default=None,
        metavar="DURATION",
        help="each fraud's label between --label-delay and this late (uniform, seeded), as "
        "chargebacks come, e.g. 30d (default: exactly --label-delay)",
    )
    evaluate.add_argument(
        "--label-share", type=closed_share, default=1.0, help="share of frauds ever reported (1.0)"
    )
    evaluate.add_argument(
        "--without-labels",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the stream without labels (default: yes with labels, but for --generator "
        "scenarios)",
    )
    evaluate.add_argument(
        "--drop-field",
        action="append",
        default=[],
        choices=OPTIONAL_ROLES,
        metavar="ROLE",
        help="leave this optional field out of every message, to see what a stream without it "
        f"loses (repeatable; one of {', '.join(OPTIONAL_ROLES)})",
    )
    evaluate.add_argument(
        "--amount-factor",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="multiply every amount (and a set amount threshold) by F, to see that a stream in "
        "another unit (cents: 100) is judged as in its own (1)",
    )
    evaluate.add_argument(
        "--disorder",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="deliver each transaction as if up to SECONDS late (uniform, seeded), to see what "
        "out-of-order arrivals cost (default: 0, in event-time order)",
    )
    evaluate.add_argument("--seed", type=int, default=42, help="stream seed (42)")
    evaluate.add_argument(
        "--rate", type=non_negative_float, default=0.0, help="tx/s; 0 = as fast as possible"
    )
    evaluate.add_argument("--offline", action="store_true", help="batch handler only, no Kafka")
    evaluate.add_argument("--json", action="store_true", help="one JSON object on stdout")

    label = sub.add_parser(
        "label",
        help="send one label (a fraud or legit verdict on an earlier transaction)",
        description="Publishes one label to the labels topic, keyed by the userId, as a "
        "chargeback system or an analyst would.",
    )
    _add_setting_flags(label)
    label.add_argument("transaction_id", help="the transaction the verdict is about")
    label.add_argument("--user", required=True, help="its userId (the message key)")
    label.add_argument("--verdict", choices=("fraud", "legit"), default="fraud")
    label.add_argument("--source", default="analyst", help="chargeback, analyst, ... (analyst)")
    label.add_argument("--labels-topic", default=None, help="default: FRAUDSTREAM_LABELS_TOPIC")

    rules = sub.add_parser(
        "rules",
        help="list, show, put, disable and the history of rules on the rules topic",
        description="Rules live on the compacted rules topic (FRAUDSTREAM_RULES_TOPIC); every "
        "running worker applies a change within a second.",
    )
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    rules_list = rules_sub.add_parser("list", help="the rules in force")
    rules_show = rules_sub.add_parser("show", help="one rule's version in force, as JSON")
    rules_show.add_argument("rule_id")
    rules_put = rules_sub.add_parser(
        "put",
        help="validate a definition file, print its change, publish it",
        description="FILE holds one rule definition (JSON). version defaults to the next one, "
        "created_at to now, author to --author or the login name, reason to --reason.",
    )
    rules_put.add_argument("file", type=Path)
    rules_put.add_argument("--author", default=None, help="who makes the change")
    rules_put.add_argument("--reason", default=None, help="why (when the file does not say)")
    rules_put.add_argument("--dry-run", action="store_true", help="validate and diff only")
    rules_disable = rules_sub.add_parser("disable", help="publish the next version, disabled")
    rules_disable.add_argument("rule_id")
    rules_disable.add_argument("--reason", required=True, help="why it is switched off")
    rules_disable.add_argument("--author", default=None, help="who (default: the login name)")
    rules_history = rules_sub.add_parser("history", help="every version of one rule on the topic")
    rules_history.add_argument("rule_id")
    for command in (rules_list, rules_show, rules_put, rules_disable, rules_history):
        _add_setting_flags(command)
        command.add_argument("--rules-topic", help="rules topic (FRAUDSTREAM_RULES_TOPIC)")

    backtest = sub.add_parser(
        "backtest",
        help="a candidate rule set over past transactions: hits, precision and recall per rule",
        description="Reads a past range of the input topic (no consumer group, nothing "
        "written), runs it through the detector with the candidate rules (the rules in force "
        "with RULES_FILE's definitions in place of same-id ones) and with the rules in force, "
        "each from empty state, and reports hits per rule; with --ground-truth or "
        "--labels-from-topic, precision and recall too.",
    )
    _add_setting_flags(backtest)
    backtest.add_argument("rules_file", type=Path, help="candidate definitions (JSON or lines)")
    backtest.add_argument("--from-offset", type=int, help="first offset, in every partition")
    backtest.add_argument("--to-offset", type=int, help="offset to stop before, every partition")
    backtest.add_argument(
        "--from-time", type=iso_time_ms, help="first broker time, ISO-8601 (e.g. 2024-12-04)"
    )
    backtest.add_argument(
        "--to-time", type=iso_time_ms, help="broker time to stop before, ISO-8601"
    )
    backtest.add_argument("--ground-truth", type=Path, help="labels: JSON lines or CSV")
    backtest.add_argument(
        "--labels-from-topic", action="store_true", help="take the labels topic as ground truth"
    )
    backtest.add_argument("--rules-topic", help="rules topic (FRAUDSTREAM_RULES_TOPIC)")
    backtest.add_argument("--json", action="store_true", help="one JSON object on stdout")

    demo = sub.add_parser("demo", help="embedded broker + worker + load, alerts on screen")
    demo.add_argument(
        "--duration", type=positive_float, default=30.0, help="seconds of load (default 30)"
    )
    demo.add_argument(
        "--rate", type=positive_float, default=300.0, help="transactions/s (default 300)"
    )
    demo.add_argument(
        "--users", type=positive_int, default=200, help="distinct users (default 200)"
    )
    demo.add_argument("--fraud-share", type=share, default=0.02, help="share of fraud")
    demo.add_argument("--show", type=non_negative_int, default=8, help="alerts to print in full")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the load")

    native = sub.add_parser(
        "native",
        help="compile the detection core's hot modules with mypyc (opt-in, ~20%% less CPU)",
    )
    native.add_argument("action", choices=("build", "clean", "status"), help="what to do")
    return parser


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so the embedded broker and worker are stopped on the way out.

    They run in their own process groups; killed without its ``finally`` blocks, the command
    would leave them running.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fraudstream`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("demo", "evaluate"):
        _interrupt_on_sigterm()
    if args.command in SETTINGS_COMMANDS:
        _apply_setting_flags(args)
        _exit_on_bad_settings()
    if args.command == "worker":
        from fraudstream.cli.worker import run_worker

        run_worker(args.loglevel)
    elif args.command == "tail":
        from fraudstream.cli.tail import tail

        try:
            code = asyncio.run(
                tail(args.dlq, args.from_beginning, args.json, args.max, args.idle_timeout)
            )
        except KeyboardInterrupt:
            code = 130
        sys.exit(code)
    elif args.command == "replay-dlq":
        from fraudstream.cli.replay_dlq import replay_dlq

        sys.exit(asyncio.run(replay_dlq(set(args.reason), args.idle_timeout, args.dry_run)))
    elif args.command == "evaluate":
        from fraudstream.cli.evaluate import EvaluateOptions
        from fraudstream.cli.evaluate import main as evaluate_main

        if args.label_delay_max is not None and args.label_delay is None:
            parser.error("--label-delay-max needs --label-delay (the shortest delay)")
        if args.label_delay_max is not None and args.label_delay_max < args.label_delay:
            parser.error("--label-delay-max must be at least --label-delay")
        sys.exit(
            evaluate_main(
                EvaluateOptions(
                    count=args.count,
                    users=args.users,
                    fraud_share=args.fraud_share,
                    seed=args.seed,
                    rate=args.rate,
                    offline=args.offline,
                    as_json=args.json,
                    generator="csv" if args.csv is not None else args.generator,
                    csv=args.csv,
                    csv_format=args.csv_format,
                    label_column=args.label_column,
                    customers=args.customers,
                    terminals=args.terminals,
                    days=args.days,
                    label_delay_ms=args.label_delay,
                    label_share=args.label_share,
                    label_delay_max_ms=args.label_delay_max,
                    skip_days=args.skip_days,
                    without_labels=args.without_labels,
                    drop_fields=tuple(dict.fromkeys(args.drop_field)),
                    amount_factor=args.amount_factor,
                    disorder_seconds=args.disorder,
                )
            )
        )
    elif args.command == "label":
        from fraudstream.cli.label import send_label

        sys.exit(
            asyncio.run(
                send_label(
                    args.transaction_id, args.user, args.verdict, args.source, args.labels_topic
                )
            )
        )
    elif args.command == "rules":
        sys.exit(asyncio.run(_rules_command(args)))
    elif args.command == "backtest":
        from fraudstream.cli.backtest import BacktestOptions, run_backtest
        from fraudstream.kafka.history import Span

        span = Span(args.from_offset, args.to_offset, args.from_time, args.to_time)
        backtest_options = BacktestOptions(
            args.rules_file, span, args.ground_truth, args.labels_from_topic, args.json
        )
        sys.exit(asyncio.run(run_backtest(backtest_options)))
    elif args.command == "demo":
        from fraudstream.cli.demo import DemoOptions, run_demo

        options = DemoOptions(
            args.duration, args.rate, args.users, args.fraud_share, args.show, args.seed
        )
        sys.exit(run_demo(options))
    elif args.command == "native":
        from fraudstream.cli.native import run_native

        sys.exit(run_native(args.action))


async def _rules_command(args: argparse.Namespace) -> int:
    from fraudstream.cli import rules

    if args.rules_command == "list":
        return await rules.list_rules()
    if args.rules_command == "show":
        return await rules.show_rule(args.rule_id)
    if args.rules_command == "put":
        return await rules.put_rule(args.file, args.author, args.reason, args.dry_run)
    if args.rules_command == "disable":
        return await rules.disable_rule(args.rule_id, args.author, args.reason)
    return await rules.rule_history(args.rule_id)
