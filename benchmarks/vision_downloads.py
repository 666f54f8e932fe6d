"""Wall time of the vision configs whose data or weights come from the internet, on offline stand-ins.

`cifar10_resnet` reads CIFAR-10 through TFDS and `shapes_transfer` starts from
Keras's ImageNet MobileNetV2 weights; neither can be downloaded on a machine
that only reaches the package registries. The vision issue's bar for them is
time: each config's `tfdl run` finishes within 15 minutes on 2 cores. Time
depends on shapes and counts, not on pixel values or weight values, so each
runs unchanged except for one thing:

- `cifar10_resnet` reads a prepared TFDS folder that this script writes with
  TFDS's own CIFAR-10 builder and features (50,000 train and 10,000 test
  images of 32x32x3, 10 classes): noise with a colour cast per class, so
  the model learns something and the export's parity checks (int8 argmax
  agreement among them) judge a confident model, as on real data. Its test
  accuracy says nothing about CIFAR-10 and is not a figure here.
- `shapes_transfer` runs with `weights: none`: the same MobileNetV2 graph,
  randomly initialized, instead of the ImageNet file Keras would fetch.

Each run is `tfdl run CONFIG --set ...` in a fresh process. Figures go to
BENCHMARKS.md.

    python benchmarks/vision_downloads.py [--output BENCHMARKS.md]
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

MINUTES = 15
CIFAR10_SIZES = {"train": 50_000, "test": 10_000}


def write_cifar10_standin(data_dir: Path, sizes: dict[str, int] = CIFAR10_SIZES) -> Path:
    """A prepared `cifar10` TFDS folder under `data_dir`, random pixels in the real builder's features."""
    import numpy as np
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import registered

    real = tfds.builder_cls("cifar10")
    with registered.skip_registration():

        class Cifar10(real):  # same name, version and features; examples made here
            def _split_generators(self, dl_manager):
                return {split: self._generate_examples(split) for split in sizes}

            def _generate_examples(self, split):
                rng = np.random.default_rng(list(sizes).index(split))
                tints = np.random.default_rng(10).uniform(-60, 60, (10, 3))  # one colour cast per class
                for i in range(sizes[split]):
                    label = int(rng.integers(10))
                    image = np.clip(rng.uniform(40, 216, (32, 32, 3)) + tints[label], 0, 255).astype(np.uint8)
                    yield f"{split}_{i}", {"id": f"{split}_{i:05d}", "image": image, "label": label}

    Cifar10(data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def run_config(name: str, overrides: list[str], work: Path) -> dict:
    command = [sys.executable, "-m", "tfdl", "run", name, "--output-dir", str(work / name)]
    for override in overrides:
        command += ["--set", override]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[2:])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    metrics = json.loads((work / name / "metrics.json").read_text())
    return {"seconds": time.perf_counter() - started, "metrics": metrics, "command": command[2:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        prepare_started = time.perf_counter()
        write_cifar10_standin(work / "tensorflow_datasets")
        prepare_seconds = time.perf_counter() - prepare_started
        print(f"CIFAR-10 stand-in written in {prepare_seconds:.0f} s", flush=True)
        runs = {
            "cifar10_resnet": ([f"data.source.data_dir={work / 'tensorflow_datasets'}"],
                               "CIFAR-10's sizes from TFDS's builder, noise with a colour cast per class"),
            "shapes_transfer": (["model.params.weights=none"], "MobileNetV2 randomly initialized"),
        }
        for name, (overrides, stand_in) in runs.items():
            result = run_config(name, overrides, work)
            epochs = result["metrics"]["training"]["epochs_run"]
            shown = " ".join(f"--set {o}" for o in overrides).replace(str(work), "$WORK")
            rows.append((name, stand_in, shown, result["seconds"], epochs))
            print(name, f"{result['seconds']:.0f} s", flush=True)
    lines = [
        "## Vision configs that download: `tfdl run` wall time on offline stand-ins",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/vision_downloads.py` ({time.perf_counter() - started:.0f} s, of which "
        f"{prepare_seconds:.0f} s writing the CIFAR-10 stand-in); each config run by `tfdl run CONFIG --set ...` "
        "in a fresh process, nothing else changed.",
        "",
        "| config | stand-in for the download | override | epochs run (last phase) | wall time | bar (<= 15 min) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {name} | {stand_in} | `{override}` | "
            f"{epochs} | {seconds / 60:.1f} min | "
            f"{'yes' if seconds <= MINUTES * 60 else 'NO'} |"
            for name, stand_in, override, seconds, epochs in rows
        ],
        "",
        "Run time depends on the shapes and counts of the data and the graph, which the stand-ins keep; "
        "the accuracy of these runs is not a figure (stand-in pixels, random backbone).",
    ]
    write_section(args.output, "vision_downloads", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
