"""Time ``o365dkim --help`` against a minimal typer application with the same command names.

Usage: python scripts/bench_startup.py [--repeat N] [--write]

Both programs run in fresh interpreters, interleaved, in the same run, so machine load
affects both alike. The table reports the median of N runs (default 21). The target is a
ratio of at most 1.3 for ``--help``. With --write, the "Startup" section of
docs/benchmarks.md is replaced by the result (other sections stay as they are).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import typer

from o365dkim.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Startup (`scripts/bench_startup.py`)"
TARGET_RATIO = 1.3
CASES = (["--help"], ["--version"], ["enable", "--help"], ["enable"])
RUN_O365DKIM = "from o365dkim.cli.main import run; run()"
RUN_MINIMAL = "from minimal_app import app; app()"


def command_tree(command: object) -> dict[str, object]:
    """Return the command names of a click group as nested dicts (empty for a leaf)."""
    return {name: command_tree(sub) for name, sub in getattr(command, "commands", {}).items()}


def minimal_source(tree: dict[str, object]) -> str:
    """Return a typer application with the same commands, each taking one argument."""
    lines = [
        "import typer",
        "",
        "app = typer.Typer(no_args_is_help=True, add_completion=False)",
        "",
        "",
        "def _version(value: bool) -> None:",
        "    if value:",
        "        typer.echo('minimal 0')",
        "        raise typer.Exit()",
        "",
        "",
        "@app.callback()",
        "def main(version: bool = typer.Option(False, '--version', callback=_version,",
        "                                      is_eager=True)) -> None:",
        "    '''A minimal application.'''",
        "",
    ]
    lines += _commands_source("app", tree, [])
    return "\n".join(lines) + "\n"


def _commands_source(parent: str, tree: dict[str, object], path: list[str]) -> list[str]:
    lines: list[str] = []
    for name, children in tree.items():
        identifier = "_".join([*path, name]).replace("-", "_")
        if isinstance(children, dict) and children:
            lines += [
                f"{identifier} = typer.Typer()",
                f"{parent}.add_typer({identifier}, name={name!r})",
            ]
            lines += _commands_source(identifier, children, [*path, name])
            continue
        lines += [
            "",
            f"@{parent}.command({name!r})",
            f"def {identifier}_command(domain: str) -> None:",
            f"    '''The {name} command.'''",
            "",
        ]
    return lines


def time_run(code: str, args: list[str], env: dict[str, str]) -> float:
    """Return the wall time of one fresh interpreter running ``code`` with ``args``, in ms."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return (time.perf_counter() - start) * 1000


def measure(args: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Return the median times (ms) of o365dkim and of the minimal application."""
    ours: list[float] = []
    minimal: list[float] = []
    for index in range(repeat):
        # Alternate which program runs first, so neither always gets the warmer cache.
        pair = [(RUN_O365DKIM, ours), (RUN_MINIMAL, minimal)]
        for code, times in pair if index % 2 == 0 else reversed(pair):
            times.append(time_run(code, args, env))
    return statistics.median(ours), statistics.median(minimal)


def machine() -> str:
    """Describe the CPU, core count, OS and versions that produced the numbers."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    # Other work on the machine slows both programs; the load shows how much there was.
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (
        f"{model}, {os.cpu_count()} cores{load}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, typer {metadata.version('typer')}, "
        f"rich {metadata.version('rich')}"
    )


def render(repeat: int, rows: list[tuple[str, str, float, float]]) -> str:
    """Return the Startup section as Markdown."""
    lines = [
        SECTION,
        "",
        f"Command: `python scripts/bench_startup.py --repeat {repeat} --write` on {machine()}.",
        f"Each cell is the median wall time of {repeat} fresh interpreters (`python -c ...`).",
        "o365dkim and a minimal typer application with the same command names run interleaved",
        f"in the same run. Target: `--help` within {TARGET_RATIO}x.",
        "",
        "| help formatting | arguments | o365dkim (ms) | minimal typer app (ms) | ratio |",
        "|---|---|---|---|---|",
    ]
    for mode, args, ours, minimal in rows:
        lines.append(f"| {mode} | `{args}` | {ours:.0f} | {minimal:.0f} | {ours / minimal:.2f} |")
    lines += [
        "",
        "The `enable` rows (a missing argument) do not compare like with like: o365dkim "
        "prints a usage error as one plain line, while the minimal application shows "
        "typer's error panel.",
        "",
        "typer formats help and usage errors with rich when rich is installed, which loads "
        "rich.markdown (markdown-it-py) and rich.traceback (pygments). `TYPER_USE_RICH=0`, or "
        "`rich_markup_mode=None` on the application, makes typer use plain click formatting "
        "and skip those imports, but also drops the option panels (Sign-in, DNS, Sandbox).",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace the Startup section of docs/benchmarks.md, keeping every other section."""
    current = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Benchmarks\n"
    # Match the heading by its start, so a renamed heading is still replaced.
    start = current.find("\n## Startup") + 1
    if start == 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + 1)
        tail = current[end + 1 :] if end >= 0 else ""
        updated = current[:start] + text + ("\n" + tail if tail else "")
    DOC.write_text(updated, encoding="utf-8")


def main() -> int:
    """Run the benchmark, print the section, and write it with --write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="runs per program and case")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    options = parser.parse_args()

    tree = command_tree(typer.main.get_command(app))
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="o365dkim-bench-") as folder:
        (Path(folder) / "minimal_app.py").write_text(minimal_source(tree), encoding="utf-8")
        base = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, base.get("PYTHONPATH")]))
        modes = (("rich (default)", {}), ("plain (`TYPER_USE_RICH=0`)", {"TYPER_USE_RICH": "0"}))
        for mode, extra in modes:
            env = {**base, **extra}
            for args in CASES:
                ours, minimal = measure(list(args), options.repeat, env)
                rows.append((mode, " ".join(args), ours, minimal))

    text = render(options.repeat, rows)
    print(text)
    if options.write:
        write_section(text)
    help_ratio = rows[0][2] / rows[0][3]
    return 0 if help_ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
