"""The results JSON as Markdown tables, for docs/performance.md.

python bench/markdown.py bench/results/latest.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def generation(gen: dict[str, Any]) -> str:
    rows = [
        [f"`{name}`", f"{t['median_s']:.3f}", f"{t['min_s']:.3f}–{t['max_s']:.3f}", f"{t['spread_pct']:.0f}"]
        for name, t in gen["timings"].items()
    ]
    text = _table(["command", "median s", "min–max s", "spread %"], rows)
    verdicts = [f"- {key}: **{value:.2f}** (target ≤ {gen['targets'][key]})" for key, value in gen["ratios"].items()]
    return text + "\n\n" + "\n".join(verdicts)


def runtime(rt: dict[str, Any]) -> str:
    rows = []
    for name, v in rt["variants"].items():
        redis = "" if v["redis_per_read"] is None else "{:.0f} / {:.0f}".format(*v["redis_per_read"])
        redis_write = "" if v["redis_per_write"] is None else "{:.0f} / {:.0f}".format(*v["redis_per_write"])
        rows.append(
            [
                name,
                f"{v['read_rps']:,}",
                f"{v['write_rps']:,}",
                f"{v['read_overhead_us']:.1f}",
                f"{v['write_overhead_us']:.1f}",
                f"{v['spread_pct']:.0f}",
                redis,
                redis_write,
            ]
        )
    header = [
        "variant",
        "read req/s",
        "write req/s",
        "read µs over floor",
        "write µs over floor",
        "spread %",
        "Redis cmds / trips per read",
        "per write",
    ]
    return _table(header, rows) + "\n\n" + verdicts(rt["ratios"])


def verdicts(ratios: dict[str, Any]) -> str:
    """One line per target: the measured ratio, the target and whether it was met."""
    lines = []
    for key, r in ratios.items():
        sign = "≤" if r.get("better", "lower") == "lower" else "≥"
        if r["value"] is None:
            lines.append(f"- {key}: not measurable in this run (target {sign} {r['target']})")
            continue
        verdict = "met" if r.get("met") else "missed"
        lines.append(f"- {key}: **{r['value']:.2f}** (target {sign} {r['target']}): {verdict}")
    return "\n".join(lines)


def flask(rt: dict[str, Any]) -> str:
    rows = [
        [
            name,
            f"{v['read_rps']:,}",
            f"{v['write_rps']:,}",
            f"{v['read_overhead_us']:.1f}",
            f"{v['write_overhead_us']:.1f}",
            f"{v['spread_pct']:.0f}",
            "" if v["redis_per_read"] is None else "{:.0f} / {:.0f}".format(*v["redis_per_read"]),
            "" if v["redis_per_write"] is None else "{:.0f} / {:.0f}".format(*v["redis_per_write"]),
        ]
        for name, v in rt["variants"].items()
    ]
    header = [
        "variant",
        "read req/s",
        "write req/s",
        "read µs over floor",
        "write µs over floor",
        "spread %",
        "Redis cmds / trips per read",
        "per write",
    ]
    return _table(header, rows) + "\n\n" + verdicts(rt["ratios"])


def roundtrips(result: dict[str, Any]) -> str:
    stores = list(result["stores"])
    operations = list(next(iter(result["stores"].values()))) if stores else []

    def cell(store: str, row: dict[str, float]) -> str:
        if store == "Redis":
            return f"{row['redis_commands']:.1f} / {row['redis_round_trips']:.1f}"
        if store in ("SQLite", "PostgreSQL"):
            return f"{row['sql_statements']:.1f} / {row['sql_transactions']:.1f}"
        return "–"

    rows = [[name, *(cell(store, result["stores"][store][name]) for store in stores)] for name in operations]
    return _table(["operation", *stores], rows) + "\n\n" + verdicts(result["targets"])


def concurrency(result: dict[str, Any]) -> str:
    parts = []
    burst = result.get("burst")
    if burst:
        rows = [[w["request"], f"{w['seconds']:.2f}", str(w["errors"])] for w in burst["waves"]]
        parts.append(
            f"{burst['clients']} concurrent clients on Redis, 3 waves:\n\n" + _table(["wave", "s", "errors"], rows)
        )
    race_rows = [
        [store, f"{r['seconds']:.2f}", str(r["errors"]), str(r["listed"]), str(r["signed_in_clients"])]
        for store, r in result["race"].items()
    ]
    header = ["store", "s", "errors", "listed live", "clients still signed in"]
    parts.append("Concurrent sign-ins of one principal, limit 3:\n\n" + _table(header, race_rows))
    return "\n\n".join(parts)


def e2e(result: dict[str, Any]) -> str:
    rows = [
        [
            name,
            f"{v['read']['rps']:,}",
            f"{v['read']['p50_ms']}",
            f"{v['read']['p99_ms']}",
            f"{v['write']['rps']:,}",
            f"{v['write']['p99_ms']}",
            str(v["read"]["errors"] + v["write"]["errors"]),
        ]
        for name, v in result["variants"].items()
    ]
    header = ["variant", "read req/s", "read p50 ms", "read p99 ms", "write req/s", "write p99 ms", "errors"]
    return _table(header, rows)


def scale(result: dict[str, Any]) -> str:
    counts = [key for key in result["per_session"][0] if key.isdigit()]
    rows = [
        [
            row["store"],
            *(f"{row[c]['bytes_per_session']:,}" for c in counts),
            f"{row[counts[-1]]['units_per_session']}",
        ]
        for row in result["per_session"]
    ]
    header = ["store", *(f"bytes per session at {int(c):,}" for c in counts), "keys / files / rows per session"]
    text = _table(header, rows)
    listing = result.get("redis_listing")
    if listing:
        text += (
            f"\n\nListing one principal's {listing['principal_sessions']} sessions in Redis: "
            f"{listing['small_list_us']} µs among {listing['small_total']:,} sessions, "
            f"{listing['large_list_us']} µs among {listing['large_total']:,} (x{listing['ratio']})."
        )
    return text


def render(results: dict[str, Any]) -> str:
    parts = []
    for key, title, build in (
        ("generation", "Generation", generation),
        ("runtime", "Per-request overhead, in process", runtime),
        ("flask", "Flask, per-request overhead in process", flask),
        ("roundtrips", "Round trips per operation", roundtrips),
        ("concurrency", "Concurrency", concurrency),
        ("e2e", "End to end (uvicorn)", e2e),
        ("scale", "Scale", scale),
    ):
        part = results.get("runtime", {}).get("flask") if key == "flask" else results.get(key)
        if part:
            parts.append(f"### {title}\n\n{build(part)}")
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(json.loads(Path(sys.argv[1]).read_text())))
