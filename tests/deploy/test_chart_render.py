"""Every ci/*-values.yaml scenario renders objects a cluster would accept, and only the expected ones."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from .manifests import ci_values_files, kube_versions, lint_findings, load_values, render, schema_errors
from .references import reference_errors

SCENARIOS = ci_values_files()
SCENARIO_IDS = [path.name.removesuffix("-values.yaml") for path in SCENARIOS]

GATEWAY = {"ConfigMap", "Deployment", "Service", "ServiceAccount"}
EXPECTED_KINDS = {
    "default": GATEWAY,
    "sidecar": {"ConfigMap", "Secret"},
    "servicemonitor": GATEWAY | {"ServiceMonitor", "NetworkPolicy", "PrometheusRule"},
    "existing-secrets": GATEWAY | {"PodDisruptionBudget", "NetworkPolicy"},
}


def existing_objects(values: dict[str, Any]) -> set[tuple[str, str]]:
    """Objects a scenario says already exist in the cluster (the chart references but does not render)."""
    existing = set()
    if name := values.get("policies", {}).get("existingConfigMap"):
        existing.add(("ConfigMap", name))
    for key in ("keyRegistry", "credentials"):
        if name := values.get(key, {}).get("existingSecret"):
            existing.add(("Secret", name))
    return existing


def test_the_ci_scenarios_cover_gateway_sidecar_metrics_and_existing_secrets() -> None:
    assert set(EXPECTED_KINDS) <= set(SCENARIO_IDS)


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_scenario_objects_validate_against_kubernetes_schemas(values_file: Path) -> None:
    values = load_values(values_file)
    manifests = render(values)
    assert manifests, "the scenario rendered nothing"
    versions = kube_versions()
    errors = [error for manifest in manifests for error in schema_errors(manifest, versions)]
    errors += reference_errors(manifests, existing=existing_objects(values))
    assert errors == []


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_scenario_lints_clean(values_file: Path) -> None:
    assert lint_findings(load_values(values_file)) == []


@pytest.mark.parametrize("scenario", sorted(EXPECTED_KINDS))
def test_scenario_renders_the_expected_kinds(scenario: str) -> None:
    manifests = render(load_values(SCENARIOS[SCENARIO_IDS.index(scenario)]))
    assert {m.kind for m in manifests} == EXPECTED_KINDS[scenario]


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_each_template_file_holds_one_kind(values_file: Path) -> None:
    kinds: defaultdict[str, set[str]] = defaultdict(set)
    for manifest in render(load_values(values_file)):
        kinds[manifest.template].add(manifest.kind)
    assert {template: k for template, k in kinds.items() if len(k) > 1} == {}


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_objects_are_named_and_labelled_for_the_release(values_file: Path) -> None:
    for manifest in render(load_values(values_file)):
        labels = manifest.obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "tp", manifest
        assert labels["app.kubernetes.io/managed-by"] == "Helm", manifest
        assert manifest.name.startswith("tp-testmode-proxy"), manifest
