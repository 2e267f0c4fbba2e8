"""``python -m producer`` reaches a secured broker with the worker's SASL/TLS settings.

Tansu here has neither SASL nor TLS, so these tests check what is handed to aiokafka's
producer: the same mapping the worker's clients use, from FRAUDSTREAM_BROKER_* variables and
the producer's flags.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

import producer.kafka
from fraudstream.local.ports import free_port
from producer.cli import EXIT_FAILED, EXIT_USAGE, main
from tests.support.environment import require

PASSWORD = "pw-that-must-never-be-printed"
CA_NAME = "fraudstream-test-ca"


class CapturingProducer:
    """Stands in for AIOKafkaProducer: records its arguments, then finds no broker."""

    calls: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        CapturingProducer.calls.append(kwargs)

    async def start(self) -> None:
        raise KafkaConnectionError("no broker in this test")

    async def stop(self) -> None:
        """Nothing to release."""


@pytest.fixture(autouse=True)
def clean_security_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets exactly the FRAUDSTREAM_BROKER_* variables it means."""
    for name in (
        "SECURITY_PROTOCOL",
        "SASL_MECHANISM",
        "SASL_USERNAME",
        "SASL_PASSWORD",
        "SSL_CAFILE",
        "SSL_CERTFILE",
        "SSL_KEYFILE",
    ):
        monkeypatch.delenv(f"FRAUDSTREAM_BROKER_{name}", raising=False)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every AIOKafkaProducer the producer creates."""
    CapturingProducer.calls = []
    monkeypatch.setattr(producer.kafka, "AIOKafkaProducer", CapturingProducer)
    return CapturingProducer.calls


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throw-away self-signed certificate and its key (the CA and a client identity)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        require("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "ca.pem", folder / "key.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", f"/CN={CA_NAME}", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


def run(*flags: str) -> int:
    """The producer's command line, one message, to a port nobody listens on."""
    return main(["--bootstrap", f"127.0.0.1:{free_port()}", "--count", "1", "--quiet", *flags])


def trusted_names(context: ssl.SSLContext) -> list[str]:
    """Common names of the CA certificates a TLS context trusts."""
    return [
        value
        for cert in context.get_ca_certs()
        for rdn in cert["subject"]
        for key, value in rdn
        if key == "commonName"
    ]


def test_plaintext_is_the_default(captured: list[dict[str, Any]]) -> None:
    assert run() == EXIT_FAILED
    (kwargs,) = captured
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert "sasl_mechanism" not in kwargs and "ssl_context" not in kwargs


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_each_sasl_mechanism_from_flags_reaches_the_kafka_producer(
    mechanism: str, captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_BROKER_SASL_PASSWORD", PASSWORD)
    flags = ("--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", mechanism)
    assert run(*flags, "--sasl-username", "fraud") == EXIT_FAILED
    (kwargs,) = captured
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_mechanism"] == mechanism
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("fraud", PASSWORD)
    assert kwargs["ssl_context"] is None


def test_the_worker_settings_alone_configure_sasl_over_tls_with_a_ca_file(
    captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tls_files: tuple[Path, Path]
) -> None:
    ca, _ = tls_files
    for name, value in {
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": "SCRAM-SHA-512",
        "SASL_USERNAME": "fraud",
        "SASL_PASSWORD": PASSWORD,
        "SSL_CAFILE": str(ca),
    }.items():
        monkeypatch.setenv(f"FRAUDSTREAM_BROKER_{name}", value)
    assert run() == EXIT_FAILED
    (kwargs,) = captured
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert trusted_names(context) == [CA_NAME]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_flags_win_over_the_environment(
    captured: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_BROKER_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("FRAUDSTREAM_BROKER_SASL_USERNAME", "from-env")
    assert run("--sasl-username", "from-flag", "--sasl-mechanism", "SCRAM-SHA-256") == EXIT_FAILED
    (kwargs,) = captured
    assert kwargs["sasl_plain_username"] == "from-flag"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"


def test_mutual_tls_loads_the_ca_and_the_client_certificate(
    captured: list[dict[str, Any]], tls_files: tuple[Path, Path]
) -> None:
    ca, key = tls_files
    flags = ("--security-protocol", "SSL", "--ssl-cafile", str(ca))
    assert run(*flags, "--ssl-certfile", str(ca), "--ssl-keyfile", str(key)) == EXIT_FAILED
    (kwargs,) = captured
    assert kwargs["security_protocol"] == "SSL"
    assert trusted_names(kwargs["ssl_context"]) == [CA_NAME]
    assert "sasl_plain_password" not in kwargs


def test_sasl_without_a_user_is_a_usage_error(
    captured: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--security-protocol", "SASL_SSL") == EXIT_USAGE
    assert "SASL_USERNAME" in capsys.readouterr().err
    assert captured == []


def test_an_unreadable_ca_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing-ca.pem"
    assert run("--security-protocol", "SSL", "--ssl-cafile", str(missing)) == EXIT_USAGE
    assert "broker security" in capsys.readouterr().err


def test_the_password_is_never_printed_even_when_the_connection_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_BROKER_SASL_PASSWORD", PASSWORD)
    flags = ("--security-protocol", "SASL_PLAINTEXT", "--sasl-username", "fraud")
    # The real aiokafka producer this time, against a port nobody listens on.
    code = main(["--bootstrap", f"127.0.0.1:{free_port()}", "--count", "1", *flags])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "cannot produce" in err
    assert PASSWORD not in out + err
