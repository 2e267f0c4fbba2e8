"""How clients reach the broker: bootstrap servers, SASL (PLAIN/SCRAM) and TLS, from the settings.

Plain aiokafka clients (producer, tail, replay-dlq, evaluate) take :func:`aiokafka_security`;
the worker turns the same mapping into Faust credentials, so every client connects alike.
This module does not import Faust.
"""

from __future__ import annotations

import ssl
from typing import Any

from fraudstream.settings import KafkaSettings


def bootstrap_of(broker_url: str) -> str:
    """Faust-style broker URLs as the ``host:port,...`` list plain clients take.

    >>> bootstrap_of("kafka://h1:9092;kafka://h2:9092")
    'h1:9092,h2:9092'
    >>> bootstrap_of("localhost:9092")
    'localhost:9092'
    """
    hosts = []
    for part in broker_url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            hosts.append(part)
    return ",".join(hosts)


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """A TLS context when the protocol uses TLS (system CAs unless a CA file is given)."""
    if kafka.broker_security_protocol not in {"SSL", "SASL_SSL"}:
        return None
    context = ssl.create_default_context(cafile=kafka.broker_ssl_cafile or None)
    if kafka.broker_ssl_certfile:
        context.load_cert_chain(kafka.broker_ssl_certfile, keyfile=kafka.broker_ssl_keyfile or None)
    return context


def aiokafka_security(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments that give an aiokafka client the configured security.

    >>> aiokafka_security(KafkaSettings(broker_security_protocol="PLAINTEXT"))
    {'security_protocol': 'PLAINTEXT'}
    """
    protocol = kafka.broker_security_protocol
    if protocol == "PLAINTEXT":
        return {"security_protocol": protocol}
    context = ssl_context(kafka)
    if protocol == "SSL":
        return {"security_protocol": protocol, "ssl_context": context}
    if not kafka.broker_sasl_username:
        raise ValueError(f"{protocol} needs FRAUDSTREAM_BROKER_SASL_USERNAME and _PASSWORD")
    return {
        "security_protocol": protocol,
        "sasl_mechanism": kafka.broker_sasl_mechanism,
        "sasl_plain_username": kafka.broker_sasl_username,
        "sasl_plain_password": kafka.broker_sasl_password.get_secret_value(),
        "ssl_context": context,
    }
