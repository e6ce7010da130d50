"""The image's recipe, replayed without Docker, and the chart's pod wiring run against the real server.

The image: build the wheel from the files the Dockerfile copies, install it into a fresh virtual environment,
lay the image's files out under a scratch root, and start the server with the image's own ENTRYPOINT, CMD and
ENV. It must become ready on loopback only, serve its probes and metrics, and stop cleanly on SIGTERM. Then the
same image runs with the environment, arguments and mounted files of the containers the Helm chart renders: the
gateway's, and the sidecar's, which must listen on 127.0.0.1 alone and pass its exec probes.

Offline by design: the wheel is built with the build backend of the running environment, and the fresh venv
resolves the wheel's dependencies against the running environment's site-packages (a ``.pth`` line) with
``--no-index``, so a dependency the wheel declares but nothing provides still fails the install.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.keys.registry import create_key
from tests.support.envelope import error, simulated

from .dockerfile import Copy, dockerignore_excludes, parse
from .manifests import REPO_ROOT, Manifest, render, sidecar_notes

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0  # uvicorn's graceful shutdown is bounded by its own timeout_graceful_shutdown
HOST_PATH = "@HOST_PATH@"


@dataclass(frozen=True)
class Image:
    root: Path  # the image's file system, laid out under a scratch directory
    env: dict[str, str]  # the image's ENV, with its paths moved under root
    cwd: Path
    entrypoint: list[str]
    cmd: list[str]

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def rebase(self, value: str) -> str:
        """Move the absolute paths of a ':'-separated value under the root; the host's PATH stays behind.
        A URL (``TESTMODE_PROXY_UPSTREAM_SENT``) is not a path list and stays as it is."""
        if "://" in value:
            return value
        parts = [str(self.path(p)) if p.startswith("/") else p for p in value.split(":")]
        return ":".join(parts).replace(HOST_PATH, os.environ.get("PATH", ""))


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"


def copy_into(copy: Copy, dest: Path) -> None:
    """``COPY src... dest`` from the repository (the build context), honouring .dockerignore."""

    def ignored(directory: str, names: list[str]) -> list[str]:
        relative = Path(directory).relative_to(REPO_ROOT)
        return [name for name in names if dockerignore_excludes((relative / name).as_posix())]

    into_directory = copy.dest.endswith("/") or copy.dest in {".", "./"} or len(copy.sources) > 1
    for source in copy.sources:
        origin = REPO_ROOT / source
        if origin.is_dir():  # Docker copies a directory's contents, not the directory itself
            shutil.copytree(origin, dest, ignore=ignored, dirs_exist_ok=True)
        else:
            target = dest / origin.name if into_directory else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def build_wheel(copies: list[Copy], workdir: Path) -> Path:
    """Build the wheel from exactly the files the builder stage copies from the context."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("building the wheel offline needs the build backend here: pip install 'hatchling>=1.25'")
    context = workdir / "context"
    for copy in copies:
        if copy.from_stage is None:
            copy_into(copy, context / copy.dest)  # relative to the builder's WORKDIR
    dist = workdir / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(dist), str(context)])  # fmt: skip
    [wheel] = dist.glob("testmode_proxy-*.whl")
    return wheel


def install_venv(venv: Path, wheel: Path) -> None:
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "dependencies-from-test-env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    run([*pip, "install", "--no-index", "--no-cache-dir", str(wheel)])
    run([*pip, "check"])


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    stages = parse()
    builder, runtime = stages[0], stages[-1]
    workdir = tmp_path_factory.mktemp("image")
    wheel = build_wheel(builder.copies(), workdir)
    raw_env = runtime.env({"PATH": HOST_PATH})
    workdir_instruction = runtime.last("WORKDIR")
    image = Image(
        root=workdir / "root",
        env={},
        cwd=workdir / "root" / (workdir_instruction.value.lstrip("/") if workdir_instruction else ""),
        entrypoint=runtime.exec_form("ENTRYPOINT"),
        cmd=runtime.exec_form("CMD"),
    )
    assert image.entrypoint + image.cmd, "the runtime stage has no ENTRYPOINT or CMD"
    image.env.update({key: image.rebase(value) for key, value in raw_env.items()})
    for copy in runtime.copies():
        if copy.from_stage is None:
            copy_into(copy, image.path(copy.dest))
        else:
            assert f"{copy.dest}/bin" in raw_env["PATH"].split(":"), f"{copy} is not the virtualenv on PATH"
            install_venv(image.path(copy.dest), wheel)
    image.path(raw_env["TESTMODE_PROXY_STATE_DIR"]).mkdir(parents=True, exist_ok=True)  # made by a RUN step
    image.cwd.mkdir(parents=True, exist_ok=True)
    # The image's exec-form RUN steps (the policy check) run as in the build.
    for instruction in runtime.all("RUN"):
        argv = instruction.exec_form()
        if argv is not None:
            run([image.rebase(a) for a in argv], env=process_env(image.env), cwd=image.cwd)
    return image


def process_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TESTMODE_PROXY_")} | env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        number: int = sock.getsockname()[1]
        return number


@contextmanager
def serving(
    argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int | None = None
) -> Iterator[httpx.Client]:
    """Start the server, wait for /readyz, yield a client; on exit, SIGTERM it and require a graceful stop.

    It listens where ``env`` says, except that 0.0.0.0 (the chart's gateway) becomes 127.0.0.1: a test
    machine listens on loopback only. ``port`` defaults to a free one.
    """
    number = port or free_port()
    host = "127.0.0.1" if env.get("TESTMODE_PROXY_HOST") == "0.0.0.0" else env["TESTMODE_PROXY_HOST"]
    env = process_env(env | {"TESTMODE_PROXY_HOST": host, "TESTMODE_PROXY_PORT": str(number)})
    with log_path.open("w+") as log:
        server = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(base_url=f"http://{host}:{number}", timeout=2.0, trust_env=False) as client:
                deadline, ready = time.monotonic() + READY_TIMEOUT, None
                while time.monotonic() < deadline and server.poll() is None:
                    try:
                        ready = client.get("/readyz")
                        if ready.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.2)
                log.seek(0)
                assert ready is not None and ready.status_code == 200, f"not ready; server output:\n{log.read()}"
                yield client
            # uvicorn drains, runs the lifespan shutdown, then re-raises the signal: exit status -SIGTERM (or 0).
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=STOP_TIMEOUT) in {0, -signal.SIGTERM}
            log.seek(0)
            assert "shutdown complete" in log.read().lower(), "SIGTERM must shut the server down gracefully"
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=10)


def accepts_on(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


@pytest.mark.slow
def test_the_images_command_serves_probes_and_metrics_on_loopback(image: Image, tmp_path: Path) -> None:
    assert image.env["TESTMODE_PROXY_HOST"] == "127.0.0.1", "the image must not listen on every interface by default"
    port = free_port()
    with serving([*image.entrypoint, *image.cmd], image.env, image.cwd, tmp_path / "server.log", port) as client:
        ready = client.get("/readyz")
        assert ready.headers["content-type"].startswith("application/json")
        assert ready.json() == {"status": "ready"}
        # 127.0.0.2 is this machine's loopback too: a server on 0.0.0.0 would accept there.
        assert not accepts_on("127.0.0.2", port)
        health = client.get("/healthz")
        assert health.status_code == 200
        health.json()
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        # The image's policies are loaded: a Sent route answers in Sent's dialect (no key: 401).
        error(client.post("/v3/messages", json={"test_mode": True}), 401, "AUTH_001")


def mount_volumes(image: Image, objects: list[Manifest], container: dict[str, Any], volumes: list[Any]) -> None:
    """Write each mounted ConfigMap, Secret and emptyDir of a rendered container where kubelet would put it."""
    by_name = {(m.kind, m.name): m.obj for m in objects}
    declared = {volume["name"]: volume for volume in volumes}
    for mount in container["volumeMounts"]:
        target, volume = image.path(mount["mountPath"]), declared[mount["name"]]
        target.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            for name, text in by_name["ConfigMap", volume["configMap"]["name"]].get("data", {}).items():
                (target / name).write_text(text)
        elif "secret" in volume:
            data = by_name["Secret", volume["secret"]["secretName"]]["data"]
            items = volume["secret"].get("items") or [{"key": key, "path": key} for key in data]
            for item in items:
                (target / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))


def chart_values(tmp_path: Path) -> tuple[dict[str, Any], str]:
    """Values with a key registry holding one issued Sent test key, and that key."""
    keys_file = tmp_path / "keys.json"
    raw, _ = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    values = {
        "keyRegistry": {"content": keys_file.read_text()},
        "credentials": {"values": {"sent": "sent-live-key"}},
        "upstreams": {"sent": "http://127.0.0.1:9"},
    }
    return values, raw


def container_env(image: Image, container: dict[str, Any]) -> dict[str, str]:
    return image.env | {e["name"]: image.rebase(e["value"]) for e in container["env"]}


@pytest.mark.slow
def test_the_charts_gateway_container_runs_the_image(image: Image, tmp_path: Path) -> None:
    """The env names, arguments and mounted files the chart gives the container are ones the server accepts."""
    values, key = chart_values(tmp_path)
    manifests = render(values)
    [deployment] = [m.obj for m in manifests if m.kind == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mount_volumes(image, manifests, container, pod["volumes"])
    argv = [*container.get("command", image.entrypoint), *container.get("args", image.cmd)]
    with serving(argv, container_env(image, container), image.cwd, tmp_path / "server.log") as client:
        assert client.get(container["livenessProbe"]["httpGet"]["path"]).status_code == 200
        ready = client.get(container["readinessProbe"]["httpGet"]["path"])
        assert ready.status_code == 200
        # The policies came from the mounted ConfigMap and the issued key from the mounted key registry.
        simulated(client.post("/v3/contacts", headers={"x-api-key": key}, json={"phone_number": "+15555550100"}), 201)


def run_probe(image: Image, env: dict[str, str], probe: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """An exec probe as kubelet runs it: the command, in the container, with the container's environment."""
    return subprocess.run(probe["exec"]["command"], env=process_env(env), cwd=image.cwd, capture_output=True,
                          text=True, timeout=probe["timeoutSeconds"] + 5, check=False)


@pytest.mark.slow
def test_the_charts_sidecar_listens_on_loopback_only_and_its_exec_probes_pass(image: Image, tmp_path: Path) -> None:
    """Security issue #10, item 13: the sidecar's port is for its own pod, and kubelet still sees it ready."""
    values, key = chart_values(tmp_path)
    port = free_port()
    values["containerPort"] = port
    notes = sidecar_notes(values)
    container = notes.container
    mount_volumes(image, render({**values, "mode": "sidecar"}), container, notes.volumes)
    env = container_env(image, container)
    assert env["TESTMODE_PROXY_HOST"] == "127.0.0.1"
    probes = [container[name] for name in ("startupProbe", "livenessProbe", "readinessProbe")]
    argv = [*container.get("command", image.entrypoint), *container.get("args", image.cmd)]
    with serving(argv, env, image.cwd, tmp_path / "server.log", port) as client:
        assert not accepts_on("127.0.0.2", port)  # bound to 127.0.0.1 alone, not to every address
        for probe in probes:
            result = run_probe(image, env, probe)
            assert result.returncode == 0, result.stderr
        simulated(client.post("/v3/contacts", headers={"x-api-key": key}, json={"phone_number": "+15555550100"}), 201)
    # Stopped: the probes fail, with the reason kubelet records.
    result = run_probe(image, env, probes[-1])
    assert result.returncode == 1 and "/readyz" in result.stderr and "refused" in result.stderr.lower()
