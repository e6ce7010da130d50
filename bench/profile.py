"""``python -m bench.profile``: where the gateway's per-request CPU goes, per path, with py-spy.

Starts the gateway (core 1) and the nginx upstream (core 0) as ``python -m bench`` does, measures each
path once unprofiled, then again with wrk while ``py-spy record`` samples the gateway from core 0,
and prints the top functions by own and by inclusive time, each also as µs per request: the share
of samples times the unprofiled CPU per request (sampling pauses the server, which inflates its own
figure). Raw collapsed stacks (flamegraph input) go to bench/results/. py-spy is a profiling tool,
not a project dependency: ``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import servers
from bench.measure import wrk
from bench.targets import BY_NAME, LOAD_CORE, start_all, verify

RESULTS = Path(__file__).with_name("results")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """``send (uvicorn/protocols/http/httptools_impl.py:123)`` → ``uvicorn/protocols/http/httptools_impl.py:send``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "/proxy/", "/bench/"):
        if marker in path:
            path = (marker.strip("/") + "/" if marker in ("/proxy/", "/bench/") else "") + path.split(marker, 1)[1]
            break
    return f"{path}:{match['func']}"


def summarize(collapsed: Path, cpu_us: float, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    out = [f"{total} samples; µs/req = share x {cpu_us:.1f} µs CPU per request", "",
           "| own time | % | µs/req |", "|---|---:|---:|"]
    out += [f"| `{name}` | {100 * n / total:.1f} | {cpu_us * n / total:.1f} |" for name, n in own.most_common(top)]
    out += ["", "| inclusive time | % | µs/req |", "|---|---:|---:|"]
    out += [f"| `{name}` | {100 * n / total:.1f} | {cpu_us * n / total:.1f} |"
            for name, n in inclusive.most_common(top * 2)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--paths", default="testmode,live",
                   help="comma-separated targets of `python -m bench` (any but upstream), e.g. testmode,starlette")
    p.add_argument("--nonblocking", action="store_true",
                   help="don't pause the server per sample (less overhead, but partial stacks skew inclusive time)")
    p.add_argument("--gateway-src", type=Path, default=servers.ROOT)
    args = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("bench.profile: py-spy is missing: `.venv/bin/pip install py-spy` (profiling only)", file=sys.stderr)
        return 2
    servers.require_tools("nginx")
    src = args.gateway_src.resolve()
    wanted = [BY_NAME[name] for name in args.paths.split(",") if name != "upstream"]
    work = Path(tempfile.mkdtemp(prefix="testmode-profile-"))
    keys_file = work / "keys.json"
    key = servers.create_live_key(src, src / "policies", keys_file)
    started = start_all(wanted, upstream="nginx", src=src, policies=src / "policies",
                        work=work, keys_file=keys_file)
    RESULTS.mkdir(exist_ok=True)
    try:
        for target in wanted:
            server = started[target.server]
            verify(target, server, key)
            wrk(target, server, key, duration=1, connections=args.connections, threads=1)  # warm-up
            clean = wrk(target, server, key, duration=args.duration, connections=args.connections, threads=1)
            collapsed = RESULTS / time.strftime(f"profile-{target.name}-%Y%m%dT%H%M%S.txt")
            recorder = subprocess.Popen(
                ["taskset", "-c", str(LOAD_CORE), spy, "record", "--pid", str(server.pid),
                 *(["--nonblocking"] if args.nonblocking else []), "--rate", str(args.rate), "--format", "raw",
                 "--output", str(collapsed), "--duration", str(args.duration + 1)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
            run = wrk(target, server, key, duration=args.duration, connections=args.connections, threads=1)
            _, err = recorder.communicate(timeout=60)
            if not collapsed.exists():
                print(f"bench.profile: py-spy wrote nothing: {err.decode(errors='replace')}", file=sys.stderr)
                return 1
            print(f"\n## {target.label}: {clean.rps:,.0f} req/s, {clean.cpu_us_per_request:.1f} µs CPU/req unprofiled; "
                  f"{run.rps:,.0f} req/s under py-spy\n")
            print(summarize(collapsed, clean.cpu_us_per_request, args.top))
            print(f"\nstacks: {collapsed}")
    finally:
        for server in started.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
