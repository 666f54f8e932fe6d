"""A COCO annotations JSON plus images loads as the synthetic shapes' detection and instance structures."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from tfdl.evaluation.coco_json import write_coco_ground_truth
from tfdl.pipelines.coco_annotations import load_coco_detection
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.synthetic_shapes import CLASS_NAMES, make_shapes, shapes_dataset

# Three images: a.png 6 wide x 5 high (RGB), b.png 8 x 10 (grayscale), c.png 4 x 4 with no annotation.
# Categories are listed out of id order: class i is the i-th by id (3 cat, 7 dog, 12 bird).
RECTANGLE = [1, 1, 4, 1, 4, 3, 1, 3]  # pixels (rows 1-2, cols 1-3) of a.png
STAIRCASE = [0, 0, 6, 0, 0, 5]  # right triangle: row r of a.png holds columns 0 .. 4 - r
COCO = {
    "images": [
        {"id": 10, "file_name": "a.png", "width": 6, "height": 5},
        {"id": 20, "file_name": "sub/b.png", "width": 8, "height": 10},
        {"id": 30, "file_name": "c.png", "width": 4, "height": 4},
    ],
    "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 12, "name": "bird"}],
    "annotations": [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1, 1, 3, 2], "segmentation": [RECTANGLE], "iscrowd": 0},
        {"id": 2, "image_id": 20, "category_id": 12, "bbox": [3, 4, 5, 6], "segmentation": [[3, 4, 8, 4, 8, 10, 3, 10]]},
        {"id": 3, "image_id": 10, "category_id": 3, "bbox": [0, 0, 6, 5], "segmentation": [STAIRCASE]},
        # Column-major runs on a.png: 7 background, 3 set (column 1, rows 2-4), then background.
        {"id": 4, "image_id": 10, "category_id": 12, "bbox": [1, 2, 1, 3], "segmentation": {"counts": [7, 3, 20], "size": [5, 6]}},
    ],
}
STAIRCASE_MASK = (np.arange(6)[None, :] <= 4 - np.arange(5)[:, None]).astype(np.uint8)


def _write(folder, coco=COCO, images=None):
    """Write the images (name -> uint8 array) and the JSON into `folder`; returns (images dir, json path)."""
    images = images or {
        "a.png": np.full((5, 6, 3), [200, 100, 0], np.uint8),
        "sub/b.png": np.full((10, 8), 51, np.uint8),
        "c.png": np.zeros((4, 4, 3), np.uint8),
    }
    root = folder / "images"
    for name, pixels in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / name)
    path = folder / "instances.json"
    path.write_text(json.dumps(coco))
    return root, path


def _examples(dataset):
    return list(dataset.as_numpy_iterator())


def test_boxes_are_normalized_classes_follow_category_ids_and_padding_fills_to_the_most(tmp_path):
    ds, names = load_coco_detection(*_write(tmp_path), (5, 6))
    assert names == ("cat", "dog", "bird")
    (a, ta), (b, tb), (c, tc) = _examples(ds)
    np.testing.assert_allclose(
        ta["boxes"], [[1 / 5, 1 / 6, 3 / 5, 4 / 6], [0, 0, 1, 1], [2 / 5, 1 / 6, 1, 2 / 6]], atol=1e-7
    )
    np.testing.assert_array_equal(ta["classes"], [1, 0, 2])
    np.testing.assert_allclose(tb["boxes"], [[0.4, 0.375, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]], atol=1e-7)
    np.testing.assert_array_equal(tb["classes"], [2, -1, -1])
    np.testing.assert_array_equal(tc["classes"], [-1, -1, -1])
    np.testing.assert_allclose(a, np.broadcast_to([200 / 255, 100 / 255, 0], (5, 6, 3)), atol=1e-6)
    # b.png is grayscale, 10x8: repeated to RGB and resized, a flat image stays flat.
    np.testing.assert_allclose(b, 0.2, atol=1e-6)
    np.testing.assert_array_equal(c, 0.0)


def test_the_structure_is_the_synthetic_shapes_one(tmp_path):
    def structure(dataset):
        return [(tuple(spec.shape), spec.dtype) for spec in _flatten(dataset.element_spec)]

    for task in ("detection", "instance"):
        ds, _ = load_coco_detection(*_write(tmp_path), (32, 32), task=task, max_objects=4)
        assert structure(ds) == structure(shapes_dataset(1, 32, max_objects=4, task=task))


def _flatten(spec):
    image, targets = spec
    return [image, *(targets[key] for key in sorted(targets))]


def test_polygon_and_rle_masks_rasterize_as_drawn_by_hand(tmp_path):
    ds, _ = load_coco_detection(*_write(tmp_path), (5, 6), task="instance")
    (_, ta), (_, tb), (_, tc) = _examples(ds)
    rectangle = np.zeros((5, 6), np.uint8)
    rectangle[1:3, 1:4] = 1
    rle = np.zeros((5, 6), np.uint8)
    rle[2:5, 1] = 1
    np.testing.assert_array_equal(ta["masks"], [rectangle, STAIRCASE_MASK, rle])
    assert ta["masks"].dtype == np.uint8
    # b.png's polygon (x 3..8, y 4..10 of 8x10) drawn at the output's 5x6 spans x 2.25..6, y 2..5:
    # the pixels with centres 2.5..5.5 across and 2.5..4.5 down.
    lower = np.zeros((5, 6), np.uint8)
    lower[2:, 2:] = 1
    np.testing.assert_array_equal(tb["masks"], [lower, np.zeros((5, 6)), np.zeros((5, 6))])
    np.testing.assert_array_equal(tc["masks"], 0)


def test_masks_follow_the_image_when_it_is_resized(tmp_path):
    ds, _ = load_coco_detection(*_write(tmp_path), (10, 12), task="instance")
    (_, ta), _, _ = _examples(ds)
    double = np.ones((2, 2), np.uint8)
    rectangle = np.zeros((5, 6), np.uint8)
    rectangle[1:3, 1:4] = 1
    np.testing.assert_array_equal(ta["masks"][0], np.kron(rectangle, double))
    rle = np.zeros((5, 6), np.uint8)
    rle[2:5, 1] = 1
    np.testing.assert_array_equal(ta["masks"][2], np.kron(rle, double))
    # The staircase drawn at double size: row r (centre (r + 0.5) / 2) keeps centres left of 6 - 1.2 y.
    rows, cols = np.mgrid[0:10, 0:12]
    staircase = ((cols + 0.5) / 2 < 6 - 1.2 * (rows + 0.5) / 2).astype(np.uint8)
    np.testing.assert_array_equal(ta["masks"][1], staircase)


def test_compressed_rle_decodes_as_pycocotools_and_resizes_nearest(tmp_path):
    rng = np.random.default_rng(0)
    truth = (rng.random((3, 9, 7)) < 0.4).astype(np.uint8)  # three objects on a 7-wide, 9-high image
    encoded = [coco_mask.encode(np.asfortranarray(mask)) for mask in truth]
    np.testing.assert_array_equal([coco_mask.decode(rle) for rle in encoded], truth)
    coco = {
        "images": [{"id": 1, "file_name": "r.png", "width": 7, "height": 9}],
        "categories": [{"id": 1, "name": "blob"}],
        "annotations": [
            {"id": k + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 7, 9],
             "segmentation": {"counts": rle["counts"].decode("ascii"), "size": rle["size"]}}
            for k, rle in enumerate(encoded)
        ],
    }  # fmt: skip
    folder, path = _write(tmp_path, coco, {"r.png": np.zeros((9, 7, 3), np.uint8)})
    (_, targets), = _examples(load_coco_detection(folder, path, (9, 7), task="instance")[0])
    np.testing.assert_array_equal(targets["masks"], truth)
    (_, targets), = _examples(load_coco_detection(folder, path, (4, 5), task="instance")[0])
    # Output pixel (r, c) samples the input pixel under its centre: floor((r + 0.5) * 9 / 4), floor((c + 0.5) * 7 / 5).
    rows, cols = [1, 3, 5, 7], [0, 2, 3, 4, 6]
    np.testing.assert_array_equal(targets["masks"], truth[:, rows][:, :, cols])


def test_polygons_agree_with_pycocotools_inside_the_outline(tmp_path):
    angles = np.sort(np.random.default_rng(1).uniform(0, 2 * np.pi, 12))
    radius = np.random.default_rng(2).uniform(10, 20, 12)
    polygon = np.stack([32 + radius * np.cos(angles), 24 + radius * np.sin(angles)], axis=1).ravel().tolist()
    coco = {
        "images": [{"id": 1, "file_name": "p.png", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "blob"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 2, 44, 44], "segmentation": [polygon]}],
    }
    folder, path = _write(tmp_path, coco, {"p.png": np.zeros((48, 64, 3), np.uint8)})
    (_, targets), = _examples(load_coco_detection(folder, path, (48, 64), task="instance")[0])
    ours = targets["masks"][0].astype(bool)
    reference = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([polygon], 48, 64))).astype(bool)
    # The two rules differ only on pixels the outline passes through.
    assert ours.sum() > 500
    assert (ours ^ reference).sum() <= 0.03 * (ours | reference).sum()


def test_a_round_trip_through_tfdl_s_own_coco_writer_gives_back_the_shapes(tmp_path):
    data = make_shapes(4, image_size=32, seed=3)
    truth = []
    for i in range(4):
        k = int(data["num_objects"][i])
        truth.append({"boxes": data["boxes"][i, :k], "classes": data["classes"][i, :k], "image_size": (32, 32),
                      "masks": data["instance_masks"][i, :k]})  # fmt: skip
    path = write_coco_ground_truth(tmp_path / "gt.json", truth, CLASS_NAMES)
    coco = json.loads(path.read_text())
    images = {}
    for i, entry in enumerate(coco["images"]):
        entry["file_name"] = f"{i}.png"
        images[entry["file_name"]] = np.round(data["image"][i] * 255).astype(np.uint8)
    folder, path = _write(tmp_path, coco, images)
    ds, names = load_coco_detection(folder, path, (32, 32), task="instance", max_objects=4)
    assert names == CLASS_NAMES
    for i, (image, targets) in enumerate(_examples(ds)):
        np.testing.assert_allclose(image, data["image"][i], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(targets["boxes"], data["boxes"][i], atol=1e-6)
        np.testing.assert_array_equal(targets["classes"], data["classes"][i])
        np.testing.assert_array_equal(targets["masks"], data["instance_masks"][i])


def test_max_objects_pads_and_an_image_over_it_is_an_error_or_cut(tmp_path):
    folder, path = _write(tmp_path)
    (_, ta), _, _ = _examples(load_coco_detection(folder, path, (5, 6), max_objects=5)[0])
    np.testing.assert_array_equal(ta["classes"], [1, 0, 2, -1, -1])
    with pytest.raises(DataError, match=r"a.png \(image id 10\) has 3 objects; raise max_objects to 3.*on_bad_data='skip'"):
        load_coco_detection(folder, path, (5, 6), max_objects=2)
    report = DataReport()
    ds, _ = load_coco_detection(folder, path, (5, 6), task="instance", max_objects=2, on_bad_data="skip", report=report)
    (_, ta), _, _ = _examples(ds)
    np.testing.assert_array_equal(ta["classes"], [1, 0])
    assert ta["masks"].shape == (2, 5, 6)
    assert report.count("COCO images cut to max_objects=2 (their extra objects dropped)") == 1


def test_crowd_annotations_are_left_out_and_counted_unless_included(tmp_path):
    coco = copy.deepcopy(COCO)
    coco["annotations"][1]["iscrowd"] = 1
    folder, path = _write(tmp_path, coco)
    report = DataReport()
    _, (_, tb), _ = _examples(load_coco_detection(folder, path, (5, 6), report=report)[0])
    np.testing.assert_array_equal(tb["classes"], [-1, -1, -1])
    assert report.count("COCO annotations left out: iscrowd") == 1
    _, (_, tb), _ = _examples(load_coco_detection(folder, path, (5, 6), include_crowd=True)[0])
    np.testing.assert_array_equal(tb["classes"], [2, -1, -1])


def _bad_coco():
    """COCO with one of each problem; a.png is written 7 wide while the JSON says 6."""
    coco = copy.deepcopy(COCO)
    coco["images"].append({"id": 40, "file_name": "missing.png", "width": 4, "height": 4})
    coco["images"].append({"id": 50, "file_name": "notes.png", "width": 4, "height": 4})
    coco["annotations"] += [
        {"id": 5, "image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1]},
        {"id": 6, "image_id": 20, "category_id": 8, "bbox": [0, 0, 1, 1]},
        {"id": 7, "image_id": 20, "category_id": 3, "bbox": [4, 4, 6, 2]},
        {"id": 8, "image_id": 20, "category_id": 3, "bbox": [0, 0, 1]},
        {"id": 9, "image_id": 40, "category_id": 3, "bbox": [0, 0, 1, 1]},
        {"id": 11, "image_id": 20, "category_id": 3, "bbox": [0, 0, 0, 3]},
    ]
    return coco


def _write_bad(tmp_path):
    folder, path = _write(tmp_path, _bad_coco())
    (folder / "notes.png").write_text("not an image")
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(folder / "a.png")
    return folder, path


def test_bad_data_raises_naming_the_file_and_each_annotation(tmp_path):
    folder, path = _write_bad(tmp_path)
    with pytest.raises(DataError) as caught:
        load_coco_detection(folder, path, (5, 6))
    message = str(caught.value)
    assert message.startswith(f"{path}: 8 bad images or annotations.")
    for expected in (
        f"COCO images skipped: size differs from the JSON: 1 (e.g. {folder / 'a.png'} (image id 10): "
        "the file is 7x5 (width x height), the JSON says 6x5)",
        f"COCO images skipped: missing file: 1 (e.g. {folder / 'missing.png'} (image id 40))",
        f"COCO images skipped: not a readable image: 1 (e.g. {folder / 'notes.png'} (image id 50))",
        "COCO annotations skipped: unknown image: 1 (e.g. annotation id 5: image_id 99 is not in 'images')",
        f"annotation id 6 ({folder / 'sub/b.png'}): category_id 8 is not in 'categories'",
        f"annotation id 7 ({folder / 'sub/b.png'}): bbox [4, 4, 6, 2] reaches outside the 8x10 (width x height) image",
        f"annotation id 11 ({folder / 'sub/b.png'}): bbox [0, 0, 0, 3] has no area",
        "COCO annotations skipped: malformed: 1 (e.g. annotation id 8: 'bbox' [0, 0, 1] is not [x, y, width, height]",
        "Fix them, or set on_bad_data='skip' to leave them out",
    ):
        assert expected in message


def test_skipping_bad_data_counts_every_image_and_annotation_left_out(tmp_path):
    folder, path = _write_bad(tmp_path)
    report = DataReport()
    ds, names = load_coco_detection(folder, path, (5, 6), on_bad_data="skip", report=report)
    assert names == ("cat", "dog", "bird")
    counts = {entry.what: entry.count for entry in report.entries}
    assert counts == {
        "COCO images skipped: size differs from the JSON": 1,
        "COCO images skipped: missing file": 1,
        "COCO images skipped: not a readable image": 1,
        "COCO annotations skipped: unknown image": 1,
        "COCO annotations skipped: unknown category": 1,
        "COCO annotations skipped: box outside the image or empty": 2,
        "COCO annotations skipped: malformed": 1,
        # a.png's three annotations and missing.png's one.
        "COCO annotations skipped: their image was skipped": 4,
    }
    (_, tb), (_, tc) = _examples(ds)
    np.testing.assert_array_equal(tb["classes"], [2])
    np.testing.assert_array_equal(tc["classes"], [-1])


def test_skipping_without_a_report_warns(tmp_path):
    folder, path = _write_bad(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped bad images or annotations\. COCO images skipped: size differs"):
        load_coco_detection(folder, path, (5, 6), on_bad_data="skip")


def test_unusable_segmentations_are_bad_data_for_the_instance_task_only(tmp_path):
    coco = copy.deepcopy(COCO)
    annotations = coco["annotations"]
    del annotations[0]["segmentation"]
    annotations[1]["segmentation"] = [[1, 2, 3, 4]]
    annotations[2]["segmentation"] = {"counts": [7, 3, 20], "size": [6, 5]}
    annotations[3]["segmentation"] = {"counts": [7, 3, 19], "size": [5, 6]}
    folder, path = _write(tmp_path, coco)
    assert len(_examples(load_coco_detection(folder, path, (5, 6))[0])) == 3
    with pytest.raises(DataError) as caught:
        load_coco_detection(folder, path, (5, 6), task="instance")
    message = str(caught.value)
    assert "COCO annotations skipped: no usable segmentation: 4" in message
    for expected in (
        "annotation id 1 (", "a.png): no 'segmentation'; the instance task needs a polygon or RLE mask",
        "annotation id 2 (", "polygon [1, 2, 3, 4] is not [x1, y1, x2, y2, x3, y3, ...] with 3 or more points",
        "RLE size [6, 5] is not the image's [height, width] [5, 6]",
        "RLE counts add up to 29 pixels, not the image's 30",
    ):  # fmt: skip
        assert expected in message
    with pytest.raises(DataError, match=r"instances.json has no usable annotation \(after skipping bad and crowd ones\)"):
        load_coco_detection(folder, path, (5, 6), task="instance", on_bad_data="skip", report=DataReport())


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"images": [', r"instances.json is not valid JSON \(Expecting value: line 1 column 13"),
        ("[1, 2]", r"is not a COCO annotations file: 'images', 'annotations', 'categories' missing or not a list"),
        ('{"images": [], "annotations": []}', r"'categories' missing or not a list"),
        ('{"images": [], "annotations": [], "categories": []}', r"has no categories"),
        (
            '{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}',
            r"category id 1 appears twice",
        ),
        ('{"images": [], "annotations": [], "categories": [{"id": "1"}]}', r"categories\[0\] = \{'id': '1'\}: a category needs"),
    ],
)
def test_a_malformed_file_is_a_data_error_whatever_the_policy(tmp_path, text, expected):
    folder, path = _write(tmp_path)
    path.write_text(text)
    with pytest.raises(DataError, match=expected):
        load_coco_detection(folder, path, (5, 6), on_bad_data="skip")


def test_duplicate_image_ids_and_malformed_image_entries(tmp_path):
    coco = copy.deepcopy(COCO)
    coco["images"].append({"id": 10, "file_name": "c.png", "width": 4, "height": 4})
    folder, path = _write(tmp_path, coco)
    with pytest.raises(DataError, match=r"image id 10 appears twice \(images\[3\]\)"):
        load_coco_detection(folder, path, (5, 6))
    coco["images"][3] = {"id": 60, "file_name": "c.png", "width": 0, "height": 4}
    path.write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"COCO images skipped: malformed entry: 1 \(e.g. images\[3\]: 'width' 0 is not a positive integer\)"):
        load_coco_detection(folder, path, (5, 6))


def test_bad_arguments_name_the_argument(tmp_path):
    folder, path = _write(tmp_path)
    for kwargs, expected in (
        ({"task": "segmentation"}, "task='segmentation': use one of detection, instance"),
        ({"max_objects": 0}, "max_objects=0: give a positive integer"),
        ({"on_bad_data": "ignore"}, "on_bad_data='ignore' is not a policy; use 'error' or 'skip'"),
        ({"image_size": (5,)}, "image_size=(5,): give (height, width) as two positive integers"),
    ):
        with pytest.raises(DataError, match=re.escape(expected)):
            load_coco_detection(folder, path, **{"image_size": (5, 6), **kwargs})
    with pytest.raises(DataError, match=re.escape(f"images folder {tmp_path / 'nowhere'} does not exist")):
        load_coco_detection(tmp_path / "nowhere", path, (5, 6))
    with pytest.raises(DataError, match=re.escape(f"cannot read COCO annotations {tmp_path / 'none.json'}: No such file")):
        load_coco_detection(folder, tmp_path / "none.json", (5, 6))
