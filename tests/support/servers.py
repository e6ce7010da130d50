"""Real processes for end-to-end tests: the stand-in provider and the gateway, on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.support import canary

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path | None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = log.read_text(errors="replace") if log and log.exists() else ""
            raise RuntimeError(f"process exited with {process.returncode}: {out[-2000:]}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


class _Process:
    process: subprocess.Popen[bytes]
    log_file: Path | None = None

    def _spawn(self, cmd: list[str], env: Mapping[str, str] | None, log_file: Path | None) -> None:
        self.log_file = log_file
        if log_file is None:
            self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            return
        # The child writes to its own copy of the descriptor: ours is closed at once, so a process a test
        # kills and never stops leaves no file open here.
        with open(log_file, "wb") as out:
            self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file and self.log_file.exists() else ""


class Provider(_Process):
    """The stand-in provider (tests/support/provider.py) in its own process."""

    def __init__(self, log_file: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._spawn([sys.executable, "-m", "tests.support.provider", "--port", str(self.port)], None, log_file)
        _wait_ready(self.url + "/__records", self.process, log_file)
        # One keep-alive client for the control endpoints (a new client per call costs ~0.1 s of TLS setup).
        self._control = httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    def records(self) -> list[dict[str, Any]]:
        response = self._control.get("/__records")
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def clear(self) -> None:
        self._control.delete("/__records").raise_for_status()

    def configure(self, **config: Any) -> None:
        self._control.post("/__config", json=config).raise_for_status()

    def stop(self) -> None:
        self._control.close()
        super().stop()


class Gateway(_Process):
    """``testmode-proxy serve`` as a user runs it, with the environment a deployment would set.

    Its output always goes to a file (``log_file``, or one in the session's log directory), and its
    ``/metrics`` page is saved when it stops: the secret canary (:mod:`tests.support.canary`) reads both."""

    def __init__(
        self,
        *,
        upstream: str,
        keys_file: Path | None = None,
        policies: Path = POLICIES,
        env: Mapping[str, str] | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TESTMODE_PROXY_")}
        full_env.update({
            "TESTMODE_PROXY_UPSTREAM_SENT": upstream,
            "TESTMODE_PROXY_UPSTREAM_SENDGRID": upstream,
            "TESTMODE_PROXY_UPSTREAM_BLUETICKED": upstream,
            "TESTMODE_PROXY_LOG_LEVEL": "info",
        })
        full_env.update(env or {})
        if "TESTMODE_PROXY_STATE_DIR" not in full_env:  # each gateway its own store, as on a fresh machine
            self._own_state = tempfile.mkdtemp(prefix="testmode-state-")
            full_env["TESTMODE_PROXY_STATE_DIR"] = self._own_state
        self.state_dir = Path(full_env["TESTMODE_PROXY_STATE_DIR"])
        cmd = [sys.executable, "-m", "proxy.cli", "serve", "--port", str(self.port), "--policies", str(policies)]
        if keys_file is not None:
            cmd += ["--keys", str(keys_file)]
        log_file = log_file or canary.SESSION.log_for(self.port)
        canary.SESSION.started(self.port, log_file)
        self._spawn(cmd, full_env, log_file)
        _wait_ready(self.url + "/readyz", self.process, log_file)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final checkpoint; the state directory stays as the crash left it."""
        self.process.kill()
        self.process.wait()
        super().stop()

    def stop(self) -> None:
        if self.process.poll() is None and self.log_file is not None:
            try:  # the last scrape: every metric label the gateway made
                page = httpx.get(self.url + "/metrics", timeout=2, trust_env=False)
                canary.SESSION.metrics_file(self.log_file).write_text(page.text)
            except httpx.HTTPError:
                pass  # stopped or stopping: its log is still scanned
        super().stop()
        if own := getattr(self, "_own_state", None):
            shutil.rmtree(own, ignore_errors=True)
