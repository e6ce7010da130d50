"""``python -m bench [--duration S] [--repetitions N] [--connections C] [--targets a,b]``

One run, one table: every target is started, checked with one real request, warmed up, then measured
round-robin (repetition 1 of every target, then repetition 2, …) so drift hits all targets alike.
Prints a Markdown table and the PASS/FAIL verdicts; writes the whole record to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from bench import sandbox, servers
from bench.measure import Run, quiet, wrk
from bench.report import Row, checks, table, verdicts
from bench.targets import BY_NAME, LOAD_CORE, SERVER_CORE, TARGETS, Target, Variant, start_all, verify

RESULTS = Path(__file__).with_name("results")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=5, help="seconds per measured run (default 5)")
    p.add_argument("--repetitions", type=int, default=3, help="measured runs per target; medians (default 3)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: wrk has one core)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured seconds per target first (default 1)")
    p.add_argument("--targets", default=",".join(t.name for t in TARGETS),
                   help="comma-separated subset of: " + ", ".join(t.name for t in TARGETS))
    p.add_argument("--upstream", choices=["nginx", "asgi"], default="nginx",
                   help="the proxies' upstream: nginx `return 201` (default) or a raw ASGI app on uvicorn")
    p.add_argument("--gateway-src", type=Path, default=servers.ROOT,
                   help="tree whose proxy/ package is measured (default: this checkout)")
    p.add_argument("--policies", type=Path, help="policy directory (default: <gateway-src>/policies)")
    p.add_argument("--max-foreign", type=float, default=5.0,
                   help="other processes' CPU (%% of one core) above which a repetition is re-run (default 5)")
    p.add_argument("--retries", type=int, default=2, help="re-runs of a repetition disturbed by other load")
    p.add_argument("--quiet-wait", type=float, default=10.0,
                   help="at most this many seconds of waiting for quiet before each repetition (default 10)")
    p.add_argument("--retry-budget", type=float, default=90.0,
                   help="seconds the whole run may spend waiting and re-running (default 90; 0: never retry)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SRC[,KEY=VALUE...]",
                   help="also measure another gateway build side by side (its test-mode and live paths): a source "
                        "tree and extra environment, e.g. gc=/tmp/scratch,OPT_GC=1; repeatable")
    p.add_argument("--keep", action="store_true", help="keep the work directory (server logs, configs)")
    args = p.parse_args(argv)
    unknown = set(args.targets.split(",")) - set(BY_NAME)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))}")
    try:
        args.variants = tuple(Variant.parse(text) for text in args.variant)
    except ValueError as exc:
        p.error(str(exc))
    return args


def _environment(args: argparse.Namespace, src: Path) -> dict[str, object]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    commit = subprocess.run(["git", "-C", str(src), "describe", "--always", "--dirty"], capture_output=True,
                            text=True, check=False).stdout.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "cpu": model, "cores": {"server": SERVER_CORE, "load_generator_and_upstream": LOAD_CORE},
        "python": platform.python_version(), "gateway_src": str(src), "gateway_commit": commit,
        "wrk": (wrk_version.stdout or wrk_version.stderr).split("\n", 1)[0],
        "packages": {name: version(name) for name in ("starlette", "uvicorn", "uvloop", "httptools", "aiohttp",
                                                      "httpx", "orjson", "structlog", "prometheus-client")},
        "duration_s": args.duration, "repetitions": args.repetitions, "connections": args.connections,
        "threads": args.threads, "warmup_s": args.warmup, "upstream": args.upstream,
        "variants": {v.name: {"src": str(v.src), "env": v.env} for v in args.variants},
    }


def _measure(args: argparse.Namespace, target: Target, server: servers.Server, key: str, ours: set[int],
             rep: int, budget: list[float]) -> Run:
    """One repetition. While other processes load the machine, wait for quiet and re-run (up to ``--retries``),
    keeping the cleanest run; waits and re-runs draw on one ``--retry-budget`` for the whole run."""
    best: Run | None = None
    for attempt in range(1 + args.retries):
        if budget[0] > 0:
            started = time.monotonic()
            quiet(ours, args.max_foreign, min(args.quiet_wait, budget[0]))
            budget[0] -= time.monotonic() - started
        run = wrk(target, server, key, duration=args.duration, connections=args.connections, threads=args.threads,
                  ours=ours)
        if attempt:
            budget[0] -= args.duration
        if best is None or run.foreign_cpu_pct < best.foreign_cpu_pct:
            best = run
        noisy = run.foreign_cpu_pct > args.max_foreign
        retry = noisy and attempt < args.retries and budget[0] > 0
        print(f"  [{rep + 1}/{args.repetitions}] {target.name:14} {run.rps:>9,.0f} req/s  "
              f"p99 {run.p99_ms:8.2f} ms  {run.cpu_us_per_request:8.1f} µs/req"
              f"{f'  other load {run.foreign_cpu_pct:.0f}% ({run.disturbers[0][0]}…)' if noisy else ''}"
              f"{f'  steal {run.steal_pct:.0f}%' if run.steal_pct >= 1 else ''}"
              f"{'  errors ' + str(run.errors) if run.errors else ''}{'  (retrying)' if retry else ''}",
              file=sys.stderr)
        if not retry:
            break
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM (and SIGINT, which a background job may ignore) unwind through `finally`: no orphaned servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    src = args.gateway_src.resolve()
    policies = (args.policies or src / "policies").resolve()
    wanted = [t for t in TARGETS if t.name in set(args.targets.split(","))]
    wanted += [target for variant in args.variants for target in variant.targets()]
    try:
        servers.require_tools(args.upstream)
    except servers.SetupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="testmode-bench-"))
    started: dict[str, servers.Server] = {}
    try:
        keys_file = work / "keys.json"
        key = servers.create_live_key(src, policies, keys_file)
        sandbox_key = sandbox.create_key(src, policies, keys_file) if "sandbox" in set(args.targets.split(",")) \
            else ""
        started = start_all(wanted, upstream=args.upstream, src=src, policies=policies, work=work,
                            keys_file=keys_file, variants=args.variants)
        wanted = [sandbox.prepare(t, started[t.server], sandbox_key) if t.name == "sandbox" else t for t in wanted]
        for target in wanted:
            verify(target, started[target.server], key)
        total = len(wanted) * (args.warmup + args.repetitions * args.duration)
        print(f"bench: {len(wanted)} targets checked; measuring for ~{total} s "
              f"(server on core {SERVER_CORE}, wrk and upstream on core {LOAD_CORE})", file=sys.stderr)
        ours = {pid for server in started.values() for pid in servers.process_tree(server.pid)}
        if args.warmup:
            for target in wanted:
                wrk(target, started[target.server], key, duration=args.warmup, connections=args.connections,
                    threads=args.threads, ours=ours)
        rows = {t.name: Row(t.name, t.label, t.server, [], 0.0) for t in wanted}
        budget = [args.retry_budget]
        for rep in range(args.repetitions):
            for target in wanted:
                rows[target.name].runs.append(_measure(args, target, started[target.server], key, ours, rep,
                                                       budget))
        for target in wanted:
            rows[target.name].peak_rss_mib = servers.peak_rss_mib(servers.process_tree(started[target.server].pid))
        pinning = {name: servers.status_field(server.pid, "Cpus_allowed_list") for name, server in started.items()}
    except servers.SetupError as exc:
        print(f"bench: {exc}\nbench: logs in {work}", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        for server in started.values():
            server.stop()
        # Proof that logging was on: the gateways' canonical lines, one per request (all runs, warm-ups too).
        log_lines = {name: server.log.read_bytes().count(b'"event":"request"')
                     for name, server in started.items() if name.startswith("gateway") and server.log.exists()}
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    found = checks(rows)
    print(f"\n## testmode-proxy bench — {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    print(f"POST /v3/messages, wrk -t{args.threads} -c{args.connections}, {args.repetitions} x {args.duration} s, "
          f"medians; server pinned to core {SERVER_CORE}, wrk and the proxies' upstream ({args.upstream}) "
          f"to core {LOAD_CORE}.\n")
    print(table(rows))
    print()
    print(verdicts(found))
    noisy = [name for name, row in rows.items() if row.foreign_pct > args.max_foreign]
    if noisy:
        print(f"\nwarning: other processes loaded the machine during {', '.join(noisy)} even after retries "
              f"(column 'other load'); compare CPU µs/req rather than req/s for those rows.")
    record = {"environment": _environment(args, src), "pinning": pinning, "checks": found,
              "gateway_log_lines": log_lines,
              "targets": {name: {"label": row.label, "peak_rss_mib": round(row.peak_rss_mib, 1),
                                 "median": {k: row.median(k) for k in ("rps", "p50_ms", "p99_ms",
                                                                       "cpu_us_per_request")},
                                 "runs": [run.as_json() for run in row.runs]} for name, row in rows.items()}}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / time.strftime("bench-%Y%m%dT%H%M%S.json")
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0 if all(item["verdict"] == "PASS" for item in found if item["kind"] == "target") else 3


if __name__ == "__main__":
    sys.exit(main())
