"""The image's recipe, replayed without Docker: build the wheel from the files the Dockerfile copies, install it
into a fresh virtual environment, lay the image's files out under a scratch root, and start the server with the
image's own ENTRYPOINT, CMD and ENV. It must become ready, serve its probes and metrics, and stop cleanly on
SIGTERM.

Offline by design: the wheel is built with the build backend of the running environment, and the fresh venv
resolves the wheel's dependencies against the running environment's site-packages (a ``.pth`` line), with
``--no-index``, so a dependency the wheel declares but nothing provides still fails the install.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from .dockerfile import Copy, Stage, dockerignore_excludes, parse
from .manifests import REPO_ROOT

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0  # uvicorn's graceful shutdown is bounded by its own timeout_graceful_shutdown


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def in_root(root: Path, image_path: str) -> Path:
    """Where an absolute path of the image lives under the scratch root."""
    return root / image_path.lstrip("/")


def build_wheel(builder: Stage, workdir: Path) -> Path:
    """Build the wheel from exactly the files the builder stage copies from the context."""
    context = workdir / "context"
    for copy in builder.copies():
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


@pytest.mark.slow
def test_the_images_command_serves_readyz_and_drains_on_sigterm(tmp_path: Path) -> None:
    stages = parse()
    builder, runtime = stages[0], stages[-1]
    root = tmp_path / "root"
    wheel = build_wheel(builder, tmp_path)

    # The runtime stage's files: the builder's virtualenv, then whatever it copies from the context.
    host_path = os.environ.get("PATH", "")
    env = runtime.env({"PATH": "@HOST_PATH@"})
    for copy in runtime.copies():
        if copy.from_stage is None:
            copy_into(copy, in_root(root, copy.dest))
        else:
            assert f"{copy.dest}/bin" in env["PATH"].split(":"), f"{copy} is not the virtualenv on PATH"
            install_venv(in_root(root, copy.dest), wheel)
    # Image paths move under the scratch root; the host's PATH stays behind the image's own entries.
    for key, value in env.items():
        parts = [str(in_root(root, p)) if p.startswith("/") else p for p in value.split(":")]
        env[key] = ":".join(parts).replace("@HOST_PATH@", host_path)
    in_root(root, runtime.env({})["TESTMODE_PROXY_STATE_DIR"]).mkdir(parents=True, exist_ok=True)
    workdir = runtime.last("WORKDIR")
    cwd = in_root(root, workdir.value) if workdir else root
    cwd.mkdir(parents=True, exist_ok=True)

    port = free_port()
    # Only loopback here: the image listens on 0.0.0.0, a test machine must not.
    env |= {"TESTMODE_PROXY_HOST": "127.0.0.1", "TESTMODE_PROXY_PORT": str(port)}
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("TESTMODE_PROXY_")} | env

    # The image's exec-form RUN steps (the policy check) run as in the build.
    for instruction in runtime.all("RUN"):
        argv = instruction.exec_form()
        if argv is not None:
            argv = [str(in_root(root, a)) if a.startswith("/") else a for a in argv]
            run(argv, env=process_env, cwd=cwd)

    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(runtime.command(), env=process_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=2.0, trust_env=False) as client:
            deadline = time.monotonic() + READY_TIMEOUT
            ready = None
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
            assert ready.headers["content-type"].startswith("application/json")
            health = client.get("/healthz")
            assert health.status_code == 200
            health.json()
            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")

        # uvicorn drains, runs the lifespan shutdown, then re-raises the signal: exit status -SIGTERM (or 0).
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=STOP_TIMEOUT) in {0, -signal.SIGTERM}
        log.seek(0)
        assert "shutdown complete" in log.read().lower(), "SIGTERM must shut the server down gracefully"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()
