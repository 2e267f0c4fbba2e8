"""The Grafana dashboard, its provisioning and the compose stack, checked without any server.

Also unit tests of :mod:`tests.support.dashboard` (variable substitution as Grafana does it).
Docker and Grafana are not needed: the YAML files are read as text (PyYAML is not a dependency;
when it is installed, :func:`test_yaml_files_parse` also parses them).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml  # a dev dependency: a missing one must fail, not skip
from hypothesis import given
from hypothesis import strategies as st

from tests.support.dashboard import (
    BUILTIN_VARIABLES,
    DEFAULT_DASHBOARD_PATH,
    escape_regex,
    format_regex,
    interval_ms,
    iter_panels,
    load_dashboard,
    panel_queries,
    render_query,
    template_variables,
    time_filter,
    variable_uses,
)

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "grafana-dashboard.json"
PROVISIONED_DASHBOARD = ROOT / "grafana" / "dashboards" / "fraudstream.json"
DATASOURCE_YAML = ROOT / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
PROVIDER_YAML = ROOT / "grafana" / "provisioning" / "dashboards" / "fraudstream.yaml"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
BUCKET = "fraud-detection-bucket"
DATASOURCE_UID = "influxdb-fraudstream"
USER_FILTER = '"userId" =~ /^${userId:regex}$/'
REQUIRED_PANELS = {
    "Suspicious transactions per user": "bargauge",
    "Total suspicious amount": "stat",
    "Suspicious transactions": "stat",
    "Suspicious share": "stat",
    "Alerts over time by reason": "timeseries",
    "Top users by suspicious amount": "table",
    "Score distribution": "histogram",
    "Latest alerts": "table",
    "Worker throughput": "timeseries",
    "Consumer lag": "timeseries",
    "Processing latency p50/p95/p99": "timeseries",
    "Alerts by rule and version": "timeseries",
}
START_MS = 1_733_270_400_000  # 2024-12-04T00:00:00Z
END_MS = START_MS + 86_400_000


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return load_dashboard(DASHBOARD)


def yaml_scalar(text: str, key: str) -> list[str]:
    """Values of ``key: value`` lines (comments and quotes stripped) in a YAML text."""
    values = []
    for match in re.finditer(rf"^\s*-?\s*{re.escape(key)}:\s*(.*?)\s*$", text, flags=re.M):
        value = re.sub(r"\s+#.*$", "", match.group(1)).strip()
        values.append(value.strip("\"'"))
    return values


def compose_services() -> dict[str, str]:
    """The text of each service block of docker-compose.yml, by service name."""
    lines = COMPOSE.read_text().splitlines()
    start = lines.index("services:") + 1
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[start:]:
        if line and not line.startswith((" ", "#")):
            break  # next top-level key
        header = re.match(r"^  ([A-Za-z0-9_-]+):\s*$", line)
        if header:
            current = blocks.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(block) for name, block in blocks.items()}


def depends_on(service_text: str) -> dict[str, str | None]:
    """``depends_on`` of a service block: dependency -> condition (None in the short form)."""
    lines = service_text.splitlines()
    result: dict[str, str | None] = {}
    for i, line in enumerate(lines):
        if line.strip() != "depends_on:":
            continue
        indent = len(line) - len(line.lstrip())
        name = None
        for sub in lines[i + 1 :]:
            if sub.strip() and len(sub) - len(sub.lstrip()) <= indent:
                break
            item = re.match(r"^\s*-\s*([A-Za-z0-9_-]+)\s*$", sub)
            key = re.match(r"^\s*([A-Za-z0-9_-]+):\s*$", sub)
            cond = re.match(r"^\s*condition:\s*(\S+)\s*$", sub)
            if item:
                result[item.group(1)] = None
            elif cond and name is not None:
                result[name] = cond.group(1)
            elif key:
                name = key.group(1)
                result[name] = None
    return result


def env_example() -> dict[str, str]:
    """Assignments in .env.example (comments ignored)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


# --- the dashboard ------------------------------------------------------------------------------


def test_dashboard_is_json_with_a_stable_uid(dashboard: dict) -> None:
    assert dashboard["uid"] == "fraudstream"
    assert dashboard["title"] == "fraudstream — fraud by user"
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["time"] == {"from": "now-24h", "to": "now"}
    assert "transaction time" in dashboard["description"].lower()
    assert DEFAULT_DASHBOARD_PATH == DASHBOARD


def test_the_two_dashboard_copies_are_identical() -> None:
    assert DASHBOARD.read_bytes() == PROVISIONED_DASHBOARD.read_bytes(), (
        "grafana/dashboards/fraudstream.json must be a copy of grafana-dashboard.json"
    )


def test_required_panels_exist_with_their_types(dashboard: dict) -> None:
    panels = {p["title"]: p["type"] for p in iter_panels(dashboard)}
    for title, kind in REQUIRED_PANELS.items():
        assert panels.get(title) == kind, f"panel {title!r} ({kind}) missing or of another type"


def test_panel_ids_are_unique_and_panels_fit_the_grid(dashboard: dict) -> None:
    panels = list(iter_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_every_panel_and_variable_uses_the_provisioned_datasource(dashboard: dict) -> None:
    assert yaml_scalar(DATASOURCE_YAML.read_text(), "uid") == [DATASOURCE_UID]
    expected = {"type": "influxdb", "uid": DATASOURCE_UID}
    for panel in iter_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == expected, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", expected) == expected, panel["title"]
    for variable in template_variables(dashboard).values():
        if variable["type"] == "query":
            assert variable["datasource"] == expected
    assert {q.datasource_uid for q in panel_queries(dashboard)} == {DATASOURCE_UID}


def test_every_query_is_raw_influxql(dashboard: dict) -> None:
    queries = panel_queries(dashboard)
    titled = {q.panel_title for q in queries}
    assert set(REQUIRED_PANELS) <= titled
    for q in queries:
        assert q.query.startswith("SELECT "), q.panel_title
        assert q.result_format in {"time_series", "table"}, q.panel_title
        assert "$timeFilter" in q.query, f"{q.panel_title}: ignores the time picker"


def test_every_variable_used_is_defined_or_built_in(dashboard: dict) -> None:
    defined = set(template_variables(dashboard)) | BUILTIN_VARIABLES
    for q in panel_queries(dashboard):
        for use in variable_uses(q.query):
            assert use.name in defined, f"{q.panel_title}: {use.text} is not defined"


def test_alert_and_transaction_queries_filter_by_the_selected_users(dashboard: dict) -> None:
    for q in panel_queries(dashboard):
        if any(f'"{m}"' in q.query for m in ("fraud_alerts", "transactions", "rule_hits")):
            assert USER_FILTER in q.query, q.panel_title
        else:
            assert '"worker_stats"' in q.query, q.panel_title


def test_user_variable_lists_users_and_offers_all(dashboard: dict) -> None:
    variable = template_variables(dashboard)["userId"]
    assert variable["type"] == "query"
    assert variable["query"] == 'SHOW TAG VALUES FROM "transactions" WITH KEY = "userId"'
    assert variable["includeAll"] is True
    assert variable["multi"] is True
    # All = ".*": one short regex instead of every user id (Grafana inserts it unescaped).
    assert variable["allValue"] == ".*"
    assert variable["current"]["value"] == ["$__all"]


def test_every_rendered_query_has_no_variable_left(dashboard: dict) -> None:
    for q in panel_queries(dashboard):
        for users in (None, ["u1"], ["u1", "a/b.c"]):
            text = render_query(q.query, start_ms=START_MS, end_ms=END_MS, user_ids=users)
            assert variable_uses(text) == [], (q.panel_title, text)
            assert f"time >= {START_MS}ms and time <= {END_MS}ms" in text


# --- provisioning -------------------------------------------------------------------------------


def test_datasource_is_influxql_with_a_token_header_from_the_environment() -> None:
    text = DATASOURCE_YAML.read_text()
    assert yaml_scalar(text, "type") == ["influxdb"]
    assert yaml_scalar(text, "version") == ["InfluxQL"]
    assert yaml_scalar(text, "dbName") == [BUCKET]
    assert yaml_scalar(text, "httpHeaderName1") == ["Authorization"]
    assert yaml_scalar(text, "httpHeaderValue1") == ["Token ${INFLUX_TOKEN}"]
    assert re.search(r"^    secureJsonData:\n      httpHeaderValue1:", text, flags=re.M)
    assert yaml_scalar(text, "url") == ["http://influxdb:8086"]
    # Grafana reads the token from its own environment: compose must pass it.
    assert "INFLUX_TOKEN: ${INFLUX_TOKEN:?" in compose_services()["grafana"]


def test_dashboard_provider_path_is_where_compose_mounts_the_dashboards() -> None:
    (path,) = yaml_scalar(PROVIDER_YAML.read_text(), "path")
    grafana = compose_services()["grafana"]
    assert f"- ./grafana/dashboards:{path}:ro" in grafana
    assert "- ./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    (home,) = yaml_scalar(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home == f"{path}/{PROVISIONED_DASHBOARD.name}"


# --- compose ------------------------------------------------------------------------------------


def test_grafana_admin_password_comes_from_the_environment_without_default() -> None:
    grafana = compose_services()["grafana"]
    (value,) = yaml_scalar(grafana, "GF_SECURITY_ADMIN_PASSWORD")
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", value), value
    assert env_example()["GRAFANA_ADMIN_PASSWORD"] == "", "the example must not ship a password"


def test_every_compose_variable_is_in_env_example() -> None:
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))
    assert used, "no variables found: the pattern is wrong"
    missing = used - set(env_example())
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_secrets_have_no_defaults_in_compose() -> None:
    text = COMPOSE.read_text()
    for secret in ("INFLUX_TOKEN", "INFLUX_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        uses = re.findall(rf"\$\{{{secret}([^}}]*)\}}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), f"{secret} must be required: {uses}"


def test_services_have_healthchecks_and_ordered_dependencies() -> None:
    services = compose_services()
    assert {"kafka", "kafka-init", "influxdb", "grafana", "worker", "producer"} <= set(services)
    for name in ("kafka", "influxdb", "grafana", "worker"):
        assert "    healthcheck:" in services[name], f"{name} has no healthcheck"
    assert depends_on(services["kafka-init"]) == {"kafka": "service_healthy"}
    assert depends_on(services["grafana"]) == {"influxdb": "service_healthy"}
    assert depends_on(services["worker"]) == {
        "kafka-init": "service_completed_successfully",
        "influxdb": "service_healthy",
    }
    assert depends_on(services["producer"]) == {"kafka-init": "service_completed_successfully"}
    assert 'profiles: ["producer"]' in services["producer"]


def test_worker_service_talks_to_the_compose_kafka_and_influxdb() -> None:
    worker = compose_services()["worker"]
    expected = {
        "FRAUDSTREAM_BROKER_URL": "kafka://kafka:9092",
        "FRAUDSTREAM_WEB_HOST": "0.0.0.0",
        "FRAUDSTREAM_INFLUX_ENABLED": "true",
        "FRAUDSTREAM_INFLUX_URL": "http://influxdb:8086",
        "FRAUDSTREAM_INFLUX_BUCKET": BUCKET,
        "FRAUDSTREAM_INFLUX_ORG": "fraud-detection-org",
    }
    for key, value in expected.items():
        assert yaml_scalar(worker, key) == [value], key
    assert "FRAUDSTREAM_INFLUX_TOKEN: ${INFLUX_TOKEN:?" in worker
    assert "http://localhost:6066/health" in worker
    influxdb = compose_services()["influxdb"]
    assert yaml_scalar(influxdb, "DOCKER_INFLUXDB_INIT_BUCKET") == [BUCKET]
    assert "- ./docker/influxdb-init:/docker-entrypoint-initdb.d:ro" in influxdb


def test_init_scripts_exist_and_are_executable() -> None:
    kafka_init = ROOT / "docker" / "kafka-init.sh"
    dbrp = ROOT / "docker" / "influxdb-init" / "10-dbrp.sh"
    for script in (kafka_init, dbrp):
        assert os.access(script, os.X_OK), f"{script} must be executable"
    text = kafka_init.read_text()
    for topic in ("transactions-input", "fraud-alerts", "transactions-dlq", "fraud-alerts-shadow"):
        assert f"create {topic} " in text
    assert "create fraudstream-rules 1 --config cleanup.policy=compact" in text
    assert "--if-not-exists" in text
    dbrp_text = dbrp.read_text()
    assert "influx v1 dbrp create" in dbrp_text
    assert "--rp autogen" in dbrp_text and "--default" in dbrp_text


def test_dockerfile_runs_the_worker_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert re.search(r"^USER (?!root)\w+", text, flags=re.M)
    assert "EXPOSE 6066" in text
    assert 'CMD ["fraudstream", "worker"]' in text
    assert "[dev]" not in text


def test_the_image_compiles_the_core_in_its_build_stage_and_ships_no_compiler() -> None:
    build, runtime = (ROOT / "Dockerfile").read_text().split("\nFROM python:3.11-slim\n")
    assert "ARG NATIVE=1" in build  # compiled unless built with NATIVE=0
    assert "/opt/fraudstream/bin/fraudstream native build" in build
    assert "pip uninstall -y mypy" in build
    assert "COPY --from=build /opt/fraudstream /opt/fraudstream" in runtime
    assert "PATH=/opt/fraudstream/bin:$PATH" in runtime
    for tool in ("gcc", "mypy", "apt-get"):
        assert tool not in runtime, tool


def test_yaml_files_parse() -> None:
    for path in (COMPOSE, DATASOURCE_YAML, PROVIDER_YAML):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
    compose = yaml.safe_load(COMPOSE.read_text())
    for name, service in compose["services"].items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert spec["condition"] in {"service_healthy", "service_completed_successfully"}, (
                name,
                dependency,
            )


# --- tests.support.dashboard: variable substitution -----------------------------------------------


def test_time_filter_and_intervals_are_rendered_like_grafana() -> None:
    query = "SELECT count(x) FROM m WHERE $timeFilter GROUP BY time($__interval) -- $__interval_ms"
    text = render_query(query, start_ms=1000, end_ms=2000, interval="10s")
    assert text == (
        "SELECT count(x) FROM m WHERE time >= 1000ms and time <= 2000ms GROUP BY time(10s) -- 10000"
    )
    assert time_filter(5, 5) == "time >= 5ms and time <= 5ms"
    with pytest.raises(ValueError):
        time_filter(2, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500ms", 500), ("10s", 10_000), ("1m", 60_000), ("1h", 3_600_000), ("1d", 86_400_000)],
)
def test_interval_ms(text: str, expected: int) -> None:
    assert interval_ms(text) == expected


def test_interval_ms_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        interval_ms("soon")


def test_all_users_is_the_unescaped_all_value() -> None:
    text = render_query(USER_FILTER, start_ms=0, end_ms=1, user_ids=None)
    assert text == '"userId" =~ /^.*$/'


def test_selected_users_are_regex_escaped_like_grafana() -> None:
    one = render_query(USER_FILTER, start_ms=0, end_ms=1, user_ids=["user-1"])
    assert one == '"userId" =~ /^user-1$/'
    several = render_query(USER_FILTER, start_ms=0, end_ms=1, user_ids=["a/b.c", "x (y)", "u*"])
    assert several == r'"userId" =~ /^(a\/b\.c|x \(y\)|u\*)$/'


def test_grafana_escape_set() -> None:
    # @grafana/data escapeRegex: \ ^ $ * + ? . ( ) | [ ] { } /  (not '-', not whitespace)
    assert escape_regex("\\^$*+?.()|[]{}/-_ a") == r"\\\^\$\*\+\?\.\(\)\|\[\]\{\}\/-_ a"


@pytest.mark.parametrize("reference", ["$userId", "${userId}", "[[userId]]", "${userId:regex}"])
def test_every_spelling_of_the_user_variable_renders_the_same(reference: str) -> None:
    text = render_query(f"/^{reference}$/", start_ms=0, end_ms=1, user_ids=["a", "b.c"])
    assert text == r"/^(a|b\.c)$/"


def test_other_formats_and_variables() -> None:
    query = "${v:pipe} ${v:csv} ${v:singlequote} ${v:doublequote} ${w:raw} $w"
    text = render_query(query, start_ms=0, end_ms=1, variables={"v": ["a", "b"], "w": "x.y"})
    assert text == "a|b a,b 'a','b' \"a\",\"b\" x.y x\\.y"


def test_undefined_variables_and_bad_selections_are_errors() -> None:
    with pytest.raises(ValueError, match="nope"):
        render_query("SELECT $nope", start_ms=0, end_ms=1)
    with pytest.raises(ValueError):
        render_query(USER_FILTER, start_ms=0, end_ms=1, user_ids=[])
    with pytest.raises(TypeError):
        render_query(USER_FILTER, start_ms=0, end_ms=1, user_ids="u1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format"):
        render_query("${userId:lucene}", start_ms=0, end_ms=1, user_ids=["u"])


def test_variable_uses_ignores_regex_anchors() -> None:
    uses = variable_uses(
        'WHERE $timeFilter AND "userId" =~ /^${userId:regex}$/ GROUP BY time($__interval)'
    )
    assert [(u.name, u.format) for u in uses] == [
        ("timeFilter", None),
        ("userId", "regex"),
        ("__interval", None),
    ]


def test_panel_queries_rejects_a_target_without_raw_influxql() -> None:
    board = {"panels": [{"title": "p", "targets": [{"refId": "A", "rawQuery": False}]}]}
    with pytest.raises(ValueError, match="raw InfluxQL"):
        panel_queries(board)


def test_panel_queries_include_panels_of_collapsed_rows() -> None:
    inner = {
        "title": "in",
        "type": "stat",
        "targets": [{"refId": "B", "rawQuery": True, "query": "SELECT 1"}],
    }
    board = {"panels": [{"title": "row", "type": "row", "collapsed": True, "panels": [inner]}]}
    (query,) = panel_queries(board)
    assert (query.panel_title, query.ref_id, query.query) == ("in", "B", "SELECT 1")


def test_load_dashboard_rejects_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError):
        load_dashboard(path)


@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5, unique=True),
    st.text(min_size=1, max_size=12),
)
def test_regex_matches_exactly_the_selected_users(users: list[str], other: str) -> None:
    pattern = re.compile(format_regex(users), flags=re.DOTALL)
    for user in users:
        assert pattern.fullmatch(user), (users, user)
    if other not in users:
        assert not pattern.fullmatch(other), (users, other)


def test_compose_runs_the_kafka_version_the_tests_run_on() -> None:
    pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    images = re.findall(r"image: apache/kafka:(\S+)", COMPOSE.read_text())
    assert images and set(images) == {version.group(1)}
    assert "create fraud-labels" in (ROOT / "docker" / "kafka-init.sh").read_text()
