"""The pipeline issue's bars, measured in one run on this machine; figures go to BENCHMARKS.md.

1. Feed vs model: examples/s of the training feed alone against examples/s
   the config's CNN consumes in training steps, for the digits config and
   for an image-directory config with all six augmentations (images this
   script writes). Bar: the feed delivers >= 5x what the model consumes.
2. TFRecord vs Python generator: 50,000 digits-like records read by
   `read_tfrecords` against `tf.data.Dataset.from_generator` over the same
   arrays. Bar: >= 3x.

    python benchmarks/pipelines.py [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402
from tfrecord_throughput import measure as measure_tfrecord  # noqa: E402

from tfdl.config import load_config, parse_config  # noqa: E402
from tfdl.data_bench import bench_data  # noqa: E402


def write_images(directory: Path, per_class: int, size: int = 64, seed: int = 0) -> Path:
    """PNG images of three classes (a bright disc, square or bar on noise), `per_class` each."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for label, shape in enumerate(("disc", "square", "bar")):
        folder = directory / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size, 3))
            cy, cx, r = rng.integers(size // 4, 3 * size // 4, 2).tolist() + [int(rng.integers(6, size // 4))]
            mask = {
                "disc": (yy - cy) ** 2 + (xx - cx) ** 2 < r * r,
                "square": (abs(yy - cy) < r) & (abs(xx - cx) < r),
                "bar": (abs(yy - cy) < r // 3 + 1) & (abs(xx - cx) < r),
            }[shape]
            image[mask] = rng.integers(120, 256, 3)
            png = tf.io.encode_png(image.astype(np.uint8))
            (folder / f"{i:05d}.png").write_bytes(png.numpy())
    return directory


def image_config(directory: Path):
    return parse_config({
        "name": "images_bench",
        "seed": 0,
        "data": {
            "source": {"type": "image_directory", "path": str(directory), "image_size": [64, 64]},
            "augmentation": {"flip": "horizontal", "rotation": 0.05, "zoom": 0.1, "translation": 0.1,
                             "contrast": 0.2, "brightness": 0.2},
            "batch_size": 32,
        },
        "model": {"name": "cnn", "params": {"input_name": "image", "filters": [32, 64], "dense_units": 64}},
        "training": {"steps_per_execution": 16, "jit_compile": "auto"},
    }, source="benchmarks/pipelines.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--images-per-class", type=int, default=400)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tfdl-pipeline-bench-"))
    started = time.perf_counter()
    images = write_images(work / "images", args.images_per_class)
    feeds = {
        "digits (`digits_cnn`)": bench_data(load_config("digits_cnn")),
        f"image folder, {3 * args.images_per_class} PNGs 64x64, 6 augmentations": bench_data(image_config(images)),
    }
    for name, result in feeds.items():
        print(name, result.to_dict(), flush=True)
    tfrecord = measure_tfrecord()
    print("tfrecord", tfrecord, flush=True)

    lines = [
        "## Pipelines: feed vs model, TFRecord vs Python generator",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        "Command: `python benchmarks/pipelines.py` "
        f"({time.perf_counter() - started:.0f} s); one config alone: `tfdl bench data CONFIG`.",
        "",
        "| bar | target | measured | met |",
        "|---|---|---|---|",
    ]
    for name, r in feeds.items():
        lines.append(f"| {name}: feed / CNN training | >= 5x | {r.ratio:.1f}x | {'yes' if r.ratio >= 5 else 'NO'} |")
    ratio = tfrecord["ratio"]
    lines += [
        f"| TFRecord ({tfrecord['records']:,} records) / `from_generator` | >= 3x | {ratio:.1f}x | "
        f"{'yes' if ratio >= 3 else 'NO'} |",
        "",
        "| pipeline | feed examples/s | model examples/s (training) | batch |",
        "|---|---|---|---|",
        *[f"| {n} | {r.feed_examples_per_s:,.0f} | {r.model_examples_per_s:,.0f} | {r.batch_size} |" for n, r in feeds.items()],
        "",
        f"TFRecord `read_tfrecords`: {tfrecord['tfrecord_examples_per_s']:,.0f} examples/s; "
        f"`from_generator`: {tfrecord['generator_examples_per_s']:,.0f} examples/s (batch {tfrecord['batch_size']}).",
        "",
        "The feed is timed alone after one warm-up epoch; the model is timed on training steps fed from "
        "batches already in memory, after a first `fit` that compiles the step.",
    ]
    write_section(args.output, "pipelines", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
