"""The GAN bars of issue #10, measured by the runs themselves: each GAN config's `tfdl run`, its samples and wall time.

Each config runs in a fresh process (`python -m tfdl run CONFIG --output-dir
...`), as a user would run it; the figures come from the run's own
`metrics.json`: a classifier trained on real digits labels 1,000 generated
samples. Bars:

- conditional GAN: >= 90% of samples labelled as the class asked for;
- DCGAN and WGAN-GP: all 10 classes covered, none above 20% of samples;
- every config finishes within 10 minutes (on 2 CPU cores).

    python benchmarks/gans.py [--configs digits_dcgan ...] [--output BENCHMARKS.md]

The figures are written as the `gans` section of `--output` and printed.
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

CONFIGS = ["digits_dcgan", "digits_cgan", "digits_wgan_gp", "digits_wgan"]
MINUTES = 10
LARGEST_SHARE = 0.20
ASKED_FOR_SHARE = 0.90
COVERAGE_BAR = ("digits_dcgan", "digits_wgan_gp")  # configs held to the coverage bar


def run_config(name: str, work: Path) -> dict:
    """Run one config in a fresh process; its wall time and `metrics.json`."""
    started = time.perf_counter()
    config = HERE.parent / "configs" / f"{name}.yaml"
    subprocess.run([sys.executable, "-m", "tfdl", "run", str(config), "--output-dir", str(work / name)],
                   check=True, capture_output=True, text=True)
    return {"seconds": time.perf_counter() - started,
            "metrics": json.loads((work / name / "metrics.json").read_text())}


def verdict(name: str, result: dict) -> list[str]:
    """The bars this config is held to, each with pass or fail."""
    test = result["metrics"]["test"]
    checks = [f"within {MINUTES} min: {'pass' if result['seconds'] <= MINUTES * 60 else 'FAIL'}"]
    if test.get("asked_for_share") is not None:
        ok = test["asked_for_share"] >= ASKED_FOR_SHARE
        checks.append(f"asked-for share >= {ASKED_FOR_SHARE}: {'pass' if ok else 'FAIL'}")
    if name in COVERAGE_BAR:
        ok = test["classes_covered"] == 10 and test["largest_share"] <= LARGEST_SHARE
        checks.append(f"10 classes, none > {LARGEST_SHARE}: {'pass' if ok else 'FAIL'}")
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=CONFIGS, choices=CONFIGS)
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    lines = [
        "## GANs on digits",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}. Command: `python benchmarks/gans.py"
        + ("" if args.configs == CONFIGS else " --configs " + " ".join(args.configs)) + "` "
        "(TOTAL). Each `tfdl run CONFIG` in a fresh process; a classifier trained on the real training split "
        "labels 1,000 generated samples.",
        "",
        "| config | wall time (s) | epochs | classifier acc. (real test) | classes covered | largest share "
        "| asked-for share | bars |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as work:
        for name in args.configs:
            result = run_config(name, Path(work))
            test, training = result["metrics"]["test"], result["metrics"]["training"]
            asked = test.get("asked_for_share")
            lines.append(
                f"| {name} | {result['seconds']:.0f} | {training['epochs_run']} | "
                f"{test['classifier_test_accuracy']:.4f} | {test['classes_covered']} | {test['largest_share']:.3f} | "
                f"{'-' if asked is None else f'{asked:.3f}'} | {'; '.join(verdict(name, result))} |"
            )
            print(lines[-1], flush=True)
    lines[2] = lines[2].replace("TOTAL", f"{(time.perf_counter() - started) / 60:.1f} min")
    write_section(args.output, "gans", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
