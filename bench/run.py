"""Run every benchmark once, print rich tables with ratios against the peers, write JSON.

    python bench/run.py [--runs N] [--only generation,runtime,roundtrips,concurrency,e2e,scale] [--out FILE]

Parts: generation (whole processes against copier and cookiecutter), runtime (per-request
overhead in process, ASGI and Flask), roundtrips (store commands and statements per
operation), concurrency (concurrent requests and sign-ins against one app), e2e (uvicorn and
a bounded load generator), scale (storage per session, listing among a million sessions in
Redis). Every part is bounded; the whole run takes a few minutes on a 2-core machine.

Benchmarks are not tests: nothing here asserts a timing. Targets are printed beside the
measured ratios so a miss is visible, and docs/performance.md records the latest run.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generation

PARTS = ("generation", "runtime", "roundtrips", "concurrency", "e2e", "scale")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (after one warm-up)")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts to run")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "latest.json")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 170)  # wide tables also in a log file
    parts = set(args.only.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown part(s) {', '.join(sorted(parts - set(PARTS)))}; the parts are {', '.join(PARTS)}")
    # A stopped run still drops its tables and keys: SIGTERM unwinds like Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()}
    results: dict[str, object] = {"machine": machine, "command": " ".join(["python", *sys.argv])}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sk-bench-") as scratch:
        workdir = Path(scratch)
        if "generation" in parts:
            (workdir / "generation").mkdir()
            gen = generation.run(args.runs, workdir / "generation")
            results["generation"] = gen
            _print_generation(console, gen)
        if parts & {"runtime", "e2e"}:
            import runtime

            if "runtime" in parts:
                results["runtime"] = runtime.run(console, workdir)
            else:
                runtime.build_variants(workdir, console)  # generates the packages the servers use
            if "e2e" in parts:
                import e2e

                results["e2e"] = e2e.run(workdir, console)
        if "roundtrips" in parts:
            import roundtrips

            results["roundtrips"] = roundtrips.run(workdir, console)
        if "concurrency" in parts:
            import concurrency

            results["concurrency"] = concurrency.run(workdir, console)
        if "scale" in parts:
            import scale

            results["scale"] = scale.run(workdir, console)
    results["seconds"] = round(time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"\nJSON written to {args.out} after {results['seconds']} s")
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
