import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from tfdl.evaluation.coco_json import mask_to_rle, write_coco_detections, write_coco_ground_truth


def decode(rle):
    """pycocotools' own reading of an uncompressed RLE."""
    height, width = rle["size"]
    return mask_utils.decode(mask_utils.frPyObjects(rle, height, width)).astype(bool)


def test_rle_by_hand_is_column_major_and_starts_with_zeros():
    # Columns read top to bottom: column 0 is 1 1, column 1 is 0 1.
    assert mask_to_rle(np.array([[1, 0], [1, 1]])) == {"counts": [0, 2, 1, 1], "size": [2, 2]}
    assert mask_to_rle(np.array([[0, 1, 0]])) == {"counts": [1, 1, 1], "size": [1, 3]}
    assert mask_to_rle(np.zeros((2, 3), bool)) == {"counts": [6], "size": [2, 3]}
    assert mask_to_rle(np.ones((2, 3), bool)) == {"counts": [0, 6], "size": [2, 3]}


def test_rle_decodes_with_pycocotools_to_the_same_mask():
    rng = np.random.default_rng(0)
    for shape, density in [((7, 5), 0.5), ((32, 48), 0.1), ((48, 32), 0.9), ((1, 1), 1.0)]:
        mask = rng.random(shape) < density
        rle = mask_to_rle(mask)
        np.testing.assert_array_equal(decode(rle), mask)
        assert mask_utils.area(mask_utils.frPyObjects(rle, *shape)) == mask.sum()


@pytest.mark.parametrize(
    "mask, message",
    [(np.zeros((2, 2, 2)), r"\[H, W\]"), (np.zeros((0, 3)), "non-empty"), (np.full((2, 2), 0.5), "0 and 1")],
)
def test_bad_masks_are_named(mask, message):
    with pytest.raises(ValueError, match=message):
        mask_to_rle(mask)


def two_images(with_masks):
    boxes = np.array([[0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.5, 0.25]])
    first = {"boxes": boxes, "classes": [1, 0], "image_size": (8, 4)}
    second = {"boxes": np.zeros((0, 4)), "classes": [], "image_size": (2, 6)}
    if with_masks:
        masks = np.zeros((2, 8, 4), bool)
        masks[0, 2:6, 2:4] = True
        masks[1, 0, 0] = True
        first["masks"] = masks
        second["masks"] = np.zeros((0, 2, 6), bool)
    return [first, second]


def test_ground_truth_file_by_hand(tmp_path):
    path = write_coco_ground_truth(tmp_path / "run" / "gt.json", two_images(with_masks=False), ["circle", "square"])
    content = json.loads(path.read_text())
    assert content["images"] == [{"id": 1, "height": 8, "width": 4}, {"id": 2, "height": 2, "width": 6}]
    assert content["categories"] == [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]
    # [ymin, xmin, ymax, xmax] = [.25, .5, .75, 1] of an 8 x 4 image: x 2, y 2, width 2, height 4.
    assert content["annotations"] == [
        {"id": 1, "image_id": 1, "category_id": 2, "bbox": [2.0, 2.0, 2.0, 4.0], "area": 8.0, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 1.0, 4.0], "area": 4.0, "iscrowd": 0},
    ]


def test_ground_truth_masks_load_back_through_pycocotools(tmp_path):
    images = two_images(with_masks=True)
    path = write_coco_ground_truth(tmp_path / "gt.json", images)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [a["area"] for a in annotations] == [8.0, 1.0]  # the mask's pixels, as COCO counts area
    for annotation, mask in zip(annotations, images[0]["masks"]):
        np.testing.assert_array_equal(coco.annToMask(annotation), mask)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["0", "1"]


def test_detections_file_by_hand_and_loadable_as_results(tmp_path):
    masks = np.zeros((1, 8, 4), bool)
    masks[0, 1:3, 1] = True
    detections = [
        {"boxes": [[0.25, 0.5, 0.75, 1.0]], "scores": [0.75], "classes": [1], "masks": masks},
        {"boxes": np.zeros((0, 4)), "scores": [], "classes": [], "masks": np.zeros((0, 2, 6))},
    ]
    gt_path = write_coco_ground_truth(tmp_path / "gt.json", two_images(with_masks=True))
    path = write_coco_detections(tmp_path / "dt.json", detections, [(8, 4), (2, 6)])
    (result,) = json.loads(path.read_text())
    assert result == {
        "image_id": 1,
        "category_id": 2,
        "bbox": [2.0, 2.0, 2.0, 4.0],
        "score": 0.75,
        "segmentation": {"counts": [9, 2, 21], "size": [8, 4]},
    }
    with contextlib.redirect_stdout(io.StringIO()):
        results = COCO(str(gt_path)).loadRes(str(path))
    (loaded,) = results.loadAnns(results.getAnnIds())
    np.testing.assert_array_equal(results.annToMask(loaded), masks[0])


def test_detections_without_masks_have_no_segmentation(tmp_path):
    detections = [{"boxes": [[0.0, 0.0, 1.0, 1.0]], "scores": [0.5], "classes": [0]}]
    (result,) = json.loads(write_coco_detections(tmp_path / "dt.json", detections, [(10, 20)]).read_text())
    assert result == {"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 20.0, 10.0], "score": 0.5}


def test_bad_input_is_named(tmp_path):
    images = two_images(with_masks=True)
    del images[1]["masks"]
    with pytest.raises(ValueError, match=r"ground_truth\[1\] has no 'masks' but other images do"):
        write_coco_ground_truth(tmp_path / "gt.json", images)
    with pytest.raises(ValueError, match="outside"):
        write_coco_ground_truth(tmp_path / "gt.json", two_images(False), class_names=["circle"])
    outside = [{"boxes": [[0.0, 0.0, 1.5, 1.0]], "scores": [0.5], "classes": [0]}]
    with pytest.raises(ValueError, match=r"detections\[0\]\['boxes'\].*outside \[0, 1\]"):
        write_coco_detections(tmp_path / "dt.json", outside, [(10, 20)])
    with pytest.raises(ValueError, match="detections has 1 images but there are 2"):
        write_coco_detections(tmp_path / "dt.json", outside, [(10, 20), (10, 20)])
    with pytest.raises(ValueError, match=r"image_sizes\[0\]"):
        write_coco_detections(tmp_path / "dt.json", [{"boxes": [], "scores": [], "classes": []}], [(10, 0)])
    assert not (tmp_path / "dt.json").exists()
