"""Atlas entries 71-80: image classification, object detection (R-CNN, Faster R-CNN, YOLO, anchors) and segmentation."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson
from tfdl.atlas.topics.fitting import fit_steps

CLASS_NAMES = ("circle", "square", "triangle")  # the classes of tfdl.pipelines.make_shapes


def _draw_boxes(ax, boxes, size: int, colour: str, style: str = "-", labels=None) -> None:
    """Outline normalized `[ymin, xmin, ymax, xmax]` boxes on an `imshow` of a `size` x `size` image."""
    import matplotlib.patches as patches

    for index, (ymin, xmin, ymax, xmax) in enumerate(boxes):
        ax.add_patch(patches.Rectangle((xmin * size - 0.5, ymin * size - 0.5), (xmax - xmin) * size,
                                       (ymax - ymin) * size, fill=False, edgecolor=colour, linestyle=style, lw=1.5))
        if labels is not None:
            ax.text(xmin * size - 0.5, ymin * size - 1, labels[index], color=colour, fontsize=7)


def _no_ticks(ax, title: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


@atlas_entry(
    71,
    formula=r"p(y = c \mid x) = \operatorname{softmax}\big(W\, \operatorname{GAP}(f_\theta(x)) + b\big)_c,\qquad "
    r"\mathcal{L} = -\frac{1}{N}\sum_{n} \log p(y_n \mid x_n)",
    see=("tfdl.models.build_cnn", "tfdl.models.CNNConfig", "tfdl.pipelines.make_shapes",
         "tfdl.evaluation.classification_metrics"),
    configs=("digits_cnn", "shapes_transfer"),
)
def image_classification_with_cnns(lesson: Lesson) -> None:
    """**Image classification** assigns one label from a fixed set to a whole image ("this is a
    triangle"): the model maps the $H \\times W \\times 3$ pixel array to a probability
    for each class, and the prediction is the most probable one. It says nothing about
    *where* the object is or how many there are; that is detection and segmentation
    (question 73).

    A CNN does it in two parts. A stack of convolution + ReLU layers, with pooling between
    them, turns the image into feature maps of falling resolution and rising channel
    count: early filters respond to edges and colour changes, later ones, which see a
    larger part of the image, to corners, curves and whole parts. Global average pooling
    (GAP) then reduces each map to one number, so the features no longer depend on where
    the object was, and a dense layer with a softmax turns them into class probabilities
    (the formula, $f_\\theta$ the convolutional stack). Everything is trained end to end by
    minimizing the cross-entropy of the true labels with mini-batch gradient descent.

    The example classifies 24×24 images of one circle, square or triangle of random
    colour, size and position (`make_shapes`). A CNN of 6,000 parameters learns it in 80
    steps; logistic regression on the raw pixels, with about as many parameters and the
    same training, stays far behind: the same shape lands on different pixels in every
    image, and a weight per pixel cannot express "three straight edges, wherever they are".
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import make_shapes

    data = make_shapes(lesson.budget(1100, 3000), image_size=24, seed=lesson.seed, min_objects=1, max_objects=1,
                       size_range=(0.2, 0.35))
    images, labels = data["image"], data["largest_class"]  # the class of the one object in each image
    test = slice(len(images) - 200, None)
    train = slice(0, len(images) - 200)
    cnn = build_model("cnn", {"input_shape": (24, 24, 3), "num_classes": 3, "filters": (8, 16, 32),
                              "convs_per_block": 1, "batch_norm": False, "dense_units": 0, "dropout": 0.0})
    fit_steps(cnn, images[train], labels[train], steps=lesson.budget(80, 400), learning_rate=0.01,
              seed=lesson.seed, batch_size=32)
    flat = images.reshape(len(images), -1)  # the baseline sees the same pixels as one long vector
    logistic = build_model("mlp", {"input_shape": flat.shape[1:], "num_classes": 3, "hidden_units": ()})
    fit_steps(logistic, flat[train], labels[train], steps=lesson.budget(80, 400), learning_rate=0.003,
              seed=lesson.seed, batch_size=32)
    probabilities = cnn(images[test]).numpy()
    accuracy = {"CNN": float(np.mean(probabilities.argmax(-1) == labels[test])),
                "logistic regression on pixels": float(np.mean(logistic(flat[test]).numpy().argmax(-1)
                                                                == labels[test]))}
    chance = float(np.bincount(labels[train]).max() / len(labels[train]))
    for name, model in (("CNN", cnn), ("logistic regression on pixels", logistic)):
        lesson.number(f"{name}: parameters", model.count_params())
        lesson.number(f"{name}: test accuracy", accuracy[name])
    lesson.number("majority class rate (chance)", chance)

    # What the CNN does to one image: feature maps of falling resolution and rising depth, then probabilities.
    rows = [("image", str(images.shape[1:]), 0)]
    for layer in cnn.layers[1:]:
        rows.append((layer.name, str(tuple(layer.output.shape[1:])), layer.count_params()))
    lesson.table("The CNN, layer by layer: output shape and parameters", ("layer", "output shape", "parameters"),
                 rows)

    fig, axes = plt.subplots(1, 7, figsize=(11, 2.6), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 1, 1, 2.6]})
    shown = [index for c in range(3) for index in np.flatnonzero(labels[test] == c)[:2]]  # two of each class
    for index, ax in zip(shown, axes[:6]):
        ax.imshow(images[test][index])
        guess = int(probabilities[index].argmax())
        _no_ticks(ax, f"{CLASS_NAMES[guess]} {probabilities[index, guess]:.2f}\n"
                      f"(true: {CLASS_NAMES[labels[test][index]]})")
    axes[6].bar(range(3), [accuracy[n] for n in accuracy] + [chance], color=["C0", "C1", "C7"])
    axes[6].set_xticks(range(3), ["CNN", "logistic\nregression", "chance"], fontsize=8)
    axes[6].set_ylabel("test accuracy")
    axes[6].set_ylim(0, 1.05)
    axes[6].set_title("accuracy on 200 test images", fontsize=8)
    lesson.figure(fig, "shape_classification", "Test images with the CNN's most probable class and its probability; "
                  "test accuracy of the CNN and of logistic regression on the raw pixels.")
    lesson.check("the CNN classifies the shapes (test accuracy >= 0.85)", accuracy["CNN"] >= 0.85,
                 f"{accuracy['CNN']:.3f}")
    lesson.check("logistic regression on the raw pixels is at least 0.25 less accurate than the CNN",
                 accuracy["CNN"] - accuracy["logistic regression on pixels"] >= 0.25,
                 f"CNN {accuracy['CNN']:.3f}, logistic regression {accuracy['logistic regression on pixels']:.3f}, "
                 f"chance {chance:.3f}")


def _fake_detections(truth: dict, rng, copies: int = 4, false_alarms: int = 2) -> tuple:
    """A detector's raw output made by hand for `make_shapes` scenes: several jittered, scored copies of
    every true box (the class right 90% of the time) and a few low-scoring boxes anywhere.

    Returns per image the candidate boxes [K, 4], their class scores [K, 3] and their classes [K].
    """
    import numpy as np

    candidates = []
    for boxes, classes, count in zip(truth["boxes"], truth["classes"], truth["num_objects"]):
        found, scores, labels = [], [], []
        for box, label in zip(boxes[:count], classes[:count]):
            size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
            for _ in range(copies):
                found.append(np.clip(box + rng.normal(0.0, 0.08, 4) * size, 0.0, 1.0))
                labels.append(label if rng.uniform() < 0.9 else rng.integers(3))
                scores.append(rng.uniform(0.3, 1.0))
        for _ in range(false_alarms):
            corner = rng.uniform(0.0, 0.7, 2)
            found.append(np.concatenate([corner, corner + rng.uniform(0.1, 0.3, 2)]))
            labels.append(rng.integers(3))
            scores.append(rng.uniform(0.05, 0.6))
        one_hot = np.eye(3)[labels] * np.array(scores)[:, None]
        candidates.append((np.array(found, "float32"), one_hot.astype("float32"), np.array(labels)))
    return candidates


def _average_precision_by_hand(truth: list, found: list, label: int, threshold: float = 0.5):
    """AP of class `label` at one IoU threshold, by the definition: rank every detection of the class by score,
    match each to the unmatched true box of highest IoU (a true positive if IoU >= threshold), then average the
    interpolated precision at recall 0, 0.01, ..., 1. Returns AP, recall and precision."""
    import numpy as np

    def box_iou(a, b):
        height = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
        width = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
        overlap = height * width
        return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - overlap)

    ranked = sorted(((score, image, box) for image, f in enumerate(found)
                     for box, score, c in zip(f["boxes"], f["scores"], f["classes"]) if c == label),
                    key=lambda item: -item[0])
    true_boxes = [t["boxes"][t["classes"] == label] for t in truth]
    taken = [np.zeros(len(b), bool) for b in true_boxes]
    hits = []
    for _, image, box in ranked:
        overlaps = np.where(taken[image], -1.0, box_iou(box, true_boxes[image])) if len(true_boxes[image]) else []
        best = int(np.argmax(overlaps)) if len(overlaps) else -1
        hits.append(best >= 0 and overlaps[best] >= threshold)
        if hits[-1]:
            taken[image][best] = True
    hits = np.array(hits, bool)
    recall = np.cumsum(hits) / sum(len(b) for b in true_boxes)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    interpolated = [precision[recall >= r].max() if (recall >= r).any() else 0.0 for r in np.linspace(0, 1, 101)]
    return float(np.mean(interpolated)), recall, precision


@atlas_entry(
    72,
    formula=r"\operatorname{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|},\qquad "
    r"\operatorname{AP} = \frac{1}{101} \sum_{r \in \{0, 0.01, \ldots, 1\}} \max_{r' \ge r} p(r'),\qquad "
    r"\operatorname{mAP} = \frac{1}{C} \sum_{c} \operatorname{AP}_c",
    see=("tfdl.detection.iou", "tfdl.detection.postprocess_detections", "tfdl.evaluation.detection_map",
         "tfdl.evaluation.plot_detections", "tfdl.models.build_one_stage_detector", "tfdl.pipelines.make_shapes"),
    configs=("shapes_detector",),
)
def object_detection(lesson: Lesson) -> None:
    """**Object detection** finds every object of a set of classes in an image and says, for
    each, *what* it is and *where*: the output is a variable-length list of
    (box, class, confidence score) triples, a box being an axis-aligned rectangle
    $[y_\\text{min}, x_\\text{min}, y_\\text{max}, x_\\text{max}]$. It combines
    classification with localization (regressing four coordinates) and must handle any
    number of objects, of any size, anywhere.

    Three ideas recur in every detector. **Intersection over union** (IoU, the formula)
    measures how well two boxes agree, from 0 (disjoint) to 1 (identical). A network
    scores many candidate boxes (anchors, proposals or grid cells) and so finds each
    object several times; **non-maximum suppression** (NMS) keeps the highest-scoring
    box and removes every box of the same class whose IoU with it exceeds a threshold,
    repeatedly. Detectors are scored by **mean average precision**: detections of a class
    are ranked by score, each is a true positive if it overlaps a not-yet-matched true
    box by IoU ≥ 0.5 (for mAP@0.5), precision and recall are traced down the ranking, AP is
    the area under the (interpolated) precision-recall curve and mAP its mean over
    classes; COCO's mAP@[.5:.95] also averages over IoU thresholds 0.5 to 0.95. A
    duplicate counts as a false positive, a missed object lowers recall.

    The example mimics a detector's raw output on `make_shapes` scenes: four jittered,
    scored copies of every object plus a few stray boxes. It checks tfdl's IoU against
    the formula, runs NMS, and computes AP by the definition above to check
    `detection_map`; NMS removes the duplicates and raises the mAP. Training a real
    detector is `tfdl run shapes_detector` (questions 76-78).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.detection import iou, postprocess_detections
    from tfdl.evaluation import detection_map
    from tfdl.pipelines import make_shapes

    rng = np.random.default_rng(lesson.seed)
    size = 64
    scenes = make_shapes(lesson.budget(40, 200), image_size=size, seed=lesson.seed)

    # IoU: tfdl's against the formula on random boxes.
    corners = np.sort(rng.uniform(0, 1, (2, 50, 2, 2)), axis=2)  # 2 sets of 50 boxes: (min, max) corner, (y, x)
    a, b = corners.reshape(2, 50, 4)  # [ymin, xmin, ymax, xmax]
    height = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    width = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area_a, area_b = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    by_formula = height * width / (area_a[:, None] + area_b[None, :] - height * width)
    iou_error = lesson.number("largest |tfdl iou - formula| over 50 x 50 box pairs",
                              float(np.abs(iou(a, b).numpy() - by_formula).max()))

    # The raw output: duplicates of every object. NMS per class keeps one box per object.
    candidates = _fake_detections(scenes, rng)
    truth = [{"boxes": boxes[:n], "classes": classes[:n], "image_size": (size, size)}
             for boxes, classes, n in zip(scenes["boxes"], scenes["classes"], scenes["num_objects"])]
    raw, kept = [], []
    for boxes, scores, classes in candidates:
        raw.append({"boxes": boxes, "scores": scores.max(-1), "classes": classes})
        # Candidate boxes as anchors with zero offsets: decoding gives the boxes back unchanged.
        out = postprocess_detections(np.zeros((1, len(boxes), 4), "float32"), scores[None], boxes,
                                     max_detections=20, score_threshold=0.05, iou_threshold=0.5)
        n = int(out["num_detections"][0])
        kept.append({"boxes": out["boxes"][0, :n].numpy(), "scores": out["scores"][0, :n].numpy(),
                     "classes": out["classes"][0, :n].numpy()})
    objects = int(scenes["num_objects"].sum())
    lesson.number("true objects", objects)
    per_object = {}  # how many boxes of the right class find each object (IoU >= 0.5), on average
    for name, found in (("before NMS", raw), ("after NMS", kept)):
        lesson.number(f"boxes {name}", sum(len(f["boxes"]) for f in found))
        hits = [((iou(t["boxes"], f["boxes"]).numpy() >= 0.5) & (t["classes"][:, None] == f["classes"][None])).sum()
                for t, f in zip(truth, found)]
        per_object[name] = lesson.number(f"boxes per object {name} (right class, IoU >= 0.5)", sum(hits) / objects)

    rows, errors, map_50 = [], [], {}
    for name, found in (("before NMS", raw), ("after NMS", kept)):
        metrics = detection_map(truth, found, class_names=CLASS_NAMES)
        by_hand = [_average_precision_by_hand(truth, found, c)[0] for c in range(3)]
        errors.append(np.abs(metrics.ap_at(0.5) - by_hand).max())
        map_50[name] = lesson.number(f"mAP@0.5 {name}", metrics.map_50)
        lesson.number(f"mAP@[.5:.95] {name}", metrics.map_50_95)
        rows += [(name, CLASS_NAMES[c], by_hand[c], metrics.ap_at(0.5)[c]) for c in range(3)]
    lesson.table("AP@0.5 per class: by the definition and by tfdl.evaluation.detection_map",
                 ("detections", "class", "AP by hand", "detection_map"), rows)
    ap_error = lesson.number("largest |AP by hand - detection_map AP@0.5|", float(max(errors)))

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
    for ax, found, title in ((axes[0], raw[0], "raw detector output"), (axes[1], kept[0], "after NMS")):
        ax.imshow(scenes["image"][0])
        _draw_boxes(ax, truth[0]["boxes"], size, "white", "--")
        _draw_boxes(ax, found["boxes"], size, "yellow", labels=None if found is raw[0] else
                    [f"{CLASS_NAMES[c]} {s:.2f}" for c, s in zip(found["classes"], found["scores"])])
        _no_ticks(ax, f"{title}: {len(found['boxes'])} boxes (dashed: truth)")
    for name, found in (("before NMS", raw), ("after NMS", kept)):
        ap, recall, precision = _average_precision_by_hand(truth, found, 0)
        axes[2].plot(recall, precision, label=f"{name}: AP@0.5 {ap:.2f}")
    axes[2].set_xlabel("recall")
    axes[2].set_ylabel("precision")
    axes[2].set_title(f"precision-recall, class '{CLASS_NAMES[0]}'", fontsize=8)
    axes[2].legend(fontsize=7)
    lesson.figure(fig, "detections_nms_map", "A scene with a detector's duplicated raw boxes and what NMS keeps; "
                  "precision down the ranked detections of one class, before and after NMS.")
    lesson.check("tfdl's iou equals |A ∩ B| / |A ∪ B| computed in numpy (error < 1e-6)", iou_error < 1e-6,
                 f"{iou_error:.1e}")
    lesson.check("detection_map's AP@0.5 equals AP computed by the definition, for every class (error < 1e-6)",
                 ap_error < 1e-6, f"{ap_error:.1e}")
    lesson.check("NMS removes the duplicates: from 3 or more boxes finding each object to at most 1.1",
                 per_object["before NMS"] >= 3 and per_object["after NMS"] <= 1.1,
                 f"{per_object['before NMS']:.2f} -> {per_object['after NMS']:.2f} per object")
    lesson.check("duplicates are false positives: NMS raises mAP@0.5 by at least 0.1",
                 map_50["after NMS"] - map_50["before NMS"] >= 0.1,
                 f"{map_50['before NMS']:.3f} -> {map_50['after NMS']:.3f}")


@atlas_entry(
    73,
    formula=r"\text{classification: } x \mapsto c;\quad \text{detection: } x \mapsto \{(b_i, c_i, s_i)\}_{i=1}^{n};"
    r"\quad \text{semantic: } x \mapsto M \in \{0..C\}^{H \times W};\quad "
    r"\text{instance: } x \mapsto \{(m_i \in \{0,1\}^{H \times W}, c_i, s_i)\}_{i=1}^{n}",
    see=("tfdl.pipelines.make_shapes", "tfdl.pipelines.shapes_dataset", "tfdl.evaluation.detection_map",
         "tfdl.evaluation.segmentation_metrics"),
    configs=("shapes_detector", "shapes_unet", "shapes_mask_rcnn"),
)
def detection_vs_segmentation(lesson: Lesson) -> None:
    """The vision tasks differ in what they say about an image, from coarse to fine:

    - **Classification**: one label for the whole image.
    - **Object detection**: one axis-aligned *box* plus a class and a score per object.
      It counts and roughly locates objects, but a box is a coarse outline: it holds
      background too, and the boxes of neighbouring or overlapping objects overlap.
    - **Semantic segmentation**: a class for *every pixel*. It gives exact shapes and
      areas, but no notion of objects: two touching objects of one class become one
      region (question 80).
    - **Instance segmentation**: a *mask* per object plus its class, the union of
      detection and segmentation (Mask R-CNN adds a mask head to a detector).

    The outputs differ accordingly. A detector emits a variable-length list (four
    coordinates, a class and a score per object) and is trained with box regression
    and classification losses and scored with mAP (question 72); a segmenter emits a
    fixed-size $H \\times W$ map of class probabilities, trained with a per-pixel
    cross-entropy and scored with pixel accuracy and mean IoU (question 79). Detection
    answers "how many and roughly where" cheaply; segmentation is needed when the shape
    or area matters (medical images, road scenes, image editing).

    The example takes `make_shapes` scenes, which carry all four labels, shows them side
    by side, counts the numbers each label holds, and measures over many scenes how
    much background a tight box contains, which a mask does not.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.pipelines import make_shapes

    size = 64
    scenes = make_shapes(lesson.budget(300, 2000), image_size=size, seed=lesson.seed, min_objects=2)
    first = int(np.argmax(scenes["num_objects"] >= 3))  # a scene with three or more objects to show
    n = int(scenes["num_objects"][first])
    masks, classes, boxes = (scenes["instance_masks"][first, :n], scenes["classes"][first, :n],
                             scenes["boxes"][first, :n])
    lesson.table("What each task's label holds for the scene shown", ("task", "label", "numbers"), [
        ("classification", "class of the largest object", 1),
        ("detection", f"{n} × (4 box coordinates + class)", 5 * n),
        ("semantic segmentation", f"a class per pixel, {size}×{size}", size * size),
        ("instance segmentation", f"{n} × (a {size}×{size} mask + class)", n * (size * size + 1)),
    ])

    # Over all scenes: each object's mask against its box.
    valid = scenes["classes"] >= 0
    object_pixels = scenes["instance_masks"][valid].astype(bool)
    rows, cols = object_pixels.any(axis=2), object_pixels.any(axis=1)  # which rows / columns the object touches
    first_row, last_row = rows.argmax(1), size - 1 - rows[:, ::-1].argmax(1)
    first_col, last_col = cols.argmax(1), size - 1 - cols[:, ::-1].argmax(1)
    from_masks = np.stack([first_row, first_col, last_row + 1, last_col + 1], axis=1) / size
    tight = bool(np.allclose(from_masks, scenes["boxes"][valid]))  # the box is the mask's bounding rectangle
    fill = object_pixels.sum(axis=(1, 2)) / ((last_row - first_row + 1) * (last_col - first_col + 1))
    kind = scenes["classes"][valid]
    fills = {name: lesson.number(f"{name}: fraction of its box that is the object", float(fill[kind == c].mean()))
             for c, name in enumerate(CLASS_NAMES)}
    # The semantic mask is the instance masks with their classes painted in, and identities dropped.
    painted = np.einsum("nkhw,nk->nhw", scenes["instance_masks"].astype(np.int32),
                        np.where(valid, scenes["classes"] + 1, 0))
    same = bool(np.array_equal(painted, scenes["semantic_mask"]))

    fig, axes = plt.subplots(1, 4, figsize=(10, 2.9), layout="constrained")
    axes[0].imshow(scenes["image"][first])
    _no_ticks(axes[0], f"classification:\n'{CLASS_NAMES[scenes['largest_class'][first]]}'")
    axes[1].imshow(scenes["image"][first])
    _draw_boxes(axes[1], boxes, size, "yellow", labels=[CLASS_NAMES[c] for c in classes])
    _no_ticks(axes[1], f"detection:\n{n} boxes with classes")
    axes[2].imshow(scenes["semantic_mask"][first], cmap="viridis", vmin=0, vmax=3)
    _no_ticks(axes[2], "semantic segmentation:\na class per pixel (0 background)")
    axes[3].imshow(np.where(masks.any(0), masks.argmax(0), np.nan), cmap="tab10", vmin=0, vmax=9,
                   interpolation="nearest")  # background (NaN) left white
    _no_ticks(axes[3], f"instance segmentation:\n{n} masks, one colour each")
    lesson.figure(fig, "four_tasks", "One synthetic scene and its four labels: an image class, boxes, a class per "
                  "pixel, and a mask per object.")
    lesson.check("each box is the bounding rectangle of its object's mask: a box follows from a mask, not the "
                 "other way round", tight, f"{int(valid.sum())} objects")
    lesson.check("the semantic mask equals the instance masks painted with their classes: it is the instance "
                 "labels with object identity dropped", same)
    lesson.check("a box is a coarse outline: over 35% of a triangle's box and over 15% of a circle's box is "
                 "background",
                 fills["triangle"] < 0.65 and fills["circle"] < 0.85,
                 ", ".join(f"{name} {value:.2f} object" for name, value in fills.items()))


def _region_classifier(crop_size: int, num_classes: int):
    """A small CNN that classifies one warped region: background (0) or an object class (1..num_classes).

    Flatten, not global pooling, before the dense layers: whether the object fills the crop (a well placed
    box) or sits off-centre in it (a poor one) is a matter of position, which global pooling discards.
    """
    import keras

    layers = keras.layers
    return keras.Sequential([
        keras.Input((crop_size, crop_size, 3)),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(64, activation="relu"),
        layers.Dense(num_classes + 1, activation="softmax"),
    ], name="region_classifier")


@atlas_entry(
    74,
    formula=r"\text{for each proposal } r:\quad p(c \mid r) = \operatorname{CNN}\big(\operatorname{warp}(x|_r)\big),"
    r"\qquad \text{label}(r) = \begin{cases} c_g & \operatorname{IoU}(r, g) \ge 0.5 \\ \text{background} & "
    r"\text{otherwise}\end{cases}",
    see=("tfdl.detection.grid_anchors", "tfdl.detection.iou", "tfdl.detection.postprocess_detections",
         "tfdl.evaluation.detection_map", "tfdl.models.build_two_stage_detector"),
    configs=("shapes_mask_rcnn",),
)
def region_based_cnn(lesson: Lesson) -> None:
    """**R-CNN** (Girshick et al. 2014, "regions with CNN features") turned an image
    classifier into a detector in three steps:

    1. **Region proposals**: a class-agnostic method (selective search, which merges
       superpixels of similar colour and texture) suggests about 2,000 boxes per image
       that might hold an object, so that few objects are missed.
    2. **Classify every region**: each proposal is cropped, *warped* to the CNN's fixed
       input size (227×227 then) and run through the CNN, which scores the object classes
       plus *background*. In training, a proposal overlapping a true box by IoU ≥ 0.5
       takes its class, the rest are background. (The original fed the CNN's features to
       per-class SVMs, and also regressed a correction of each box from them.)
    3. **Clean up**: per class, non-maximum suppression keeps the best-scoring of
       overlapping detections.

    It made detection far more accurate than hand-made features did, but it is slow: the
    CNN runs once per proposal, 2,000 times per image, and the overlapping crops recompute
    the same convolutions again and again (question 77 measures it). Fast and Faster
    R-CNN fix that by sharing one feature map per image.

    The example runs the three steps on `make_shapes` scenes, with a fixed set of boxes of
    several sizes and shapes standing in for selective search: it checks that the
    proposals cover the objects, trains a small CNN on warped 16×16 crops of training
    proposals (a quarter of them objects), and detects objects in new scenes by scoring
    every proposal and applying NMS.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.detection import grid_anchors, iou, postprocess_detections
    from tfdl.evaluation import detection_map
    from tfdl.pipelines import make_shapes

    size, crop, train_count, test_count = 64, 16, lesson.budget(200, 800), lesson.budget(60, 200)
    scenes = make_shapes(train_count + test_count, image_size=size, seed=lesson.seed)
    proposals = grid_anchors([8, 4], scales=[[0.25, 0.35], [0.45, 0.6]], aspect_ratios=(0.7, 1.0, 1.4),
                             clip=True).numpy()  # 480 boxes per image, the same in every image
    lesson.number("proposals per image", len(proposals))

    # Step 1: every proposal's best IoU with a true box, and its training label (0 background, class + 1).
    overlaps = np.zeros((len(scenes["image"]), len(proposals), scenes["boxes"].shape[1]))
    for image, (boxes, n) in enumerate(zip(scenes["boxes"], scenes["num_objects"])):
        overlaps[image, :, :n] = iou(proposals, boxes[:n]).numpy()
    best = overlaps.max(-1)
    labels = np.where(best >= 0.5, np.take_along_axis(scenes["classes"], overlaps.argmax(-1), axis=1) + 1, 0)
    covered = overlaps.max(1)[scenes["classes"] >= 0]  # per true object, its best proposal's IoU
    recall = lesson.number("proposal recall: objects with a proposal of IoU >= 0.5", float(np.mean(covered >= 0.5)))

    # Step 2: warp proposals to crop x crop pixels; train on all positives and three times as many negatives.
    def warp(images, image_index, boxes):
        return tf.image.crop_and_resize(images, boxes, image_index, (crop, crop)).numpy()

    rng = np.random.default_rng(lesson.seed)
    positive = np.argwhere(labels[:train_count] > 0)
    negative = np.argwhere(labels[:train_count] == 0)
    negative = negative[rng.choice(len(negative), 3 * len(positive), replace=False)]
    chosen = np.concatenate([positive, negative])
    regions = warp(scenes["image"], chosen[:, 0], proposals[chosen[:, 1]])
    classifier = _region_classifier(crop, 3)
    fit_steps(classifier, regions, labels[chosen[:, 0], chosen[:, 1]], steps=lesson.budget(400, 2000),
              learning_rate=0.004, seed=lesson.seed, batch_size=64)
    lesson.number("training regions", len(regions))

    # Step 3 on new scenes: the CNN on every warped proposal, then per-class NMS.
    test_images = scenes["image"][train_count:]
    every = np.repeat(np.arange(test_count), len(proposals))
    scores = classifier.predict(warp(test_images, every, np.tile(proposals, (test_count, 1))), batch_size=2048,
                                verbose=0).reshape(test_count, len(proposals), 4)
    lesson.number("CNN runs (one per warped proposal) for the test scenes", len(every))
    test_labels = labels[train_count:]
    region_accuracy = {"background": float(np.mean(scores.argmax(-1)[test_labels == 0] == 0)),
                       "object": float(np.mean(scores.argmax(-1)[test_labels > 0] == test_labels[test_labels > 0]))}
    for name, value in region_accuracy.items():
        lesson.number(f"test regions that are {name}: accuracy", value)

    truth = [{"boxes": boxes[:n], "classes": classes[:n], "image_size": (size, size)} for boxes, classes, n in
             zip(scenes["boxes"][train_count:], scenes["classes"][train_count:], scenes["num_objects"][train_count:])]

    def detect(class_scores):
        out = postprocess_detections(np.zeros((test_count, len(proposals), 4), "float32"), class_scores, proposals,
                                     max_detections=20, score_threshold=0.3, iou_threshold=0.3)
        return [{"boxes": out["boxes"][i, :n].numpy(), "scores": out["scores"][i, :n].numpy(),
                 "classes": out["classes"][i, :n].numpy()} for i, n in enumerate(out["num_detections"].numpy())]

    found = detect(scores[..., 1:])  # the background column dropped
    guessed = detect(rng.uniform(0, 1, scores[..., 1:].shape).astype("float32"))  # proposals scored at random
    map_50 = lesson.number("R-CNN mAP@0.5 on the test scenes", detection_map(truth, found).map_50)
    random_map = lesson.number("mAP@0.5 of the proposals scored at random", detection_map(truth, guessed).map_50)

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained", gridspec_kw={"width_ratios": [1, 1.2, 1]})
    axes[0].imshow(test_images[0])
    _draw_boxes(axes[0], proposals[rng.choice(len(proposals), 12, replace=False)], size, "cyan")
    _no_ticks(axes[0], f"1. proposals (12 of {len(proposals)})")
    picks = np.concatenate([np.flatnonzero(test_labels[0] > 0)[:4], np.flatnonzero(test_labels[0] == 0)[::97][:4]])
    strip = warp(test_images[:1], np.zeros(len(picks), "int32"), proposals[picks])
    axes[1].imshow(np.concatenate([np.concatenate(list(strip[:4]), 1), np.concatenate(list(strip[4:8]), 1)], 0))
    names = ("background",) + CLASS_NAMES
    _no_ticks(axes[1], "2. warped 16×16 regions, CNN's guess:\n" + " | ".join(
        names[int(scores[0, p].argmax())][:4] for p in picks))
    axes[2].imshow(test_images[0])
    _draw_boxes(axes[2], truth[0]["boxes"], size, "white", "--")
    confident = found[0]["scores"] >= 0.6
    _draw_boxes(axes[2], found[0]["boxes"][confident], size, "yellow", labels=[
        f"{CLASS_NAMES[c]} {s:.2f}" for c, s in zip(found[0]["classes"][confident], found[0]["scores"][confident])])
    _no_ticks(axes[2], "3. after NMS, scores >= 0.6 (dashed: truth)")
    lesson.figure(fig, "rcnn_steps", "R-CNN's steps on a test scene: proposals, each warped to the CNN's input size "
                  "and classified, and the detections left after non-maximum suppression.")
    lesson.check("the proposals cover the objects: 90% or more have a proposal with IoU >= 0.5", recall >= 0.9,
                 f"{recall:.3f}")
    lesson.check("the region CNN tells objects from background: test accuracy >= 0.5 on object regions and >= 0.9 "
                 "on background regions",
                 region_accuracy["object"] >= 0.5 and region_accuracy["background"] >= 0.9,
                 f"object {region_accuracy['object']:.3f}, background {region_accuracy['background']:.3f}")
    lesson.check("classifying every region makes a detector: mAP@0.5 >= 0.3, at least 3 times that of the same "
                 "proposals scored at random", map_50 >= 0.3 and map_50 >= 3 * random_map,
                 f"{map_50:.3f} vs random {random_map:.3f}")


def _roi_align_by_hand(features, box, output_size: int, sampling_ratio: int):
    """RoI align of one normalized box on one feature map [H, W, C] in numpy: per bin, the mean of
    `sampling_ratio`² bilinear samples at the centres of its sub-bins (pixel r's centre at r + 0.5)."""
    import numpy as np

    height, width = features.shape[:2]

    def sample_positions(low, high, size):  # continuous positions of the samples, shifted to index pixel centres
        step = (high - low) * size / (output_size * sampling_ratio)
        return low * size + (np.arange(output_size * sampling_ratio) + 0.5) * step - 0.5

    def bilinear(y, x):
        y, x = np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)  # within a pixel of the border: the edge value
        y0, x0 = min(int(np.floor(y)), height - 2), min(int(np.floor(x)), width - 2)
        dy, dx = y - y0, x - x0
        return ((1 - dy) * (1 - dx) * features[y0, x0] + (1 - dy) * dx * features[y0, x0 + 1]
                + dy * (1 - dx) * features[y0 + 1, x0] + dy * dx * features[y0 + 1, x0 + 1])

    ys, xs = sample_positions(box[0], box[2], height), sample_positions(box[1], box[3], width)
    samples = np.array([[bilinear(y, x) for x in xs] for y in ys])  # [k*s, k*s, C]
    return samples.reshape(output_size, sampling_ratio, output_size, sampling_ratio, -1).mean(axis=(1, 3))


@atlas_entry(
    77,
    formula=r"\text{R-CNN: } N \times \operatorname{CNN}\big(\operatorname{warp}(x|_{r_i})\big);\qquad "
    r"\text{Faster R-CNN: } F = \operatorname{CNN}(x) \text{ once},\ \ "
    r"\operatorname{head}\big(\operatorname{RoIAlign}(F, r_i)\big),\ \ r_i \text{ from an RPN on } F",
    see=("tfdl.detection.roi_align", "tfdl.detection.multilevel_roi_align", "tfdl.models.build_two_stage_detector",
         "tfdl.models.TwoStageDetectorConfig", "tfdl.detection.grid_anchors"),
    configs=("shapes_mask_rcnn",),
)
def faster_rcnn_vs_rcnn(lesson: Lesson) -> None:
    """R-CNN (question 74) runs the whole CNN once per region proposal on a crop warped
    to a fixed size: about 2,000 forward passes per image, mostly recomputing the same
    convolutions on overlapping crops, plus an external proposal method (selective
    search, seconds per image on a CPU) and a multi-stage training (CNN, then SVMs, then
    box regressors).

    **Fast R-CNN** (2015) runs the CNN *once* on the whole image and cuts each proposal
    out of the shared **feature map** instead of the image: *RoI pooling* turns a region
    of any size into a fixed $k \\times k$ grid of features (max over each cell) that a
    small head classifies and refines with box regression, all trained jointly. The
    per-region cost becomes a crop of a feature map and a few dense layers. **Faster
    R-CNN** (2015) also replaces selective search with a **region proposal network**
    (RPN): a small convolutional head on the same feature map that scores anchor boxes
    (question 78) as object or not and regresses them, so proposals come almost free
    and the whole detector is one network. **RoIAlign** (Mask R-CNN, 2017) replaces RoI
    pooling's rounding of boxes to feature cells by bilinear sampling at exact
    positions, which matters for small objects and for masks.

    The example times both designs with the same convolutional backbone as the number
    of proposals grows: R-CNN's time grows in proportion to it, while for Faster R-CNN
    an extra proposal costs only its RoIAlign and the small head, over ten times less
    here. It also checks `tfdl.detection.roi_align` against RoIAlign written out in
    numpy.
    """
    import time

    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.detection import roi_align

    layers = keras.layers
    backbone = keras.Sequential([layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
                                 layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
                                 layers.Conv2D(64, 3, padding="same", activation="relu")], name="backbone")
    head = keras.Sequential([layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(4 + 4)],
                            name="head")  # class scores and box offsets per region
    image = tf.random.uniform((1, 128, 128, 3), seed=lesson.seed)

    @tf.function
    def rcnn(boxes):  # crop each region from the image, warp it to 64x64, run the whole CNN on it
        crops = tf.image.crop_and_resize(image, boxes, tf.zeros(tf.shape(boxes)[0], tf.int32), (64, 64))
        return head(tf.nn.avg_pool2d(backbone(crops), 4, 4, "VALID"))  # 16x16 features pooled to 4x4

    @tf.function
    def faster_rcnn(boxes):  # run the CNN once, cut each region from its 32x32 feature map
        features = backbone(image)
        regions = roi_align(features, boxes[None], output_size=4)[0]
        return head(regions)

    def seconds(model, boxes, repeats):
        model(boxes)  # trace and warm up
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(boxes).numpy()
            runs.append(time.perf_counter() - start)
        return min(runs)  # the least disturbed run

    rng = np.random.default_rng(lesson.seed)
    counts = lesson.budget((8, 32, 96, 256), (8, 16, 32, 64, 128, 256, 512, 1024, 2048))
    timings = {"R-CNN": [], "Faster R-CNN": []}
    for count in counts:
        corner = rng.uniform(0, 0.6, (count, 2))
        boxes = tf.constant(np.concatenate([corner, corner + rng.uniform(0.15, 0.4, (count, 2))], 1), tf.float32)
        timings["R-CNN"].append(seconds(rcnn, boxes, lesson.budget(4, 7)))
        timings["Faster R-CNN"].append(seconds(faster_rcnn, boxes, lesson.budget(4, 7)))
    lesson.table("Seconds per image by number of proposals (best of several runs)",
                 ("proposals", "R-CNN", "Faster R-CNN", "R-CNN / Faster R-CNN"),
                 [(n, r, f, r / f) for n, r, f in zip(counts, timings["R-CNN"], timings["Faster R-CNN"])])
    growth = {name: lesson.number(f"{name}: time at {counts[-1]} proposals / time at {counts[0]}", t[-1] / t[0])
              for name, t in timings.items()}
    speedup = lesson.number(f"speed-up of Faster R-CNN at {counts[-1]} proposals",
                            timings["R-CNN"][-1] / timings["Faster R-CNN"][-1])
    per_proposal = {name: lesson.number(f"{name}: milliseconds per extra proposal",
                                        1000 * (t[-1] - t[0]) / (counts[-1] - counts[0]))
                    for name, t in timings.items()}

    # RoIAlign: tfdl's against the bilinear samples computed by hand.
    features = rng.normal(size=(1, 16, 16, 3)).astype("float32")
    corner = rng.uniform(0, 0.6, (20, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.05, 0.4, (20, 2))], 1).astype("float32")
    aligned = roi_align(features, boxes[None], output_size=4, sampling_ratio=2).numpy()[0]
    by_hand = np.stack([_roi_align_by_hand(features[0], box, 4, 2) for box in boxes])
    align_error = lesson.number("largest |roi_align - RoIAlign by hand| over 20 boxes",
                                float(np.abs(aligned - by_hand).max()))

    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for name, marker in (("R-CNN", "o"), ("Faster R-CNN", "s")):
        ax.plot(counts, 1000 * np.array(timings[name]), marker=marker, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("region proposals per image")
    ax.set_ylabel("milliseconds per image")
    ax.set_title("Same backbone and head: a CNN per region vs one shared feature map", fontsize=9)
    ax.legend()
    lesson.figure(fig, "rcnn_vs_faster_rcnn_time", "Time to score one 128×128 image's proposals: R-CNN runs the "
                  "backbone on every warped crop, Faster R-CNN once on the image and RoIAligns the regions.")
    ratio = counts[-1] / counts[0]
    lesson.check(f"R-CNN's cost grows with the number of proposals: {ratio:.0f}x the proposals take at least "
                 f"{ratio / 4:.0f}x the time", growth["R-CNN"] >= ratio / 4, f"{growth['R-CNN']:.1f}x")
    lesson.check("sharing the feature map makes an extra proposal at least 5 times cheaper, and Faster R-CNN at "
                 "least 4 times faster at the most proposals",
                 per_proposal["R-CNN"] >= 5 * per_proposal["Faster R-CNN"] and speedup >= 4,
                 f"{per_proposal['R-CNN']:.3f} vs {per_proposal['Faster R-CNN']:.3f} ms per proposal; "
                 f"speed-up {speedup:.1f}x")
    lesson.check("tfdl's roi_align equals RoIAlign's bilinear sampling computed in numpy (error < 1e-5)",
                 align_error < 1e-5, f"{align_error:.1e}")


@atlas_entry(
    75,
    formula=r"\hat Y = \operatorname{softmax}\big(\operatorname{up}_{\times s}(W_{1\times 1} * f_\theta(x))\big)"
    r"\in [0, 1]^{H \times W \times C},\qquad n_\text{out} = s\, n_\text{in} \text{ for a transposed convolution "
    r"of stride } s \text{ (padding same)}",
    see=("tfdl.models.build_fcn", "tfdl.models.FCNConfig", "tfdl.models.build_unet",
         "tfdl.evaluation.segmentation_metrics", "tfdl.pipelines.make_shapes"),
    configs=("shapes_fcn", "shapes_unet"),
)
def fully_convolutional_network(lesson: Lesson) -> None:
    """A **fully convolutional network** (FCN, Long et al. 2015) segments an image by
    making every layer a convolution. A classification CNN ends in dense layers that
    need a fixed-size input and output one vector; an FCN replaces them with $1 \\times 1$
    convolutions, which give a *score map*: a class score for every cell of the coarse
    feature map (stride $s$ = 32 after five poolings). **Upsampling** layers bring the map
    back to the input resolution: a *transposed convolution* of stride $s$ (learned; the
    paper starts it as bilinear interpolation) multiplies height and width by $s$. A softmax
    over the channels at each pixel gives the per-pixel class probabilities, trained with
    the cross-entropy summed over pixels.

    Upsampling a stride-32 map alone gives blobby masks (FCN-32s). **Skip connections**
    add the score maps of earlier, finer pooling stages (FCN-16s, FCN-8s), so the
    coarse layers say *what* and the fine ones *where*; U-Net pushes this idea further
    with a full decoder. Because nothing in the network depends on the image size, the
    same weights run on an image of any size (a multiple of the stride) and return a map
    of that size, and all pixels are computed in one pass with shared work rather than one
    forward pass per pixel patch.

    The example builds tfdl's FCN-8s, follows the shapes through it, runs its weights on
    inputs of four sizes, and trains it briefly on 32×32 `make_shapes` scenes: it beats
    predicting background everywhere by a wide margin, and the same weights segment
    64×64 scenes they never saw at that size.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.evaluation import segmentation_metrics
    from tfdl.models import build_model
    from tfdl.pipelines import make_shapes

    def fcn(side):
        return build_model("fcn", {"input_shape": (side, side, 3), "num_classes": 4, "variant": "8s",
                                   "filters": (16, 32, 32), "convs_per_stage": 1, "batch_norm": False})

    model = fcn(32)
    rows = [(layer.name, type(layer).__name__, str(tuple(layer.output.shape[1:]))) for layer in model.layers[1:]]
    lesson.table("FCN-8s on 32×32 images: down to stride 8, scored by 1×1 convolutions, back up by transposed "
                 "convolutions", ("layer", "kind", "output shape"), rows)

    train = make_shapes(lesson.budget(400, 2000), image_size=32, seed=lesson.seed, size_range=(0.15, 0.3))
    test = make_shapes(100, image_size=32, seed=lesson.seed + 1000, size_range=(0.15, 0.3))
    fit_steps(model, train["image"], train["semantic_mask"], steps=lesson.budget(250, 1500), learning_rate=0.005,
              seed=lesson.seed, batch_size=8)

    # The same weights on other sizes: a map of the input's size comes out.
    sizes, shapes_match, resized = (32, 48, 64, 96), True, {32: model}
    for side in sizes[1:]:
        resized[side] = fcn(side)
        resized[side].set_weights(model.get_weights())  # no weight depends on the image size
        shapes_match &= resized[side].output.shape[1:] == (side, side, 4)
    # Larger scenes with objects of the same size in pixels, so more of them.
    large = make_shapes(100, image_size=64, seed=lesson.seed + 2000, max_objects=8, size_range=(0.075, 0.15))

    scores, rows = {}, []
    for name, data, net in (("32×32 test scenes", test, model), ("64×64 scenes, same weights", large, resized[64])):
        predicted = net(data["image"]).numpy().argmax(-1)
        learned = segmentation_metrics(data["semantic_mask"], predicted, 4, ("background",) + CLASS_NAMES)
        background = segmentation_metrics(data["semantic_mask"], np.zeros_like(predicted), 4)
        scores[name] = (learned, background, predicted)
        rows.append((name, learned.pixel_accuracy, learned.mean_iou, background.pixel_accuracy, background.mean_iou))
        lesson.number(f"{name}: mean IoU", learned.mean_iou)
        lesson.number(f"{name}: mean IoU predicting background everywhere", background.mean_iou)
    lesson.table("Trained FCN against predicting background everywhere", ("images", "FCN pixel accuracy",
                 "FCN mean IoU", "background pixel accuracy", "background mean IoU"), rows)

    fig, axes = plt.subplots(2, 3, figsize=(7.5, 5), layout="constrained")
    for row, (name, data) in enumerate((("32×32 test scenes", test), ("64×64 scenes, same weights", large))):
        for ax, picture, title in ((axes[row, 0], data["image"][0], f"{name}: image"),
                                   (axes[row, 1], data["semantic_mask"][0], "true classes"),
                                   (axes[row, 2], scores[name][2][0], "FCN's classes")):
            ax.imshow(picture, **({} if picture.ndim == 3 else {"cmap": "viridis", "vmin": 0, "vmax": 3}))
            _no_ticks(ax, title)
    lesson.figure(fig, "fcn_segmentation", "The FCN-8s trained briefly on 32×32 scenes, on a test scene and, with the "
                  "same weights, on a 64×64 scene (colour: class per pixel, dark: background).")
    lesson.check("the same weights accept inputs of any size that is a multiple of the stride and return a class "
                 f"map of that size ({', '.join(map(str, sizes))} pixels)", shapes_match)
    for name, (learned, background, _) in scores.items():
        lesson.check(f"{name}: the FCN's mean IoU is at least 0.2 above predicting background everywhere",
                     learned.mean_iou >= background.mean_iou + 0.2,
                     f"{learned.mean_iou:.3f} vs {background.mean_iou:.3f}")


def _yolo_targets(boxes, classes, grid: int, num_classes: int = 3):
    """YOLO (v1) targets of one image: an array [grid, grid, 5 + num_classes] holding, in the cell that contains a
    box's centre, objectness 1, the centre's offset within the cell (y, x in [0, 1)), the box's height and width
    (fractions of the image) and the one-hot class. A cell holds one object: a later one in the same cell is lost.

    Returns the targets and the number of objects lost to a cell already taken.
    """
    import numpy as np

    targets, lost = np.zeros((grid, grid, 5 + num_classes), "float32"), 0
    for (ymin, xmin, ymax, xmax), label in zip(boxes, classes):
        cy, cx = (ymin + ymax) / 2 * grid, (xmin + xmax) / 2 * grid  # the centre in cell units
        row, col = int(cy), int(cx)
        if targets[row, col, 0]:
            lost += 1
            continue
        targets[row, col, :5] = (1.0, cy - row, cx - col, ymax - ymin, xmax - xmin)
        targets[row, col, 5 + label] = 1.0
    return targets, lost


@atlas_entry(
    76,
    formula=r"\text{object } (c_y, c_x, h, w) \mapsto \text{cell } (\lfloor S c_y \rfloor, \lfloor S c_x \rfloor),"
    r"\quad t = \big(1,\ S c_y - \lfloor S c_y \rfloor,\ S c_x - \lfloor S c_x \rfloor,\ h,\ w,\ \text{one-hot}(c)\big)"
    r",\qquad \text{output} \in \mathbb{R}^{S \times S \times B(5 + C)}",
    see=("tfdl.models.build_one_stage_detector", "tfdl.models.OneStageDetectorConfig",
         "tfdl.models.detector_anchors", "tfdl.models.kmeans_anchor_sizes", "tfdl.detection.match_anchors",
         "tfdl.detection.postprocess_detections"),
    configs=("shapes_detector",),
)
def yolo(lesson: Lesson) -> None:
    """**YOLO** ("You Only Look Once", Redmon et al. 2016) treats detection as a single
    regression: one CNN pass over the whole image predicts every box at once, with no
    proposal stage. The image is divided into an $S \\times S$ grid; the cell that
    contains an object's *centre* is responsible for it. Each cell predicts $B$ boxes,
    each as an objectness (confidence) score, the centre's offset inside the cell and
    the box's height and width, plus class probabilities, so the output is an
    $S \\times S \\times B(5 + C)$ tensor (7×7×30 for $B = 2$, $C = 20$ in the paper). Training
    regresses this tensor onto a target built the same way (the formula); at test time
    boxes with high confidence × class probability survive non-maximum suppression.

    One pass makes it fast (45 frames/s on a GPU in 2016, against 13 s per image for
    R-CNN) and, seeing the whole image, it makes fewer background mistakes. Its weakness
    is the grid: a cell holds a fixed number of objects, so small objects crowded
    together are lost, and boxes regressed from nothing localize coarsely. YOLOv2 added
    **anchor boxes** chosen by k-means over the training boxes (question 78), batch
    normalization and multi-scale training; YOLOv3 predicts at three scales; later
    versions refine the backbone, the losses and the assignment of targets.

    The example builds YOLO's target tensor for `make_shapes` scenes and decodes it back
    to the boxes, counts how many crowded objects a one-object-per-cell grid loses and
    how anchors per cell recover them, and checks that tfdl's one-stage detector returns
    every anchor's box and class scores from one forward pass.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.detection import kmeans_anchors
    from tfdl.models import OneStageDetectorConfig, build_model, detector_anchors
    from tfdl.pipelines import make_shapes

    size = 64
    scenes = make_shapes(lesson.budget(200, 1000), image_size=size, seed=lesson.seed, max_objects=8,
                         size_range=(0.08, 0.15))
    objects = [(b[:n], c[:n]) for b, c, n in zip(scenes["boxes"], scenes["classes"], scenes["num_objects"])]

    # The target tensor of a scene of 3 or more objects in different cells, and the boxes decoded back from it.
    grid = 4
    shown = next(i for i, (b, c) in enumerate(objects) if len(b) >= 3 and _yolo_targets(b, c, grid)[1] == 0)
    targets, _ = _yolo_targets(*objects[shown], grid)
    rows, cols = np.nonzero(targets[..., 0])
    cy, cx = (rows + targets[rows, cols, 1]) / grid, (cols + targets[rows, cols, 2]) / grid
    h, w = targets[rows, cols, 3], targets[rows, cols, 4]
    decoded = dict(zip(zip(rows, cols), np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], 1)))
    true_boxes = objects[shown][0]
    cells = [(int((b[0] + b[2]) / 2 * grid), int((b[1] + b[3]) / 2 * grid)) for b in true_boxes]
    decode_error = float(max(np.abs(decoded[cell] - box).max() for cell, box in zip(cells, true_boxes)))
    lesson.number("largest |decoded target box - true box|", decode_error)
    lesson.table(f"The target tensor of the scene shown ({grid}×{grid}×{targets.shape[-1]}): its occupied cells",
                 ("cell (row, col)", "objectness", "offset y", "offset x", "height", "width", "class"),
                 [((r, c), *targets[r, c, :5], CLASS_NAMES[int(targets[r, c, 5:].argmax())])
                  for r, c in zip(rows, cols)])

    # Crowded scenes: objects lost because their centre falls in a cell already taken.
    total = sum(len(b) for b, _ in objects)
    shapes = np.concatenate([b[:, 2:] - b[:, :2] for b, _ in objects])
    anchors = kmeans_anchors(shapes, k=3, seed=lesson.seed)  # YOLOv2: three anchor shapes per cell

    def lost_with_anchors(boxes, g):  # one object per (cell, anchor): an object takes the anchor shape it fits best
        hw = boxes[:, 2:] - boxes[:, :2]
        overlap = np.minimum(hw[:, None], anchors[None]).prod(-1)
        best = (overlap / (hw.prod(-1)[:, None] + anchors.prod(-1)[None] - overlap)).argmax(1)
        slots = {(int((b[0] + b[2]) / 2 * g), int((b[1] + b[3]) / 2 * g), a) for b, a in zip(boxes, best)}
        return len(boxes) - len(slots)

    loss_rows, lost = [], {}
    for g in (2, 4, 8):
        one_per_cell = sum(_yolo_targets(b, c, g)[1] for b, c in objects) / total
        per_anchor = sum(lost_with_anchors(b, g) for b, _ in objects) / total
        lost[g] = (one_per_cell, per_anchor)
        loss_rows.append((f"{g}×{g}", one_per_cell, per_anchor))
    lesson.table(f"Fraction of {total} objects (up to 8 per scene) lost to a taken cell",
                 ("grid", "one object per cell (YOLOv1)", "one per cell and anchor shape, 3 shapes (YOLOv2)"),
                 loss_rows)
    lesson.number("objects lost on a 4x4 grid, one per cell", lost[4][0])
    lesson.number("objects lost on a 4x4 grid, one per cell and anchor", lost[4][1])

    # One pass of tfdl's one-stage detector: every anchor's box offsets and class scores at once.
    config = OneStageDetectorConfig(input_shape=(size, size, 3), num_classes=3, backbone_filters=(8, 16, 16, 16),
                                    head_width=16, head_depth=1)
    detector = build_model("one_stage_detector", config.model_dump())
    outputs = detector(scenes["image"][:8])
    count = int(detector_anchors(config).shape[0])
    lesson.number("anchors the detector scores in one pass (8x8 and 4x4 cells, 6 shapes each)", count)
    one_pass = (tuple(outputs["box_deltas"].shape) == (8, count, 4)
                and tuple(outputs["class_logits"].shape) == (8, count, 3))

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained", gridspec_kw={"width_ratios": [1, 1, 1.3]})
    axes[0].imshow(scenes["image"][shown])
    for line in np.arange(1, grid) * size / grid - 0.5:
        axes[0].axhline(line, color="white", lw=0.8)
        axes[0].axvline(line, color="white", lw=0.8)
    axes[0].plot((true_boxes[:, 1] + true_boxes[:, 3]) / 2 * size - 0.5,
                 (true_boxes[:, 0] + true_boxes[:, 2]) / 2 * size - 0.5, "r.")
    _draw_boxes(axes[0], true_boxes, size, "yellow")
    _no_ticks(axes[0], f"{grid}×{grid} grid, object centres (red)")
    axes[1].imshow(targets[..., 0], cmap="gray", vmin=0, vmax=1)
    for r, c in zip(rows, cols):
        axes[1].text(c, r, CLASS_NAMES[int(targets[r, c, 5:].argmax())], ha="center", va="center", color="red",
                     fontsize=8)
    _no_ticks(axes[1], "target: objectness per cell and class")
    where = np.arange(3)
    axes[2].bar(where - 0.2, [lost[g][0] for g in (2, 4, 8)], 0.4, label="one object per cell")
    axes[2].bar(where + 0.2, [lost[g][1] for g in (2, 4, 8)], 0.4, label="one per cell and anchor (3 anchors)")
    axes[2].set_xticks(where, ["2×2", "4×4", "8×8"])
    axes[2].set_xlabel("grid")
    axes[2].set_ylabel("fraction of objects lost")
    axes[2].legend(fontsize=8)
    lesson.figure(fig, "yolo_grid", "A scene on YOLO's grid: each object belongs to the cell of its centre; the "
                  "target's objectness channel; objects lost when two centres share a cell, without and with anchors.")
    lesson.check("the target tensor decodes back to the true boxes (error < 1e-6)", decode_error < 1e-6,
                 f"{decode_error:.1e}")
    lesson.check("a coarse grid with one object per cell loses crowded objects: over 5% on 4×4, fewer on 8×8",
                 lost[4][0] > 0.05 and lost[8][0] < lost[4][0], f"4×4 {lost[4][0]:.3f}, 8×8 {lost[8][0]:.3f}")
    lesson.check("three anchor shapes per cell lose at most half as many objects", lost[4][1] <= lost[4][0] / 2,
                 f"{lost[4][0]:.3f} -> {lost[4][1]:.3f}")
    lesson.check(f"one forward pass returns box offsets and class scores for all {count} anchors of a batch",
                 one_pass, f"{tuple(outputs['box_deltas'].shape)}, {tuple(outputs['class_logits'].shape)}")


@atlas_entry(
    78,
    formula=r"\text{anchor } (s, r):\ h = s / \sqrt{r},\ w = s \sqrt{r};\qquad "
    r"t_y = \frac{y - y_a}{h_a},\ t_x = \frac{x - x_a}{w_a},\ t_h = \log\frac{h}{h_a},\ t_w = \log\frac{w}{w_a};"
    r"\qquad d(\text{box}, \text{centroid}) = 1 - \operatorname{IoU}",
    see=("tfdl.detection.grid_anchors", "tfdl.detection.grid_anchors_from_sizes", "tfdl.detection.kmeans_anchors",
         "tfdl.detection.match_anchors", "tfdl.detection.encode_boxes", "tfdl.detection.decode_boxes",
         "tfdl.models.kmeans_anchor_sizes"),
    configs=("shapes_detector",),
)
def anchor_boxes(lesson: Lesson) -> None:
    """**Anchor boxes** are a fixed set of reference boxes laid out on the cells of a
    feature map: at every cell, a few shapes of different scales $s$ and aspect ratios
    $r$ (width/height), centred on the cell. A detector's head predicts, per cell and
    anchor, class scores and four *offsets* from that anchor (the formula: a shift of the
    centre in units of the anchor's size and a log-scale change of its height and width),
    rather than absolute coordinates. Several anchors per cell let one cell report several
    overlapping objects of different shapes, and regressing a small correction from a
    nearby prior box is far easier to learn than a box from nothing.

    In training each anchor is **matched** to the ground truth: IoU ≥ 0.5 with a box makes
    it positive (it learns that box's class and offsets), IoU < 0.4 negative
    (background), anything between is ignored (RetinaNet's thresholds; Faster R-CNN's RPN
    uses 0.7 and 0.3), and every box also claims its best anchor
    so no object is left without one. An object is only learned well if some anchor
    overlaps it enough, so the anchors must cover the sizes and shapes in the data: Faster
    R-CNN and RetinaNet hand-pick 3 scales × 3 ratios per level; YOLOv2 clusters the
    training boxes' heights and widths with k-means under the distance $1 - \\text{IoU}$
    and uses the centroids.

    The example lays anchors on an 8×8 grid over `make_shapes` scenes and measures, per
    set of anchors, the fraction of true boxes that some anchor overlaps by IoU ≥ 0.5
    (their recall) and the mean best IoU. Three k-means shapes beat three generic aspect
    ratios and match nine hand-picked shapes. It also checks the offset coding and the
    matching.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.detection import (decode_boxes, encode_boxes, grid_anchors, grid_anchors_from_sizes, iou,
                                kmeans_anchors, match_anchors)
    from tfdl.pipelines import make_shapes

    size = 64
    scenes = make_shapes(lesson.budget(500, 3000), image_size=size, seed=lesson.seed, size_range=(0.06, 0.3))
    boxes = scenes["boxes"][scenes["classes"] >= 0]  # every true box of every scene
    clusters = kmeans_anchors(boxes[:, 2:] - boxes[:, :2], k=3, seed=lesson.seed)  # (height, width) centroids
    anchor_sets = {
        "1 shape (scale 0.3)": grid_anchors([8], scales=[0.3]),
        "3 ratios 0.5, 1, 2 (scale 0.3)": grid_anchors([8], scales=[0.3], aspect_ratios=(0.5, 1.0, 2.0)),
        "3 scales 0.15, 0.3, 0.5": grid_anchors([8], scales=[0.15, 0.3, 0.5]),
        "3 shapes from k-means": grid_anchors_from_sizes([8], clusters),
        "3 scales × 3 ratios": grid_anchors([8], scales=[0.15, 0.3, 0.5], aspect_ratios=(0.5, 1.0, 2.0)),
    }
    recall, mean_best = {}, {}
    for name, anchors in anchor_sets.items():
        best = iou(boxes, anchors).numpy().max(axis=1)  # each true box's best anchor
        recall[name] = lesson.number(f"{name}: recall at IoU >= 0.5", float(np.mean(best >= 0.5)))
        mean_best[name] = lesson.number(f"{name}: mean best IoU", float(best.mean()))
    lesson.table(f"Anchors on an 8×8 grid against {len(boxes)} true boxes",
                 ("anchors per cell", "anchors", "recall at IoU ≥ 0.5", "mean best IoU"),
                 [(name, int(anchor_sets[name].shape[0]), recall[name], mean_best[name]) for name in anchor_sets])
    lesson.table("The k-means anchor shapes", ("height", "width"), clusters.tolist())

    # Offsets: the head learns these numbers; decoding them gives the box back.
    anchors = anchor_sets["3 scales × 3 ratios"]
    first = scenes["boxes"][0][scenes["classes"][0] >= 0]
    matched = match_anchors(anchors, scenes["boxes"][0], scenes["classes"][0])
    positive = np.flatnonzero(matched["labels"].numpy() == 1)
    targets = first[matched["matched_gt"].numpy()[positive]]
    offsets = encode_boxes(targets, anchors.numpy()[positive])
    round_trip = lesson.number("largest |decode(encode(box)) - box| over the positive anchors",
                               float(np.abs(decode_boxes(offsets, anchors.numpy()[positive]).numpy() - targets).max()))
    per_object = np.bincount(matched["matched_gt"].numpy()[positive], minlength=len(first))
    lesson.number("positive anchors per object in the first scene (fewest)", int(per_object.min()))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained", gridspec_kw={"width_ratios": [1, 2]})
    axes[0].imshow(scenes["image"][0])
    _draw_boxes(axes[0], first, size, "white", "--")
    _draw_boxes(axes[0], anchors.numpy()[positive], size, "yellow")
    _no_ticks(axes[0], f"positive anchors ({len(positive)}) of 3 scales × 3 ratios\n(dashed: truth)")
    names = list(anchor_sets)
    where = np.arange(len(names))
    axes[1].bar(where - 0.2, [recall[n] for n in names], 0.4, label="recall at IoU ≥ 0.5")
    axes[1].bar(where + 0.2, [mean_best[n] for n in names], 0.4, label="mean best IoU")
    axes[1].set_xticks(where, [n.replace(" (", "\n(").replace("from ", "from\n") for n in names], fontsize=7)
    axes[1].set_ylim(0, 1.1)
    axes[1].set_ylabel("over all true boxes")
    axes[1].legend(fontsize=8, loc="upper left")
    lesson.figure(fig, "anchor_recall", "Positive anchors of one scene; how well each set of anchors covers the true "
                  "boxes of all scenes.")
    one, scales = recall["1 shape (scale 0.3)"], recall["3 scales 0.15, 0.3, 0.5"]
    lesson.check("one anchor shape misses most objects of other sizes; three scales raise the recall at IoU ≥ 0.5 "
                 "by at least 0.3", scales >= one + 0.3, f"{one:.3f} -> {scales:.3f}")
    generic, learned = mean_best["3 ratios 0.5, 1, 2 (scale 0.3)"], mean_best["3 shapes from k-means"]
    nine = mean_best["3 scales × 3 ratios"]
    lesson.check("three k-means shapes fit the data better than three generic ones (mean best IoU higher by at "
                 "least 0.05) and as well as nine hand-picked ones (within 0.02)",
                 learned >= generic + 0.05 and learned >= nine - 0.02,
                 f"generic {generic:.3f}, k-means {learned:.3f}, nine hand-picked {nine:.3f}")
    lesson.check("decoding the encoded offsets gives the boxes back (error < 1e-5), and matching gives every object "
                 "at least one positive anchor", round_trip < 1e-5 and per_object.min() >= 1,
                 f"error {round_trip:.1e}, fewest {int(per_object.min())}")


@atlas_entry(
    79,
    formula=r"p_{ij} = \operatorname{softmax}(z_{ij}),\quad \mathcal{L} = -\frac{1}{HW}\sum_{i,j} \log p_{ij}"
    r"(y_{ij});\qquad \operatorname{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c},\quad "
    r"\operatorname{mIoU} = \frac{1}{|C'|}\sum_{c \in C'} \operatorname{IoU}_c",
    see=("tfdl.models.build_unet", "tfdl.models.UNetConfig", "tfdl.models.build_fcn",
         "tfdl.evaluation.segmentation_metrics", "tfdl.evaluation.plot_mask_overlays", "tfdl.pipelines.make_shapes"),
    configs=("shapes_unet",),
)
def semantic_segmentation(lesson: Lesson) -> None:
    """**Semantic segmentation** assigns a class to every pixel of an image (road, car,
    person, sky, ..., with a background class for everything else). It is
    classification done $H \\times W$ times: the network outputs a map of $C$ scores per
    pixel, a softmax over the channels turns each pixel's scores into probabilities, and
    the loss is the cross-entropy averaged over pixels (the formula). Pixels of the same
    class are not told apart as objects (that is instance segmentation, question 80).

    A pixel's colour rarely decides its class; its surroundings do. Segmentation
    networks therefore combine a large receptive field, for context, with full
    resolution, for precise borders: encoder-decoders such as FCN (question 75) and U-Net
    downsample to see context and upsample back, with skip connections carrying the
    fine detail; others use dilated convolutions (DeepLab).

    Results are scored per class by **intersection over union** of the predicted and the
    true pixels, averaged over classes (mIoU; the classes absent from both are skipped,
    as Keras's `MeanIoU` does). Pixel accuracy alone misleads, because the background
    dominates: predicting "background" everywhere scores high on it. The example trains a
    per-pixel classifier (1×1 convolutions: colour only) and a small FCN on `make_shapes`
    scenes, scores both, and checks tfdl's mIoU against the formula and against Keras.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.evaluation import segmentation_metrics
    from tfdl.models import build_model
    from tfdl.pipelines import make_shapes

    side, names = 32, ("background",) + CLASS_NAMES
    train = make_shapes(lesson.budget(400, 2000), image_size=side, seed=lesson.seed, size_range=(0.15, 0.3))
    test = make_shapes(100, image_size=side, seed=lesson.seed + 1000, size_range=(0.15, 0.3))
    layers = keras.layers
    models = {
        "per pixel (1×1 convs, no context)": keras.Sequential([
            keras.Input((side, side, 3)), layers.Conv2D(32, 1, activation="relu"),
            layers.Conv2D(32, 1, activation="relu"), layers.Conv2D(4, 1), layers.Softmax()]),
        "FCN (context)": build_model("fcn", {"input_shape": (side, side, 3), "num_classes": 4, "variant": "8s",
                                             "filters": (16, 32, 32), "convs_per_stage": 1, "batch_norm": False}),
    }
    metrics, predicted = {}, {}
    for (name, model), steps in zip(models.items(), lesson.budget((60, 200), (500, 1500))):
        fit_steps(model, train["image"], train["semantic_mask"], steps=steps, learning_rate=0.005,
                  seed=lesson.seed, batch_size=16)
        probabilities = model(test["image"]).numpy()  # [N, H, W, 4]: a distribution over the classes per pixel
        predicted[name] = probabilities.argmax(-1)
        metrics[name] = segmentation_metrics(test["semantic_mask"], predicted[name], 4, names)
    predicted["all background"] = np.zeros_like(test["semantic_mask"])
    metrics["all background"] = segmentation_metrics(test["semantic_mask"], predicted["all background"], 4, names)
    lesson.table("Test scenes: pixel accuracy, IoU per class and mean IoU",
                 ("prediction", "pixel accuracy", *(f"IoU {n}" for n in names), "mean IoU"),
                 [(name, m.pixel_accuracy, *m.iou, m.mean_iou) for name, m in metrics.items()])
    for name, m in metrics.items():
        lesson.number(f"{name}: mean IoU", m.mean_iou)
        lesson.number(f"{name}: pixel accuracy", m.pixel_accuracy)

    # mIoU by the formula, from a confusion matrix counted in numpy, and by Keras.
    fcn = predicted["FCN (context)"]
    confusion = np.zeros((4, 4))
    np.add.at(confusion, (test["semantic_mask"].ravel(), fcn.ravel()), 1)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    by_formula = float(np.mean(tp[union > 0] / union[union > 0]))
    keras_miou = keras.metrics.MeanIoU(num_classes=4)
    keras_miou.update_state(test["semantic_mask"].ravel(), fcn.ravel())
    errors = (abs(by_formula - metrics["FCN (context)"].mean_iou), abs(float(keras_miou.result()) - by_formula))
    lesson.number("|segmentation_metrics mIoU - formula|", errors[0])
    lesson.number("|Keras MeanIoU - formula|", errors[1])
    # Object versus background, whatever the class: what colour alone can tell.
    per_pixel = predicted["per pixel (1×1 convs, no context)"]
    foreground = segmentation_metrics((test["semantic_mask"] > 0).astype(int), (per_pixel > 0).astype(int), 2)
    lesson.number("per-pixel classifier: IoU of object vs background", foreground.iou[1])

    fig, axes = plt.subplots(2, 4, figsize=(9, 4.6), layout="constrained")
    for row in range(2):
        pictures = [(test["image"][row], "image"), (test["semantic_mask"][row], "true classes"),
                    (per_pixel[row], "per-pixel classifier"), (fcn[row], "FCN")]
        for ax, (picture, title) in zip(axes[row], pictures):
            ax.imshow(picture, **({} if picture.ndim == 3 else {"cmap": "viridis", "vmin": 0, "vmax": 3,
                                                                "interpolation": "nearest"}))
            _no_ticks(ax, title)
    lesson.figure(fig, "semantic_segmentation", "Two test scenes, their true class per pixel, and the classes "
                  "predicted by 1×1 convolutions (each pixel alone) and by a small FCN-8s (dark: background, then "
                  "circle, square, triangle).")
    lesson.check("tfdl's mean IoU equals the formula from the confusion matrix and Keras's MeanIoU (error < 1e-6)",
                 max(errors) < 1e-6, f"{max(errors):.1e}")
    background = metrics["all background"]
    lesson.check("pixel accuracy misleads: predicting background everywhere scores over 0.6 in pixel accuracy but "
                 "under 0.25 in mean IoU", background.pixel_accuracy > 0.6 and background.mean_iou < 0.25,
                 f"{background.pixel_accuracy:.3f}, mIoU {background.mean_iou:.3f}")
    alone, context = metrics["per pixel (1×1 convs, no context)"], metrics["FCN (context)"]
    lesson.check("a pixel's colour finds the objects (object vs background IoU > 0.8) but not their class; with "
                 "context the FCN's mean IoU is at least 0.15 higher",
                 foreground.iou[1] > 0.8 and context.mean_iou >= alone.mean_iou + 0.15,
                 f"object IoU {foreground.iou[1]:.3f}; mIoU {alone.mean_iou:.3f} vs {context.mean_iou:.3f}")


@atlas_entry(
    80,
    formula=r"\text{semantic: } M(p) = c \;\;\text{vs}\;\; \text{instance: } \{(m_k, c_k)\}_k,\quad "
    r"M(p) = c_k \text{ for } p \in m_k;\qquad \text{instances from } M \text{ by connected components } "
    r"\ne \{m_k\} \text{ when same-class objects touch}",
    see=("tfdl.models.build_two_stage_detector", "tfdl.models.TwoStageDetectorConfig", "tfdl.models.PasteMasks",
         "tfdl.evaluation.detection_map", "tfdl.evaluation.segmentation_metrics", "tfdl.pipelines.make_shapes"),
    configs=("shapes_mask_rcnn", "shapes_unet"),
)
def instance_vs_semantic_segmentation(lesson: Lesson) -> None:
    """**Semantic segmentation** labels each pixel with a class; **instance
    segmentation** labels each pixel with the *object* it belongs to, as a separate
    mask per object with its class and a confidence. Two cars side by side are one
    "car" region in a semantic map and two masks in an instance output, so only the
    latter can count objects, track them, or measure each one. (Panoptic segmentation
    combines both: instances for countable "things", semantic classes for "stuff" such
    as road or sky.)

    The difference shapes the models and the metrics. A semantic network outputs a fixed
    $H \\times W \\times C$ map and is scored by mean IoU over classes. An instance model
    must output a variable number of masks, so it is usually a detector with a mask
    head: Mask R-CNN finds boxes, cuts each box's features with RoIAlign, and predicts a
    small binary mask inside the box, which is pasted back into the image. It is scored
    like a detector, by AP with mask IoU in place of box IoU. Recovering instances from
    a semantic map by splitting it into connected regions fails exactly where it
    matters: touching or overlapping objects of one class merge, and an object cut in
    two by an occluder splits.

    The example counts, over many `make_shapes` scenes, how often the connected regions
    of the semantic mask give the wrong number of objects, and scores those regions as
    instance predictions with mask AP against the true instance masks.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import ndimage

    from tfdl.evaluation import detection_map
    from tfdl.pipelines import make_shapes

    size = 64
    scenes = make_shapes(lesson.budget(200, 1000), image_size=size, seed=lesson.seed, min_objects=3, max_objects=6)
    truth, regions, wrong_scenes, merged, split = [], [], 0, 0, 0
    for semantic, masks, classes, n in zip(scenes["semantic_mask"], scenes["instance_masks"], scenes["classes"],
                                           scenes["num_objects"]):
        truth.append({"boxes": np.zeros((n, 4)), "classes": classes[:n], "masks": masks[:n],
                      "image_size": (size, size)})
        found, labels, wrong = [], [], False
        for c in range(3):
            components, count = ndimage.label(semantic == c + 1)  # connected regions of the class (4-neighbours)
            found += [components == k for k in range(1, count + 1)]
            labels += [c] * count
            objects = int(np.sum(classes[:n] == c))
            merged += max(objects - count, 0)
            split += max(count - objects, 0)
            wrong |= count != objects
        wrong_scenes += wrong
        regions.append({"boxes": np.zeros((len(found), 4)), "scores": np.ones(len(found)),
                        "classes": np.array(labels, int), "masks": np.array(found, np.uint8).reshape(-1, size, size)})
    total = int(scenes["num_objects"].sum())
    wrong_rate = lesson.number("scenes whose semantic regions miscount the objects", wrong_scenes / len(truth))
    lesson.number("objects without a region of their own (per scene and class: objects minus regions, when more "
                  "objects)", merged)
    lesson.number("extra regions (per scene and class: regions minus objects, when more regions)", split)
    lesson.number("objects", total)
    from_regions = detection_map(truth, regions, kind="mask", class_names=CLASS_NAMES).map_50
    perfect = [{"boxes": t["boxes"], "scores": np.ones(len(t["classes"])), "classes": t["classes"],
                "masks": t["masks"]} for t in truth]
    from_instances = detection_map(truth, perfect, kind="mask", class_names=CLASS_NAMES).map_50
    lesson.number("mask mAP@0.5 of the semantic mask's connected regions", from_regions)
    lesson.number("mask mAP@0.5 of the instance masks", from_instances)

    # A scene where two objects of one class touch: one semantic region, two instance masks.
    shown = next(i for i, (semantic, classes, n) in enumerate(zip(scenes["semantic_mask"], scenes["classes"],
                                                                   scenes["num_objects"]))
                 if any(ndimage.label(semantic == c + 1)[1] < np.sum(classes[:n] == c) for c in range(3)))
    n = int(scenes["num_objects"][shown])
    masks = scenes["instance_masks"][shown, :n]
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.9), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
    axes[0].imshow(scenes["image"][shown])
    _no_ticks(axes[0], "image")
    axes[1].imshow(scenes["semantic_mask"][shown], cmap="viridis", vmin=0, vmax=3, interpolation="nearest")
    _no_ticks(axes[1], "semantic: a class per pixel")
    axes[2].imshow(np.where(masks.any(0), masks.argmax(0), np.nan), cmap="tab10", vmin=0, vmax=9,
                   interpolation="nearest")
    _no_ticks(axes[2], f"instance: {n} masks, one colour each")
    axes[3].bar([0, 1], [from_regions, from_instances], color=["C1", "C0"])
    axes[3].set_xticks([0, 1], ["connected regions\nof the semantic mask", "instance masks"], fontsize=8)
    axes[3].set_ylabel("mask mAP@0.5")
    axes[3].set_ylim(0, 1.05)
    axes[3].set_title(f"{len(truth)} scenes, {total} objects", fontsize=8)
    lesson.figure(fig, "semantic_vs_instance", "Touching objects of one class form one semantic region but keep "
                  "their own instance masks; scored as instances, the semantic regions lose AP.")
    lesson.check("the semantic mask cannot count objects: its connected regions miscount in at least 15% of the "
                 "scenes", wrong_rate >= 0.15,
                 f"{wrong_rate:.3f} ({merged} objects short, {split} regions extra, of {total} objects)")
    lesson.check("as instance predictions the semantic regions reach a mask mAP@0.5 at least 0.1 below that of the "
                 "instance masks (1.0)", from_instances == 1.0 and from_regions <= from_instances - 0.1,
                 f"{from_regions:.3f} vs {from_instances:.3f}")
