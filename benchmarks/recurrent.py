"""Recurrent networks (issue 10): the adding-problem bar and each recurrent config's `tfdl run`.

1. The adding problem at length 100 through `tfdl run configs/adding_lstm.yaml`
   with `model.params.cell` set to lstm, gru and simple: bar LSTM test MSE
   < 0.01 while SimpleRNN stays above 0.1 (predicting the mean sum, 1.0,
   scores 1/6 ~ 0.167).
2. Every recurrent config runs by `tfdl run` in a fresh process, as a user
   would run it; bar: 10 minutes each on 2 cores without a GPU.

    python benchmarks/recurrent.py [--part adding|runs|all] [--output FILE]
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

MINUTES = 10
LSTM_BAR, SIMPLE_BAR = 0.01, 0.1
# config -> the figures of metrics.json["test"] it reports
RUNS = {
    "sine_forecaster": [("MSE", "mse"), ("naive MSE", "baseline_mse"), ("R^2", "r2")],
    "sentences_lstm": [("accuracy", "accuracy"), ("macro F1", "macro_f1")],
}


def run_config(name: str, work: Path, overrides: list[str] = ()) -> tuple[float, dict]:
    """`tfdl run configs/NAME.yaml` in a fresh process; returns (wall seconds, metrics.json)."""
    out = work / (name + "".join(f"_{o.split('=')[-1]}" for o in overrides))
    args = [sys.executable, "-m", "tfdl", "run", f"configs/{name}.yaml", "--output-dir", str(out)]
    for override in overrides:
        args += ["--set", override]
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True, cwd=HERE.parent)
    return time.perf_counter() - started, json.loads((out / "metrics.json").read_text())


def adding_section(work: Path) -> list[str]:
    lines = ["| cell | test MSE | baseline MSE | epochs | wall time | bar | met |", "|---|---|---|---|---|---|---|"]
    for cell in ("lstm", "gru", "simple"):
        seconds, metrics = run_config("adding_lstm", work, [f"model.params.cell={cell}"])
        test = metrics["test"]
        bar, met = {"lstm": (f"< {LSTM_BAR}", test["mse"] < LSTM_BAR),
                    "simple": (f"> {SIMPLE_BAR}", test["mse"] > SIMPLE_BAR)}.get(cell, ("-", None))
        lines.append(f"| {cell} | {test['mse']:.5f} | {test['baseline_mse']:.5f} | "
                     f"{metrics['training']['epochs_run']} | {seconds / 60:.1f} min | {bar} | "
                     f"{'-' if met is None else 'yes' if met else 'NO'} |")
        print(lines[-1], flush=True)
    return lines


def runs_section(work: Path) -> list[str]:
    lines = ["| config | figures (test split) | wall time (bar <= 10 min) | met |", "|---|---|---|---|"]
    for name, figures in RUNS.items():
        seconds, metrics = run_config(name, work)
        shown = ", ".join(f"{label} {metrics['test'][key]:.4f}" for label, key in figures)
        lines.append(f"| {name} | {shown} | {seconds / 60:.1f} min | {'yes' if seconds <= MINUTES * 60 else 'NO'} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["adding", "runs", "all"], default="all")
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    body = []
    with tempfile.TemporaryDirectory() as work:
        if args.part in ("adding", "all"):
            body += ["### The adding problem at length 100 (`configs/adding_lstm.yaml`, one `tfdl run` per cell)", "",
                     *adding_section(Path(work)), ""]
        if args.part in ("runs", "all"):
            body += ["### The other recurrent configs' `tfdl run`", "", *runs_section(Path(work)), ""]
    lines = ["## Recurrent networks", "", f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
             f"Command: `python benchmarks/recurrent.py --part {args.part}` "
             f"({time.perf_counter() - started:.0f} s).", "", *body]
    write_section(args.output, f"recurrent_{args.part}", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
