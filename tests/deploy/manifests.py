"""Render the Helm chart with Helm's own engine and check what comes out, the way a cluster would.

Rendering and linting go through ``helm_python`` (Helm's Go SDK, offline). Every rendered object is validated
against the Kubernetes OpenAPI schemas in strict mode (``kubernetes_validate``: an unknown field is an error)
for the oldest Kubernetes the chart supports and the newest one the schemas know. Kinds that come from CRDs
have no schema there, so their required fields are checked against the small schemas below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate.utils as kube  # type: ignore[import-untyped]
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "testmode-proxy"
RELEASE = "tp"
NAMESPACE = "testmode"

# Lint messages that are not findings: the project has no icon to point Chart.yaml at.
LINT_ALLOWED = {("Chart.yaml", "icon is recommended")}

# Written from prometheus-operator's ServiceMonitor CRD (monitoring.coreos.com/v1): its required fields, and
# the fields this chart can emit, closed with additionalProperties so a misspelling is caught.
_SELECTOR = {
    "type": "object",
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array"},
    },
    "additionalProperties": False,
}
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {
                "type": "object",
                "required": ["endpoints", "selector"],
                "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"},
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "any": {"type": "boolean"},
                            "matchNames": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "selector": _SELECTOR,
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                                "relabelings": {"type": "array", "items": {"type": "object"}},
                                "metricRelabelings": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    },
                },
            },
        },
    },
}

# From prometheus-operator's PrometheusRule CRD (monitoring.coreos.com/v1): a rule is an alert or a recording
# rule, each with an expression.
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
CRD_SCHEMAS[("monitoring.coreos.com/v1", "PrometheusRule")] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
                                        "record": {"type": "string"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _DURATION,
                                        "keep_firing_for": _DURATION,
                                        "labels": _STRING_MAP,
                                        "annotations": _STRING_MAP,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Manifest:
    """One rendered object and the template it came from."""

    template: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    def __str__(self) -> str:
        return f"{self.template}: {self.kind}/{self.obj.get('metadata', {}).get('name')}"


def ci_values_files() -> list[Path]:
    return sorted((CHART_DIR / "ci").glob("*-values.yaml"))


def load_values(path: Path) -> dict[str, Any]:
    """Parse a values file the way ``helm -f`` does."""
    return helm_python.values_from_yaml(path.read_text())


def render_raw(values: Mapping[str, Any], chart_dir: Path = CHART_DIR, release: str = RELEASE) -> dict[str, str]:
    """Template path to rendered text, NOTES.txt included. Raises HelmValuesError / HelmRenderError."""
    with helm_python.Chart.load(chart_dir) as chart:
        return chart.render(dict(values), name=release, namespace=NAMESPACE)


def render(values: Mapping[str, Any], chart_dir: Path = CHART_DIR, release: str = RELEASE) -> list[Manifest]:
    manifests: list[Manifest] = []
    for template, text in sorted(render_raw(values, chart_dir, release).items()):
        if template.endswith("NOTES.txt"):
            continue
        manifests.extend(Manifest(template, obj) for obj in yaml.safe_load_all(text) if obj)
    return manifests


def lint_findings(values: Mapping[str, Any], chart_dir: Path = CHART_DIR) -> list[str]:
    """``helm lint --strict`` findings of any severity, except the allowed ones."""
    report = helm_python.lint(chart_dir, dict(values), strict=True, namespace=NAMESPACE)
    findings = [
        f"{m['path']}: {m['error']} (severity {m['severity']})"
        for m in report["messages"]
        if (m["path"], m["error"]) not in LINT_ALLOWED
    ]
    # "errors" repeats the error-level messages; on its own it reports a chart that could not be linted.
    return findings or [str(error) for error in report["errors"]]


def kube_versions(chart_dir: Path = CHART_DIR) -> list[str]:
    """The oldest Kubernetes the chart claims to support (Chart.yaml kubeVersion) and the newest known."""
    constraint = yaml.safe_load((chart_dir / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)\.\d+(-0)?", constraint)
    assert match, f"kubeVersion {constraint!r} is not of the form '>=X.Y.Z-0'"
    return [f"{match.group(1)}.0", kube.latest_version()]


def schema_errors(manifest: Manifest, versions: Iterable[str]) -> list[str]:
    """Errors of one object against the Kubernetes schemas (strict), or its CRD schema above."""
    crd_schema = CRD_SCHEMAS.get((manifest.obj.get("apiVersion", ""), manifest.obj.get("kind", "")))
    if crd_schema is not None:
        validator = jsonschema.Draft202012Validator(crd_schema)
        return [f"{manifest}: {'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(manifest.obj)]
    errors = []
    for version in versions:
        try:
            kube.validate(manifest.obj, version, strict=True)
        except kube.ValidationError as e:
            errors.append(f"{manifest} (Kubernetes {e.version}): {'.'.join(map(str, e.path))}: {e.message}")
        except kube.SchemaNotFoundError as e:
            # A built-in kind without a schema is a typo'd or removed apiVersion, not a CRD.
            errors.append(f"{manifest}: {e.message}")
    return errors


@dataclass(frozen=True)
class SidecarNotes:
    """What the install notes of a sidecar-mode release tell the user to paste into their pod spec."""

    container: dict[str, Any]  # restartPolicy included
    volumes: list[dict[str, Any]]


def sidecar_notes(values: Mapping[str, Any], release: str = RELEASE) -> SidecarNotes:
    notes = render_raw({**values, "mode": "sidecar"}, release=release)[f"{CHART_DIR.name}/templates/NOTES.txt"]
    container_text = re.search(r"^(  - restartPolicy: Always\n.*?)\n\n", notes, flags=re.MULTILINE | re.DOTALL)
    volumes_text = re.search(r"^and these volumes:\n(.*?)(?:\n\n|\Z)", notes, flags=re.MULTILINE | re.DOTALL)
    assert container_text and volumes_text, f"the sidecar notes no longer print a container and volumes:\n{notes}"
    [container] = yaml.safe_load(container_text.group(1))
    return SidecarNotes(container, yaml.safe_load(volumes_text.group(1)))
