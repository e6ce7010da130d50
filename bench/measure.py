"""One wrk run against one server, with the server's CPU time read from /proc before and after."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import servers
from bench.targets import LOAD_CORE, REPLAY_KEY, SERVER_CORE, Target

LUA = Path(__file__).with_name("post.lua")


@dataclass
class Run:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    server_cpu_seconds: float
    foreign_cpu_pct: float  # other processes' CPU during the run, in % of one core
    steal_pct: float  # the server core's time taken by the hypervisor, in %
    disturbers: list[tuple[str, float]]  # the biggest other processes during the run: (name, CPU seconds)
    errors: dict[str, int]

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def wrk(target: Target, server: servers.Server, key: str, *, duration: int, connections: int,
        threads: int, ours: set[int] | None = None) -> Run:
    """``taskset -c LOAD_CORE wrk``; CPU per request = the server tree's utime+stime delta / requests."""
    pids = servers.process_tree(server.pid)
    env = {**os.environ, "BENCH_BODY": target.body, "BENCH_KEY": target.key_scheme + (target.key or key),
           "BENCH_KEY_HEADER": target.key_header, "BENCH_RUN": str(time.time_ns()),
           "BENCH_IDEMPOTENCY": target.idempotency or "", "BENCH_IDEMPOTENCY_KEY": REPLAY_KEY}
    cmd = ["taskset", "-c", str(LOAD_CORE), "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
           "--latency", "--timeout", "10s", "-s", str(LUA), server.url + target.path]
    exclude = (ours or set()) | set(pids) | {os.getpid()}
    others = servers.cpu_by_process(exclude)
    steal_before = servers.core_times(SERVER_CORE)
    before = servers.cpu_seconds(pids)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=False)
    after = servers.cpu_seconds(pids)
    steal_after = servers.core_times(SERVER_CORE)
    foreign, disturbers = servers.foreign_cpu(others, servers.cpu_by_process(exclude))
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise servers.SetupError(f"wrk failed on {target.name} ({done.returncode}): {done.stderr or done.stdout}")
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    requests = int(summary["requests"])
    seconds = summary["duration_us"] / 1e6
    cpu = after - before
    return Run(
        requests=requests,
        seconds=round(seconds, 3),
        rps=round(requests / seconds, 1),
        p50_ms=summary["latency_us"]["p50"] / 1000,
        p99_ms=summary["latency_us"]["p99"] / 1000,
        cpu_us_per_request=round(cpu / requests * 1e6, 1) if requests else float("nan"),
        server_cpu_seconds=round(cpu, 2),
        foreign_cpu_pct=round(100 * foreign / seconds, 1) if seconds else 0.0,
        steal_pct=round(100 * (steal_after[0] - steal_before[0]) / max(1, steal_after[1] - steal_before[1]), 1),
        disturbers=disturbers,
        errors={k: v for k, v in summary["errors"].items() if v},
    )


def quiet(ours: set[int], threshold_pct: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until the rest of the machine uses under ``threshold_pct`` of a core."""
    deadline = time.monotonic() + max_wait
    while True:
        exclude = ours | {os.getpid()}
        before = servers.cpu_by_process(exclude)
        time.sleep(0.5)
        load = 100 * servers.foreign_cpu(before, servers.cpu_by_process(exclude))[0] / 0.5
        if load < threshold_pct or time.monotonic() >= deadline:
            return load
        time.sleep(1.0)
