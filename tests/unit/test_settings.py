"""Secrets in the settings: where they are read from, and that they never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.settings import Settings

TOKEN = "influx-token-6c1d"
PASSWORD = "sasl-password-93ab"


def test_the_token_file_wins_over_the_variable_and_loses_its_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "influx-token"
    secret.write_text(f"{TOKEN}\n")  # as `echo token > file` or a Docker secret leaves it
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN", "from-the-variable")
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN_FILE", str(secret))
    assert Settings().influx_token_value() == TOKEN


def test_the_token_variable_is_used_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN", TOKEN)
    monkeypatch.delenv("FRAUDSTREAM_INFLUX_TOKEN_FILE", raising=False)
    assert Settings().influx_token_value() == TOKEN


def test_secrets_are_in_no_repr_str_or_dump() -> None:
    settings = Settings(influx_token=TOKEN, broker_sasl_password=PASSWORD)  # type: ignore[arg-type]
    for text in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ):
        assert TOKEN not in text and PASSWORD not in text
