"""Transfer learning's bar: fine-tuning a tfdl-trained SavedModel backbone beats training from scratch.

The issue's bar: with <= 50 labels per class, a backbone trained by tfdl on
one task, saved as a SavedModel and fine-tuned on a second task, beats the
same network trained from scratch on those labels by >= 10 points of test
accuracy. Measured offline on scikit-learn's digits:

- every image is drawn into a 16x16 canvas with a random rotation (+-30
  degrees), scale, shift and background noise, fresh for each drawing, so a
  network must learn these nuisances, not only the digits' shapes;
- task 1 (source): digits 0-4, every training image drawn `--copies` times.
  tfdl's `cnn` trains on it through `tfdl.training.train`; its convolutional
  trunk (up to global pooling) is exported as a SavedModel;
- task 2 (target): digits 5-9, with `--labels` labelled images per class,
  a third of them for validation (the epoch kept is the best on those), the
  rest for training; every other 5-9 image is the test set;
- transfer: the `transfer` model over that SavedModel (`SavedModelBackbone`)
  trained with `tfdl.training.fine_tuning.fine_tune`: the head with the
  backbone frozen, then the top convolutions (BN frozen) at a tenth of the
  learning rate;
- from scratch: the same network (`cnn`, the same trunk and head) from random
  weights on the same labels; it gets the better of two learning rates, picked
  on the validation labels, never the test set.

Each seed redraws the data and retrains everything. The table gives test
accuracy per seed and the mean gain; the bar is met when the mean gain over
seeds is >= 10 points.

    python benchmarks/fine_tuning.py [--seeds 3] [--labels 10 25 50] [--output FILE]

It prints the table; with `--output` it also writes it as a section of FILE
(e.g. BENCHMARKS.md).
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

BAR = 0.10
CANVAS = 16
SOURCE_CLASSES, TARGET_CLASSES = range(0, 5), range(5, 10)
# The network of both arms: tfdl's `cnn` trunk (two conv blocks, global
# pooling) and a softmax head; `transfer` rebuilds the head over the trunk.
NETWORK = dict(input_shape=(CANVAS, CANVAS, 1), filters=(32, 64), dense_units=0, dropout=0.3, input_name="image")
HEAD_LEARNING_RATE = 1e-2
SCRATCH_LEARNING_RATES = (1e-3, 1e-2)
PASSES_PER_EPOCH = 10  # a few dozen labels make an epoch of a few steps; repeat them
BATCH_SIZE = 8


def draw(digits: np.ndarray, rng: np.random.Generator, noise: float = 0.25) -> np.ndarray:
    """Each 8x8 digit (values 0-1) in a 16x16 canvas: random rotation, scale and shift, over noise."""
    from scipy import ndimage

    out = np.empty((len(digits), CANVAS, CANVAS), "float32")
    for i, digit in enumerate(digits):
        angle = np.deg2rad(rng.uniform(-30.0, 30.0))
        zoom = CANVAS / 8 * 0.75 * rng.uniform(0.75, 1.25)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / zoom
        centre = CANVAS / 2 + rng.uniform(-CANVAS / 8, CANVAS / 8, 2)
        out[i] = ndimage.affine_transform(digit, rotation, offset=3.5 - rotation @ centre,
                                          output_shape=(CANVAS, CANVAS), order=1)
    return np.maximum(out, rng.uniform(0.0, noise, out.shape).astype("float32"))[..., None]


def batches(x, y, batch_size: int = 64, repeat: int = 1, seed: int | None = None):
    """Batches of (x, y), shuffled with `seed` when given, each example `repeat` times per pass."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y.astype("int32")))
    if seed is not None:
        data = data.shuffle(len(x), seed=seed)
    return data.repeat(repeat).batch(batch_size)


def training_config(learning_rate: float, epochs: int, patience: int):
    from tfdl.training import EarlyStoppingConfig, OptimizerConfig, TrainingConfig

    return TrainingConfig(epochs=epochs, optimizer=OptimizerConfig(learning_rate=learning_rate),
                          early_stopping=EarlyStoppingConfig(patience=patience), steps_per_execution=16,
                          backup=None, verbose=0)


def train_source_backbone(x8, y, rng, copies: int, work: Path, seed: int) -> tuple[str, float]:
    """Train `cnn` on digits 0-4 with tfdl and export its trunk as a SavedModel; (path, validation accuracy)."""
    import keras

    from tfdl.export import export_saved_model
    from tfdl.models import build_model
    from tfdl.training import make_strategy, train

    images = rng.permutation(np.flatnonzero(np.isin(y, SOURCE_CLASSES)))
    cut = int(0.85 * len(images))
    fit, held = images[:cut], images[cut:]
    x_fit = draw(np.repeat(x8[fit], copies, axis=0), rng)
    y_fit = np.repeat(y[fit], copies)
    keras.utils.set_random_seed(seed)
    result = train(lambda: build_model("cnn", dict(NETWORK, num_classes=len(SOURCE_CLASSES))),
                   batches(x_fit, y_fit, batch_size=32, seed=seed), batches(draw(x8[held], rng), y[held]),
                   training_config(1e-3, epochs=15, patience=3), make_strategy("default"), work / "source",
                   "sparse_categorical_crossentropy", ["accuracy"])
    trunk = keras.Model(result.model.input, result.model.get_layer("pool").output)
    path = export_saved_model(trunk, work / "backbone" / "1")
    return str(path), result.history["val_accuracy"][result.best_epoch - 1]


def target_split(x8, y, labels: int, rng):
    """Per class of digits 5-9: `labels` labelled images (a third for validation); the rest is the test set."""
    train_index, validation_index, test_index = [], [], []
    validation = max(1, labels // 3)
    for label in TARGET_CLASSES:
        images = rng.permutation(np.flatnonzero(y == label))
        train_index += list(images[: labels - validation])
        validation_index += list(images[labels - validation: labels])
        test_index += list(images[labels:])
    target = y - TARGET_CLASSES[0]
    return {
        name: (draw(x8[index], rng), target[index])
        for name, index in (("train", train_index), ("validation", validation_index), ("test", test_index))
    }


def accuracy(model, split) -> float:
    return float(model.evaluate(split[0], split[1], verbose=0, return_dict=True)["accuracy"])


def from_scratch(data, work: Path, seed: int) -> tuple[float, float]:
    """The same network from random weights; the learning rate with the best validation loss. (accuracy, lr)"""
    import keras

    from tfdl.models import build_model
    from tfdl.training import make_strategy, train

    best = None
    for learning_rate in SCRATCH_LEARNING_RATES:
        keras.utils.set_random_seed(seed)
        result = train(lambda: build_model("cnn", dict(NETWORK, num_classes=len(TARGET_CLASSES))),
                       batches(*data["train"], BATCH_SIZE, PASSES_PER_EPOCH, seed), batches(*data["validation"]),
                       training_config(learning_rate, epochs=40, patience=10), make_strategy("default"),
                       work / f"scratch_{learning_rate:g}", "sparse_categorical_crossentropy", ["accuracy"])
        validation_loss = min(result.history["val_loss"])
        if best is None or validation_loss < best[0]:
            best = (validation_loss, accuracy(result.model, data["test"]), learning_rate)
    return best[1], best[2]


def fine_tuned(data, backbone_path: str, work: Path, seed: int) -> tuple[float, float]:
    """The two-phase recipe over the SavedModel backbone: (head-only accuracy, fine-tuned accuracy)."""
    import keras

    from tfdl.models import build_model
    from tfdl.training import make_strategy
    from tfdl.training.fine_tuning import FineTuningConfig, fine_tune

    params = dict(input_shape=NETWORK["input_shape"], num_classes=len(TARGET_CLASSES), backbone="saved_model",
                  backbone_path=backbone_path, input_name="image", dense_units=0, dropout=NETWORK["dropout"])
    keras.utils.set_random_seed(seed)
    result = fine_tune(lambda: build_model("transfer", params),
                       batches(*data["train"], BATCH_SIZE, PASSES_PER_EPOCH, seed), batches(*data["validation"]),
                       training_config(HEAD_LEARNING_RATE, epochs=40, patience=10),
                       FineTuningConfig(unfreeze_top=4, learning_rate_factor=0.1, epochs=40),
                       make_strategy("default"), work / "transfer", "sparse_categorical_crossentropy", ["accuracy"],
                       log=lambda _: None)
    return accuracy(result.head.model, data["test"]), accuracy(result.model, data["test"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 25, 50], help="labelled images per class")
    parser.add_argument("--copies", type=int, default=6, help="drawings of each source training image")
    parser.add_argument("--output", type=Path, default=None, help="also write the table as a section of this file")
    args = parser.parse_args()
    if max(args.labels) > 50 or min(args.labels) < 2:
        parser.error("--labels: the bar is about 2 to 50 labels per class")

    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x8, y = digits.features.reshape(-1, 8, 8) / 16.0, digits.labels
    started = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            backbone, source_accuracy = train_source_backbone(x8, y, rng, args.copies, work, seed)
            for labels in args.labels:
                data = target_split(x8, y, labels, rng)
                scratch, learning_rate = from_scratch(data, work / f"{labels}", seed)
                head, tuned = fine_tuned(data, backbone, work / f"{labels}", seed)
                rows.append(dict(seed=seed, labels=labels, source=source_accuracy, scratch=scratch,
                                 learning_rate=learning_rate, head=head, tuned=tuned, test=len(data["test"][1])))
                print(f"seed {seed}, {labels} labels/class: scratch {scratch:.3f} (lr {learning_rate:g}), "
                      f"head only {head:.3f}, fine-tuned {tuned:.3f}, gain {tuned - scratch:+.3f}", flush=True)
    table = report(rows, args, time.perf_counter() - started)
    print(table)
    if args.output:
        from spine import write_section

        write_section(args.output, "fine_tuning", table)


def report(rows: list[dict], args, seconds: float) -> str:
    from spine import machine

    lines = [
        "## Transfer learning: fine-tuning a tfdl SavedModel backbone vs training from scratch",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/fine_tuning.py --seeds {args.seeds} --labels "
        f"{' '.join(map(str, args.labels))} --copies {args.copies}` ({seconds / 60:.1f} min). Digits 0-4 train "
        "the backbone; digits 5-9, each drawn rotated, scaled and shifted in a noisy 16x16 canvas, are the "
        "second task (see the script's docstring). Test accuracy on every 5-9 image not labelled.",
        "",
        "| labels per class (train + validation) | seed | test images | from scratch (lr) | head only "
        "(backbone frozen) | fine-tuned | gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['labels']} ({row['labels'] - max(1, row['labels'] // 3)} + {max(1, row['labels'] // 3)}) "
            f"| {row['seed']} | {row['test']} | {row['scratch']:.3f} ({row['learning_rate']:g}) | {row['head']:.3f} "
            f"| {row['tuned']:.3f} | {row['tuned'] - row['scratch']:+.3f} |"
        )
    lines += ["", "| labels per class | mean from scratch | mean fine-tuned | mean gain | target | met |",
              "|---|---|---|---|---|---|"]
    for labels in args.labels:
        group = [r for r in rows if r["labels"] == labels]
        scratch = np.mean([r["scratch"] for r in group])
        tuned = np.mean([r["tuned"] for r in group])
        lines.append(f"| {labels} | {scratch:.3f} | {tuned:.3f} | {tuned - scratch:+.3f} | >= +{BAR:.2f} | "
                     f"{'yes' if tuned - scratch >= BAR else 'NO'} |")
    sources = ", ".join(f"{r['source']:.3f}" for r in rows if r["labels"] == args.labels[0])
    lines += ["", f"Source task (digits 0-4) validation accuracy per seed: {sources}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
