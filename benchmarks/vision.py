"""The vision issue's bars that a run measures itself: each vision config's `tfdl run`, its test metric and wall time.

Each config runs in a fresh process, as a user would run it; the figures come
from the run's own `metrics.json`. Figures go to BENCHMARKS.md.

    python benchmarks/vision.py [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402

# config -> (the figure in metrics.json, its bar)
RUNS = {
    "digits_resnet": (("test", "accuracy"), 0.985),
    "shapes_unet": (("test", "mean_iou"), 0.90),
}
MINUTES = 15


def run_config(name: str, work: Path) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfdl", "run", name, "--output-dir", str(work / name)],
                   check=True, capture_output=True, text=True)
    metrics = json.loads((work / name / "metrics.json").read_text())
    return {"seconds": time.perf_counter() - started, "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, ((section, key), bar) in RUNS.items():
            result = run_config(name, Path(work))
            value = result["metrics"][section][key]
            rows.append((name, f"{section} {key}", bar, value, result["seconds"]))
            print(name, value, f"{result['seconds']:.0f} s", flush=True)
    lines = [
        "## Vision: each config's `tfdl run`",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/vision.py` ({time.perf_counter() - started:.0f} s); each config run "
        "by `tfdl run CONFIG` in a fresh process; figures from the run's `metrics.json`.",
        "",
        "| config | figure | target | measured | wall time (target <= 15 min) | met |",
        "|---|---|---|---|---|---|",
        *[
            f"| {name} | {figure} | >= {bar} | {value:.4f} | {seconds / 60:.1f} min | "
            f"{'yes' if value >= bar and seconds <= MINUTES * 60 else 'NO'} |"
            for name, figure, bar, value, seconds in rows
        ],
    ]
    write_section(args.output, "vision", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
