"""The vision issue's bars that a run measures itself: each vision config's `tfdl run`, its test metric and wall time.

Each config runs in a fresh process, as a user would run it; the figures come
from the run's own `metrics.json`. Figures go to BENCHMARKS.md.

    python benchmarks/vision.py [--configs NAME ...] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402

# config -> (the figure in metrics.json, its bar; None: the issue sets only the time bar)
RUNS = {
    "digits_resnet": (("test", "accuracy"), 0.985),
    "shapes_resnet": (("test", "accuracy"), None),
    "shapes_unet": (("test", "mean_iou"), 0.90),
    "shapes_fcn": (("test", "mean_iou"), None),
}
MINUTES = 15


def run_config(name: str, work: Path) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfdl", "run", name, "--output-dir", str(work / name)],
                   check=True, capture_output=True, text=True)
    metrics = json.loads((work / name / "metrics.json").read_text())
    return {"seconds": time.perf_counter() - started, "metrics": metrics}


def kept_rows(path: Path, names: list[str]) -> dict[str, str]:
    """The table rows of `names` in the vision section of BENCHMARKS.md, with the date each was measured."""
    text = path.read_text() if path.exists() else ""
    begin, end = "<!-- vision: begin -->", "<!-- vision: end -->"
    if begin not in text or end not in text:
        return {}
    section = text[text.index(begin):text.index(end)]
    dated = re.search(r"Measured (\d{4}-\d{2}-\d{2})", section)
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and cells[0] in names:
            if len(cells) == 6 and dated:  # written before rows carried their date
                cells.append(dated.group(1))
            rows[cells[0]] = "| " + " | ".join(cells) + " |"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--configs", nargs="+", choices=list(RUNS), default=list(RUNS),
                        help="run only these; the other configs' rows are kept as last measured")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = kept_rows(args.output, [name for name in RUNS if name not in args.configs])
    today = time.strftime("%Y-%m-%d")
    with tempfile.TemporaryDirectory() as work:
        for name in args.configs:
            (section, key), bar = RUNS[name]
            result = run_config(name, Path(work))
            value, seconds = result["metrics"][section][key], result["seconds"]
            met = (bar is None or value >= bar) and seconds <= MINUTES * 60
            rows[name] = (f"| {name} | {section} {key} | {'-' if bar is None else f'>= {bar}'} | {value:.4f} | "
                          f"{seconds / 60:.1f} min | {'yes' if met else 'NO'} | {today} |")
            print(name, value, f"{seconds:.0f} s", flush=True)
    command = "python benchmarks/vision.py" + ("" if args.configs == list(RUNS) else " --configs " + " ".join(args.configs))
    lines = [
        "## Vision: each config's `tfdl run`",
        "",
        f"Measured on {machine()}; each config run by `tfdl run CONFIG` in a fresh process, figures from the "
        f"run's `metrics.json`. Command: `python benchmarks/vision.py [--configs NAME ...]`; last: `{command}` "
        f"({time.perf_counter() - started:.0f} s).",
        "",
        "| config | figure | target | measured | wall time (target <= 15 min) | met | measured on |",
        "|---|---|---|---|---|---|---|",
        *[rows[name] for name in RUNS if name in rows],
    ]
    write_section(args.output, "vision", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
