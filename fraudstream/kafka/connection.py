"""How clients reach the broker: bootstrap servers, SASL (PLAIN/SCRAM) and TLS, from the settings.

Plain aiokafka clients (producer, tail, replay-dlq, evaluate) take :func:`aiokafka_security`;
the worker turns the same mapping into Faust credentials, so every client connects alike.
This module does not import Faust.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

from fraudstream.settings import KafkaSettings

#: Longest a plain client (CLI commands, the rules topic) waits for one broker answer, ms.
CLIENT_REQUEST_TIMEOUT_MS = 15_000
#: Kafka's port, where a bootstrap address names none.
DEFAULT_PORT = 9092


def bootstrap_of(broker_url: str) -> str:
    """Faust-style broker URLs as the ``host:port,...`` list plain clients take.

    A trailing ``/`` (``kafka://host:9092/``, as URLs are often written) is dropped; a port
    that is not a number in 1-65535 is a ``ValueError`` naming the URL, where aiokafka would
    fail later with a bare ``int()`` error.

    >>> bootstrap_of("kafka://h1:9092;kafka://h2:9092/")
    'h1:9092,h2:9092'
    >>> bootstrap_of("localhost:9092")
    'localhost:9092'
    >>> bootstrap_of("kafka://localhost:9092/x")
    Traceback (most recent call last):
    ValueError: broker URL 'kafka://localhost:9092/x': port '9092/x' is not a number in 1-65535
    """
    hosts = []
    for part in broker_url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        part = part.rstrip("/")
        if part:
            port = _port_of(part)
            if port is not None and not _is_port(port):
                raise ValueError(
                    f"broker URL {broker_url!r}: port {port!r} is not a number in 1-65535"
                )
            hosts.append(part)
    return ",".join(hosts)


def host_and_port(address: str) -> tuple[str, int]:
    """Host and port of one ``host:port`` bootstrap address, on Kafka's port 9092 when it names
    none (as Faust and aiokafka read it); a port that is not a number in 1-65535 is a
    ``ValueError``.

    >>> host_and_port("kafka-0"), host_and_port("[::1]:9093"), host_and_port("::1")
    (('kafka-0', 9092), ('::1', 9093), ('::1', 9092))
    """
    text = address.strip()
    port = _port_of(text)
    if port is None:
        host = text.strip("[]")
    else:
        host = text[: -len(port) - 1].strip("[]")
        if not _is_port(port):
            raise ValueError(
                f"broker address {address!r}: the port {port!r} is not a number in 1-65535"
            )
    return host or "localhost", int(port or DEFAULT_PORT)


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < int(text) < 65536


def _port_of(host_port: str) -> str | None:
    """The port text of ``host:port`` or ``[v6]:port``; None when none is given (aiokafka then
    takes 9092), as for a bare IPv6 address."""
    if host_port.startswith("["):
        rest = host_port.partition("]")[2]
        return rest[1:] if rest.startswith(":") else (rest or None)
    if host_port.count(":") == 1:
        return host_port.rpartition(":")[2]
    return None


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """A TLS context when the protocol uses TLS (system CAs unless a CA file is given).

    An unreadable CA, certificate or key file is an ``OSError`` that names its setting and
    path (``ssl`` itself names neither).
    """
    if kafka.broker_security_protocol not in {"SSL", "SASL_SSL"}:
        return None
    cafile = kafka.broker_ssl_cafile or None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except OSError as exc:
        raise OSError(_unusable(f"FRAUDSTREAM_BROKER_SSL_CAFILE={cafile}", exc)) from exc
    if kafka.broker_ssl_certfile:
        keyfile = kafka.broker_ssl_keyfile or None
        try:
            context.load_cert_chain(kafka.broker_ssl_certfile, keyfile=keyfile)
        except OSError as exc:
            what = f"FRAUDSTREAM_BROKER_SSL_CERTFILE={kafka.broker_ssl_certfile}"
            if keyfile:
                what += f" with FRAUDSTREAM_BROKER_SSL_KEYFILE={keyfile}"
            raise OSError(_unusable(what, exc)) from exc
    return context


def _unusable(what: str, exc: OSError) -> str:
    """One line saying that the TLS file ``what`` names (setting=path) cannot be used, and why."""
    return f"cannot use {what}: {exc.strerror or exc}"


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


class AuthFailureWatch(logging.Handler):
    """Notices aiokafka's log of a refused SASL login, which its exceptions do not carry.

    A wrong password surfaces as ``KafkaConnectionError("Unable to bootstrap ...")``; only
    aiokafka's own ERROR log names ``SaslAuthenticationFailed``. Install it around a client's
    start with ``with AuthFailureWatch() as watch:`` and ask :attr:`failed` afterwards.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        """Remember a SASL authentication failure (the record itself goes on as usual)."""
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {type(record.exc_info[1]).__name__} {record.exc_info[1]}"
        if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
            self.failed = True

    def __enter__(self) -> AuthFailureWatch:
        logging.getLogger("aiokafka").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("aiokafka").removeHandler(self)


def connection_failure(exc: BaseException, kafka: KafkaSettings, auth_failed: bool) -> str:
    """One line saying why a client could not reach the broker, and what to check.

    >>> connection_failure(OSError("refused"), KafkaSettings(), auth_failed=False)
    'cannot reach the broker at localhost:9092 (PLAINTEXT): OSError: refused'
    """
    where = f"{bootstrap_of(kafka.broker_url)} ({kafka.broker_security_protocol})"
    if auth_failed:
        return (
            f"the broker at {where} refused the login of user {kafka.broker_sasl_username!r} "
            f"({kafka.broker_sasl_mechanism}): authentication failed; check "
            "FRAUDSTREAM_BROKER_SASL_USERNAME and FRAUDSTREAM_BROKER_SASL_PASSWORD"
        )
    return f"cannot reach the broker at {where}: {type(exc).__name__}: {exc}"


def write_refused_for_size(exc: BaseException | None) -> str | None:
    """What to change when the broker refused records as too large (the error or its causes),
    else None: the worker's record batches must fit every topic it writes to.

    >>> write_refused_for_size(MessageSizeTooLargeError()).startswith("the broker refused")
    True
    >>> write_refused_for_size(OSError("reset")) is None
    True
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MessageSizeTooLargeError | RecordListTooLargeError):
            return (
                "the broker refused a record batch as larger than a topic's max.message.bytes: "
                "set FRAUDSTREAM_PRODUCER_MAX_BATCH_BYTES under the smallest max.message.bytes "
                "of the alerts, dead-letter, decisions, shadow and changelog topics, or raise "
                "that topic's limit"
            )
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
