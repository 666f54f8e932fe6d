"""The object detection task of `tfdl run`: boxes and classes (and instance masks) per image, scored by COCO mAP.

The data are the synthetic shapes that ship with tfdl (`data.source: {type:
synthetic_shapes, task: detection}`, or `task: instance` to carry instance
masks), split by image. Unless the config gives `model.params.anchor_sizes`,
the detector's anchor shapes come from k-means over the training boxes
(three per pyramid level), the choice that measured best on these shapes
(BENCHMARKS.md).

With `data.augmentation` (`flip: horizontal`, `crop_scale`, colour
jitter; see `tfdl.pipelines.AugmentationConfig`) the training images are
flipped, cropped and jittered with their boxes and masks, per epoch
(`tfdl.pipelines.dense_augmentation`); validation and test images never are.

Two detector families train here. The one-stage detector's targets
(matched anchors, encoded offsets) are computed once and cached, or, with
augmentation, from the augmented boxes of each batch; the trainer compiles
its losses. The two-stage detector (`two_stage_detector`)
computes its targets and losses in its own `train_step`, since its second
stage learns on the proposals of the moment: its feed carries the padded
ground truth as it is, `{"boxes", "classes"}` and, with `masks: true`
(which needs `task: instance`), `"masks"`; its evaluation adds mask AP
and writes the masks into the COCO JSON files as RLE.

The evaluation writes the COCO JSON files of the test split beside
`metrics.json` (`coco_ground_truth.json`, `coco_detections.json`), so any
COCO tool can score them, and cross-checks tfdl's mAP with pycocotools
when it is installed. The export is the detector with decoding and
non-maximum suppression inside (`detection_inference_model`, or
`two_stage_inference_model`): raw pixels in, `boxes`, `scores`, `classes`,
`num_detections` (and `masks`, float probabilities in the image frame) out;
the report gives its served latency per image.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfdl.evaluation.tables import markdown_table
from tfdl.pipelines.data_report import DataReport
from tfdl.schema import ConfigError
from tfdl.tasks.base import RunTask, TaskEvaluation

ANCHORS_PER_LEVEL = 3
LATENCY_CALLS = 50


@dataclass
class DetectionData:
    """What the detection run's stages share: feeds of encoded targets, and the test split as served."""

    train: object
    validation: object
    test: object
    anchors: np.ndarray
    test_inputs: np.ndarray
    test_truth: list[dict]
    class_names: tuple[str, ...]
    input_name: str
    input_shape: tuple[int, ...]
    sizes: dict[str, int]
    model_params: dict = field(default_factory=dict)
    report: DataReport = field(default_factory=DataReport)
    class_weight: None = None
    input_dtype: str = "float32"
    two_stage: bool = False
    masks: bool = False


def _truth(data: dict, indices: np.ndarray, masks: bool) -> list[dict]:
    size = data["image"].shape[1:3]
    truth = []
    for i in indices:
        real = data["classes"][i] >= 0
        item = {"boxes": data["boxes"][i][real], "classes": data["classes"][i][real], "image_size": size}
        if masks:
            item["masks"] = data["instance_masks"][i][real]
        truth.append(item)
    return truth


def _encoded_feed(data: dict, anchors, seed: int, batch_size: int, augmentation=None):
    """`feed(indices, training)`: images and the one-stage detector's anchor targets."""
    import tensorflow as tf

    from tfdl.models import encode_targets

    encode = encode_targets(anchors)

    def feed(indices: np.ndarray, training: bool):
        examples = tf.data.Dataset.from_tensor_slices(
            (data["image"][indices], {"boxes": data["boxes"][indices], "classes": data["classes"][indices]})
        )
        if training and augmentation is not None:
            # The boxes move every epoch, so the anchors are matched to the augmented boxes, per batch, every epoch.
            examples = _augmented(examples, augmentation, seed, len(indices)).batch(batch_size)
            return examples.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        # Matching is the same every epoch: computed once, cached.
        examples = examples.map(encode, num_parallel_calls=tf.data.AUTOTUNE).cache()
        if training:
            examples = examples.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
        return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    return feed


def _ground_truth_feed(data: dict, masks: bool, seed: int, batch_size: int, augmentation=None):
    """`feed(indices, training)`: images and the padded ground truth, for a model that makes its own targets."""
    import tensorflow as tf

    def feed(indices: np.ndarray, training: bool):
        targets = {"boxes": data["boxes"][indices], "classes": data["classes"][indices]}
        if masks:
            targets["masks"] = data["instance_masks"][indices]
        examples = tf.data.Dataset.from_tensor_slices((data["image"][indices], targets))
        if training and augmentation is not None:
            examples = _augmented(examples, augmentation, seed, len(indices))
        elif training:
            examples = examples.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
        return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    return feed


def _augmented(examples, augmentation, seed: int, count: int):
    """The training examples shuffled, then flipped, cropped and jittered with their boxes (and masks)."""
    from tfdl.pipelines.dense_augmentation import augment_pairs

    examples = examples.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return augment_pairs(examples, augmentation, seed)


class DetectionTask(RunTask):
    name = "detection"

    def build_data(self, config, seed: int, global_batch_size: int) -> DetectionData:
        from tfdl.models import detector_anchors, kmeans_anchor_sizes, model_config
        from tfdl.models.two_stage_detector import TwoStageDetectorConfig
        from tfdl.pipelines.config import SyntheticShapesSource
        from tfdl.pipelines.splits import split_indices
        from tfdl.pipelines.synthetic_shapes import CLASS_NAMES, make_shapes

        source = config.data.source
        if not (isinstance(source, SyntheticShapesSource) and source.task in ("detection", "instance")):
            raise ConfigError(
                f"data.source: a detection run reads synthetic shapes with boxes "
                f"({{type: synthetic_shapes, task: detection}}, or task: instance for masks); got {source.describe()}"
            )
        data = make_shapes(source.examples, source.image_size, source.seed if source.seed is not None else seed,
                           source.min_objects, source.max_objects)
        split = split_indices(data["largest_class"], config.data.split.validation, config.data.split.test, seed,
                              stratify=False)
        params = {"input_shape": data["image"].shape[1:], "num_classes": len(CLASS_NAMES),
                  "input_name": source.input_name, **config.model.params}
        from_data = {}
        if params.get("anchor_sizes") is None:
            levels = len(model_config(config.model.name, params).feature_strides)
            from_data["anchor_sizes"] = kmeans_anchor_sizes(data["boxes"][split.train], num_levels=levels,
                                                            per_level=ANCHORS_PER_LEVEL, seed=seed)
            params["anchor_sizes"] = from_data["anchor_sizes"]
        model_params = model_config(config.model.name, params)
        anchors = detector_anchors(model_params)
        two_stage = isinstance(model_params, TwoStageDetectorConfig)
        masks = two_stage and model_params.masks
        if masks and source.task != "instance":
            raise ConfigError(
                "model.params.masks: the mask head learns from instance masks; set data.source.task: instance"
            )
        augmentation = config.data.augmentation
        if two_stage:
            feed = _ground_truth_feed(data, masks, seed, global_batch_size, augmentation)
        else:
            feed = _encoded_feed(data, anchors, seed, global_batch_size, augmentation)
        return DetectionData(
            train=feed(split.train, training=True),
            validation=feed(split.validation, training=False),
            test=feed(split.test, training=False),
            anchors=np.asarray(anchors),
            test_inputs=data["image"][split.test],
            test_truth=_truth(data, split.test, masks),
            class_names=CLASS_NAMES,
            input_name=source.input_name,
            input_shape=tuple(data["image"].shape[1:]),
            sizes={"train": len(split.train), "validation": len(split.validation), "test": len(split.test)},
            model_params=from_data,
            two_stage=two_stage,
            masks=masks,
        )

    def objective(self, pipeline):
        from tfdl.losses import AnchorFocalLoss, AnchorHuberLoss

        if pipeline.two_stage:
            return None, []  # its train_step computes every loss
        return {"box_deltas": AnchorHuberLoss(), "class_logits": AnchorFocalLoss()}, []

    def evaluate(self, model, pipeline: DetectionData, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation import (
            detection_map,
            plot_detections,
            pycocotools_maps,
            write_coco_detections,
            write_coco_ground_truth,
        )
        from tfdl.models import predict_detections
        from tfdl.models.two_stage_serving import predict_two_stage_detections

        if pipeline.two_stage:
            found = predict_two_stage_detections(model, pipeline.test_inputs)
        else:
            found = predict_detections(model, pipeline.anchors, pipeline.test_inputs)
        m = detection_map(pipeline.test_truth, found, class_names=pipeline.class_names)
        truth_json = write_coco_ground_truth(run_dir / "coco_ground_truth.json", pipeline.test_truth,
                                             pipeline.class_names)
        found_json = write_coco_detections(run_dir / "coco_detections.json", found,
                                           [t["image_size"] for t in pipeline.test_truth])
        coco = pycocotools_maps(truth_json, found_json)
        figures = {**m.to_dict(), "pycocotools": None if coco is None else {"map_50": coco[0], "map_50_95": coco[1]}}
        ap50 = m.ap_at(0.5)
        section = markdown_table(
            ["mAP@0.5", "mAP@[.5:.95]", "pycocotools mAP@0.5", "images", "objects"],
            [[f"{m.map_50:.4f}", f"{m.map_50_95:.4f}", "not installed" if coco is None else f"{coco[0]:.4f}",
              len(pipeline.test_truth), int(m.num_ground_truth.sum())]],
        )
        headline = f"test mAP@0.5 {m.map_50:.4f}, mAP@[.5:.95] {m.map_50_95:.4f}"
        if pipeline.masks:
            masks = detection_map(pipeline.test_truth, found, kind="mask", class_names=pipeline.class_names)
            segm = pycocotools_maps(truth_json, found_json, kind="segm")
            figures["mask"] = {**masks.to_dict(),
                               "pycocotools": None if segm is None else {"map_50": segm[0], "map_50_95": segm[1]}}
            section += [""] + markdown_table(
                ["mask AP@0.5", "mask AP@[.5:.95]", "pycocotools mask AP@0.5"],
                [[f"{masks.map_50:.4f}", f"{masks.map_50_95:.4f}",
                  "not installed" if segm is None else f"{segm[0]:.4f}"]],
            )
            headline += f", mask AP@0.5 {masks.map_50:.4f}"
        section += [""] + markdown_table(
            ["class", "AP@0.5", "objects"],
            [[name, "-" if ap50[i] != ap50[i] else f"{ap50[i]:.3f}", int(m.num_ground_truth[i])]
             for i, name in enumerate(pipeline.class_names)],
        )
        section += ["", "COCO JSON files of the test split: `coco_ground_truth.json`, `coco_detections.json`."]
        plot = plot_detections(pipeline.test_inputs, pipeline.test_truth, found, pipeline.class_names,
                               run_dir / "plots" / "detections.png")
        return TaskEvaluation(
            figures=figures,
            headline=headline,
            section=section,
            plots={"Detections (test)": plot},
            extra_files={"COCO ground truth (test)": truth_json, "COCO detections (test)": found_json},
        )

    def export(self, model, pipeline: DetectionData, config, export_dir: Path, log):
        from tfdl.export.export_stage import ExportResult
        from tfdl.export.model_server_config import ModelEntry, write_model_server_config
        from tfdl.export.parity import check_parity
        from tfdl.export.serving_layout import next_version, version_dir
        from tfdl.export.serving_model import export_serving_model
        from tfdl.models import detection_inference_model
        from tfdl.models.two_stage_serving import two_stage_inference_model

        export_dir.mkdir(parents=True, exist_ok=True)
        if pipeline.two_stage:
            served = two_stage_inference_model(model)
        else:
            served = detection_inference_model(model, pipeline.anchors)
        serving_model_dir = export_dir / "serving" / config.model_name
        version = config.version or next_version(serving_model_dir)
        inputs = {pipeline.input_name: pipeline.test_inputs}
        warmup = {pipeline.input_name: pipeline.test_inputs[: config.warmup_requests]} if config.warmup_requests else None
        saved = export_serving_model(served, version_dir(serving_model_dir, version), warmup=warmup,
                                     warmup_records=max(config.warmup_requests, 1), model_name=config.model_name)
        artifacts = {
            "SavedModel (TF Serving layout)": saved,
            "TF Serving models.config": write_model_server_config(
                export_dir / "serving" / "models.config",
                [ModelEntry(name=config.model_name, base_path=str(serving_model_dir.resolve()))],
            ),
        }
        if config.keras:
            artifacts["Keras"] = export_dir / "model.keras"
            served.save(artifacts["Keras"])
        parity = check_parity(served, inputs, saved, atol=config.parity_atol)
        latency = served_latency_ms(saved, pipeline.input_name, pipeline.test_inputs[0])
        log(f"      served p50 {latency:.2f} ms per image (SavedModel with NMS, batch 1)")
        labels = export_dir / "labels.txt"
        labels.write_text("".join(f"{name}\n" for name in pipeline.class_names), encoding="utf-8")
        sample = export_dir / "sample_request.json"
        sample.write_text(json.dumps({"instances": pipeline.test_inputs[: config.sample_size].tolist()}))
        artifacts.update({"labels": labels, "sample request": sample})
        return ExportResult(
            artifacts, parity, version=version, serving_model_dir=serving_model_dir, saved_model_dir=saved,
            sample_request=sample,
            notes=[f"served p50 latency {latency:.2f} ms per image (SavedModel with NMS, batch 1, "
                   f"{LATENCY_CALLS} calls)",
                   "TFLite: not exported (combined NMS has no TFLite builtin; "
                   "detection_inference_model(..., nms='per_class') converts)"],
            figures={"served_p50_ms_per_image": latency},
        )


def served_latency_ms(saved_model_dir: Path, input_name: str, image: np.ndarray, calls: int = LATENCY_CALLS) -> float:
    """Median milliseconds of one `serving_default` call on one image, after a warm-up."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    batch = {input_name: tf.constant(image[None])}
    for _ in range(5):  # the first calls trace and allocate
        serve(**batch)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        out = serve(**batch)
        out["num_detections"].numpy()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))
