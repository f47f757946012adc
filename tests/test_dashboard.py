"""The Grafana dashboard (deploy/grafana/openid-gateway.json): the shape we rely on, and only metrics we export.

A metric renamed in gateway/observe/metrics.py without the dashboard following would
leave a panel silently empty: every query's metric names are parsed out of its
PromQL and compared with what the gateway's registry exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway.observe import metrics

DASHBOARD = Path(__file__).parents[1] / "deploy" / "grafana" / "openid-gateway.json"

TARGET = {
    "type": "object",
    "required": ["refId", "expr", "datasource"],
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "expr": {"type": "string", "minLength": 1},
        "legendFormat": {"type": "string"},
        "datasource": {"type": "object", "required": ["type", "uid"],
                       "properties": {"type": {"const": "prometheus"}, "uid": {"const": "${datasource}"}}},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "templating": {"type": "object", "required": ["list"], "properties": {"list": {"type": "array", "contains": {
            "type": "object", "required": ["name", "type"],
            "properties": {"name": {"const": "datasource"}, "type": {"const": "datasource"}}}}}},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["id", "type", "title", "gridPos", "targets"],
            "properties": {
                "id": {"type": "integer"},
                "type": {"enum": ["timeseries", "stat"]},
                "title": {"type": "string", "minLength": 1},
                "gridPos": {"type": "object", "required": ["x", "y", "w", "h"], "properties": {
                    "x": {"type": "integer", "minimum": 0, "maximum": 23},
                    "w": {"type": "integer", "minimum": 1, "maximum": 24},
                    "y": {"type": "integer", "minimum": 0}, "h": {"type": "integer", "minimum": 1}}},
                "targets": {"type": "array", "minItems": 1, "items": TARGET},
            },
        }},
    },
}

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
                "unless", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers outside label matchers, ranges, strings and
    grouping clauses that are neither functions (followed by "(") nor keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings first: they may hold braces
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end():].lstrip().startswith("(") or match.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def test_the_dashboard_has_the_shape_grafana_and_we_rely_on() -> None:
    jsonschema.validate(dashboard(), SCHEMA)
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard()["panels"]:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_the_schema_refuses_a_dashboard_without_queries() -> None:
    broken = dashboard()
    broken["panels"][0]["targets"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_every_query_names_only_metrics_the_gateway_exports() -> None:
    exported = metrics.exported_names()
    for expr in exprs():
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{expr!r} reads {sorted(names - exported)}, which the gateway does not export"


def test_every_metric_the_gateway_exports_has_a_panel() -> None:
    read = {name for expr in exprs() for name in metric_names(expr)}
    families = {family.name for family in metrics.REGISTRY.collect()}
    missing = {f for f in families if not any(name.startswith(f) for name in read)}
    assert not missing, f"no panel shows {sorted(missing)}"


def test_the_name_parser_catches_a_renamed_metric() -> None:
    renamed = 'sum by (route) (rate(gateway_request_total{status=~"5.."}[$__rate_interval]))'
    assert metric_names(renamed) == {"gateway_request_total"}
    assert "gateway_request_total" not in metrics.exported_names()
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / max(b)") == {"a_bucket", "b"}
