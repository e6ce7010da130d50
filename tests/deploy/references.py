"""Checks across rendered objects that no schema can make: every selector selects, every name resolves.

A Service whose selector matches no pod, or a volume naming a ConfigMap that is never rendered, validates
fine object by object and fails only in a cluster; these checks catch that offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .manifests import Manifest


def _selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in (selector or {}).items())


def _pods(manifests: Iterable[Manifest]) -> list[tuple[Manifest, dict[str, Any]]]:
    """Each workload with its pod template."""
    return [(m, m.obj["spec"]["template"]) for m in manifests if m.kind == "Deployment"]


def _container_ports(pod_spec: Mapping[str, Any]) -> set[str]:
    containers = [*pod_spec.get("containers", []), *pod_spec.get("initContainers", [])]
    return {port["name"] for c in containers for port in c.get("ports", []) if "name" in port}


def pod_spec_errors(owner: Manifest, spec: Mapping[str, Any], present: set[tuple[str, str]]) -> list[str]:
    errors = []
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for volume in volumes.values():
        if "configMap" in volume and ("ConfigMap", volume["configMap"]["name"]) not in present:
            errors.append(f"{owner}: volume {volume['name']} names a ConfigMap that does not exist")
        if "secret" in volume and ("Secret", volume["secret"]["secretName"]) not in present:
            errors.append(f"{owner}: volume {volume['name']} names a Secret that does not exist")
    account = spec.get("serviceAccountName", "default")
    if account != "default" and ("ServiceAccount", account) not in present:
        errors.append(f"{owner}: serviceAccountName {account} does not exist")
    ports = _container_ports(spec)
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                errors.append(f"{owner}: {container['name']} mounts undeclared volume {mount['name']}")
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = container.get(probe_name, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in ports:
                errors.append(f"{owner}: {container['name']} {probe_name} targets unknown port {port}")
    return errors


def reference_errors(manifests: list[Manifest], existing: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Broken links between ``manifests``; ``existing`` are (kind, name) objects made outside the chart."""
    present = {(m.kind, m.name) for m in manifests} | set(existing)
    pods = _pods(manifests)
    errors = []
    for owner, template in pods:
        if not _selects(owner.obj["spec"]["selector"].get("matchLabels"), template["metadata"]["labels"]):
            errors.append(f"{owner}: spec.selector does not select its own pod template")
        errors += pod_spec_errors(owner, template["spec"], present)

    def selected_pods(selector: Mapping[str, str] | None) -> list[dict[str, Any]]:
        return [t["spec"] for _, t in pods if _selects(selector, t["metadata"]["labels"])]

    services = [m for m in manifests if m.kind == "Service"]
    for service in services:
        selected = selected_pods(service.obj["spec"].get("selector"))
        if not selected:
            errors.append(f"{service}: selector matches no pod")
        for port in service.obj["spec"]["ports"]:
            target = port.get("targetPort")
            if isinstance(target, str) and any(target not in _container_ports(s) for s in selected):
                errors.append(f"{service}: targetPort {target} is not a container port")
    for monitor in (m for m in manifests if m.kind == "ServiceMonitor"):
        spec = monitor.obj["spec"]
        matched = [s for s in services if _selects(spec["selector"].get("matchLabels"), s.obj["metadata"]["labels"])]
        if not matched:
            errors.append(f"{monitor}: selector matches no Service")
        for service in matched:
            names = spec.get("namespaceSelector", {}).get("matchNames", [monitor.obj["metadata"].get("namespace")])
            if service.obj["metadata"]["namespace"] not in names:
                errors.append(f"{monitor}: namespaceSelector leaves out {service}")
            port_names = {port.get("name") for port in service.obj["spec"]["ports"]}
            errors += [
                f"{monitor}: endpoint port {e['port']} is not a port of {service}"
                for e in spec["endpoints"]
                if e["port"] not in port_names
            ]
    for scaler in (m for m in manifests if m.kind == "HorizontalPodAutoscaler"):
        target = scaler.obj["spec"]["scaleTargetRef"]
        if (target["kind"], target["name"]) not in present:
            errors.append(f"{scaler}: scaleTargetRef {target['kind']}/{target['name']} does not exist")
    for budget in (m for m in manifests if m.kind == "PodDisruptionBudget"):
        if not selected_pods(budget.obj["spec"]["selector"].get("matchLabels")):
            errors.append(f"{budget}: selector matches no pod")
    for policy in (m for m in manifests if m.kind == "NetworkPolicy"):
        selected = selected_pods(policy.obj["spec"]["podSelector"].get("matchLabels"))
        if not selected:
            errors.append(f"{policy}: podSelector matches no pod")
        for rule in policy.obj["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                if isinstance(port.get("port"), str) and any(port["port"] not in _container_ports(s) for s in selected):
                    errors.append(f"{policy}: ingress port {port['port']} is not a container port")
    return errors
