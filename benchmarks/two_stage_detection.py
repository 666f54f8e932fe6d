"""The two-stage detector (Mask R-CNN style) against the one-stage detector on synthetic shapes: accuracy and speed.

Trains `two_stage_detector` with its mask head on `make_shapes` images
(train, validation and test drawn with different seeds, instance masks as
targets), then the one-stage detector with the settings of
`benchmarks/detection.py` (k-means anchors, focal loss) on the same images.
Both are scored on the same test set with `tfdl.evaluation.detection_map`
(box mAP@0.5, mAP@[.5:.95], and mask AP for the two-stage one), cross-checked
by pycocotools from the COCO JSON files when it is installed; both are
exported as SavedModels with everything inside and timed on one image at a
time. Writes `metrics.json`, the COCO files and the SavedModels into
`--output-dir` and prints a markdown table (the issue's bars: two-stage box
mAP@0.5 >= 0.85, mask AP@0.5 >= 0.80).

    python benchmarks/two_stage_detection.py [--train 3000] [--epochs 4] [--one-stage-train 6000] [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfdl.evaluation import detection_map, pycocotools_maps, write_coco_detections, write_coco_ground_truth
from tfdl.export import export_saved_model
from tfdl.losses import AnchorFocalLoss, AnchorHuberLoss
from tfdl.models import (
    OneStageDetectorConfig,
    build_model,
    detection_inference_model,
    detector_anchors,
    kmeans_anchor_sizes,
    predict_detections,
)
from tfdl.models.two_stage_detector import TwoStageDetectorConfig, build_two_stage_detector
from tfdl.models.two_stage_serving import predict_two_stage_detections, two_stage_inference_model
from tfdl.pipelines.synthetic_shapes import CLASS_NAMES, make_shapes
from tfdl.schedules import CosineDecayWithWarmup

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from detection import detection_dataset, served_latency_ms  # noqa: E402
from spine import machine  # noqa: E402

BAR_BOX_MAP_50 = 0.85
BAR_MASK_MAP_50 = 0.80
SEEDS = {"train": 0, "validation": 1, "test": 2}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=3000, help="two-stage training images")
    parser.add_argument("--epochs", type=int, default=4, help="two-stage epochs")
    parser.add_argument("--one-stage-train", type=int, default=6000, help="one-stage training images (a prefix)")
    parser.add_argument("--one-stage-epochs", type=int, default=10)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16, help="two-stage batch (the one-stage one uses 32)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="two-stage peak learning rate")
    parser.add_argument("--latency-calls", type=int, default=100, help="timed serving calls on one image")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: a new temporary folder")
    return parser.parse_args()


def ground_truth(data: dict) -> list[dict]:
    size = data["image"].shape[1:3]
    return [
        {"boxes": b[c >= 0], "classes": c[c >= 0], "masks": m[c >= 0], "image_size": size}
        for b, c, m in zip(data["boxes"], data["classes"], data["instance_masks"])
    ]


def instance_dataset(data: dict, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    examples = tf.data.Dataset.from_tensor_slices(
        (data["image"], {"boxes": data["boxes"], "classes": data["classes"], "masks": data["instance_masks"]})
    )
    if shuffle:
        examples = examples.shuffle(len(data["image"]), seed=0, reshuffle_each_iteration=True)
    return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def scores(truth: list[dict], found: list[dict], output: Path, prefix: str, masks: bool) -> dict:
    """tfdl's box (and mask) AP, and pycocotools' from the JSON files the run writes."""
    sizes = [t["image_size"] for t in truth]
    gt_json = write_coco_ground_truth(output / f"{prefix}_ground_truth.json", truth, CLASS_NAMES)
    dt_json = write_coco_detections(output / f"{prefix}_detections.json", found, sizes)
    box = detection_map(truth, found, class_names=CLASS_NAMES)
    result = {"box": box.to_dict(), "pycocotools_bbox": pycocotools_maps(gt_json, dt_json, kind="bbox")}
    if masks:
        result["mask"] = detection_map(truth, found, kind="mask", class_names=CLASS_NAMES).to_dict()
        result["pycocotools_segm"] = pycocotools_maps(gt_json, dt_json, kind="segm")
    return result


def train_two_stage(args, data: dict) -> tuple[object, float]:
    size = args.image_size
    sizes = kmeans_anchor_sizes(data["train"]["boxes"], num_levels=3, per_level=3)
    config = TwoStageDetectorConfig(input_shape=(size, size, 3), num_classes=len(CLASS_NAMES), anchor_sizes=sizes,
                                    masks=True)
    model = build_two_stage_detector(config)
    train = instance_dataset(data["train"], args.batch_size, shuffle=True)
    steps = args.epochs * int(train.cardinality())
    schedule = CosineDecayWithWarmup(args.learning_rate, warmup_steps=min(100, steps // 10), decay_steps=steps)
    model.compile(keras.optimizers.Adam(schedule, clipnorm=10.0), steps_per_execution=8)
    started = time.perf_counter()
    model.fit(train, validation_data=instance_dataset(data["validation"], args.batch_size, shuffle=False),
              epochs=args.epochs, verbose=2)
    return model, time.perf_counter() - started


def train_one_stage(args, data: dict) -> tuple[object, object, float]:
    """The settings of benchmarks/detection.py: k-means anchors, 3 per level, focal loss, Adam 3e-3 cosine."""
    size = args.image_size
    train_data = {k: v[: args.one_stage_train] for k, v in data["train"].items()}
    sizes = kmeans_anchor_sizes(train_data["boxes"], num_levels=2, per_level=3)
    config = OneStageDetectorConfig(input_shape=(size, size, 3), num_classes=len(CLASS_NAMES), anchor_sizes=sizes)
    anchors = detector_anchors(config)
    model = build_model("one_stage_detector", config)
    train = detection_dataset(train_data, anchors, 32, shuffle=True)
    steps = args.one_stage_epochs * int(train.cardinality())
    schedule = CosineDecayWithWarmup(3e-3, warmup_steps=min(200, steps // 10), decay_steps=steps)
    model.compile(keras.optimizers.Adam(schedule, clipnorm=10.0),
                  loss={"box_deltas": AnchorHuberLoss(), "class_logits": AnchorFocalLoss()},
                  steps_per_execution=16, jit_compile=False)
    started = time.perf_counter()
    model.fit(train, validation_data=detection_dataset(data["validation"], anchors, 32, shuffle=False),
              epochs=args.one_stage_epochs, verbose=2)
    return model, anchors, time.perf_counter() - started


def two_stage_served_matches(saved: Path, model, images: np.ndarray) -> bool:
    """The SavedModel's detections and masks equal the in-process ones (valid detections, masks at 0.5)."""
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    served = {k: v.numpy() for k, v in serve(image=tf.constant(images)).items()}
    found = predict_two_stage_detections(model, images)
    for i, expected in enumerate(found):
        n = int(served["num_detections"][i])
        if n != len(expected["scores"]) or not np.allclose(served["boxes"][i, :n], expected["boxes"], atol=1e-4):
            return False
        if np.mean((served["masks"][i, :n] >= 0.5) != expected["masks"].astype(bool)) > 1e-3:
            return False
    return True


def main() -> None:
    args = parse_args()
    output = args.output_dir or Path(tempfile.mkdtemp(prefix="tfdl_two_stage_"))
    output.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    counts = {"train": max(args.train, args.one_stage_train), "validation": args.validation, "test": args.test}
    data = {split: make_shapes(counts[split], image_size=args.image_size, seed=seed) for split, seed in SEEDS.items()}
    data["train"] = {k: v[: max(args.train, args.one_stage_train)] for k, v in data["train"].items()}
    two_stage_train = {k: v[: args.train] for k, v in data["train"].items()}
    truth = ground_truth(data["test"])
    test_images = data["test"]["image"]

    two, two_seconds = train_two_stage(args, {**data, "train": two_stage_train})
    two_found = predict_two_stage_detections(two, test_images)
    two_scores = scores(truth, two_found, output, "two_stage", masks=True)
    two_saved = export_saved_model(two_stage_inference_model(two), output / "two_stage_saved_model")
    two_latency, _ = served_latency_ms(two_saved, test_images[0], args.latency_calls)
    two_matches = two_stage_served_matches(two_saved, two, test_images[:8])
    # Written now too: the one-stage half takes as long again.
    (output / "two_stage_metrics.json").write_text(json.dumps(
        {**two_scores, "served_p50_ms_per_image": two_latency, "train_seconds": two_seconds,
         "served_equals_in_process": two_matches}, indent=2))

    one, anchors, one_seconds = train_one_stage(args, data)
    one_found = predict_detections(one, anchors, test_images)
    one_scores = scores(truth, one_found, output, "one_stage", masks=False)
    one_saved = export_saved_model(detection_inference_model(one, anchors), output / "one_stage_saved_model")
    one_latency, _ = served_latency_ms(one_saved, test_images[0], args.latency_calls)

    results = {
        "two_stage": {**two_scores, "served_p50_ms_per_image": two_latency, "train_seconds": two_seconds,
                      "served_equals_in_process": two_matches, "parameters": int(two.count_params()),
                      "config": two.config.model_dump(mode="json")},
        "one_stage": {**one_scores, "served_p50_ms_per_image": one_latency, "train_seconds": one_seconds,
                      "parameters": int(one.count_params())},
        "machine": machine(),
        "arguments": {k: str(v) for k, v in vars(args).items()},
    }
    (output / "metrics.json").write_text(json.dumps(results, indent=2))
    print_table(args, results, output)


def _coco(pair, index: int) -> str:
    return "n/a" if pair is None else f"{pair[index]:.4f}"


def print_table(args, results: dict, output: Path) -> None:
    two, one = results["two_stage"], results["one_stage"]
    box50, mask50 = two["box"]["map_50"], two["mask"]["map_50"]
    lines = [
        "## Two-stage detector (with masks) vs one-stage detector on synthetic shapes",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {results['machine']}. Command: `python benchmarks/two_stage_detection.py "
        f"--train {args.train} --epochs {args.epochs} --one-stage-train {args.one_stage_train} "
        f"--one-stage-epochs {args.one_stage_epochs}`; {args.test} test images of {args.image_size}x{args.image_size}.",
        "",
        "| figure | target | measured | met |",
        "|---|---|---|---|",
        f"| two-stage box mAP@0.5 (tfdl / pycocotools) | >= {BAR_BOX_MAP_50} | {box50:.4f} / "
        f"{_coco(two['pycocotools_bbox'], 0)} | {'yes' if box50 >= BAR_BOX_MAP_50 else 'NO'} |",
        f"| two-stage mask AP@0.5 (tfdl / pycocotools) | >= {BAR_MASK_MAP_50} | {mask50:.4f} / "
        f"{_coco(two['pycocotools_segm'], 0)} | {'yes' if mask50 >= BAR_MASK_MAP_50 else 'NO'} |",
        f"| served two-stage output equals in-process | equal | {two['served_equals_in_process']} | "
        f"{'yes' if two['served_equals_in_process'] else 'NO'} |",
        "",
        "| detector | training images x epochs | train time | box mAP@0.5 | box mAP@[.5:.95] | mask AP@0.5 | "
        "mask AP@[.5:.95] | served p50 / image | parameters |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| two-stage (RPN + RoI align + box and mask heads) | {args.train} x {args.epochs} | "
        f"{two['train_seconds'] / 60:.1f} min | {box50:.4f} | {two['box']['map_50_95']:.4f} | {mask50:.4f} | "
        f"{two['mask']['map_50_95']:.4f} | {two['served_p50_ms_per_image']:.2f} ms | {two['parameters']:,} |",
        f"| one-stage (RetinaNet-style) | {args.one_stage_train} x {args.one_stage_epochs} | "
        f"{one['train_seconds'] / 60:.1f} min | {one['box']['map_50']:.4f} | {one['box']['map_50_95']:.4f} | - | - | "
        f"{one['served_p50_ms_per_image']:.2f} ms | {one['parameters']:,} |",
        "",
        f"Files: {output}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
