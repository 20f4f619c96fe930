"""The Grafana dashboard queries only metrics (and labels) that the runtime exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_metrics import Echo, bound_metrics, feed

DASHBOARD = Path(__file__).parent.parent / "dashboards" / "golem-actors.json"
#: Grafana's variables, replaced the way Grafana would before a query reaches Prometheus.
VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$service": ".*"}

_METRIC = re.compile(r"\b((?:golem|process)_[a-zA-Z0-9_]+)\b")
_SELECTOR = re.compile(r"\b((?:golem|process)_[a-zA-Z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\bby\s*\(([^)]*)\)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)")


def _targets(panels: list[dict[str, Any]]) -> list[str]:
    exprs: list[str] = []
    for panel in panels:
        exprs += [t["expr"] for t in panel.get("targets", [])]
        exprs += _targets(panel.get("panels", []))
    return exprs


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard (panels and variables), variables substituted."""
    document = json.loads(DASHBOARD.read_text())
    exprs = _targets(document["panels"])
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            # Grafana's label_values(metric, label) asks Prometheus for the label's values.
            exprs.append(re.sub(r"label_values\((.+), *(\w+)\)", r"group by (\2) (\1)", text))
    out = []
    for expr in exprs:
        query = expr
        for name, value in VARIABLES.items():
            query = query.replace(name, value)
        assert "$" not in query, f"an unknown variable in {expr}"
        out.append(query)
    return out


def exported_labels() -> dict[str, set[str]]:
    """Sample name -> its label names, from a metrics exposition fed one of every event."""
    with bound_metrics() as (metrics, rt, _):
        echo = Echo.start(rt)  # a live actor, so the per-role families have samples
        try:
            assert echo.ask("hi", timeout=10) == "HI"
            feed(rt)
            text = generate_latest(metrics.registry).decode()
        finally:
            echo.stop(timeout=10)
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def test_every_queried_metric_exists() -> None:
    exported = exported_labels()
    queries = dashboard_queries()
    used = {name for expr in queries for name in _METRIC.findall(expr)}
    assert len(queries) >= 30
    assert sorted(used - set(exported)) == []
    # Every family the runtime defines is on the dashboard (build info aside).
    families = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for name in exported
        if name.startswith("golem_") and not name.endswith("_created")
    }
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    assert sorted(families - shown - {"golem_build_info"}) == []


def test_every_queried_label_exists_on_its_metric() -> None:
    exported = exported_labels()
    for expr in dashboard_queries():
        for name, matchers in _SELECTOR.findall(expr):
            for label in _MATCHER.findall(matchers):
                assert label in exported[name], f"{name} has no label {label!r} ({expr})"
        for grouping, inner in _GROUPING.findall(expr):
            names = set(_METRIC.findall(inner))
            for label in (x.strip() for x in grouping.split(",") if x.strip()):
                assert names, expr
                assert all(label in exported[n] for n in names), f"no {label!r} in {expr}"


def test_the_checks_catch_a_typo() -> None:
    exported = exported_labels()
    assert "golem_service_instance" not in exported  # a typo'd name would be reported
    assert "provider_id" not in exported["golem_service_instances"]
