"""Dense networks and autoencoders (issue 10): each config's `tfdl run`, and the spread of the tests' lessons over seeds.

1. Each config runs by `tfdl run` in a fresh process, as a user would run
   it; its figures and wall time (bar: 10 minutes on 2 cores) come from the
   run's `metrics.json`.
2. The lessons the test suite proves with one seed, repeated over several:
   anomaly detection on digits (0-4 normal, 5-9 unseen anomalies; the
   tests' bars sit below the worst seed) and denoising against a plain
   overcomplete autoencoder.

    python benchmarks/dense_autoencoders.py [--part runs|seeds|all] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402

# config -> the figures of metrics.json it reports, as (label, path in "test")
RUNS = {
    "xor_perceptron": [("accuracy", ("accuracy",))],
    "xor_mlp": [("accuracy", ("accuracy",))],
    "digits_mlp": [("accuracy", ("accuracy",))],
    "digits_autoencoder": [("reconstruction MSE", ("reconstruction_mse",)), ("mean-image MSE", ("mean_image_mse",)),
                           ("precision", ("anomaly", "precision")), ("recall", ("anomaly", "recall")),
                           ("AUC", ("anomaly", "auc"))],
    "digits_denoising_autoencoder": [("reconstruction MSE", ("reconstruction_mse",)),
                                     ("noisy input MSE", ("noisy_input_mse",)), ("denoised MSE", ("denoised_mse",))],
}
MINUTES = 10
SEEDS = 5


def run_config(name: str, work: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfdl", "run", f"configs/{name}.yaml", "--output-dir", str(work / name)],
                   check=True, capture_output=True, text=True, cwd=HERE.parent)
    return time.perf_counter() - started, json.loads((work / name / "metrics.json").read_text())


def run_section() -> list[str]:
    lines = ["| config | figures (test split) | wall time (bar <= 10 min) | met |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as work:
        for name, figures in RUNS.items():
            seconds, metrics = run_config(name, Path(work))
            shown = []
            for label, path in figures:
                value = metrics["test"]
                for key in path:
                    value = value[key]
                shown.append(f"{label} {value:.4f}")
            lines.append(f"| {name} | {', '.join(shown)} | {seconds / 60:.1f} min | "
                         f"{'yes' if seconds <= MINUTES * 60 else 'NO'} |")
            print(lines[-1], flush=True)
    return lines


def seeds_section() -> list[str]:
    sys.path.insert(0, str(HERE.parent / "tests" / "models"))
    import keras

    import test_autoencoders as lessons

    from tfdl.pipelines import load_sklearn_dataset

    data = load_sklearn_dataset("digits")
    order = np.random.default_rng(0).permutation(len(data.labels))
    x, y = data.features[order], data.labels[order]
    x = ((x - x[:1400].mean()) / x[:1400].std()).astype("float32")
    digits = (x[:1400], y[:1400], x[1400:], y[1400:])
    rows = []
    for seed in range(SEEDS):
        m, _, _ = lessons.detect_unseen_digits(digits, seed=seed)
        train, _, test, _ = digits
        noisy = test + np.random.default_rng(1).normal(0.0, 0.5, test.shape).astype("float32")
        wide = {"hidden_units": [128], "code_size": 64}
        plain = np.mean(np.square(lessons._fit(wide, train, 20, seed).predict(noisy, verbose=0) - test))
        denoising = np.mean(np.square(
            lessons._fit({**wide, "noise_stddev": 0.5}, train, 20, seed).predict(noisy, verbose=0) - test))
        rows.append((seed, m.precision, m.recall, m.auc, denoising / plain))
        print(rows[-1], flush=True)
        keras.backend.clear_session()
    a = np.array([r[1:] for r in rows])
    return [
        "| seed | anomaly precision | recall | AUC | denoising / plain MSE (noisy -> clean) |", "|---|---|---|---|---|",
        *[f"| {s} | {p:.3f} | {r:.3f} | {u:.3f} | {d:.3f} |" for s, p, r, u, d in rows],
        f"| worst | {a[:, 0].min():.3f} | {a[:, 1].min():.3f} | {a[:, 2].min():.3f} | {a[:, 3].max():.3f} |",
        "", "Test bars: precision >= 0.8, recall >= 0.6, AUC >= 0.9; denoising / plain < 0.75 (seed 0).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["runs", "seeds", "all"], default="all")
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    body = []
    if args.part in ("seeds", "all"):
        body += ["### The tests' lessons over seeds", "", *seeds_section(), ""]
    if args.part in ("runs", "all"):
        body += ["### Each config's `tfdl run`", "", *run_section(), ""]
    lines = ["## Dense networks and autoencoders", "", f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
             f"Command: `python benchmarks/dense_autoencoders.py --part {args.part}` "
             f"({time.perf_counter() - started:.0f} s).", "", *body]
    write_section(args.output, f"dense_autoencoders_{args.part}", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
