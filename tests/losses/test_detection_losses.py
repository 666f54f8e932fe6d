"""Detector losses: a numpy formula and the Keras built-ins per anchor, masking, and one step under MirroredStrategy."""

import doctest
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from loss_contract import assert_compiled_roundtrip, assert_reduces_like_keras

from tfdl.losses import AnchorFocalLoss, AnchorHuberLoss
from tfdl.losses import detection_losses

rng = np.random.default_rng(0)
BATCH, ANCHORS, CLASSES = 4, 7, 3
LOGITS = rng.normal(scale=2.0, size=(BATCH, ANCHORS, CLASSES)).astype("float32")
# Image 0: two positives and an ignored anchor; image 1: one positive; image 2: no positives
# (divides by 1); image 3: everything ignored but one background anchor.
CLASS_TARGETS = np.array([
    [0, 2, -1, -2, -1, -1, -1],
    [-1, -1, 1, -1, -2, -2, -1],
    [-1, -1, -1, -1, -1, -1, -1],
    [-2, -2, -2, -1, -2, -2, -2],
], dtype="int32")
POSITIVE = (CLASS_TARGETS >= 0).astype("float32")
OFFSETS = rng.normal(size=(BATCH, ANCHORS, 4)).astype("float32")
BOX_TARGETS = np.concatenate([OFFSETS * POSITIVE[..., None], POSITIVE[..., None]], axis=-1)
BOX_PRED = rng.normal(scale=2.0, size=(BATCH, ANCHORS, 4)).astype("float32")


def numpy_focal(targets, logits, alpha=0.25, gamma=2.0):
    one_hot = (targets[..., None] == np.arange(logits.shape[-1])).astype("float64")
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    bce = -(one_hot * np.log(p) + (1 - one_hot) * np.log(1 - p))
    p_t = np.where(one_hot == 1, p, 1 - p)
    a_t = np.where(one_hot == 1, alpha, 1 - alpha)
    per_anchor = (a_t * (1 - p_t) ** gamma * bce).sum(-1) * (targets != -2)
    return per_anchor.sum(-1) / np.maximum((targets >= 0).sum(-1), 1)


def numpy_huber(targets, pred, delta=1.0):
    d = np.abs(pred.astype("float64") - targets[..., :4])
    huber = np.where(d <= delta, 0.5 * d**2, delta * (d - 0.5 * delta))
    positive = targets[..., 4]
    return (huber.sum(-1) * positive).sum(-1) / np.maximum(positive.sum(-1), 1)


@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (0.5, 0.0), (0.9, 3.0)])
def test_focal_equals_numpy_and_keras_builtin_per_anchor(alpha, gamma):
    per_image = np.asarray(AnchorFocalLoss(alpha, gamma, reduction="none")(CLASS_TARGETS, LOGITS))
    assert per_image.shape == (BATCH,)
    np.testing.assert_allclose(per_image, numpy_focal(CLASS_TARGETS, LOGITS, alpha, gamma), rtol=1e-5, atol=1e-6)
    # Independently: Keras's binary focal loss (a mean over classes) on one-hot targets, summed by hand.
    one_hot = (CLASS_TARGETS[..., None] == np.arange(CLASSES)).astype("float32")
    builtin = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=True, alpha=alpha, gamma=gamma, from_logits=True, reduction="none")
    per_anchor = np.asarray(builtin(one_hot, LOGITS)) * CLASSES * (CLASS_TARGETS != -2)
    np.testing.assert_allclose(per_image, per_anchor.sum(-1) / np.maximum(POSITIVE.sum(-1), 1), rtol=1e-5)


def test_focal_hand_computed_value():
    # One positive (class 0) and one background anchor, logits 0: p = 0.5 everywhere.
    # positive class: 0.25 * 0.5**2 * ln 2; each negative term: 0.75 * 0.5**2 * ln 2; three negatives.
    value = float(AnchorFocalLoss(reduction="none")([[0, -1]], np.zeros((1, 2, 2), "float32"))[0])
    assert value == pytest.approx((0.25 + 3 * 0.75) * 0.25 * np.log(2), rel=1e-6)


def test_focal_ignores_ignored_anchors_entirely():
    loss = AnchorFocalLoss(reduction="none")
    changed = LOGITS.copy()
    changed[CLASS_TARGETS == -2] = 50.0  # confidently wrong on every ignored anchor
    np.testing.assert_allclose(loss(CLASS_TARGETS, changed), loss(CLASS_TARGETS, LOGITS), rtol=1e-6)
    import tensorflow as tf

    logits = tf.Variable(LOGITS)
    with tf.GradientTape() as tape:
        total = AnchorFocalLoss(reduction="sum")(CLASS_TARGETS, logits)
    gradient = tape.gradient(total, logits).numpy()
    assert np.all(gradient[CLASS_TARGETS == -2] == 0) and np.all(gradient[CLASS_TARGETS != -2] != 0)


@pytest.mark.parametrize("delta", [1.0, 0.5, 3.0])
def test_huber_equals_numpy_and_keras_builtin_on_positives(delta):
    per_image = np.asarray(AnchorHuberLoss(delta, reduction="none")(BOX_TARGETS, BOX_PRED))
    np.testing.assert_allclose(per_image, numpy_huber(BOX_TARGETS, BOX_PRED, delta), rtol=1e-5, atol=1e-6)
    builtin = np.asarray(keras.losses.Huber(delta, reduction="none")(OFFSETS * POSITIVE[..., None], BOX_PRED))
    expected = (builtin * 4 * POSITIVE).sum(-1) / np.maximum(POSITIVE.sum(-1), 1)
    np.testing.assert_allclose(per_image, expected, rtol=1e-5, atol=1e-6)
    assert per_image[2] == 0.0 and per_image[3] == 0.0  # no positives: no box loss, whatever is predicted


def test_huber_hand_computed_value():
    # Two positives (errors 0.5 and 2 on one offset each) and a wild non-positive prediction, over 2 positives.
    y_true = np.zeros((1, 3, 5), "float32")
    y_true[0, :2, 4] = 1.0
    y_pred = np.zeros((1, 3, 4), "float32")
    y_pred[0, 0, 0], y_pred[0, 1, 3], y_pred[0, 2] = 0.5, -2.0, 99.0
    assert float(AnchorHuberLoss(reduction="none")(y_true, y_pred)[0]) == pytest.approx((0.125 + 1.5) / 2)


@pytest.mark.parametrize("make, y_true, y_pred, reference", [
    (AnchorFocalLoss, CLASS_TARGETS, LOGITS, numpy_focal(CLASS_TARGETS, LOGITS)),
    (AnchorHuberLoss, BOX_TARGETS, BOX_PRED, numpy_huber(BOX_TARGETS, BOX_PRED)),
])
def test_reductions_and_sample_weights_act_like_keras(make, y_true, y_pred, reference):
    assert_reduces_like_keras(lambda **kw: make(**kw), y_true, y_pred, reference)


def tiny_head(outputs_per_anchor):
    inputs = keras.Input((6,))
    x = keras.layers.Dense(ANCHORS * outputs_per_anchor)(inputs)
    return keras.Model(inputs, keras.layers.Reshape((ANCHORS, outputs_per_anchor))(x))


@pytest.mark.parametrize("loss, outputs_per_anchor, y", [
    (AnchorFocalLoss(alpha=0.3, gamma=1.5, name="cls"), CLASSES, CLASS_TARGETS),
    (AnchorHuberLoss(delta=0.7, name="box"), 4, BOX_TARGETS),
])
def test_compiled_model_round_trips_through_the_keras_format(loss, outputs_per_anchor, y, tmp_path):
    keras.utils.set_random_seed(0)
    x = rng.normal(size=(BATCH, 6)).astype("float32")
    reloaded = assert_compiled_roundtrip(loss, tiny_head(outputs_per_anchor), x, y, tmp_path)
    assert reloaded.loss.get_config()["name"] == loss.name


@pytest.mark.parametrize("call, message", [
    (lambda: AnchorFocalLoss(alpha=1.5), r"alpha must be in \[0, 1\]; got alpha=1.5"),
    (lambda: AnchorFocalLoss(gamma=-1.0), "gamma must be >= 0"),
    (lambda: AnchorHuberLoss(delta=0.0), "delta must be > 0"),
    (lambda: AnchorFocalLoss()(CLASS_TARGETS[..., None], LOGITS), r"class targets \(batch, anchors\)"),
    (lambda: AnchorHuberLoss()(BOX_TARGETS[..., :4], BOX_PRED), r"box targets \(batch, anchors, 5\)"),
])
def test_bad_settings_and_shapes_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_docstring_examples_run():
    result = doctest.testmod(detection_losses)
    assert result.attempted > 0 and result.failed == 0, result


# One SGD step on the same global batch, without a strategy and under MirroredStrategy over two
# logical CPUs: equal weights afterwards only if each replica's loss is divided by the replica count.
DISTRIBUTED = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfdl.losses import AnchorFocalLoss, AnchorHuberLoss

    A, C = 5, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6)).astype("float32")
    classes = rng.integers(-2, C, size=(8, A)).astype("int32")
    positive = (classes >= 0).astype("float32")[..., None]
    boxes = np.concatenate([rng.normal(size=(8, A, 4)).astype("float32") * positive, positive], -1)

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6,))
        box = keras.layers.Reshape((A, 4), name="box_deltas")(keras.layers.Dense(A * 4)(inputs))
        cls = keras.layers.Reshape((A, C), name="class_logits")(keras.layers.Dense(A * C)(inputs))
        model = keras.Model(inputs, {"box_deltas": box, "class_logits": cls})
        model.compile(keras.optimizers.SGD(0.5),
                      loss={"box_deltas": AnchorHuberLoss(), "class_logits": AnchorFocalLoss()})
        return model

    def step(model):
        model.fit(x, {"box_deltas": boxes, "class_logits": classes}, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return [w.numpy() for w in model.weights]

    start = [w.numpy() for w in build().weights]
    single = step(build())
    with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
        mirrored = step(build())
    print(json.dumps({
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, start)),
        "difference": max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored)),
    }))
""")


def test_one_step_under_mirrored_strategy_equals_one_step_without():
    run = subprocess.run([sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["moved"] > 1e-2  # the step did something
    assert figures["difference"] < 1e-5
