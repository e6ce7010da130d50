"""What the chart's defaults and switches do to the rendered pods: hardening, rolling on change, policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .manifests import (
    CHART_DIR,
    NAMESPACE,
    REPO_ROOT,
    Manifest,
    kube_versions,
    render,
    render_raw,
    schema_errors,
    sidecar_notes,
)
from .references import reference_errors

EXAMPLE = CHART_DIR / "examples" / "sidecar-deployment.yaml"


def only(manifests: list[Manifest], kind: str) -> dict[str, Any]:
    [obj] = [m.obj for m in manifests if m.kind == kind]
    return obj


def pod_annotations(values: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = only(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    return annotations


def test_default_pod_is_hardened() -> None:
    pod = only(render({}), "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # With a read-only root, every writable mount must be an emptyDir (the SQLite state dir and /tmp).
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert set(writable) == {"/var/lib/testmode-proxy", "/tmp"}
    assert all("emptyDir" in volume for volume in writable.values())
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TESTMODE_PROXY_STATE_DIR"] == "/var/lib/testmode-proxy"
    assert env["TESTMODE_PROXY_HOST"] == "0.0.0.0"


def test_probes_and_graceful_termination() -> None:
    deployment = only(render({}), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert pod["terminationGracePeriodSeconds"] > 5
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    spread = pod["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert all(c["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"] for c in spread)


def test_autoscaling_takes_over_the_replica_count_once_several_pods_are_allowed(unguarded_chart: Path) -> None:
    """The HPA path, for when a shared store lifts the one-pod guard (test_chart_checks_fail.py)."""
    manifests = render({"replicaCount": 3, "autoscaling": {"enabled": True, "minReplicas": 3}}, unguarded_chart)
    assert "replicas" not in only(manifests, "Deployment")["spec"]
    assert only(manifests, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 3
    assert only(render({"replicaCount": 3}, unguarded_chart), "Deployment")["spec"]["replicas"] == 3
    assert only(render({}), "Deployment")["spec"]["replicas"] == 1


def test_a_policy_change_rolls_the_pods() -> None:
    base = pod_annotations({})
    assert pod_annotations({}) == base, "the checksum must be stable, or every upgrade restarts the pods"
    changed = pod_annotations({"policies": {"files": {"extra.yaml": "name: extra\n"}}})
    assert changed["checksum/policies"] != base["checksum/policies"]
    assert changed["checksum/secrets"] == base["checksum/secrets"]


def test_a_credential_change_rolls_the_pods() -> None:
    one = pod_annotations({"credentials": {"values": {"sent": "key-1"}}})
    two = pod_annotations({"credentials": {"values": {"sent": "key-2"}}})
    assert one["checksum/secrets"] != two["checksum/secrets"]


def test_credentials_and_key_registry_are_mounted_files_not_env() -> None:
    values = {"keyRegistry": {"content": '{"keys": []}'}, "credentials": {"values": {"sent": "live-key"}}}
    manifests = render(values)
    secrets = {m.name: m.obj for m in manifests if m.kind == "Secret"}
    assert set(secrets) == {"tp-testmode-proxy-keys", "tp-testmode-proxy-credentials"}
    assert set(secrets["tp-testmode-proxy-credentials"]["data"]) == {"sent"}
    [container] = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TESTMODE_PROXY_KEYS"] == "/etc/testmode-proxy/keys/keys.json"
    assert env["TESTMODE_PROXY_CREDENTIALS_DIR"] == "/etc/testmode-proxy/credentials"
    assert "live-key" not in yaml.safe_dump(container)


def test_policies_configmap_carries_bundled_files_and_overrides() -> None:
    bundled = {path.name: path.read_text() for path in (CHART_DIR / "files" / "policies").glob("*.yaml")}
    data = only(render({}), "ConfigMap").get("data", {})
    assert data == bundled
    data = only(render({"policies": {"bundled": False, "files": {"x.yaml": "name: x\n"}}}), "ConfigMap")["data"]
    assert data == {"x.yaml": "name: x\n"}


def test_existing_configmap_replaces_the_rendered_one() -> None:
    manifests = render({"policies": {"existingConfigMap": "my-policies"}})
    assert "ConfigMap" not in {m.kind for m in manifests}
    volumes = only(manifests, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "testmode-proxy-policies", "configMap": {"name": "my-policies"}} in volumes


def test_chart_policies_are_copies_of_the_repository_policies() -> None:
    """The chart cannot read ../../policies, so it carries copies; this keeps them from drifting."""
    repo = {p.name: p.read_bytes() for p in (REPO_ROOT / "policies").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART_DIR / "files" / "policies").glob("*.yaml")}
    sync = "rm -f helm/testmode-proxy/files/policies/*.yaml && cp policies/*.yaml helm/testmode-proxy/files/policies/"
    assert chart == repo, f"the chart's policy copies differ from policies/; run: {sync}"


def test_sidecar_example_is_valid_and_runs_the_charts_container() -> None:
    """The documented sidecar is the container the install notes print, wired to the objects the release makes."""
    [example] = [obj for obj in yaml.safe_load_all(EXAMPLE.read_text()) if obj]
    example_manifest = Manifest(EXAMPLE.name, example | {"metadata": example["metadata"] | {"namespace": NAMESPACE}})
    assert schema_errors(example_manifest, kube_versions()) == []

    # The install command in the example's header: release "testmode-proxy", key registry and credentials.
    values: dict[str, Any] = {"keyRegistry": {"content": "{}"}, "credentials": {"values": {"sent": "k"}}}
    sidecar_objects = render(values | {"mode": "sidecar"}, release="testmode-proxy")
    assert reference_errors([*sidecar_objects, example_manifest]) == []

    notes = sidecar_notes(values, release="testmode-proxy")
    example_pod = example["spec"]["template"]["spec"]
    [sidecar] = [c for c in example_pod["initContainers"] if c["name"] == "testmode-proxy"]
    assert sidecar == notes.container
    assert [v for v in example_pod["volumes"] if v["name"].startswith("testmode-proxy-")] == notes.volumes


def test_sidecar_notes_print_the_container_to_add() -> None:
    notes = render_raw({"mode": "sidecar"})["testmode-proxy/templates/NOTES.txt"]
    assert "restartPolicy: Always" in notes
    assert "name: TESTMODE_PROXY_POLICIES" in notes
    assert "http://127.0.0.1:8080" in notes


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_sidecar_listens_on_loopback_and_probes_from_inside_the_pod() -> None:
    """Security issue #10, item 13: on the pod IP any pod could use the sidecar's provider credential."""
    container = sidecar_notes({"containerPort": 9090}).container
    assert env_of(container)["TESTMODE_PROXY_HOST"] == "127.0.0.1"
    assert env_of(container)["TESTMODE_PROXY_PORT"] == "9090"
    assert "ports" not in container  # nothing outside the pod can reach it, so nothing is declared
    for name, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        probe = container[name]
        assert "httpGet" not in probe, f"{name}: kubelet's httpGet connects to the pod IP, where nothing listens"
        assert probe["exec"]["command"] == [
            "python", "-I", "-m", "proxy.probe", f"http://127.0.0.1:9090{path}", "--timeout",
            str(probe["timeoutSeconds"]),
        ]
    # Probe paths and timings come from the same values as in gateway mode.
    custom = {"readinessProbe": {"httpGet": {"path": "/ready"}, "periodSeconds": 7, "timeoutSeconds": 4}}
    readiness = sidecar_notes(custom).container["readinessProbe"]
    assert readiness["periodSeconds"] == 7
    assert readiness["exec"]["command"][-3:] == ["http://127.0.0.1:8080/ready", "--timeout", "4"]


def test_the_gateway_listens_on_all_interfaces_behind_its_service() -> None:
    manifests = render({})
    [container] = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["TESTMODE_PROXY_HOST"] == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert only(manifests, "Service")["spec"]["ports"][0]["targetPort"] == "http"
