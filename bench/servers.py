"""Start, check, read and stop the processes under test, each pinned to one core with ``taskset``.

Figures come from ``/proc``: CPU time is utime + stime summed over the process and its children
(nginx's workers), peak RSS is ``VmHWM`` summed likewise.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """\
# One worker, no logs, keep-alive without a request cap: the cheapest upstream that speaks HTTP/1.1.
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            add_header x-request-id req_bench_upstream;
            return 201 '{body}';
        }}
    }}
}}
"""


class SetupError(RuntimeError):
    """Something the bench needs is missing or did not start; the message says what to do."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # nginx and uvicorn both shut down gracefully on TERM
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def require_tools(upstream: str) -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if upstream == "nginx" and nginx_binary() is None:
        missing.append("nginx")
    if missing:
        raise SetupError(f"missing {', '.join(missing)}: run `bench/setup` (apt-get install wrk nginx-light) "
                         "or use `--upstream asgi` to do without nginx")
    if (os.cpu_count() or 1) < 2:
        raise SetupError("the bench pins the server and the load generator to different cores: it needs 2 cores")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(name: str, cmd: list[str], core: int, work: Path, url: str, *, cwd: Path = ROOT,
           env: dict[str, str] | None = None) -> Server:
    log = work / f"{name}.log"
    with open(log, "wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(["taskset", "-c", str(core), *cmd], cwd=cwd, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Server(name, process, url, log)


def start_nginx(name: str, core: int, work: Path, body: bytes) -> Server:
    binary = nginx_binary()
    assert binary is not None
    home = work / name
    home.mkdir()
    port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=home, port=port, body=body.decode().replace("'", "\\'")))
    return _spawn(name, [binary, "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")],
                  core, work, f"http://127.0.0.1:{port}")


def start_uvicorn(name: str, app: str, core: int, work: Path, env: dict[str, str] | None = None) -> Server:
    """An app from :mod:`bench.apps` on uvicorn with the gateway's own server options (uvloop, httptools)."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
           "--http", "httptools", "--no-access-log", "--log-level", "warning", "--lifespan", "on"]
    return _spawn(name, cmd, core, work, f"http://127.0.0.1:{port}", env={**os.environ, **(env or {})})


def gateway_env(upstream_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESTMODE_PROXY_")}
    env.update({
        "TESTMODE_PROXY_UPSTREAM_SENT": upstream_url,
        "TESTMODE_PROXY_UPSTREAM_BLUETICKED": upstream_url,  # the sandbox target never reaches it
        "TESTMODE_PROXY_CREDENTIAL_SENT": "sk_live_bench_provider_credential",
        "TESTMODE_PROXY_LOG_LEVEL": "info",  # as deployed: one canonical JSON line per request
    })
    return env


def create_live_key(src: Path, policies: Path, keys_file: Path) -> str:
    """Issue a live key with the gateway's own command, as a user would."""
    done = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "keys", "--file", str(keys_file), "create", "--policy", "sent",
         "--mode", "live", "--label", "bench", "--policies", str(policies)],
        cwd=src, env={**gateway_env(""), "PYTHONPATH": str(src)}, capture_output=True, text=True, check=False,
    )
    key = done.stdout.strip()
    if done.returncode != 0 or not key:
        raise SetupError(f"`testmode-proxy keys create` failed: {done.stderr.strip()}")
    return key


def start_gateway(name: str, src: Path, core: int, work: Path, policies: Path, keys_file: Path,
                  upstream_url: str, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {**gateway_env(upstream_url), "PYTHONPATH": str(src), "TESTMODE_PROXY_STATE_DIR": str(work / f"{name}-state"),
           **(extra_env or {})}
    cmd = [sys.executable, "-m", "proxy.cli", "serve", "--port", str(port), "--policies", str(policies),
           "--keys", str(keys_file)]
    return _spawn(name, cmd, core, work, f"http://127.0.0.1:{port}", cwd=src, env=env)


def request(url: str, method: str = "GET", body: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP/1.1 request (stdlib only), for readiness and response checks."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    try:
        conn.request(method, parts.path or "/", body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_until_up(server: Server, probe_path: str = "/", timeout: float = 30.0) -> None:
    """Until the server answers anything on ``probe_path``; the caller then checks a real request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SetupError(f"{server.name} exited with {server.process.returncode}: "
                             f"{server.log.read_text(errors='replace')[-2000:]}")
        try:
            request(server.url + probe_path)
            return
        except OSError:
            time.sleep(0.05)
    raise SetupError(f"{server.name} did not answer on {server.url} within {timeout:g}s")


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (fields 14 and 15 of /proc/<pid>/stat), in seconds."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def cpu_by_process(exclude: set[int]) -> dict[int, tuple[str, float]]:
    """(name, utime+stime in seconds) of every process but ``exclude``: the machine's other load.

    Children's times reaped into a parent (cutime) are left out: they would book a whole finished
    test run into the one interval in which it ended.
    """
    found: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in exclude:
            try:
                head, _, tail = Path(f"/proc/{entry}/stat").read_text().rpartition(")")
            except OSError:
                continue
            fields = tail.split()
            found[int(entry)] = (head.partition("(")[2], (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return found


def foreign_cpu(before: dict[int, tuple[str, float]],
                after: dict[int, tuple[str, float]]) -> tuple[float, list[tuple[str, float]]]:
    """CPU seconds the rest of the machine used between two :func:`cpu_by_process` readings, and the
    three biggest users (name, seconds), to say who disturbed a run."""
    used = [(name, value - before.get(pid, ("", 0.0))[1]) for pid, (name, value) in after.items()
            if value > before.get(pid, ("", 0.0))[1]]
    used.sort(key=lambda item: -item[1])
    return sum(seconds for _, seconds in used), [(name, round(seconds, 2)) for name, seconds in used[:3]]


def core_times(core: int) -> tuple[int, int]:
    """(steal, total) ticks of one core from /proc/stat: steal is time the hypervisor gave to someone else."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(x) for x in line.split()[1:]]
            return ticks[7], sum(ticks)
    return 0, 0


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def peak_rss_mib(pids: list[int]) -> float:
    return sum(int(status_field(pid, "VmHWM").split()[0]) for pid in pids) / 1024
