"""`tfdl run` on the vision configs, shortened: segmentation and a deeper classifier go the whole way."""

import json

import numpy as np
import pytest

from tfdl.config import load_config
from tfdl.pipelines import build_pipeline
from tfdl.run import run
from tfdl.schema import ConfigError


def test_a_segmentation_run_trains_evaluates_exports_and_reports(tmp_path):
    config = load_config("shapes_unet", [
        "data.source.examples=120", "data.source.image_size=32", "training.epochs=2",
        "model.params.filters=[8, 16]", "export.tflite=[float32]",
    ])
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    test = result.metrics["test"]
    assert set(test["per_class"]) == {"background", "circle", "square", "triangle"}
    assert 0.0 <= test["mean_iou"] <= 1.0 and test["pixel_accuracy"] > 0.5  # the background alone is most pixels
    assert result.metrics["parity"]["passed"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| mean IoU | pixel accuracy |" in report and "plots/masks.png" in report
    assert (tmp_path / "run" / "plots" / "masks.png").stat().st_size > 1000
    sample = json.loads((tmp_path / "run" / "export" / "sample_request.json").read_text())
    assert np.asarray(sample["instances"]).shape[1:] == (32, 32, 3)
    tflite = result.metrics["export"]["tflite"][0]
    assert tflite["argmax_agreement"] > 0.99  # per pixel


def test_synthetic_shapes_feed_classification_and_segmentation():
    classification = load_config("shapes_unet", [
        "data.source.task=classification", "data.source.examples=60", "data.split.stratify=true",
        "data.augmentation=null"]).data  # crop_scale, saturation and hue are for masks and boxes
    pipeline = build_pipeline(classification, seed=0)
    x, y = next(iter(pipeline.train))
    assert x.shape[1:] == (64, 64, 3) and y.shape.rank == 1
    assert pipeline.class_names == ("circle", "square", "triangle")
    segmentation = load_config("shapes_unet", ["data.source.examples=60"]).data
    pipeline = build_pipeline(segmentation, seed=0)
    x, y = next(iter(pipeline.train))
    assert y.shape[1:] == (64, 64) and pipeline.class_names[0] == "background"
    assert pipeline.test_labels.shape[1:] == (64, 64)


@pytest.mark.parametrize("override, message", [
    ("data.split.stratify=true", "stratify needs one class per example"),
    ("data.augmentation={zoom: 0.1}", r"augmentation.zoom: use crop_scale \(e.g. \[0.6, 1.0\]\) for segmentation"),
    ("data.imbalance={class_weight: balanced}", "imbalance needs one class per example"),
])
def test_segmentation_refuses_what_would_mislabel_its_masks(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("shapes_unet", [override])


def test_a_fine_tuning_run_trains_the_head_then_the_top_of_the_backbone(tmp_path):
    config = load_config("shapes_transfer", [
        "data.source.examples=90", "data.source.image_size=32", "model.params.weights=none",
        "training.epochs=1", "training.fine_tuning={unfreeze_top: 2, epochs: 1}", "export.tflite=[]",
    ])
    notes = []
    result = run(config, output_dir=tmp_path / "run", log=notes.append)
    assert any("fine-tuning phase 1" in n for n in notes) and any("fine-tuning phase 2" in n for n in notes)
    assert (tmp_path / "run" / "head" / "checkpoints" / "best.weights.h5").is_file()
    assert (tmp_path / "run" / "fine_tune" / "checkpoints" / "best.weights.h5").is_file()
    assert result.metrics["parity"]["passed"] and 0.0 <= result.metrics["test"]["accuracy"] <= 1.0


def test_a_detection_run_writes_coco_files_and_serves_the_detector_with_nms(tmp_path):
    import tensorflow as tf

    from tfdl.tasks import run_task

    config = load_config("shapes_detector", [
        "data.source.examples=160", "data.source.image_size=32", "data.split={validation: 0.1, test: 0.2, stratify: false}",
        "training.epochs=1", "training.optimizer.schedule=null", "training.steps_per_execution=4",
        "model.params={backbone_filters: [8, 8, 16, 16], head_width: 16, head_depth: 1}",
    ])
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    run_dir = tmp_path / "run"
    test = result.metrics["test"]
    assert 0.0 <= test["map_50"] <= 1.0 and 0.0 <= test["map_50_95"] <= test["map_50"] + 1e-9
    # The reference implementation scores the COCO files the run wrote, and agrees.
    assert test["pycocotools"]["map_50"] == pytest.approx(test["map_50"], abs=1e-3)
    truth = json.loads((run_dir / "coco_ground_truth.json").read_text())
    assert len(truth["images"]) == 32 and {c["name"] for c in truth["categories"]} == {"circle", "square", "triangle"}
    assert isinstance(json.loads((run_dir / "coco_detections.json").read_text()), list)
    assert result.metrics["parity"]["passed"]
    assert result.metrics["export"]["figures"]["served_p50_ms_per_image"] > 0
    report = (run_dir / "report.md").read_text()
    assert "| mAP@0.5 | mAP@[.5:.95] |" in report and "served p50 latency" in report and "plots/detections.png" in report

    # The served SavedModel (NMS inside, raw pixels in) gives what the saved Keras detector gives.
    import keras

    data = run_task("detection").build_data(config, config.seed, 8)
    images = data.test_inputs[:4]
    serve = tf.saved_model.load(str(result.serving_dir / "1")).signatures["serving_default"]
    served = {k: v.numpy() for k, v in serve(image=tf.constant(images)).items()}
    in_process = keras.saving.load_model(run_dir / "export" / "model.keras", safe_mode=True)(images)
    assert sorted(served) == ["boxes", "classes", "num_detections", "scores"]
    for key in served:
        np.testing.assert_allclose(served[key], np.asarray(in_process[key]), atol=1e-5)
    sample = json.loads((run_dir / "export" / "sample_request.json").read_text())
    assert np.asarray(sample["instances"]).shape == (1, 32, 32, 3)


def test_detection_data_refuse_what_would_mislabel_their_boxes():
    with pytest.raises(ConfigError, match="augmentation.flip: only flip: horizontal is implemented for detection"):
        load_config("shapes_detector", ["data.augmentation={flip: horizontal_and_vertical}"])
    with pytest.raises(ConfigError, match="stratify needs one class per example"):
        load_config("shapes_detector", ["data.split.stratify=true"])
