"""Broker security settings become aiokafka arguments and, for the worker, Faust credentials."""

from __future__ import annotations

import re
from pathlib import Path

import faust
import pytest

from fraudstream.kafka.connection import aiokafka_security, bootstrap_of, ssl_context
from fraudstream.settings import KafkaSettings
from fraudstream.worker.faust_app import faust_credentials


def test_plaintext_needs_no_credentials() -> None:
    kafka = KafkaSettings(broker_security_protocol="PLAINTEXT")
    assert faust_credentials(kafka) is None
    assert aiokafka_security(kafka) == {"security_protocol": "PLAINTEXT"}


def test_sasl_scram_over_tls_reaches_the_kafka_client() -> None:
    kafka = KafkaSettings(
        broker_security_protocol="SASL_SSL",
        broker_sasl_mechanism="SCRAM-SHA-512",
        broker_sasl_username="fraud",
        broker_sasl_password="s3cret",  # type: ignore[arg-type]
    )
    assert isinstance(faust_credentials(kafka), faust.SASLCredentials)
    args = aiokafka_security(kafka)
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (args["sasl_plain_username"], args["sasl_plain_password"]) == ("fraud", "s3cret")
    assert args["ssl_context"] is not None
    assert "s3cret" not in repr(kafka)


def test_sasl_without_a_user_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="SASL_USERNAME"):
        aiokafka_security(KafkaSettings(broker_security_protocol="SASL_PLAINTEXT"))


def test_tls_only_uses_ssl_credentials() -> None:
    kafka = KafkaSettings(broker_security_protocol="SSL")
    args = aiokafka_security(kafka)
    assert args["security_protocol"] == "SSL" and args["ssl_context"] is not None
    assert isinstance(faust_credentials(kafka), faust.SSLCredentials)


def test_plain_clients_do_not_import_faust() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fraudstream.kafka.connection, fraudstream.kafka.topics, "
        "fraudstream.cli.tail, fraudstream.cli.replay_dlq, producer.cli; "
        "print('faust' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("url", "bootstrap"),
    [
        ("kafka://localhost:9092/", "localhost:9092"),
        ("kafka://h1:9092/;kafka://h2:9093//", "h1:9092,h2:9093"),
        ("[::1]:9092/", "[::1]:9092"),
        ("kafka://broker", "broker"),  # no port: aiokafka's default
    ],
)
def test_a_trailing_slash_is_dropped_from_the_broker_url(url: str, bootstrap: str) -> None:
    assert bootstrap_of(url) == bootstrap


@pytest.mark.parametrize("url", ["kafka://localhost:90x2", "kafka://h:0", "h:70000", "[::1]:x"])
def test_a_bad_port_is_an_error_naming_the_url(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"broker URL {url!r}: port")):
        bootstrap_of(url)


def test_a_missing_ca_file_is_an_error_naming_the_setting_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    kafka = KafkaSettings(broker_security_protocol="SSL", broker_ssl_cafile=str(missing))
    with pytest.raises(OSError) as refused:
        aiokafka_security(kafka)
    assert str(refused.value) == (
        f"cannot use FRAUDSTREAM_BROKER_SSL_CAFILE={missing}: No such file or directory"
    )


def test_a_missing_client_certificate_is_an_error_naming_its_settings_and_paths(
    tmp_path: Path,
) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    kafka = KafkaSettings(
        broker_security_protocol="SSL", broker_ssl_certfile=str(cert), broker_ssl_keyfile=str(key)
    )
    with pytest.raises(OSError) as refused:
        ssl_context(kafka)
    message = str(refused.value)
    assert f"FRAUDSTREAM_BROKER_SSL_CERTFILE={cert}" in message
    assert f"FRAUDSTREAM_BROKER_SSL_KEYFILE={key}" in message
