"""Specification of ``python -m producer`` (``--dry-run``: no broker needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

import producer.cli
from fraudstream.core.parsing import parse_transaction
from fraudstream.core.records import Source, Transaction
from fraudstream.kafka.connection import bootstrap_of
from fraudstream.settings import FieldSettings
from producer.banksim import BANKSIM_SCENARIOS, BanksimParameters, BanksimSimulator
from producer.cli import DEFAULT_RATE, build_parser, default_bootstrap, main
from producer.generator import FRAUD_SCENARIOS
from producer.kafka import ProduceSummary
from producer.paysim import PAYSIM_SCENARIOS, PAYSIM_TYPES, PaysimParameters, PaysimSimulator
from producer.records import LabeledTransaction
from producer.sparkov import SPARKOV_SCENARIOS, SparkovParameters, SparkovSimulator
from producer.tabformer import TABFORMER_SCENARIOS, TabformerParameters, TabformerSimulator

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_producer(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the command line as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        env={**os.environ, **(env or {})},
    )


def dry_run(*args: str) -> bytes:
    result = run_producer("--dry-run", "--rate", "0", "--quiet", *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_same_seed_prints_a_byte_identical_stream() -> None:
    options = ("--seed", "17", "--count", "2000", "--fraud-share", "0.1")
    assert dry_run(*options) == dry_run(*options)


def test_different_seed_prints_a_different_stream() -> None:
    assert dry_run("--seed", "1", "--count", "200") != dry_run("--seed", "2", "--count", "200")


def test_disorder_sends_the_same_messages_each_at_most_that_late() -> None:
    in_order = dry_run("--seed", "3", "--count", "3200").splitlines()
    late = dry_run("--seed", "3", "--count", "3000", "--disorder", "120").splitlines()
    assert len(late) == 3000 and late != in_order[:3000]
    assert set(late) <= set(in_order)  # --count counts what is sent: the first 3,000 arrivals
    newest = 0.0
    for line in late:
        moment = datetime.fromisoformat(orjson.loads(line)["timestamp"]).timestamp()
        newest = max(newest, moment)
        assert moment >= newest - 120.0  # nothing arrives behind one over 120 s newer


def test_ground_truth_has_a_line_for_every_transaction_and_stdout_no_label(
    tmp_path: Path,
) -> None:
    truth = tmp_path / "truth.jsonl"
    out = dry_run("--count", "3000", "--fraud-share", "0.1", "--ground-truth", str(truth))
    messages = [orjson.loads(line) for line in out.splitlines()]
    lines = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
    assert [m["transactionId"] for m in messages] == [t["transactionId"] for t in lines]
    assert {t["scenario"] for t in lines} == {"normal", *FRAUD_SCENARIOS}
    assert all(t["is_fraud"] == (t["scenario"] != "normal") for t in lines)
    assert all(set(t) == {"transactionId", "userId", "scenario", "is_fraud"} for t in lines)
    assert all("scenario" not in m and "is_fraud" not in m for m in messages)


def test_a_ground_truth_file_in_a_missing_directory_is_named_not_blamed_on_the_broker(
    tmp_path: Path,
) -> None:
    result = run_producer(
        "--dry-run", "--count", "5", "--ground-truth", str(tmp_path / "no/t.jsonl")
    )
    assert result.returncode == 2
    assert b"--ground-truth" in result.stderr and b"directory does not exist" in result.stderr
    assert b"cannot produce" not in result.stderr


def test_send_times_add_sent_at_to_the_ground_truth(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    dry_run("--count", "10", "--ground-truth", str(truth), "--send-times")
    assert all(
        isinstance(orjson.loads(line)["sentAt"], float) for line in truth.read_bytes().splitlines()
    )


def test_only_the_chosen_scenarios_occur(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    options = ("--scenarios", "large_amount,card_testing", "--fraud-share", "0.2")
    dry_run("--count", "3000", "--ground-truth", str(truth), *options)
    scenarios = {orjson.loads(line)["scenario"] for line in truth.read_bytes().splitlines()}
    assert scenarios == {"normal", "large_amount", "card_testing"}


def test_start_time_now_puts_event_time_near_the_wall_clock() -> None:
    first = orjson.loads(dry_run("--count", "1", "--start-time", "now").splitlines()[0])
    stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert abs((stamp - datetime.now(timezone.utc)).total_seconds()) < 6 * 3600


def test_summary_on_stderr_counts_sent_messages_per_scenario() -> None:
    result = run_producer("--dry-run", "--rate", "0", "--count", "500", "--fraud-share", "0.2")
    assert result.returncode == 0
    stderr = result.stderr.decode()
    assert "sent 500 messages" in stderr
    assert "normal" in stderr and "msg/s" in stderr


@pytest.mark.parametrize(
    ("generator", "expected", "day_zero", "scenarios"),
    [
        (
            "sparkov",
            SparkovSimulator(SparkovParameters(customers=300, days=30, seed=3)),
            "2020-01-01T",
            SPARKOV_SCENARIOS,
        ),
        (
            "banksim",
            BanksimSimulator(BanksimParameters(customers=300, days=30, seed=3)),
            "2014-01-01T",
            BANKSIM_SCENARIOS,
        ),
        (
            "tabformer",
            TabformerSimulator(TabformerParameters(users=300, days=30, seed=3)),
            "2019-01-01T",
            TABFORMER_SCENARIOS,
        ),
    ],
)
def test_a_simulator_after_a_public_one_prints_its_stream_with_its_scenarios(
    tmp_path: Path,
    generator: str,
    expected: Iterable[LabeledTransaction],
    day_zero: str,
    scenarios: tuple[str, ...],
) -> None:
    truth = tmp_path / "truth.jsonl"
    options = ("--generator", generator, "--users", "300", "--days", "30", "--seed", "3")
    out = dry_run(*options, "--ground-truth", str(truth))
    assert out == b"".join(record.message_json() + b"\n" for record in expected)
    messages = [orjson.loads(line) for line in out.splitlines()]
    assert messages[0]["timestamp"].startswith(day_zero)
    assert all("merchantId" in m and "category" in m for m in messages)
    seen = {orjson.loads(line)["scenario"] for line in truth.read_bytes().splitlines()}
    assert seen - {"normal"} and seen <= {"normal", *scenarios}


def test_the_paysim_generator_prints_its_stream_of_typed_transfers_and_names_it(
    tmp_path: Path,
) -> None:
    truth = tmp_path / "truth.jsonl"
    options = ("--generator", "paysim", "--users", "200", "--days", "10", "--seed", "3")
    out = dry_run(*options, "--ground-truth", str(truth))
    expected = PaysimSimulator(PaysimParameters(users=200, days=10, seed=3))
    assert out == b"".join(record.message_json() + b"\n" for record in expected)
    messages = [orjson.loads(line) for line in out.splitlines()]
    assert messages[0]["timestamp"].startswith("2017-01-01T")
    assert {m["channel"] for m in messages} == {kind.name for kind in PAYSIM_TYPES}
    assert all("merchantId" in m and "category" not in m for m in messages)
    seen = {orjson.loads(line)["scenario"] for line in truth.read_bytes().splitlines()}
    assert seen == {"normal", *PAYSIM_SCENARIOS}
    result = run_producer("--dry-run", "--rate", "0", "--count", "1", *options)
    assert "the PaySim-like stream, seed 3 (200 users, 10 days)" in result.stderr.decode()


def test_the_banksim_generator_names_its_stream_on_the_start_line() -> None:
    options = ("--generator", "banksim", "--users", "50", "--days", "5", "--seed", "3")
    result = run_producer("--dry-run", "--rate", "0", *options)
    assert result.returncode == 0, result.stderr.decode()
    assert "the BankSim-like stream, seed 3 (50 customers, 5 days)" in result.stderr.decode()


def test_csv_replay_skips_bad_rows_and_reports_their_line_numbers(tmp_path: Path) -> None:
    csv_path = tmp_path / "tx.csv"
    csv_path.write_text(
        "userId,amount,timestamp,label\n"
        "u1,10,2024-12-04T10:00:00Z,0\n"
        "u2,oops,2024-12-04T10:01:00Z,0\n"
        "u3,30,2024-12-04T09:00:00Z,1\n"
    )
    truth = tmp_path / "truth.jsonl"
    result = run_producer(
        "--dry-run", "--rate", "0", "--csv", str(csv_path), "--ground-truth", str(truth)
    )
    assert result.returncode == 0
    assert "line 3: 'amount' must be a number" in result.stderr.decode()
    users = [orjson.loads(line)["userId"] for line in result.stdout.splitlines()]
    assert users == ["u3", "u1"]
    labels = [orjson.loads(line)["is_fraud"] for line in truth.read_bytes().splitlines()]
    assert labels == [True, False]


HANDBOOK_NAMES = {
    "FRAUDSTREAM_FIELD_USER_ID": "CUSTOMER_ID",
    "FRAUDSTREAM_FIELD_AMOUNT": "TX_AMOUNT",
    "FRAUDSTREAM_FIELD_TIMESTAMP": "TX_DATETIME",
    "FRAUDSTREAM_FIELD_TRANSACTION_ID": "TRANSACTION_ID",
    "FRAUDSTREAM_FIELD_MERCHANT": "TERMINAL_ID",
    "FRAUDSTREAM_FIELD_LATITUDE": "y_terminal_id",
    "FRAUDSTREAM_FIELD_LONGITUDE": "x_terminal_id",
}


def test_a_csv_in_its_own_field_names_replays_through_the_workers_input_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handbook's own CSV columns: the same FRAUDSTREAM_FIELD_* settings serve the producer
    # (which columns to read, which names to write) and the worker (which names to parse).
    csv_path = tmp_path / "handbook.csv"
    csv_path.write_text(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,x_terminal_id,y_terminal_id,label\n"
        "0,2018-04-01 00:00:31,596,3156,57.16,12.5,80.25,0\n"
        "1,2018-04-01 00:02:10,4961,3412,81.51,,,1\n"
    )
    result = run_producer("--dry-run", "--rate", "0", "--csv", str(csv_path), env=HANDBOOK_NAMES)
    assert result.returncode == 0, result.stderr.decode()
    first, second = (orjson.loads(line) for line in result.stdout.splitlines())
    assert first == {
        "TRANSACTION_ID": "0",
        "CUSTOMER_ID": "596",
        "TX_AMOUNT": 57.16,
        "TX_DATETIME": "2018-04-01T00:00:31.000Z",
        "TERMINAL_ID": "3156",
        "y_terminal_id": 80.25,
        "x_terminal_id": 12.5,
    }
    assert "x_terminal_id" not in second  # no position in the file, none in the message

    for name, value in HANDBOOK_NAMES.items():
        monkeypatch.setenv(name, value)
    fields = FieldSettings().mapping()
    line = result.stdout.splitlines()[0]
    parsed = parse_transaction(line, Source("transactions-input", 0, 0), 65536, fields)
    assert isinstance(parsed, Transaction)
    assert (parsed.user_id, parsed.amount, parsed.merchant) == ("596", 57.16, "3156")
    assert (parsed.latitude, parsed.longitude) == (80.25, 12.5)


def test_csv_with_missing_columns_exits_with_a_usage_error(tmp_path: Path) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("who,what\n1,2\n")
    result = run_producer("--dry-run", "--csv", str(csv_path), "--csv-format", "paysim")
    assert result.returncode == 2
    assert "nameOrig" in result.stderr.decode()


def test_unknown_scenario_is_a_usage_error() -> None:
    result = run_producer("--dry-run", "--scenarios", "phishing")
    assert result.returncode == 2
    assert "unknown scenario" in result.stderr.decode()


@pytest.mark.parametrize(
    ("url", "bootstrap"),
    [
        ("kafka://localhost:9092", "localhost:9092"),
        ("kafka://a:9092;kafka://b:9093", "a:9092,b:9093"),
        ("broker:29092", "broker:29092"),
    ],
)
def test_broker_url_becomes_an_aiokafka_bootstrap(url: str, bootstrap: str) -> None:
    assert bootstrap_of(url) == bootstrap


def test_bootstrap_defaults_to_the_fraudstream_broker_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_BROKER_URL", "kafka://kafka:9092")
    assert default_bootstrap() == "kafka:9092"
    assert build_parser().parse_args([]).bootstrap == "kafka:9092"
    monkeypatch.delenv("FRAUDSTREAM_BROKER_URL")
    assert build_parser().parse_args([]).bootstrap == "localhost:9092"


def test_labels_topic_defaults_to_fraudstream_labels_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As --topic follows FRAUDSTREAM_INPUT_TOPIC: the worker reads labels from this topic.
    monkeypatch.setenv("FRAUDSTREAM_LABELS_TOPIC", "chargebacks")
    assert build_parser().parse_args([]).labels_topic == "chargebacks"
    assert build_parser().parse_args(["--labels-topic", "x"]).labels_topic == "x"
    monkeypatch.delenv("FRAUDSTREAM_LABELS_TOPIC")
    assert build_parser().parse_args([]).labels_topic == "fraud-labels"


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of each --dry-run send; nothing is generated or printed."""
    calls: list[dict[str, Any]] = []

    async def capture(records: Iterable[LabeledTransaction], *_: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return ProduceSummary()

    monkeypatch.setattr(producer.cli, "produce_to_stream", capture)
    return calls


@pytest.mark.parametrize(
    ("options", "rate", "speedup"),
    [
        ((), DEFAULT_RATE, 0.0),
        (("--speedup", "3600"), 0.0, 3600.0),  # event time alone paces: no hidden cap
        (("--speedup", "3600", "--rate", "50"), 50.0, 3600.0),  # an explicit cap holds
        (("--rate", "7"), 7.0, 0.0),
    ],
)
def test_speedup_without_rate_is_not_capped_by_the_default_rate(
    paced: list[dict[str, Any]], options: tuple[str, ...], rate: float, speedup: float
) -> None:
    assert main(["--dry-run", "--quiet", "--count", "1", *options]) == 0
    assert [(call["rate"], call["speedup"]) for call in paced] == [(rate, speedup)]


@pytest.mark.parametrize("flag", [("--fraud-share", "0.1"), ("--scenarios", "card_testing")])
@pytest.mark.parametrize("generator", ["handbook", "paysim"])
def test_scenario_flags_with_another_generator_are_a_usage_error(
    paced: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    flag: tuple[str, str],
    generator: str,
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--dry-run", "--quiet", "--count", "1", "--generator", generator, *flag])
    assert exit_info.value.code == 2
    assert f"{flag[0]} applies only to --generator scenarios" in capsys.readouterr().err
    assert paced == []


def test_scenario_flags_apply_to_the_scenarios_generator(paced: list[dict[str, Any]]) -> None:
    options = ("--generator", "scenarios", "--fraud-share", "0.1", "--scenarios", "none")
    assert main(["--dry-run", "--quiet", "--count", "1", *options]) == 0
    assert main(["--dry-run", "--quiet", "--count", "1", "--generator", "handbook"]) == 0
    assert len(paced) == 2


def test_csv_summary_counts_the_rows_sent_not_the_rows_in_the_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "tx.csv"
    csv_path.write_text(
        "userId,amount,timestamp\n"
        "u1,10,2024-12-04T10:00:00Z\n"
        "u2,20,2024-12-04T10:01:00Z\n"
        "u3,30,2024-12-04T10:02:00Z\n"
    )
    result = run_producer("--dry-run", "--rate", "0", "--csv", str(csv_path), "--count", "1")
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout.splitlines()) == 1
    assert "csv: 1 of 3 rows replayed, no bad rows" in result.stderr.decode()
    whole = run_producer("--dry-run", "--rate", "0", "--csv", str(csv_path))
    assert "csv: 3 rows replayed, no bad rows" in whole.stderr.decode()
