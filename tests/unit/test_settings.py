"""Settings: where secrets are read from, that they never show, and what the rest derives."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.settings import DetectionSettings, InfluxSettings, KafkaSettings, Settings

TOKEN = "influx-token-6c1d"
PASSWORD = "sasl-password-93ab"


def test_the_token_file_wins_over_the_variable_and_loses_its_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "influx-token"
    secret.write_text(f"{TOKEN}\n")  # as `echo token > file` or a Docker secret leaves it
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN", "from-the-variable")
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN_FILE", str(secret))
    assert Settings().influx.influx_token_value() == TOKEN


def test_the_token_variable_is_used_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN", TOKEN)
    monkeypatch.delenv("FRAUDSTREAM_INFLUX_TOKEN_FILE", raising=False)
    assert Settings().influx.influx_token_value() == TOKEN


def test_a_missing_token_file_is_refused_with_the_settings_naming_the_variable_and_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    missing = tmp_path / "influx-token"
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_ENABLED", "true")
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_TOKEN_FILE", str(missing))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert f"FRAUDSTREAM_INFLUX_TOKEN_FILE={missing} cannot be read" in str(refused.value)


def test_a_token_file_is_not_read_while_the_sink_is_off(tmp_path: Path) -> None:
    missing = str(tmp_path / "influx-token")
    influx = InfluxSettings(influx_enabled=False, influx_token_file=missing)
    with pytest.raises(ValueError, match=f"FRAUDSTREAM_INFLUX_TOKEN_FILE={missing} cannot be"):
        influx.influx_token_value()  # only when asked for the token, and then by name


@pytest.mark.parametrize("port", ["0", "-1", "65536"])
def test_a_web_port_faust_cannot_serve_on_is_refused(
    port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("FRAUDSTREAM_WEB_PORT", port)
    with pytest.raises(ValidationError, match="web_port"):
        Settings()


def test_secrets_are_in_no_repr_str_or_dump() -> None:
    settings = Settings(
        kafka=KafkaSettings(broker_sasl_password=PASSWORD),  # type: ignore[arg-type]
        influx=InfluxSettings(influx_token=TOKEN),  # type: ignore[arg-type]
    )
    for text in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ):
        assert TOKEN not in text and PASSWORD not in text


def test_every_variable_users_set_keeps_its_flat_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_BROKER_URL", "kafka://broker-a:9092")
    monkeypatch.setenv("FRAUDSTREAM_AMOUNT_THRESHOLD", "2500")
    monkeypatch.setenv("FRAUDSTREAM_BATCH_MAX_EVENTS", "7")
    monkeypatch.setenv("FRAUDSTREAM_INFLUX_BUCKET", "b")
    settings = Settings()
    assert settings.kafka.broker_url == "kafka://broker-a:9092"
    assert settings.detection.amount_threshold == 2500
    assert settings.worker.batch_max_events == 7
    assert settings.influx.influx_bucket == "b"


def test_sections_do_not_share_a_variable() -> None:
    from fraudstream.settings import DetectionSettings, FieldSettings, WorkerSettings

    names = [
        name
        for section in (
            KafkaSettings,
            FieldSettings,
            DetectionSettings,
            WorkerSettings,
            InfluxSettings,
        )
        for name in section.model_fields
    ]
    assert len(names) == len(set(names)) == len(Settings.variables())


def test_at_least_once_stays_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAUDSTREAM_PROCESSING_GUARANTEE", raising=False)
    assert Settings().worker.processing_guarantee == "at_least_once"


def test_exactly_once_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_PROCESSING_GUARANTEE", "exactly_once")
    assert Settings().worker.processing_guarantee == "exactly_once"


def test_an_unknown_guarantee_is_refused_naming_the_variable_and_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("FRAUDSTREAM_PROCESSING_GUARANTEE", "exactly-once")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "processing_guarantee" in message
    assert "'at_least_once' or 'exactly_once'" in message


def test_the_worker_reads_the_labels_topic_unless_labels_are_off() -> None:
    kafka = KafkaSettings(input_topic="tx", labels_topic="labels")
    on = Settings(kafka=kafka, detection=DetectionSettings(labels_enabled=True))
    off = Settings(kafka=kafka, detection=DetectionSettings(labels_enabled=False))
    assert on.consumed_topics == ["tx", "labels"]
    assert off.consumed_topics == ["tx"]


def test_the_label_coverage_reaches_the_classifiers_line_and_the_parts_trust(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_LABEL_COVERAGE", "0.6")
    config = Settings().detection.detector_config()
    assert config.calibration.coverage == config.trust.coverage == 0.6
    monkeypatch.setenv("FRAUDSTREAM_LABEL_COVERAGE", "0")
    with pytest.raises(ValueError, match="label_coverage"):
        Settings()


def test_the_classifiers_fallback_line_defaults_to_the_parts_bar_and_is_read_from_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Settings().detection.detector_config()
    assert config.calibration.fallback_precision == config.trust.min_precision == 0.5
    monkeypatch.setenv("FRAUDSTREAM_CLASSIFIER_FALLBACK_PRECISION", "0.9")
    assert Settings().detection.detector_config().calibration.fallback_precision == 0.9
    monkeypatch.setenv("FRAUDSTREAM_CLASSIFIER_FALLBACK_PRECISION", "0")
    with pytest.raises(ValueError, match="classifier_fallback_precision"):
        Settings()


def test_the_timestamp_unit_joins_the_input_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAUDSTREAM_FIELD_TIMESTAMP_UNIT", raising=False)
    assert Settings().fields.mapping().timestamp_unit == "auto"
    monkeypatch.setenv("FRAUDSTREAM_FIELD_TIMESTAMP_UNIT", "d")
    assert Settings().fields.mapping().timestamp_unit == "d"


def test_an_unknown_timestamp_unit_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("FRAUDSTREAM_FIELD_TIMESTAMP_UNIT", "weeks")
    with pytest.raises(ValidationError, match="'auto', 's', 'ms', 'h' or 'd'"):
        Settings()
