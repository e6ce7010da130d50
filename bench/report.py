"""Medians, the Markdown table, the targets' verdicts, and the JSON record of a run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.measure import Run


@dataclass
class Row:
    name: str
    label: str
    server: str
    runs: list[Run]
    peak_rss_mib: float

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.runs))

    @property
    def foreign_pct(self) -> float:
        return max((run.foreign_cpu_pct for run in self.runs), default=0.0)

    @property
    def errors(self) -> int:
        return sum(sum(run.errors.values()) for run in self.runs)


# (what, numerator target, denominator target, minimum ratio): throughput ratios the issue asks for.
THROUGHPUT_TARGETS = (
    ("test-mode path vs bare Starlette", "testmode", "starlette", 0.80),
    ("test-mode path, fresh Idempotency-Key vs no key", "testmode-key", "testmode", 0.50),
    ("test-mode path, Idempotency-Key replay vs no key", "testmode-replay", "testmode", 0.80),
    ("live path vs naive aiohttp proxy", "live", "aiohttp", 0.75),
    ("live path vs naive httpx proxy", "live", "httpx", 10.0),
    ("sandbox send vs stateless test-mode path", "sandbox", "testmode", 0.5),
)
VARIANT_TARGETS = (("live path, validate on, vs naive aiohttp proxy", "live-validate", "aiohttp", 0.75),)
RSS_LIMIT_MIB = 80.0
BASELINES = {"starlette": "bare Starlette", "aiohttp": "naive aiohttp proxy", "httpx": "naive httpx proxy"}


def table(rows: dict[str, Row]) -> str:
    lines = ["| target | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MiB | errors | other load % |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows.values():
        lines.append(
            f"| {row.label} | {row.median('rps'):,.0f} | {row.median('p50_ms'):.2f} "
            f"| {row.median('p99_ms'):.2f} | {row.median('cpu_us_per_request'):,.1f} | {row.peak_rss_mib:.1f} "
            f"| {row.errors} | {row.foreign_pct:.0f} |")
    return "\n".join(lines)


def checks(rows: dict[str, Row]) -> list[dict[str, Any]]:
    """Each target as PASS/FAIL; the CPU-per-request ratio rides along (the steadier figure, for reading)."""
    found: list[dict[str, Any]] = []
    variants = list(VARIANT_TARGETS)
    for name, row in rows.items():  # gateway builds given with --variant: the same ratios, for comparison
        if name.startswith(("testmode@", "live@")):
            variants += [(f"{row.label} vs {BASELINES[den]}", name, den, minimum)
                         for _, num, den, minimum in THROUGHPUT_TARGETS if num == name.split("@")[0]]
    for group, specs in (("target", THROUGHPUT_TARGETS), ("variant", tuple(variants))):
        for what, num, den, minimum in specs:
            if num not in rows or den not in rows:
                continue
            ratio = rows[num].median("rps") / rows[den].median("rps")
            cpu_ratio = rows[den].median("cpu_us_per_request") / rows[num].median("cpu_us_per_request")
            errors = rows[num].errors + rows[den].errors
            found.append({"kind": group, "what": what, "ratio": round(ratio, 3), "minimum": minimum,
                          "cpu_ratio": round(cpu_ratio, 3), "errors": errors,
                          "verdict": "PASS" if ratio >= minimum and not errors else "FAIL"})
    gateways: dict[str, list[Row]] = {}  # one process serves both paths: one RSS check per gateway process
    for row in rows.values():
        if row.server.startswith("gateway"):
            gateways.setdefault(row.server, []).append(row)
    for server, served in gateways.items():
        rss = max(row.peak_rss_mib for row in served)
        found.append({"kind": "target" if server == "gateway" else "variant",
                      "what": f"peak RSS, {server} process ({', '.join(row.name for row in served)})",
                      "ratio": round(rss, 1), "maximum": RSS_LIMIT_MIB,
                      "verdict": "PASS" if rss <= RSS_LIMIT_MIB else "FAIL"})
    return found


def verdicts(found: list[dict[str, Any]]) -> str:
    lines = ["| check | measured | target | CPU/req ratio | verdict |", "|---|---:|---:|---:|---|"]
    for item in found:
        label = item["what"] + (" *(informational variant)*" if item["kind"] == "variant" else "")
        if "maximum" in item:
            lines.append(f"| {label} | {item['ratio']:.1f} MiB | ≤ {item['maximum']:.0f} MiB | | {item['verdict']} |")
        else:
            lines.append(f"| {label} | {item['ratio']:.2f}x | ≥ {item['minimum']:g}x | {item['cpu_ratio']:.2f}x "
                         f"| {item['verdict']}{' (errors)' if item['errors'] else ''} |")
    return "\n".join(lines)
