"""The chart's termination timing agrees with the proxy's drain deadline, and its optional PrometheusRule alerts
on the never-forward counter the proxy really exposes (issue 15)."""

from __future__ import annotations

import re
from typing import Any

import helm_python
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from proxy.metrics import Metrics
from proxy.settings import Limits

from .manifests import CHART_DIR, kube_versions, load_values, render, render_raw, schema_errors, sidecar_notes


def pod_and_container(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    [deployment] = [m.obj for m in render(values) if m.kind == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def drain_of(container: dict[str, Any]) -> int:
    [value] = [e["value"] for e in container["env"] if e["name"] == "TESTMODE_PROXY_DRAIN_TIMEOUT"]
    return int(value)


def test_the_charts_drain_deadline_is_the_proxys_default() -> None:
    _, container = pod_and_container({})
    assert drain_of(container) == Limits().drain_timeout == 20


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"preStopSleepSeconds": 0, "drainTimeoutSeconds": 20, "terminationGracePeriodSeconds": 20},
                     id="no-pause"),
        pytest.param({"preStopSleepSeconds": 10, "drainTimeoutSeconds": 45, "terminationGracePeriodSeconds": 60},
                     id="longer-drain"),
    ],
)
def test_the_grace_period_covers_the_prestop_pause_and_the_drain(values: dict[str, Any]) -> None:
    pod, container = pod_and_container(values)
    pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert pause == values.get("preStopSleepSeconds", 5)
    assert pod["terminationGracePeriodSeconds"] >= pause + drain_of(container)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"terminationGracePeriodSeconds": 24}, id="one-second-short"),
        pytest.param({"drainTimeoutSeconds": 60}, id="drain-past-the-default-grace"),
        pytest.param({"preStopSleepSeconds": 30}, id="pause-past-the-default-grace"),
    ],
)
def test_a_grace_period_shorter_than_pause_plus_drain_is_refused(values: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"terminationGracePeriodSeconds \(\d+\) must be at least"):
        render(values)


def test_the_sidecar_carries_the_drain_deadline_and_the_notes_say_what_grace_period_the_pod_needs() -> None:
    values = {"preStopSleepSeconds": 5, "drainTimeoutSeconds": 25}
    assert drain_of(sidecar_notes(values).container) == 25
    notes = render_raw({**values, "mode": "sidecar"})[f"{CHART_DIR.name}/templates/NOTES.txt"]
    assert "terminationGracePeriodSeconds of at least 30 s" in notes


def test_bad_termination_and_alerting_values_are_refused_by_the_schema() -> None:
    for values in ({"drainTimeoutSeconds": -1}, {"drainTimeoutSeconds": "20s"}, {"prometheusRule": {"window": "soon"}},
                   {"prometheusRule": {"severity": ""}}, {"prometheusRule": {"enable": True}}):
        with pytest.raises(helm_python.HelmValuesError):
            render(values)


def rules(values: dict[str, Any]) -> list[dict[str, Any]]:
    [rule] = [m.obj for m in render(values) if m.kind == "PrometheusRule"]
    [group] = rule["spec"]["groups"]
    found: list[dict[str, Any]] = group["rules"]
    return found


def test_no_prometheus_rule_unless_enabled() -> None:
    assert [m for m in render({}) if m.kind == "PrometheusRule"] == []
    assert [m for m in render({"mode": "sidecar"}) if m.kind == "PrometheusRule"] == []


@pytest.mark.parametrize("mode", ["gateway", "sidecar"])
def test_the_alert_watches_the_never_forward_counter_the_proxy_exposes(mode: str) -> None:
    [alert] = rules({"mode": mode, "prometheusRule": {"enabled": True}})
    assert alert["alert"] == "TestmodeProxyForwardRefused"
    assert alert["labels"] == {"severity": "critical"}
    assert "for" not in alert  # the first refusal is enough
    expr = alert["expr"]
    # Any value above 0 (a series that appears at 1), or an increase within the window (after a restart reset).
    assert re.search(r"\(testmode_proxy_forward_refusals_total\{namespace=\"testmode\"\}\) > 0", expr)
    assert re.search(r"increase\(testmode_proxy_forward_refusals_total\{namespace=\"testmode\"\}\[1h\]\)\) > 0", expr)

    # The metric and the labels the alert groups by are what the proxy writes on /metrics.
    metrics = Metrics(CollectorRegistry())
    metrics.forward_refusal("sent", "test_mode")
    exposition = generate_latest(metrics.registry).decode()
    assert 'testmode_proxy_forward_refusals_total{policy="sent",reason="test_mode"} 1.0' in exposition
    for name in set(re.findall(r"testmode_proxy_\w+", expr)):
        assert f"\n{name}{{" in exposition, name
    grouped = set(re.findall(r"by \(([^)]*)\)", expr))
    assert grouped == {"namespace, pod, policy, reason"}


def test_the_rules_labels_namespace_window_and_extra_rules_come_from_values() -> None:
    extra = {"alert": "Extra", "expr": "vector(1)", "for": "5m", "labels": {"severity": "info"}}
    values = {"prometheusRule": {"enabled": True, "namespace": "monitoring", "labels": {"release": "kps"},
                                 "severity": "page", "window": "6h", "additionalRules": [extra]}}
    [rule] = [m.obj for m in render(values) if m.kind == "PrometheusRule"]
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kps"
    alert, added = rule["spec"]["groups"][0]["rules"]
    assert alert["labels"] == {"severity": "page"}
    assert "[6h]" in alert["expr"] and 'namespace="testmode"' in alert["expr"]  # the pods' namespace, not the rule's
    assert added == extra


def test_the_ci_scenario_with_a_rule_validates() -> None:
    values = load_values(CHART_DIR / "ci" / "servicemonitor-values.yaml")
    [rule] = [m for m in render(values) if m.kind == "PrometheusRule"]
    assert schema_errors(rule, kube_versions()) == []
    broken = {**values, "prometheusRule": {**values["prometheusRule"], "additionalRules": [{"alert": "NoExpr"}]}}
    [bad] = [m for m in render(broken) if m.kind == "PrometheusRule"]
    assert schema_errors(bad, kube_versions()) != []  # the CRD schema is checked, not skipped
