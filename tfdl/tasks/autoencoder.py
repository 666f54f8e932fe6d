"""The autoencoder task of `tfdl run`: reconstruct the input, and flag what reconstructs badly.

Data: the normal examples of each split, model-ready, as `(x, x)` pairs
(the target is the input). With `model.params.normal_classes` set, only
those classes count as normal: training and validation see them alone, and
the anomalies (every other class) appear only in the test split. The
normalization (`data.normalization`) is refitted on the normal training
examples, so the anomalies do not shape the scale either.

Evaluation: reconstruction MSE on the normal test examples against the
mean-image baseline (predicting the average normal training example);
for a denoising model, the MSE from noisy inputs to the clean ones; and
anomaly detection: the threshold is the `threshold_quantile` of the
normal validation errors (see `tfdl.evaluation.anomaly`), precision,
recall, F1 and ROC AUC on the test split, and a histogram of the errors.

Export: `serving_default` takes raw inputs and returns `reconstruction`
(in raw units), `reconstruction_error` (per example, in normalized units,
where the threshold lives) and `is_anomaly`, with the threshold in the graph.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfdl.evaluation.tables import markdown_table
from tfdl.schema import ConfigError
from tfdl.tasks.base import RunTask, TaskEvaluation

# Noisy test inputs of a denoising model are drawn from this seed, so runs compare.
_NOISE_SEED = 1234


def _normal_mask(labels: np.ndarray, normal_classes) -> np.ndarray:
    if normal_classes is None:
        return np.ones(len(labels), bool)
    return np.isin(labels, np.asarray(normal_classes))


def _check_normal_classes(normal_classes, class_names) -> None:
    if normal_classes is None:
        return
    bad = [c for c in normal_classes if not 0 <= c < len(class_names)]
    if bad:
        raise ConfigError(f"model.params.normal_classes: {bad} are not class indices; the data has classes "
                          f"0..{len(class_names) - 1} ({', '.join(class_names)})")
    if len(set(normal_classes)) == len(class_names):
        raise ConfigError("model.params.normal_classes names every class, so there are no anomalies to find; "
                          "leave some classes out, or set it to null for reconstruction only")


class AutoencoderTask(RunTask):
    name = "autoencoder"

    def __init__(self):
        self.params = None
        self.threshold = None

    def build_data(self, config, seed: int, global_batch_size: int):
        from tfdl.models import model_config
        from tfdl.pipelines import build_pipeline
        from tfdl.pipelines.dataset import make_dataset
        from tfdl.pipelines.normalization import fit_normalization

        if config.data.missing.policy == "impute":
            raise ConfigError("data.missing.policy: the autoencoder task rebuilds complete rows; use error or drop")
        self.params = model_config(config.model.name, dict(config.model.params))
        pipeline = build_pipeline(config.data, seed, global_batch_size=global_batch_size)
        if pipeline.data is None or pipeline.data.features.dtype.kind != "f":
            raise ConfigError(f"data.source: the autoencoder task needs numeric examples held in memory "
                              f"(sklearn, csv, generated, synthetic_shapes), not {config.data.source.type}")
        _check_normal_classes(self.params.normal_classes, pipeline.class_names)
        raw = {split: pipeline.raw(split) for split in ("train", "validation", "test")}
        normal = {split: _normal_mask(labels, self.params.normal_classes) for split, (_, labels) in raw.items()}
        train_x = raw["train"][0][normal["train"]]
        preprocessing = fit_normalization(train_x, config.data.normalization)

        def ready(x: np.ndarray) -> np.ndarray:
            return x if preprocessing is None else np.asarray(preprocessing(x), dtype=np.float32)

        def feed(x: np.ndarray, training: bool):
            x = ready(x)
            return make_dataset(x, x, batch_size=global_batch_size, cache=config.data.cache,
                                shuffle_buffer=config.data.shuffle_buffer if training else 0, seed=seed)

        validation_x = raw["validation"][0][normal["validation"]]
        test_x, test_labels = raw["test"]
        if normal["train"].sum() == 0 or normal["validation"].sum() == 0:
            raise ConfigError("model.params.normal_classes: no training or validation example is of a normal class")
        pipeline.report.add("examples of other classes than normal_classes left out of training and validation",
                            int((~normal["train"]).sum() + (~normal["validation"]).sum()))
        return dataclasses.replace(
            pipeline,
            train=feed(train_x, True), validation=feed(validation_x, False), test=feed(test_x, False),
            preprocessing=preprocessing, test_inputs=test_x, test_labels=test_labels,
            calibration_inputs=train_x[:len(pipeline.calibration_inputs)], class_weight=None,
            sizes={"train": len(train_x), "validation": len(validation_x), "test": len(test_x)},
            model_params={**pipeline.model_params, "input_shape": tuple(train_x.shape[1:])},
        )

    def objective(self, pipeline):
        return "mse", []

    def _errors(self, model, pipeline, x: np.ndarray) -> np.ndarray:
        from tfdl.evaluation.anomaly import reconstruction_errors

        ready = x if pipeline.preprocessing is None else np.asarray(pipeline.preprocessing(x))
        return reconstruction_errors(ready, model.predict(ready, verbose=0, batch_size=256))

    def evaluate(self, model, pipeline, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation.anomaly import anomaly_metrics, choose_threshold, plot_error_histogram

        params = self.params
        validation_x, validation_labels = pipeline.raw("validation")
        validation_errors = self._errors(model, pipeline, validation_x[_normal_mask(validation_labels, params.normal_classes)])
        self.threshold = choose_threshold(validation_errors, params.threshold_quantile)
        test_errors = self._errors(model, pipeline, pipeline.test_inputs)
        anomalous = ~_normal_mask(pipeline.test_labels, params.normal_classes)
        figures = {
            "reconstruction_mse": float(test_errors[~anomalous].mean()),
            "mean_image_mse": self._mean_image_mse(pipeline, anomalous),
            "threshold": self.threshold,
            "threshold_quantile": params.threshold_quantile,
        }
        rows = [["reconstruction MSE (normal test examples)", f"{figures['reconstruction_mse']:.4f}"],
                ["mean-image baseline MSE", f"{figures['mean_image_mse']:.4f}"]]
        if params.noise_stddev > 0:
            figures.update(self._denoising(model, pipeline, anomalous))
            rows += [[f"noisy input MSE (noise stddev {params.noise_stddev})", f"{figures['noisy_input_mse']:.4f}"],
                     ["denoised MSE (noisy input -> clean)", f"{figures['denoised_mse']:.4f}"]]
        headline = f"test reconstruction MSE {figures['reconstruction_mse']:.4f} (mean image {figures['mean_image_mse']:.4f})"
        plots = {}
        if params.normal_classes is not None:
            m = anomaly_metrics(test_errors, anomalous, self.threshold)
            figures["anomaly"] = {**m.to_dict(), "normal_classes": list(params.normal_classes),
                                  "anomalies": int(anomalous.sum()), "normal": int((~anomalous).sum())}
            rows += [["anomaly threshold (validation quantile " f"{params.threshold_quantile})", f"{m.threshold:.4f}"],
                     ["precision / recall / F1", f"{m.precision:.3f} / {m.recall:.3f} / {m.f1:.3f}"],
                     ["ROC AUC", f"{m.auc:.3f}"]]
            headline += f"; anomalies: precision {m.precision:.3f}, recall {m.recall:.3f}, AUC {m.auc:.3f}"
            plots["Reconstruction errors (test) and the threshold"] = plot_error_histogram(
                test_errors[~anomalous], test_errors[anomalous], self.threshold,
                run_dir / "plots" / "reconstruction_errors.png")
        images = self._reconstruction_grid(model, pipeline, run_dir)
        if images is not None:
            plots["Test inputs (top) and reconstructions (bottom)"] = images
        return TaskEvaluation(figures=figures, headline=headline, section=markdown_table(["figure", "value"], rows),
                              plots=plots)

    def _mean_image_mse(self, pipeline, anomalous: np.ndarray) -> float:
        train_x, train_labels = pipeline.raw("train")
        ready = self._ready(pipeline)
        mean = ready(train_x[_normal_mask(train_labels, self.params.normal_classes)]).mean(axis=0)
        return float(np.mean(np.square(ready(pipeline.test_inputs[~anomalous]) - mean)))

    @staticmethod
    def _ready(pipeline):
        return (lambda x: np.asarray(x, np.float64)) if pipeline.preprocessing is None else (
            lambda x: np.asarray(pipeline.preprocessing(x), np.float64))

    def _denoising(self, model, pipeline, anomalous: np.ndarray) -> dict:
        clean = self._ready(pipeline)(pipeline.test_inputs[~anomalous]).astype(np.float32)
        rng = np.random.default_rng(_NOISE_SEED)
        noisy = clean + rng.normal(0.0, self.params.noise_stddev, clean.shape).astype(np.float32)
        denoised = model.predict(noisy, verbose=0, batch_size=256)
        return {"noisy_input_mse": float(np.mean(np.square(noisy - clean))),
                "denoised_mse": float(np.mean(np.square(denoised - clean)))}

    def _reconstruction_grid(self, model, pipeline, run_dir: Path) -> Path | None:
        from tfdl.evaluation.plots import plot_image_grid

        shape = tuple(pipeline.input_shape)
        side = int(round(np.sqrt(np.prod(shape))))
        if not (len(shape) == 1 and side * side == shape[0]) and not (len(shape) == 3 and shape[-1] == 1):
            return None
        ready = self._ready(pipeline)(pipeline.test_inputs[:10]).astype(np.float32)
        both = np.concatenate([ready, model.predict(ready, verbose=0)])
        both = (both - both.min()) / max(float(both.max() - both.min()), 1e-9)
        return plot_image_grid(both.reshape(len(both), side, side) if len(shape) == 1 else both[..., 0],
                               run_dir / "plots" / "reconstructions.png", columns=len(ready))

    def export(self, model, pipeline, config, export_dir: Path, log):
        from tfdl.export.export_stage import export_stage
        from tfdl.models.autoencoder import anomaly_detector

        if self.threshold is None:
            raise RuntimeError("export the autoencoder after evaluate(): the threshold comes from validation errors")
        detector = anomaly_detector(model, self.threshold, _inverse(pipeline.preprocessing))
        return export_stage(detector, pipeline, config, export_dir, log=log, classifier=False)


def _inverse(preprocessing):
    """The layer mapping normalized values back to raw units, or None when there is no normalization."""
    if preprocessing is None:
        return None
    import keras

    config = preprocessing.get_config()
    return keras.layers.Normalization(axis=config["axis"], mean=config["mean"], variance=config["variance"],
                                      invert=True, name="denormalization")
