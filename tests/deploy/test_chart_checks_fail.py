"""The chart checks can fail: each kind of mistake they exist for is made on purpose and must be caught.

Mistakes in values are passed as overrides; mistakes in templates are made in a temporary copy of the chart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python
import pytest

from .manifests import CHART_DIR, Manifest, kube_versions, lint_findings, render, schema_errors
from .references import reference_errors


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new, 1))


def all_schema_errors(manifests: list[Manifest]) -> list[str]:
    return [error for manifest in manifests for error in schema_errors(manifest, kube_versions())]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"replicaCount": "three"}, id="wrong-type"),
        pytest.param({"replicaCnt": 2}, id="misspelled-value"),
        pytest.param({"service": {"port": 70000}}, id="out-of-range"),
        pytest.param({"mode": "daemonset"}, id="unknown-mode"),
        pytest.param({"serviceMonitor": {"interval": "soon"}}, id="bad-duration"),
    ],
)
def test_values_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmValuesError):
        render(values)
    assert lint_findings(values) != []


def test_kubernetes_schema_catches_a_wrong_type_the_values_schema_lets_through() -> None:
    errors = all_schema_errors(render({"resources": {"limits": {"memory": ["256Mi"]}}}))
    assert any("resources.limits.memory" in error for error in errors), errors


def test_kubernetes_schema_catches_a_misspelled_field(chart_copy: Path) -> None:
    edit(chart_copy / "templates" / "_pod.tpl", "imagePullPolicy:", "imagePullPolicies:")
    errors = all_schema_errors(render({}, chart_dir=chart_copy))
    assert any("'imagePullPolicies' was unexpected" in error for error in errors), errors


def test_a_removed_api_version_of_a_built_in_kind_fails(chart_copy: Path) -> None:
    edit(chart_copy / "templates" / "poddisruptionbudget.yaml", "apiVersion: policy/v1", "apiVersion: policy/v1beta1")
    errors = all_schema_errors(render({"podDisruptionBudget": {"enabled": True}}, chart_dir=chart_copy))
    assert any("Couldn't find schema for kind PodDisruptionBudget" in error for error in errors), errors


def test_a_broken_template_fails_render_and_lint(chart_copy: Path) -> None:
    edit(chart_copy / "templates" / "service.yaml", "{{ .Values.service.type }}", "{{ .Values.service.type ")
    with pytest.raises(helm_python.HelmError):
        render({}, chart_dir=chart_copy)
    assert lint_findings({}, chart_dir=chart_copy) != []


def test_lint_reports_a_bad_chart_file(chart_copy: Path) -> None:
    edit(chart_copy / "Chart.yaml", "version: 0.1.0", "version: one")
    assert lint_findings({}, chart_dir=chart_copy) != []


def _drop_endpoints(obj: dict[str, Any]) -> None:
    del obj["spec"]["endpoints"]


def _misspell_endpoint_field(obj: dict[str, Any]) -> None:
    obj["spec"]["endpoints"][0]["intervall"] = obj["spec"]["endpoints"][0].pop("interval")


@pytest.mark.parametrize("damage", [_drop_endpoints, _misspell_endpoint_field])
def test_servicemonitor_crd_fields_are_checked(damage: Callable[[dict[str, Any]], None]) -> None:
    [monitor] = [m for m in render({"serviceMonitor": {"enabled": True}}) if m.kind == "ServiceMonitor"]
    assert schema_errors(monitor, kube_versions()) == []
    damage(monitor.obj)
    assert schema_errors(monitor, kube_versions()) != []


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("Service", ("spec", "selector", "app.kubernetes.io/name"), "other"),
        ("Service", ("spec", "ports", 0, "targetPort"), "https"),
        ("ServiceMonitor", ("spec", "endpoints", 0, "port"), "metrics"),
        ("HorizontalPodAutoscaler", ("spec", "scaleTargetRef", "name"), "other"),
        ("Deployment", ("spec", "template", "spec", "volumes", 0, "configMap", "name"), "other"),
        ("Deployment", ("spec", "template", "spec", "serviceAccountName"), "other"),
    ],
)
def test_broken_references_between_objects_are_caught(
    unguarded_chart: Path, kind: str, path: tuple[str | int, ...], value: str
) -> None:
    manifests = render({"serviceMonitor": {"enabled": True}, "autoscaling": {"enabled": True}}, unguarded_chart)
    assert reference_errors(manifests) == []
    [target] = [m.obj for m in manifests if m.kind == kind]
    node: Any = target
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert reference_errors(manifests) != []


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"replicaCount": 2}, id="two-replicas"),
        pytest.param({"autoscaling": {"enabled": True}}, id="autoscaling"),
        pytest.param({"replicaCount": 3, "autoscaling": {"enabled": True, "minReplicas": 3}}, id="both"),
    ],
)
def test_several_gateway_pods_are_refused_while_state_is_per_pod(values: dict[str, Any]) -> None:
    """Two pods behind one Service would split the SQLite state (shared/DESIGN.md): refused, and told why."""
    with pytest.raises(helm_python.HelmRenderError, match=r"replicaCount > 1 and autoscaling\.enabled are refused"):
        render(values)  # what `helm install` and `helm template` run (`helm lint` only logs a `fail`)
    render({**values, "mode": "sidecar"})  # a sidecar release renders no pods: nothing to refuse
    render({"replicaCount": 0})  # scaled to zero is one pod fewer, not one more


def test_every_value_is_documented() -> None:
    """Each value, or an object above it, has a bitnami-style `## @param` line, and no @param is stale."""
    text = (CHART_DIR / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+)", text, flags=re.MULTILINE))
    values = helm_python.values_from_yaml(text)

    def leaves(node: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, value in node.items():
            path = f"{prefix}{key}"
            if path not in documented and isinstance(value, dict) and value:
                out += leaves(value, f"{path}.")
            else:
                out.append(path)
        return out

    def exists(path: str) -> bool:
        node: Any = values
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        return True

    assert [path for path in leaves(values) if path not in documented] == []
    assert [path for path in sorted(documented) if not exists(path)] == []
