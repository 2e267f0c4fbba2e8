"""Broker security settings become Faust credentials and aiokafka arguments."""

from __future__ import annotations

import faust
import pytest

from fraudstream.security import aiokafka_security, broker_credentials
from fraudstream.settings import Settings


def test_plaintext_needs_no_credentials() -> None:
    settings = Settings()
    assert broker_credentials(settings) is None
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}


def test_sasl_scram_over_tls_reaches_the_kafka_client() -> None:
    settings = Settings(
        broker_security_protocol="SASL_SSL",
        broker_sasl_mechanism="SCRAM-SHA-512",
        broker_sasl_username="fraud",
        broker_sasl_password="s3cret",  # type: ignore[arg-type]
    )
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    args = aiokafka_security(settings)
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (args["sasl_plain_username"], args["sasl_plain_password"]) == ("fraud", "s3cret")
    assert args["ssl_context"] is not None
    assert "s3cret" not in repr(settings)


def test_sasl_without_a_user_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="SASL_USERNAME"):
        broker_credentials(Settings(broker_security_protocol="SASL_PLAINTEXT"))


def test_tls_only_uses_ssl_credentials() -> None:
    args = aiokafka_security(Settings(broker_security_protocol="SSL"))
    assert args["security_protocol"] == "SSL" and args["ssl_context"] is not None
