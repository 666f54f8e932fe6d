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
        "data.source.task=classification", "data.source.examples=60", "data.split.stratify=true"]).data
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
    ("data.augmentation={flip: horizontal}", "move the image but not its mask"),
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
