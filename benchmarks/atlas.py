"""The atlas bar: `tfdl atlas run N` succeeds for every entry, offline, each within 5 minutes on 2 cores.

Each entry runs as a user runs it, `tfdl atlas run N` in a fresh process (so
the wall time includes importing TensorFlow), once at the fast budget (the
default, what the test suite runs) and once with `--full` (the budget that
makes the site's figures). The figures go to BENCHMARKS.md.

    python benchmarks/atlas.py [--numbers 1-100] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402

MINUTES = 5


def run_once(number: int, output: Path, full: bool) -> dict:
    """Wall time, exit code and the entry's own result.json of one `tfdl atlas run N [--full]`."""
    command = [sys.executable, "-m", "tfdl", "atlas", "run", str(number), "--output-dir", str(output)]
    started = time.perf_counter()
    process = subprocess.run(command + (["--full"] if full else []), capture_output=True, text=True)
    wall = time.perf_counter() - started
    result_file = output / f"{number:03d}" / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return {
        "wall": wall,
        "returncode": process.returncode,
        "example_seconds": result.get("seconds"),
        "checks": len(result.get("checks", [])),
        "failed": [c["claim"] for c in result.get("checks", []) if not c["passed"]] + (
            [result["error"].strip().splitlines()[-1]] if result.get("error") else []),
        "tail": process.stdout[-400:] + process.stderr[-400:] if process.returncode else "",
    }


def parse_numbers(text: str) -> list[int]:
    numbers = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        numbers.extend(range(int(low), int(high or low) + 1))
    return numbers


def written_entries(numbers: list[int]) -> list[int]:
    from tfdl.atlas.catalog import entries

    written = {entry.number for entry in entries()}
    return [n for n in numbers if n in written]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", default="1-100", help="entries to run, e.g. 1-100 or 4,8,31-33")
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    asked = parse_numbers(args.numbers)
    numbers = written_entries(asked)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for number in numbers:
            fast = run_once(number, Path(work) / "fast", full=False)
            full = run_once(number, Path(work) / "full", full=True)
            rows.append((number, fast, full))
            print(f"{number:3d} fast {fast['wall']:5.1f} s ({fast['example_seconds']} s in the example) rc "
                  f"{fast['returncode']}  full {full['wall']:5.1f} s rc {full['returncode']}", flush=True)
            for side in (fast, full):
                if side["failed"] or side["returncode"]:
                    print("   ", side["failed"], side["tail"], flush=True)
    total = time.perf_counter() - started

    def passed(side: dict) -> bool:
        return side["returncode"] == 0 and not side["failed"]

    fast_ok = sum(passed(fast) for _, fast, _ in rows)
    full_ok = sum(passed(full) for _, _, full in rows)
    slowest_fast = max(rows, key=lambda row: row[1]["wall"])
    slowest_full = max(rows, key=lambda row: row[2]["wall"])
    within = sum(max(fast["wall"], full["wall"]) <= MINUTES * 60 for _, fast, full in rows)
    fast_examples = [fast["example_seconds"] or 0.0 for _, fast, _ in rows]
    failures = [
        f"| {number} | {mode} | {'; '.join(side['failed']) or 'exit ' + str(side['returncode'])} |"
        for number, fast, full in rows for mode, side in (("fast", fast), ("full", full)) if not passed(side)
    ]
    lines = [
        "## The atlas: `tfdl atlas run N` for every entry",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/atlas.py --numbers {args.numbers}` ({total / 60:.1f} min); each entry run by "
        "`tfdl atlas run N` and `tfdl atlas run N --full` in a fresh process (wall time includes importing "
        "TensorFlow), offline.",
        "",
        "| bar | target | measured | met |",
        "|---|---|---|---|",
        f"| entries written | {len(asked)} | {len(numbers)} | {'yes' if len(numbers) == len(asked) else 'NO'} |",
        f"| `tfdl atlas run N` succeeds (every check holds), fast / full | all | {fast_ok} / {full_ok} of "
        f"{len(rows)} | {'yes' if fast_ok == full_ok == len(rows) else 'NO'} |",
        f"| each within {MINUTES} minutes on 2 cores | all | {within} of {len(rows)}; slowest fast: entry "
        f"{slowest_fast[0]} {slowest_fast[1]['wall']:.0f} s, slowest full: entry {slowest_full[0]} "
        f"{slowest_full[2]['wall']:.0f} s | {'yes' if within == len(rows) else 'NO'} |",
        "",
        f"The fast examples themselves (what the test suite runs, without process start) take "
        f"{sum(fast_examples):.0f} s in all, median {statistics.median(fast_examples):.1f} s, "
        f"the slowest {max(fast_examples):.1f} s.",
    ]
    if failures:
        lines += ["", "| entry | mode | what failed |", "|---|---|---|", *failures]
    lines += [
        "",
        "| entry | fast: wall s (example s) | full: wall s (example s) |",
        "|---|---|---|",
        *[
            f"| {number} | {fast['wall']:.1f} ({fast['example_seconds']}) | {full['wall']:.1f} "
            f"({full['example_seconds']}) |"
            for number, fast, full in rows
        ],
    ]
    write_section(args.output, "atlas", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
