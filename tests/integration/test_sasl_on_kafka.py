"""Security for real, on Apache Kafka's SASL_SSL listener (SCRAM-SHA-512, a CA file): the
worker and every client connect with the right password, and fail fast and clearly with a
wrong one, never printing it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from fraudstream.local.apache_kafka import ApacheKafka
from fraudstream.local.ports import free_port
from tests.conftest import Pipeline
from tests.integration.test_worker import SEED

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WRONG = "not-the-password-0f3a"
#: A client that cannot log in must give up in seconds, not retry for minutes.
GIVE_UP_WITHIN_SECONDS = 60


def sasl_env(kafka: ApacheKafka, password: str, tmp_path: Path) -> dict[str, str]:
    return {
        "FRAUDSTREAM_BROKER_URL": f"kafka://{kafka.sasl_bootstrap}",
        "FRAUDSTREAM_BROKER_SECURITY_PROTOCOL": "SASL_SSL",
        "FRAUDSTREAM_BROKER_SASL_MECHANISM": "SCRAM-SHA-512",
        "FRAUDSTREAM_BROKER_SASL_USERNAME": kafka.username,
        "FRAUDSTREAM_BROKER_SASL_PASSWORD": password,
        "FRAUDSTREAM_BROKER_SSL_CAFILE": str(kafka.ca_file),
        "FRAUDSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FRAUDSTREAM_WEB_PORT": str(free_port()),
    }


def test_the_worker_reads_and_alerts_over_sasl_ssl(
    kafka: ApacheKafka, pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    env = sasl_env(kafka, kafka.password, tmp_path)
    pipeline = pipeline_factory(**{k: v for k, v in env.items() if k != "FRAUDSTREAM_WEB_PORT"})
    worker = pipeline.start_worker()
    pipeline.send_json([SEED])  # the test's own producer uses the PLAINTEXT listener
    worker.wait_processed(1)
    [(key, alert)] = pipeline.read(pipeline.alerts_topic, expected=1)
    assert key == b"12345" and alert["amount"] == 15000
    log = worker.log_path.read_text()
    assert kafka.password not in log
    assert alert["reasons"][0]["version"] == 1  # the rules came over SASL_SSL too

    listed = subprocess.run(
        [sys.executable, "-m", "fraudstream", "rules", "list"],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=GIVE_UP_WITHIN_SECONDS,
    )
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [
        "amount_threshold",
        "habit_spike",
        "unfamiliar_place",
        "user_deviation",
    ]


def test_evaluate_runs_its_stream_through_a_worker_over_sasl_ssl(
    kafka: ApacheKafka, tmp_path: Path
) -> None:
    env = {**os.environ, **sasl_env(kafka, kafka.password, tmp_path)}
    command = ["-m", "fraudstream", "evaluate", "--json", "--count", "1500", "--users", "100"]
    done = subprocess.run(
        [sys.executable, *command, "--rate", "1000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = orjson.loads(done.stdout)["runs"]["noLabels"]
    print(f"evaluate over SASL_SSL: decisions={run['decisions']}", run["wholeStream"]["alerts"])
    assert run["decisions"] == run["wholeStream"]["transactions"] == 1500
    assert run["wholeStream"]["recallByScenario"]["large_amount"] == 1.0
    assert kafka.password not in done.stdout + done.stderr


COMMANDS = {
    "worker": ["-m", "fraudstream", "worker", "-l", "warn"],
    "tail": ["-m", "fraudstream", "tail", "--max", "1", "--idle-timeout", "3"],
    "replay-dlq": ["-m", "fraudstream", "replay-dlq", "--dry-run"],
    "label": ["-m", "fraudstream", "label", "tx-1", "--user", "u1"],
    "producer": ["-m", "producer", "--count", "3"],
    "rules": ["-m", "fraudstream", "rules", "list"],
    "evaluate": ["-m", "fraudstream", "evaluate", "--count", "100"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_wrong_password_is_a_clear_quick_failure_that_never_shows_it(
    kafka: ApacheKafka, tmp_path: Path, command: str
) -> None:
    env = {**os.environ, **sasl_env(kafka, WRONG, tmp_path)}
    done = subprocess.run(
        [sys.executable, *COMMANDS[command]],
        env=env,
        capture_output=True,
        text=True,
        timeout=GIVE_UP_WITHIN_SECONDS,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-2000:]
    assert "authentication failed" in output, output[-2000:]
    assert WRONG not in output
