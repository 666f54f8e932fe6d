"""The GAN task of `tfdl run`: train both players, judge the samples, export the generator.

Training: the model's own `train_step` computes both players' losses (no
compiled loss); configs set `training.keep: last` and
`training.early_stopping: null`, since a GAN's losses do not rank epochs.
After each epoch a grid of samples from the same noise (and the same labels)
goes to `plots/samples/epoch_NNN.png`.

Evaluation: a classifier trained on the real training split (its accuracy on
the real test split is reported) labels `samples` generated images; the
class histogram shows mode collapse as a missing or dominant class, and for
a conditional GAN the share labelled as the class asked for shows whether
it listens to its labels.

Export: the generator as a SavedModel in the TF Serving layout whose
`generate` (= `serving_default`) signature maps `noise` (and `labels`) to
`images` in raw data units, checked against the in-process generator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from tfdl.evaluation.tables import markdown_table
from tfdl.tasks.base import RunTask, TaskEvaluation


def _raw_range(pipeline) -> tuple[float, float]:
    """The raw pixels' (low, high), read from the training split."""
    raw = pipeline.raw("train")[0] if pipeline.data is not None else pipeline.calibration_inputs
    low, high = float(np.min(raw)), float(np.max(raw))
    return low, (high if high > low else low + 1.0)


def _fixed_inputs(model, count: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Noise from `seed`, and for a conditional GAN the labels 0, 1, ..., num_classes - 1, 0, 1, ..."""
    noise = np.random.default_rng(seed).standard_normal((count, model.config.latent_dim)).astype("float32")
    labels = None if model.num_classes is None else (np.arange(count) % model.num_classes).astype("int32")
    return noise, labels


def raw_samples(model, pipeline, noise: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """The in-process generator's images in raw data units (the pipeline's normalization undone).

    Args:
        model: a GAN of `tfdl.models`.
        pipeline: the run's data stage (its `preprocessing` is undone).
        noise: (batch, latent_dim) float32.
        labels: (batch,) int classes for a conditional GAN, else None.

    Returns:
        (batch, *image_shape) float32 images.
    """
    from tfdl.export.generator import normalization_inverse

    scale, offset = normalization_inverse(pipeline.preprocessing, model.config.image_shape)
    return (model.generate(noise, labels) * scale + offset).astype(np.float32)


class GANTask(RunTask):
    """How `tfdl run` drives the GAN family (`dcgan`, `conditional_gan`, `wgan`).

    Attributes:
        grid_samples: images in each sample grid (ten per row).
        samples: generated images the classifier labels for the histogram.
        parity_examples: noise rows the export's parity check runs.
        seed: seeds the fixed noise of grids, histogram and parity check.
    """

    name = "gan"
    grid_samples = 50
    samples = 1000
    parity_examples = 16
    seed = 0

    def objective(self, pipeline):
        return None, []

    def epoch_end(self, pipeline, run_dir: Path) -> Callable[[int, object], None]:
        pixel_range = _raw_range(pipeline)
        fixed: dict = {}

        def draw_samples(epoch: int, model) -> None:
            from tfdl.evaluation.gan_diagnostics import sample_grid

            if not fixed:  # the model's latent size is known from the first call on
                fixed["noise"], fixed["labels"] = _fixed_inputs(model, self.grid_samples, self.seed)
            images = raw_samples(model, pipeline, fixed["noise"], fixed["labels"])
            sample_grid(images, Path(run_dir) / "plots" / "samples" / f"epoch_{epoch:03d}.png", pixel_range,
                        title=f"epoch {epoch}, fixed noise" + (" (column = class asked for)" if
                                                               fixed["labels"] is not None else ""))

        return draw_samples

    def evaluate(self, model, pipeline, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation.gan_diagnostics import (
            class_histogram,
            plot_class_histogram,
            sample_grid,
            train_digits_classifier,
        )

        run_dir = Path(run_dir)
        pixel_range = _raw_range(pipeline)
        if pipeline.data is not None:
            (train_x, train_y), (judge_x, judge_y) = pipeline.raw("train"), (pipeline.test_inputs, pipeline.test_labels)
            self.judged_on = "the real training split"
        else:  # streamed (TFRecord, TFDS MNIST): only the test split is held raw: half trains the judge
            half = len(pipeline.test_inputs) // 2
            train_x, train_y = pipeline.test_inputs[:half], pipeline.test_labels[:half]
            judge_x, judge_y = pipeline.test_inputs[half:], pipeline.test_labels[half:]
            self.judged_on = "half of the real test split (the data are streamed)"
        classifier = train_digits_classifier(train_x.reshape(len(train_x), -1), train_y, pixel_high=pixel_range[1],
                                             seed=self.seed)
        real_accuracy = float(np.mean(classifier.predict(judge_x.reshape(len(judge_x), -1)) == judge_y))
        noise, labels = _fixed_inputs(model, self.samples, self.seed + 1)
        images = raw_samples(model, pipeline, noise, labels)
        histogram = class_histogram(classifier.predict(images.reshape(len(images), -1)), len(pipeline.class_names),
                                    asked_for=labels)
        plots = {
            "Generated samples (final)": sample_grid(images[: self.grid_samples], run_dir / "plots" / "samples.png",
                                                     pixel_range, title="final generator"),
            "Classes of generated samples": plot_class_histogram(histogram, pipeline.class_names,
                                                                 run_dir / "plots" / "class_histogram.png"),
        }
        figures = {"classifier_test_accuracy": real_accuracy, "samples": self.samples, **histogram.to_dict()}
        headline = (f"generated samples: {histogram.classes_covered}/{len(pipeline.class_names)} classes, "
                    f"largest share {histogram.largest_share:.3f}")
        if histogram.asked_for_share is not None:
            headline += f", {histogram.asked_for_share:.3f} labelled as asked"
        return TaskEvaluation(figures=figures, headline=headline, section=self._section(histogram, pipeline,
                              real_accuracy), plots=plots)

    def _section(self, histogram, pipeline, real_accuracy: float) -> list[str]:
        lines = [
            f"A classifier trained on {self.judged_on} ({real_accuracy:.4f} accuracy on real test "
            f"images) labels {self.samples} generated samples.", "",
        ]
        summary = [["classes covered", f"{histogram.classes_covered} of {len(pipeline.class_names)}"],
                   ["largest share", f"{histogram.largest_share:.3f}"]]
        if histogram.asked_for_share is not None:
            summary.append(["labelled as the class asked for", f"{histogram.asked_for_share:.3f}"])
        lines += markdown_table(["figure", "value"], summary) + [""]
        header = ["class", "share of samples"] + (["labelled as asked"] if histogram.per_class_asked_for else [])
        rows = [[name, f"{histogram.share[i]:.3f}"]
                + ([f"{histogram.per_class_asked_for[i]:.3f}"] if histogram.per_class_asked_for else [])
                for i, name in enumerate(pipeline.class_names)]
        return lines + markdown_table(header, rows)

    def export(self, model, pipeline, config, export_dir: Path, log):
        from tfdl.export.export_stage import ExportResult
        from tfdl.export.generator import export_gan_generator
        from tfdl.export.model_server_config import ModelEntry, write_model_server_config
        from tfdl.export.parity import ParityReport
        from tfdl.export.serving_layout import next_version, version_dir

        export_dir = Path(export_dir)
        export_dir.mkdir(parents=True, exist_ok=True)
        serving_model_dir = export_dir / "serving" / config.model_name
        version = config.version or next_version(serving_model_dir)
        saved = export_gan_generator(model, version_dir(serving_model_dir, version), pipeline.preprocessing)
        artifacts = {
            "SavedModel (TF Serving layout, `generate` signature)": saved,
            "TF Serving models.config": write_model_server_config(
                export_dir / "serving" / "models.config",
                [ModelEntry(name=config.model_name, base_path=str(serving_model_dir.resolve()))],
            ),
        }
        notes = []
        if config.keras:
            # The generator alone: noise (and labels) -> images in the units it was trained on.
            artifacts["Keras generator"] = export_dir / "generator.keras"
            model.generator.save(artifacts["Keras generator"])
        if config.tflite:
            notes.append("TFLite is not written for GANs: the served artifact is the `generate` SavedModel")
            log(f"      {notes[-1]}")
        noise, labels = _fixed_inputs(model, self.parity_examples, self.seed + 2)
        parity = ParityReport(examples=len(noise), atol=config.parity_atol,
                              results=[generate_parity(model, pipeline, saved, noise, labels, config.parity_atol)])
        for name, path in pipeline.save_assets(export_dir).items():
            artifacts[name] = path
        sample = export_dir / "sample_request.json"
        count = min(config.sample_size, len(noise))
        inputs = {"noise": noise[:count].tolist(), **({"labels": labels[:count].tolist()} if labels is not None else {})}
        sample.write_text(json.dumps({"inputs": inputs}))
        artifacts["sample request"] = sample
        return ExportResult(artifacts, parity, version=version, serving_model_dir=serving_model_dir,
                            saved_model_dir=saved, sample_request=sample, notes=notes)


def generate_parity(model, pipeline, saved: Path, noise: np.ndarray, labels: np.ndarray | None, atol: float):
    """Compare the SavedModel's `generate` and `serving_default` signatures with the in-process generator.

    Args:
        model: the trained GAN.
        pipeline: the run's data stage.
        saved: the SavedModel folder.
        noise, labels: the inputs to compare on.
        atol: the largest absolute difference (raw units) that passes.

    Returns:
        A `tfdl.export.parity.ParityResult` (no argmax: images have no class).
    """
    import tensorflow as tf

    from tfdl.export.parity import ParityResult

    expected = raw_samples(model, pipeline, noise, labels).astype(np.float64)
    loaded = tf.saved_model.load(str(saved))
    feed = {"noise": tf.constant(noise)}
    if labels is not None:
        feed["labels"] = tf.constant(labels)
    diff = 0.0
    for name in ("generate", "serving_default"):
        images = loaded.signatures[name](**feed)["images"].numpy()
        diff = max(diff, float(np.max(np.abs(images.astype(np.float64) - expected))))
    return ParityResult("SavedModel generate", diff, None, diff <= atol)
