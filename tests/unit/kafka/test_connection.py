"""Broker security settings become aiokafka arguments and, for the worker, Faust credentials."""

from __future__ import annotations

import faust
import pytest

from fraudstream.kafka.connection import aiokafka_security
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
