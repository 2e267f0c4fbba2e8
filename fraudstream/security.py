"""Broker authentication and encryption (SASL PLAIN/SCRAM, TLS) from the settings."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import CredentialsT

from fraudstream.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS context when the protocol uses TLS (system CAs unless a CA file is given)."""
    if settings.broker_security_protocol not in {"SSL", "SASL_SSL"}:
        return None
    context = ssl.create_default_context(cafile=settings.broker_ssl_cafile or None)
    if settings.broker_ssl_certfile:
        context.load_cert_chain(
            settings.broker_ssl_certfile, keyfile=settings.broker_ssl_keyfile or None
        )
    return context


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust credentials for ``broker_security_protocol``; None for PLAINTEXT."""
    protocol = settings.broker_security_protocol
    context = ssl_context(settings)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        assert context is not None
        return faust.SSLCredentials(context)
    if not settings.broker_sasl_username:
        raise ValueError(f"{protocol} needs FRAUDSTREAM_BROKER_SASL_USERNAME and _PASSWORD")
    return faust.SASLCredentials(
        username=settings.broker_sasl_username,
        password=settings.broker_sasl_password.get_secret_value(),
        mechanism=settings.broker_sasl_mechanism,
        ssl_context=context,
    )


def aiokafka_security(settings: Settings) -> Mapping[str, Any]:
    """The same security as keyword arguments for plain aiokafka clients (tail, demo, admin)."""
    return credentials_to_aiokafka_auth(broker_credentials(settings))
