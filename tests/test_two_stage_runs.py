"""`tfdl run` on the Mask R-CNN config, shortened: train, score boxes and masks, write COCO files, serve."""

import json

import numpy as np
import pytest
import tensorflow as tf

import tfdl.models.two_stage_detector  # noqa: F401  registers two_stage_detector
from tfdl.config import load_config
from tfdl.run import run
from tfdl.schema import ConfigError

TINY_MODEL = (
    "model.params={masks: true, backbone_filters: [8, 16, 32], feature_strides: [4, 8], anchor_scales: [[0.4], [0.6]], "
    "head_width: 16, "
    "head_depth: 1, fc_units: 32, mask_size: 8, mask_convs: 1, mask_width: 16, train_proposals: 32, "
    "rois_per_image: 16, test_proposals: 16, pre_nms_proposals: 64, max_detections: 10, roi_canonical_size: 8}"
)


def test_a_mask_rcnn_run_scores_boxes_and_masks_and_serves_them(tmp_path):
    config = load_config("shapes_mask_rcnn", [
        "data.source.examples=60", "data.source.image_size=32", "data.split={validation: 0.1, test: 0.2, stratify: false}",
        "training.epochs=1", "training.optimizer.schedule=null", "training.steps_per_execution=4",
        "export.warmup_requests=1", TINY_MODEL,
    ])
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    run_dir = tmp_path / "run"
    test = result.metrics["test"]
    assert test["loss"] is None  # the model's train_step owns its losses
    assert 0.0 <= test["map_50"] <= 1.0 and 0.0 <= test["mask"]["map_50"] <= 1.0
    assert {"rpn_loss", "mask_loss"} <= set(result.metrics["training"]["history"])
    truth = json.loads((run_dir / "coco_ground_truth.json").read_text())
    assert len(truth["images"]) == 12 and all("segmentation" in a for a in truth["annotations"])
    found = json.loads((run_dir / "coco_detections.json").read_text())
    assert all("segmentation" in d for d in found)
    if test["pycocotools"] is not None and found:
        assert test["mask"]["pycocotools"]["map_50"] == pytest.approx(test["mask"]["map_50"], abs=1e-3)
    assert result.metrics["parity"]["passed"]
    assert "mask AP@0.5" in (run_dir / "report.md").read_text()

    serve = tf.saved_model.load(str(result.serving_dir / "1")).signatures["serving_default"]
    images = np.asarray(json.loads((run_dir / "export" / "sample_request.json").read_text())["instances"], "float32")
    served = serve(image=tf.constant(images))
    assert sorted(served) == ["boxes", "classes", "masks", "num_detections", "scores"]
    assert tuple(served["masks"].shape) == (1, 10, 32, 32)


def test_masks_need_instance_data():
    from tfdl.tasks import run_task

    config = load_config("shapes_mask_rcnn", ["data.source.task=detection", "data.source.examples=20", TINY_MODEL])
    with pytest.raises(ConfigError, match="set data.source.task: instance"):
        run_task("detection").build_data(config, 0, 4)
