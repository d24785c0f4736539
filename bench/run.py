"""Run every benchmark once, print a rich table of ratios against the peers, write JSON.

    python bench/run.py [--runs N] [--skip-runtime] [--out bench/results/latest.json]

Benchmarks are not tests: nothing here asserts a timing. Targets are printed beside the
measured ratios so a miss is visible, and docs/performance.md records the latest run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (after one warm-up)")
    parser.add_argument("--skip-runtime", action="store_true", help="only the generation benchmark")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "latest.json")
    args = parser.parse_args()
    console = Console()
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()}
    results: dict[str, object] = {"machine": machine}
    with tempfile.TemporaryDirectory(prefix="sk-bench-") as scratch:
        gen = generation.run(args.runs, Path(scratch))
    results["generation"] = gen
    _print_generation(console, gen)
    if not args.skip_runtime:
        import runtime

        rt = runtime.run(console)
        results["runtime"] = rt
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    console.print(f"\nJSON written to {args.out}")
    return 0


def _print_generation(console: Console, gen: dict[str, object]) -> None:
    table = Table(title=f"Generation: {gen['files']} files, {gen['lines']} lines (whole processes)")
    for column in ("command", "median s", "min s", "max s", "spread %"):
        table.add_column(column, justify="right" if column != "command" else "left")
    timings = gen["timings"]
    assert isinstance(timings, dict)
    for name, t in timings.items():
        table.add_row(name, f"{t['median_s']:.3f}", f"{t['min_s']:.3f}", f"{t['max_s']:.3f}", f"{t['spread_pct']:.0f}")
    console.print(table)
    ratios = gen["ratios"]
    targets = gen["targets"]
    assert isinstance(ratios, dict)
    assert isinstance(targets, dict)
    for key, value in ratios.items():
        verdict = "[green]meets[/]" if value <= targets[key] else f"[red]misses by {value / targets[key]:.2f}x[/]"
        console.print(f"{key}: {value:.3f} (target <= {targets[key]}) {verdict}")
    console.print(f"identical output: {gen['identical_output']}")
    console.print(f"`session-kit --help` imports jinja2/yaml: {gen['help_imports_jinja2_or_yaml'] or 'no'}")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
