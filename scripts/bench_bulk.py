"""Benchmark ``o365dkim bulk``: 1,000 domains over 50 sandbox tenants.

Each admin API call gets 250 ms of added latency and the sandbox's secondary name server
lags 5 s. The script prints and (with --write) records in docs/benchmarks.md:
wall time, the lower bound implied by the worker and per-tenant limits, service calls
per domain, token requests and peak resident memory of the bulk process.

Usage: python scripts/bench_bulk.py [--domains 1000] [--tenants 50] [--write]
The sandbox runs inside the measured process, so the memory figure includes it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATENCY = 0.25
LAG = 5.0
WORKERS = 16
TENANT_LIMIT = 3
INTERVAL = 1.0
#: Get, New (which returns the targets), Set, and Get to read the result back.
CALLS_PER_DOMAIN = 4


def main() -> int:
    """Run the benchmark once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="record in docs/benchmarks.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="o365dkim-bench-") as folder:
        work = Path(folder)
        source = _write_csv(work / "bench.csv", args.domains, args.tenants)
        report_path = work / "sandbox-report.json"
        started = time.monotonic()
        completed = subprocess.run(
            [
                sys.executable, "-m", "o365dkim", "bulk", str(source), "--sandbox",
                "--sandbox-latency", str(LATENCY), "--sandbox-lag", str(LAG),
                "--sandbox-report", str(report_path), "--interval", str(INTERVAL),
                "--workers", str(WORKERS), "--tenant-limit", str(TENANT_LIMIT),
                "--output", "json", "--results", str(work / "results.json"),
            ],
            capture_output=True, text=True, cwd=work, check=False,
        )
        wall = time.monotonic() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if completed.returncode != 0:
            print(completed.stderr[-2000:], file=sys.stderr)
            return 1
        summary = json.loads(completed.stdout)["summary"]
        sandbox = json.loads(report_path.read_text())

    figures = _figures(args.domains, args.tenants, wall, peak_mb, summary, sandbox)
    text = _markdown(figures, args)
    print(text)
    if args.write:
        _record(text)
    return 0


def _write_csv(path: Path, domains: int, tenants: int) -> Path:
    lines = ["domain,tenant"]
    for index in range(domains):
        tenant = index % tenants
        lines.append(f"d{index}.t{tenant}.example,tenant{tenant:02d}.onmicrosoft.com")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _figures(domains: int, tenants: int, wall: float, peak_mb: float,
             summary: dict[str, int], sandbox: dict[str, object]) -> dict[str, object]:
    concurrency = min(WORKERS, tenants * TENANT_LIMIT)
    bound = math.ceil(CALLS_PER_DOMAIN * domains / concurrency) * LATENCY + LAG
    calls: dict[str, int] = sandbox["calls"]  # type: ignore[assignment]
    retries = sum(count for key, count in calls.items()
                  if key.startswith("Set-DkimSigningConfig") and not key.endswith(" ok"))
    total = sum(calls.values())
    return {
        "summary": summary,
        "wall": wall,
        "bound": bound,
        "ratio": wall / bound,
        "calls_per_domain": (total - retries) / domains,
        "retries": retries,
        "tokens": sandbox["token_requests"],
        "peak_mb": peak_mb,
    }


def _markdown(figures: dict[str, object], args: argparse.Namespace) -> str:
    return "\n".join([
        "## Bulk onboarding (`scripts/bench_bulk.py`)",
        "",
        f"Command: `python scripts/bench_bulk.py --domains {args.domains} --tenants {args.tenants}`"
        f" on {platform.machine()} with 2 cores, Python {platform.python_version()}.",
        f"Sandbox: {LATENCY * 1000:.0f} ms added to each admin API call, secondary name server "
        f"{LAG:.0f} s behind, checks every {INTERVAL:.0f} s; {WORKERS} workers, "
        f"{TENANT_LIMIT} per tenant.",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
        f"| rows | {figures['summary']} | all enabled |",
        f"| wall time | {figures['wall']:.1f} s | within 1.3x of the bound |",
        f"| lower bound: ceil(4 x domains / min(workers, tenants x per-tenant)) x latency + lag "
        f"| {figures['bound']:.1f} s | |",
        f"| wall time / bound | {figures['ratio']:.2f} | <= 1.30 |",
        f"| service calls per domain, without CNAME-missing retries | "
        f"{figures['calls_per_domain']:.2f} | <= 4 |",
        f"| CNAME-missing retries | {figures['retries']} | |",
        f"| token requests | {figures['tokens']} | = tenants ({args.tenants}) |",
        f"| peak resident memory (bulk process with the sandbox inside) | "
        f"{figures['peak_mb']:.0f} MB | < 200 MB |",
        "",
    ])


def _record(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    start = current.find("## Bulk onboarding")
    if start >= 0:
        end = current.find("\n## ", start + 1)
        current = current[:start] + current[end + 1 if end >= 0 else len(current):]
    path.write_text(current.rstrip("\n") + "\n\n" + text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
