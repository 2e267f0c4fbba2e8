"""The Grafana dashboard as data: load it, list its InfluxQL queries, render them like Grafana.

The dashboard (``grafana-dashboard.json``, copied to ``grafana/dashboards/fraudstream.json`` for
provisioning) queries InfluxDB with raw InfluxQL. This module lets tests run exactly those
queries against a real InfluxDB without Grafana: :func:`panel_queries` lists every panel's
queries and :func:`render_query` substitutes the variables the way Grafana 10/11 does for the
InfluxDB data source:

* ``$timeFilter`` -> ``time >= <from>ms and time <= <to>ms`` (Grafana's backend, absolute range).
* ``$__interval`` -> e.g. ``1m``; ``$__interval_ms`` -> e.g. ``60000``.
* ``$userId``, ``${userId}``, ``[[userId]]`` and ``${userId:regex}`` -> the selected users in
  Grafana's *regex* format: each value regex-escaped, several joined as ``(a|b)``, one value
  alone. "All" is the variable's custom ``allValue`` (``.*``), inserted unescaped, as Grafana
  does for custom all values. (For a multi-value variable Grafana's InfluxDB data source escapes
  un-formatted references the same way; the dashboard itself always writes ``${userId:regex}``.)

Pure standard library: no Faust, no InfluxDB client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudstream.arguments import DURATION_UNITS_MS

#: The dashboard file at the repository root (absent from an installed wheel: pass a path).
DEFAULT_DASHBOARD_PATH = Path(__file__).resolve().parents[2] / "grafana-dashboard.json"
#: Variables Grafana defines itself (no entry in the dashboard's templating list).
BUILTIN_VARIABLES = frozenset(
    {
        "timeFilter",
        "__interval",
        "__interval_ms",
        "interval",
        "__range",
        "__range_s",
        "__range_ms",
        "__from",
        "__to",
        "__rate_interval",
        "__dashboard",
        "__org",
        "__user",
        "__timezone",
    }
)
#: Grafana's value for "All" in a variable's ``current`` state.
ALL_VALUE_MARKER = "$__all"

# Grafana's variable syntax: $name, [[name:format]], ${name:format} (a field path is not used).
_VARIABLE = re.compile(
    r"\$(?P<plain>\w+)"
    r"|\[\[(?P<bracket>\w+?)(?::(?P<bracket_fmt>\w+))?\]\]"
    r"|\$\{(?P<braced>\w+)(?::(?P<braced_fmt>[^}]+))?\}"
)
# Grafana's escapeRegex (@grafana/data): \ ^ $ * + ? . ( ) | [ ] { } /
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
#: Grafana's interval units: the commands' duration units and its year.
_UNIT_MS = {**DURATION_UNITS_MS, "y": 31_536_000_000}


@dataclass(frozen=True)
class PanelQuery:
    """One query (target) of one panel, as written in the dashboard (variables not replaced)."""

    panel_id: int | None
    panel_title: str
    panel_type: str
    ref_id: str
    query: str
    result_format: str
    datasource_uid: str | None


@dataclass(frozen=True)
class VariableUse:
    """One variable reference in a query: its name and format (None when not given)."""

    name: str
    format: str | None
    text: str


def load_dashboard(path: str | Path = DEFAULT_DASHBOARD_PATH) -> dict[str, Any]:
    """Read a dashboard JSON model (raises ``ValueError`` when it is not a JSON object)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a dashboard must be a JSON object")
    return document


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels nested inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every InfluxQL query of every panel, in dashboard order (rows have none).

    A target's datasource uid is its own, else its panel's. Raises ``ValueError`` for a target
    that is not a raw InfluxQL query (``rawQuery`` true and a non-empty ``query``): the tests run
    each query as written, and a query built by Grafana's visual editor has no text to run.
    """
    queries: list[PanelQuery] = []
    for panel in iter_panels(dashboard):
        panel_ds = (panel.get("datasource") or {}).get("uid")
        for target in panel.get("targets", []):
            title = str(panel.get("title", ""))
            ref_id = str(target.get("refId", ""))
            text = target.get("query")
            if not target.get("rawQuery") or not isinstance(text, str) or not text.strip():
                raise ValueError(f"panel {title!r} target {ref_id!r}: not a raw InfluxQL query")
            queries.append(
                PanelQuery(
                    panel_id=panel.get("id"),
                    panel_title=title,
                    panel_type=str(panel.get("type", "")),
                    ref_id=ref_id,
                    query=text,
                    result_format=str(target.get("resultFormat", "time_series")),
                    datasource_uid=(target.get("datasource") or {}).get("uid", panel_ds),
                )
            )
    return queries


def template_variables(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The dashboard's template variables by name."""
    return {var["name"]: var for var in dashboard.get("templating", {}).get("list", [])}


def variable_uses(query: str) -> list[VariableUse]:
    """Every variable reference in a query, in order (``$x``, ``[[x]]``, ``${x}``, ``${x:fmt}``)."""
    uses = []
    for match in _VARIABLE.finditer(query):
        name = match.group("plain") or match.group("bracket") or match.group("braced")
        fmt = match.group("bracket_fmt") or match.group("braced_fmt")
        uses.append(VariableUse(name=name, format=fmt, text=match.group(0)))
    return uses


def escape_regex(value: str) -> str:
    """Escape a value for a regex exactly as Grafana's ``escapeRegex`` does (``/`` included)."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def format_regex(values: Sequence[str]) -> str:
    """Grafana's ``regex`` format: one value escaped, several as ``(a|b|c)``."""
    if isinstance(values, str):
        return escape_regex(values)
    if not values:
        raise ValueError("no value selected (Grafana needs at least one value or All)")
    escaped = [escape_regex(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interval_ms(interval: str) -> int:
    """Milliseconds of a Grafana interval such as ``10s``, ``1m``, ``500ms``."""
    match = _INTERVAL.match(interval.strip())
    if match is None:
        raise ValueError(f"not a Grafana interval: {interval!r}")
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)])


def time_filter(start_ms: int, end_ms: int) -> str:
    """``$timeFilter`` for an absolute range, as Grafana's backend writes it."""
    if end_ms < start_ms:
        raise ValueError("end_ms is before start_ms")
    return f"time >= {int(start_ms)}ms and time <= {int(end_ms)}ms"


def render_query(
    query: str,
    *,
    start_ms: int,
    end_ms: int,
    user_ids: Sequence[str] | None = None,
    interval: str = "1m",
    all_value: str = ".*",
    variables: Mapping[str, str | Sequence[str]] | None = None,
) -> str:
    """Substitute the dashboard's variables in one query; the result is ready for ``/query``.

    ``user_ids`` None means "All" (``all_value``, unescaped, as Grafana inserts a custom all
    value); a list selects those users. ``variables`` gives values for any other variable
    (a string is used as is, a sequence like a multi-value selection). ``${name:raw}``,
    ``:regex``, ``:pipe``, ``:csv``, ``:singlequote`` and ``:doublequote`` are understood.
    Raises ``ValueError`` for a variable without a value or an unknown format, so a query that
    uses an undefined variable cannot pass for a valid one.
    """
    if isinstance(user_ids, str):
        raise TypeError("user_ids must be a list of ids (or None for All), not a string")
    interval_value = interval.strip()
    builtins: dict[str, str] = {
        "timeFilter": time_filter(start_ms, end_ms),
        "__interval": interval_value,
        "interval": interval_value,
        "__interval_ms": str(interval_ms(interval_value)),
        "__from": str(int(start_ms)),
        "__to": str(int(end_ms)),
        "__range_ms": str(int(end_ms) - int(start_ms)),
        "__range_s": str((int(end_ms) - int(start_ms)) // 1000),
        "__range": f"{(int(end_ms) - int(start_ms)) // 1000}s",
    }
    selections: dict[str, str | Sequence[str] | None] = {"userId": user_ids}
    selections.update(variables or {})
    alls: dict[str, str] = {"userId": all_value}

    def substitute(match: re.Match[str]) -> str:
        name = match.group("plain") or match.group("bracket") or match.group("braced")
        fmt = match.group("bracket_fmt") or match.group("braced_fmt")
        if name in builtins and name not in selections:
            return builtins[name]
        if name not in selections:
            raise ValueError(f"no value for variable {name!r} in {match.group(0)!r}")
        value = selections[name]
        if value is None:
            if name not in alls:
                raise ValueError(f"variable {name!r} has no All value")
            return alls[name]  # custom all value: Grafana skips formatting
        return _format(name, value, fmt)

    return _VARIABLE.sub(substitute, query)


def _format(name: str, value: str | Sequence[str], fmt: str | None) -> str:
    """One variable value in a Grafana format (no format: regex, as for multi-value vars)."""
    values = [value] if isinstance(value, str) else list(value)
    fmt = (fmt or "regex").lower()
    if fmt == "regex":
        return format_regex(values)
    if fmt == "raw":
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise ValueError(f"format {fmt!r} of variable {name!r} is not supported here")
