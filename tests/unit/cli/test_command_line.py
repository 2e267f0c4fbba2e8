"""The ``fraudstream`` command line: bad flags and bad settings are one-line errors, exit 2.

Nothing here reaches a broker: every case is refused before a client is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from fraudstream import arguments
from fraudstream.arguments import iso_time_ms
from fraudstream.cli import build_parser, main
from fraudstream.cli.exits import EXIT_REFUSED
from fraudstream.cli.tail import tail
from fraudstream.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Every test reads the settings from its own environment, and leaves none cached."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``worker`` command that gets past its checks fails the test instead of starting."""

    def refuse(loglevel: str | None = None) -> None:
        raise AssertionError("the worker was started despite a bad setting")

    monkeypatch.setattr("fraudstream.cli.worker.run_worker", refuse)


def refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The error line argparse (or the settings check) prints when ``main`` refuses ``argv``."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(lines)
    return lines[-1]


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--label-delay", "7x", "not a duration like 7d"),
        ("--label-delay-max", "30x", "not a duration like 7d"),
        ("--fraud-share", "2", "must be in [0, 1), got 2"),
        ("--users", "0", "must be >= 1, got 0"),
        ("--count", "many", "must be a whole number >= 1, got many"),
        ("--label-share", "1.5", "must be in [0, 1], got 1.5"),
        ("--rate", "-5", "must be a finite number >= 0"),
    ],
)
def test_evaluate_refuses_a_bad_value_before_it_runs_anything(
    flag: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refusal(["evaluate", "--offline", flag, value], capsys)
    assert f"argument {flag}: {expected}" in line


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--users", "0", "must be >= 1, got 0"),
        ("--fraud-share", "2", "must be in [0, 1), got 2"),
        ("--rate", "0", "must be"),  # the demo paces by 1/rate
        ("--duration", "-1", "must be"),
        ("--show", "-1", "must be a whole number >= 0, got -1"),
    ],
)
def test_demo_refuses_a_bad_value_before_it_starts_a_broker(
    flag: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refusal(["demo", flag, value], capsys)
    assert f"argument {flag}: {expected}" in line


def test_evaluate_reads_durations_and_shares_as_the_producer_does() -> None:
    args = build_parser().parse_args(
        ["evaluate", "--label-delay", "7d", "--label-delay-max", "30d", "--label-share", "1"]
    )
    assert (args.label_delay, args.label_delay_max) == (7 * 86_400_000, 30 * 86_400_000)
    assert args.label_share == 1.0


def test_a_longest_label_delay_below_the_shortest_is_still_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = refusal(["evaluate", "--label-delay", "7d", "--label-delay-max", "1d"], capsys)
    assert "--label-delay-max must be at least --label-delay" in line


def test_backtest_refuses_a_time_that_is_not_iso_naming_the_flag_and_the_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = refusal(["backtest", "rules.json", "--from-time", "yesterday"], capsys)
    assert "argument --from-time: not ISO-8601, e.g. 2024-12-04" in line
    assert "'yesterday'" in line


def test_backtest_times_become_milliseconds_with_z_an_offset_or_none() -> None:
    args = build_parser().parse_args(
        ["backtest", "r.json", "--from-time", "2024-12-04", "--to-time", "2024-12-04T15:00:00Z"]
    )
    assert (args.from_time, args.to_time) == (1_733_270_400_000, 1_733_324_400_000)
    assert iso_time_ms("2024-12-04T16:00:00+01:00") == iso_time_ms("2024-12-04T15:00:00z")


def test_a_trailing_z_is_read_as_python_3_10_reads_iso_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Python310Datetime(datetime):
        """``fromisoformat`` as on Python 3.10, which refuses a ``Z`` for UTC."""

        @classmethod
        def fromisoformat(cls, text: str) -> datetime:
            if text.endswith(("Z", "z")):
                raise ValueError(f"Invalid isoformat string: {text!r}")
            return datetime.fromisoformat(text)

    monkeypatch.setattr(arguments, "datetime", Python310Datetime)
    assert iso_time_ms("2024-12-04T15:00:00Z") == 1_733_324_400_000


def test_a_broker_url_with_a_trailing_slash_is_taken() -> None:
    args = build_parser().parse_args(["tail", "--broker", "kafka://localhost:9092/"])
    assert args.broker == "kafka://localhost:9092/"


def test_a_broker_flag_with_a_bad_port_is_refused_naming_the_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = refusal(["tail", "--broker", "kafka://localhost:90x2"], capsys)
    assert "argument --broker: broker URL 'kafka://localhost:90x2'" in line


def test_tail_refuses_a_broker_variable_with_a_bad_port_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_BROKER_URL", "kafka://localhost:90x2")
    code = asyncio.run(tail(False, False, False, 1, 0.1))
    assert code == EXIT_REFUSED
    assert "broker URL 'kafka://localhost:90x2'" in capsys.readouterr().err


def test_tail_refuses_a_missing_ca_file_naming_the_setting_and_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "ca.pem"
    monkeypatch.setenv("FRAUDSTREAM_BROKER_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("FRAUDSTREAM_BROKER_SSL_CAFILE", str(missing))
    code = asyncio.run(tail(False, False, False, 1, 0.1))
    assert code == EXIT_REFUSED
    assert f"FRAUDSTREAM_BROKER_SSL_CAFILE={missing}" in capsys.readouterr().err


@pytest.mark.usefixtures("no_worker")
def test_a_bad_setting_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_WEB_PORT", "0")
    line = refusal(["worker"], capsys)
    assert line.startswith("error: FRAUDSTREAM_WEB_PORT: ")
    assert "greater than or equal to 1" in line


@pytest.mark.usefixtures("no_worker")
def test_a_missing_influx_token_file_stops_the_worker_naming_the_variable_and_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "influx-token"
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_ENABLED", "true")
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN_FILE", str(missing))
    line = refusal(["worker"], capsys)
    assert line == (
        f"error: FRAUDSTREAM_INFLUX_TOKEN_FILE={missing} cannot be read: No such file or directory"
    )
