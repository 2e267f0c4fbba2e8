"""A real Apache Kafka 4 broker (KRaft, broker and controller in one JVM) on loopback ports.

Tansu speaks the Kafka protocol but is not Kafka: no transactions, no SCRAM over TLS, nothing
on disk that survives a crash. This runs the real broker from the jars that
``scripts/fetch-kafka`` copies out of Maven Central (no Docker), for tests and benchmarks:

>>> with ApacheKafka() as kafka:  # doctest: +SKIP
...     print(kafka.bootstrap, kafka.sasl_bootstrap, kafka.ca_file)
127.0.0.1:40123 localhost:40125 /tmp/fraudstream-kafka-.../ca.pem

Three listeners: PLAINTEXT on ``bootstrap``, SASL_SSL (SCRAM-SHA-512, self-signed
certificate for ``localhost``) on ``sasl_bootstrap``, and the KRaft controller. Nothing
happens at import; every step fails with :class:`KafkaUnavailable` and says why.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from fraudstream.local.ports import free_ports

#: Keep in step with ``<kafka.version>`` in scripts/kafka/pom.xml.
KAFKA_VERSION = "4.1.1"
#: The broker logs this once it is registered, unfenced and serving clients.
READY_LINE = b"Kafka Server started"
STARTUP_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0
TOOL_TIMEOUT_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 600.0
SCRAM_MECHANISM = "SCRAM-SHA-512"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
STORAGE_TOOL = "kafka.tools.StorageTool"
#: scripts/fetch-kafka of the source tree this module belongs to (absent in a wheel).
FETCH_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch-kafka"
#: Short-lived tools (storage format, console consumer) start faster with the C1 compiler
#: and the serial collector; they never run long enough to need more.
TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
#: Names and passwords end up in ``--add-scram 'SCRAM-SHA-512=[name=...,password=...]'``.
_SCRAM_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


class KafkaUnavailable(RuntimeError):
    """The broker could not be set up, or did not start in time."""


class KafkaNotInstalled(KafkaUnavailable):
    """java, openssl, or the Kafka jars (and mvn to fetch them) are missing here."""


def default_kafka_home() -> Path:
    """Where ``scripts/fetch-kafka`` puts the jars: ``$FRAUDSTREAM_KAFKA_HOME`` or the cache."""
    if home := os.environ.get("FRAUDSTREAM_KAFKA_HOME"):
        return Path(home)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fraudstream" / f"kafka-{KAFKA_VERSION}"


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH; Kafka 4 needs Java 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaNotInstalled("java not found: Apache Kafka needs a JDK/JRE >= 17 on PATH")
    return java


def ensure_kafka_jars(home: Path | None = None) -> Path:
    """The Kafka home (``libs/*.jar``, ``log4j2.properties``), fetched first if need be.

    Runs ``scripts/fetch-kafka`` (a no-op of ~50 ms once cached). Without the script (an
    installed wheel), an already fetched home is used as it is.
    """
    home = home or default_kafka_home()
    if not FETCH_SCRIPT.is_file():
        if (home / "libs").is_dir() and (home / "log4j2.properties").is_file():
            return home
        raise KafkaNotInstalled(
            f"no Kafka jars in {home} and no fetch script at {FETCH_SCRIPT}: "
            "run scripts/fetch-kafka from a fraudstream checkout (or set FRAUDSTREAM_KAFKA_HOME)"
        )
    java_executable()  # a clear KafkaNotInstalled before the script says the same less clearly
    env = {**os.environ, "FRAUDSTREAM_KAFKA_HOME": str(home)}
    try:
        done = subprocess.run(
            ["bash", str(FETCH_SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkaUnavailable(f"scripts/fetch-kafka took over {FETCH_TIMEOUT_SECONDS}s") from exc
    if done.returncode != 0:
        error = KafkaNotInstalled if shutil.which("mvn") is None else KafkaUnavailable
        raise error(f"scripts/fetch-kafka failed ({done.returncode}): {done.stderr.strip()}")
    return Path(done.stdout.strip().splitlines()[-1])


def new_cluster_id() -> str:
    """A KRaft cluster id as ``StorageTool random-uuid`` makes it, without starting a JVM."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):  # Kafka avoids these: they look like CLI options
            return cluster_id


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGKILL the child when the thread that forked it ends.

    libc is looked up here, in the parent: between fork and exec the child only calls it.
    """
    if sys.platform != "linux":
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return set_death_signal


class ApacheKafka:
    """One real Kafka broker+controller in a work dir: start, stop, crash, restart, freeze.

    Ports, work dir, cluster id and the SCRAM user are fixed at construction, so
    :meth:`restart` (and :meth:`start` after :meth:`kill`) reuses the same log dirs and
    addresses: what was written before is there afterwards. With ``die_with_parent`` (Linux)
    the JVM is killed when the thread that started it ends, so a crashed test run leaves no
    broker behind: start it from the main thread.

    With ``class_data_sharing``, the first cleanly stopped broker leaves an AppCDS archive of
    the classes it loaded in the Kafka home; later brokers map it instead of parsing the jars:
    about a third less CPU to start (5.2 -> 3.4 s) and 60 MiB less RSS. Recording it makes
    that first :meth:`stop` ~3 s longer. A stale archive (other JDK, refetched jars) is
    never used: its name is a digest of both.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        username: str = "fraudstream",
        password: str | None = None,
        heap: str = "512m",
        properties: Mapping[str, str] | None = None,
        kafka_home: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        die_with_parent: bool = True,
        class_data_sharing: bool = True,
        advertised_port: int | None = None,
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fraudstream-kafka-"))
        self.username = username
        self.password = password or secrets.token_hex(12)
        for value in (self.username, self.password):
            if not _SCRAM_SAFE.fullmatch(value):
                raise ValueError(f"SCRAM user names and passwords are [A-Za-z0-9_.-]+: {value!r}")
        self.heap = heap
        self.extra_properties = dict(properties or {})
        self.startup_timeout = startup_timeout
        self.die_with_parent = die_with_parent
        self.class_data_sharing = class_data_sharing
        self._recording_archive: Path | None = None
        self.port, self.controller_port, self.sasl_port = free_ports(3)
        #: The PLAINTEXT port clients are told to use: another than :attr:`port` when a proxy
        #: in front of the broker stands for the network between them (tests cut it).
        self.advertised_port = advertised_port or self.port
        self.cluster_id = new_cluster_id()
        self._kafka_home = kafka_home
        self._home: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        #: Seconds the last :meth:`start` took until the broker served clients.
        self.startup_seconds: float | None = None

    # -- addresses and files ------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """PLAINTEXT ``host:port`` for Kafka clients (the advertised one)."""
        return f"127.0.0.1:{self.advertised_port}"

    @property
    def url(self) -> str:
        """Faust-style broker URL of the PLAINTEXT listener."""
        return f"kafka://{self.bootstrap}"

    @property
    def sasl_bootstrap(self) -> str:
        """SASL_SSL ``host:port``; ``localhost`` because the certificate is issued to it."""
        return f"localhost:{self.sasl_port}"

    @property
    def ca_file(self) -> Path:
        """PEM file that verifies the broker's self-signed certificate."""
        return self.workdir / "ca.pem"

    @property
    def log_dirs(self) -> tuple[Path, ...]:
        """The broker's ``log.dirs`` (records and the KRaft metadata log)."""
        return (self.workdir / "data",)

    @property
    def log_path(self) -> Path:
        """The broker's stdout and stderr, appended across restarts."""
        return self.workdir / "broker.log"

    @property
    def server_properties(self) -> Path:
        """The broker's configuration file."""
        return self.workdir / "server.properties"

    @property
    def sasl_client_properties(self) -> Path:
        """A ``--command-config``/``--consumer.config`` file for Kafka's tools over SASL_SSL."""
        return self.workdir / "client-sasl.properties"

    @property
    def home(self) -> Path:
        """The Kafka home in use (``libs/``, ``log4j2.properties``); fetched on first use."""
        if self._home is None:
            self._home = ensure_kafka_jars(self._kafka_home)
        return self._home

    @property
    def libs_dir(self) -> Path:
        """The folder of Kafka's jars (``java -cp 'libs/*'``)."""
        return self.home / "libs"

    @property
    def pid(self) -> int | None:
        """Process id of the broker JVM while it runs (or is paused)."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """The JVM was started and has not exited (a paused broker still runs)."""
        return self._process is not None and self._process.poll() is None

    def sasl_client_config(self) -> dict[str, Any]:
        """aiokafka keyword arguments for the SASL_SSL listener (SCRAM-SHA-512, CA verified)."""
        from aiokafka.helpers import create_ssl_context

        return {
            "bootstrap_servers": self.sasl_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_context": create_ssl_context(cafile=str(self.ca_file)),
        }

    def rss_bytes(self) -> int:
        """Resident memory of the broker JVM right now (Linux ``/proc``)."""
        if self.pid is None:
            raise KafkaUnavailable("the broker is not running")
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match is None:
            raise KafkaUnavailable(f"no VmRSS for pid {self.pid}")
        return int(match.group(1)) * 1024

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the broker log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker log yet)"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> ApacheKafka:
        """Set up the work dir on first use, start the JVM, wait for "Kafka Server started"."""
        if self.running:
            return self
        started = time.monotonic()
        java = java_executable()
        if not (self.log_dirs[0] / "meta.properties").is_file():
            self._prepare(java)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            java,
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-Djava.awt.headless=true",
            *self._class_data_sharing_options(java),
            *self._java_common(),
            "kafka.Kafka",
            str(self.server_properties),
        ]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent() if self.die_with_parent else None,
            )
        self._paused = False
        self._wait_ready(log_start, started + self.startup_timeout)
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Shut the broker down cleanly (SIGTERM), SIGKILL it if it takes over ``timeout``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
            if self._paused:  # a stopped JVM handles SIGTERM only once it runs again
                os.kill(process.pid, signal.SIGCONT)
        self._paused = False
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        else:
            self._keep_recorded_archive(java_exited_cleanly=True)

    def kill(self) -> None:
        """Crash the broker: SIGKILL, no shutdown, log segments left as they were."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self._paused = False
        self._keep_recorded_archive(java_exited_cleanly=False)

    def restart(self, *, crash: bool = False) -> ApacheKafka:
        """Stop (or with ``crash``, kill) and start again on the same ports and log dirs."""
        if crash:
            self.kill()
        else:
            self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the JVM (SIGSTOP): connections stay open but nothing answers."""
        if self._process is None or not self.running:
            raise KafkaUnavailable("the broker is not running")
        os.kill(self._process.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused JVM go on (SIGCONT)."""
        if self._process is not None and self.running:
            os.kill(self._process.pid, signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        """Stop the broker and delete the work dir if this object created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ApacheKafka:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- Kafka's own command-line tools -------------------------------------------------

    def run_tool(
        self,
        main_class: str,
        *args: str,
        timeout: float = TOOL_TIMEOUT_SECONDS,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a Kafka tool's ``main`` with the broker's jars; stdout holds only its output."""
        command = [java_executable(), *TOOL_JVM_OPTIONS, *self._java_common(), main_class, *args]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaUnavailable(f"{main_class} ran over {timeout}s: {exc.stderr!r}") from exc
        if check and done.returncode != 0:
            raise KafkaUnavailable(
                f"{main_class} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done

    def console_consumer(
        self, topic: str, *args: str, timeout: float = TOOL_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        """Kafka's ConsoleConsumer on ``topic`` via PLAINTEXT; ``args`` as on its command line.

        E.g. ``console_consumer(t, "--from-beginning", "--max-messages", "1",
        "--property", "print.key=true")``; without ``--max-messages`` or ``--timeout-ms``
        it never ends.
        """
        return self.run_tool(
            CONSOLE_CONSUMER,
            "--bootstrap-server",
            self.bootstrap,
            "--topic",
            topic,
            *args,
            timeout=timeout,
        )

    def topic_command(
        self, *args: str, timeout: float = TOOL_TIMEOUT_SECONDS, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Kafka's ``kafka-topics`` (TopicCommand) against this broker."""
        return self.run_tool(
            TOPIC_COMMAND, "--bootstrap-server", self.bootstrap, *args, timeout=timeout, check=check
        )

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name`` (replication factor 1) unless it exists."""
        self.topic_command(
            "--create",
            "--if-not-exists",
            "--topic",
            name,
            "--partitions",
            str(partitions),
            "--replication-factor",
            "1",
        )

    # -- internals ----------------------------------------------------------------------

    def _java_common(self) -> list[str]:
        """Classpath and logging config shared by the broker and the tools."""
        return [
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{self.libs_dir}/*",
        ]

    def _class_data_sharing_options(self, java: str) -> list[str]:
        """Use the home's AppCDS archive for this JDK and these jars, or record it at exit."""
        if not self.class_data_sharing:
            return []
        java_file = Path(java).resolve()
        key = f"{java_file}:{java_file.stat().st_mtime_ns}:{self.libs_dir.stat().st_mtime_ns}"
        archive = self.home / f"broker-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"
        # Mismatch and "not archived" notes would only clutter the broker log.
        quiet = "-Xlog:cds=off,cds+dynamic=off"
        if archive.is_file():
            return [quiet, f"-XX:SharedArchiveFile={archive}"]
        # A name of our own: brokers recording at once must not write into one file.
        self._recording_archive = archive.with_name(f"{archive.name}.{secrets.token_hex(4)}.tmp")
        return [quiet, f"-XX:ArchiveClassesAtExit={self._recording_archive}"]

    def _keep_recorded_archive(self, *, java_exited_cleanly: bool) -> None:
        """After the JVM exited: publish the archive it wrote, or drop a partial one."""
        recorded, self._recording_archive = self._recording_archive, None
        if recorded is None:
            return
        if java_exited_cleanly and recorded.is_file() and recorded.stat().st_size > 0:
            os.replace(recorded, recorded.with_name(recorded.name.rsplit(".", 2)[0]))
        else:
            recorded.unlink(missing_ok=True)

    def _prepare(self, java: str) -> None:
        """First start: certificate, configuration, and storage formatted with the SCRAM user."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_certificate()
        self.server_properties.write_text(_properties_text(self._broker_properties()))
        self.sasl_client_properties.write_text(
            _properties_text(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": SCRAM_MECHANISM,
                    "sasl.jaas.config": (
                        "org.apache.kafka.common.security.scram.ScramLoginModule required "
                        f'username="{self.username}" password="{self.password}";'
                    ),
                    "ssl.truststore.type": "PEM",
                    "ssl.truststore.location": str(self.ca_file),
                }
            )
        )
        scram = f"{SCRAM_MECHANISM}=[name={self.username},password={self.password}]"
        done = self.run_tool(
            STORAGE_TOOL,
            "format",
            "--cluster-id",
            self.cluster_id,
            "--config",
            str(self.server_properties),
            "--add-scram",
            scram,
            "--ignore-formatted",
        )
        if done.returncode != 0:
            raise KafkaUnavailable(
                f"kafka-storage format failed ({done.returncode}): "
                f"{(done.stdout + done.stderr).strip()}"
            )

    def _write_certificate(self) -> None:
        """A self-signed certificate for localhost/127.0.0.1; the broker reads key+cert as PEM."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise KafkaNotInstalled("openssl not found: it makes the broker's TLS certificate")
        key, cert = self.workdir / "key.pem", self.workdir / "cert.pem"
        done = subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",  # unencrypted PKCS#8: Kafka's PEM keystore then needs no password
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "365",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise KafkaUnavailable(f"openssl could not make a certificate: {done.stderr.strip()}")
        (self.workdir / "server.pem").write_text(key.read_text() + cert.read_text())
        shutil.copyfile(cert, self.ca_file)
        key.unlink()

    def _broker_properties(self) -> dict[str, str]:
        """server.properties: one node in combined mode, three listeners, SCRAM over TLS."""
        controller = f"CONTROLLER://127.0.0.1:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},{controller},SASL_SSL://{self.sasl_bootstrap}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap},SASL_SSL://{self.sasl_bootstrap}",
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
            ),
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": ",".join(str(path) for path in self.log_dirs),
            # One broker: every internal topic has a single replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # One partition each, not 50: the first consumer group (transactional producer)
            # waits for the coordinator topic's creation, ~1.6 s with 50 and ~0.7 s with 1.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.num.partitions": "1",
            # Tests: a group's first member does not wait 3 s for others; short sessions allowed.
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            # After a crash the old broker registration blocks the new one until its session
            # expires: the default 9 s makes a crash restart take ~14 s instead of ~5 s. Not
            # shorter: a starved JVM missing heartbeats fences itself, taking every partition
            # offline for a moment. A pause() longer than this also ends in such a fence.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            # PEM key+certificate in one unencrypted file: no keytool, no keystore password.
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.workdir / "server.pem"),
            **self.extra_properties,
        }

    def _wait_ready(self, log_start: int, deadline: float) -> None:
        """Poll the new part of the log for READY_LINE; on exit or deadline, kill and explain."""
        assert self._process is not None
        position, carry = log_start, b""
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log:
                log.seek(position)
                chunk = log.read()
            position += len(chunk)
            if READY_LINE in carry + chunk:
                return
            carry = (carry + chunk)[-len(READY_LINE) :]
            if self._process.poll() is not None:
                self._keep_recorded_archive(java_exited_cleanly=False)
                code = self._process.returncode
                raise self._startup_failure(f"exited with code {code} while starting", log_start)
            time.sleep(0.05)
        self.kill()
        raise self._startup_failure(
            f"did not log {READY_LINE.decode()!r} within {self.startup_timeout}s", log_start
        )

    def _startup_failure(self, what: str, log_start: int) -> KafkaUnavailable:
        """A failed start's error: its ERROR and Caused-by lines, then the log tail."""
        with open(self.log_path, "rb") as log:
            log.seek(log_start)
            lines = log.read().decode(errors="replace").splitlines()
        causes = (" ERROR ", " FATAL ", "Caused by: ")
        errors = [line for line in lines if any(cause in line for cause in causes)][:8]
        shown = [*errors, "[...]", *lines[-25:]] if errors else lines[-40:]
        return KafkaUnavailable(f"Apache Kafka {what} (log {self.log_path}):\n" + "\n".join(shown))


def _properties_text(properties: Mapping[str, str]) -> str:
    """A Java .properties file (values here never need escaping beyond what they are)."""
    return "".join(f"{key}={value}\n" for key, value in properties.items())


__all__ = [
    "KAFKA_VERSION",
    "ApacheKafka",
    "KafkaNotInstalled",
    "KafkaUnavailable",
    "default_kafka_home",
    "ensure_kafka_jars",
    "java_executable",
    "new_cluster_id",
]
