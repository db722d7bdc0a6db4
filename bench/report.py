"""Turn bench/results/results.jsonl into the Markdown tables of docs/performance.md.

    python3 bench/report.py [results.jsonl] [--since 2026-11-23T01:00] [--seconds 20]

One row per configuration and N: the median of the runs (and how many there were).
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = [
    ("p50", "p50 ms"),
    ("p95", "p95 ms"),
    ("p99", "p99 ms"),
    ("max", "max ms"),
    ("lost", "lost"),
    ("converged", "converged"),
    ("serverCpuSeconds", "server CPU s"),
    ("serverCpuShare", "server CPU share"),
    ("serverRunqueueWaitSeconds", "server runqueue wait s"),
    ("cpuPerEdit", "server CPU ms / edit"),
    ("serverPeakRssMiB", "server peak RSS MiB"),
    ("driverCpuShare", "driver CPU share"),
    ("tokensSent", "edits sent"),
    ("loadAverageBefore", "load avg before"),
]


def main():
    """Print one Markdown table of medians per configuration and N."""
    arguments = sys.argv[1:]
    since, seconds = "", 20.0
    if "--since" in arguments:
        at = arguments.index("--since")
        since = arguments[at + 1]
        del arguments[at : at + 2]
    if "--seconds" in arguments:  # only runs of that length (default 20 s)
        at = arguments.index("--seconds")
        seconds = float(arguments[at + 1])
        del arguments[at : at + 2]
    path = Path(arguments[0]) if arguments else Path(__file__).parent / "results" / "results.jsonl"
    groups = defaultdict(list)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") == "room":  # the live room's runs: bench/room.py --report
            continue
        if row.get("serverCpuSeconds") is not None and row.get("tokensSent"):
            row["cpuPerEdit"] = round(row["serverCpuSeconds"] / row["tokensSent"] * 1e3, 2)
        if row.get("at", "") >= since and float(row.get("seconds", 20)) == seconds:
            groups[(row["config"], row["n"])].append(row)
    header = "| configuration | N | runs | " + " | ".join(title for _, title in COLUMNS) + " |"
    print(header)
    print("|" + "---|" * (3 + len(COLUMNS)))
    for (config, n), rows in sorted(groups.items()):
        cells = []
        for key, _ in COLUMNS:
            values = [r.get(key) for r in rows if r.get(key) is not None]
            if not values:
                cells.append("–")
            elif isinstance(values[0], bool):
                cells.append("yes" if all(values) else f"no ({values.count(False)}/{len(values)})")
            elif key == "lost":
                cells.append(str(max(values)))
            else:
                cells.append(f"{statistics.median(values):g}")
        print(f"| {config} | {n} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
