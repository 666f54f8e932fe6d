"""Checks every tfdl loss class must pass: Keras reductions and weights, and the compiled `.keras` round trip.

    assert_reduces_like_keras(lambda **kw: DiceLoss(**kw), y_true, y_pred, per_example)
    assert_compiled_roundtrip(DiceLoss(), model, x, y, tmp_path)
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np

REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "none", "mean_with_sample_weight")


def expected_reduction(per_element: np.ndarray, reduction: str, sample_weight: np.ndarray | None) -> np.ndarray:
    """What Keras's `Loss.__call__` makes of per-example losses, computed in numpy."""
    weights = np.ones_like(per_element) if sample_weight is None else np.broadcast_to(
        sample_weight.reshape(sample_weight.shape + (1,) * (per_element.ndim - sample_weight.ndim)), per_element.shape
    )
    weighted = per_element * weights
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return weighted.sum() / weights.sum()
    return weighted.sum() / per_element.size


def assert_reduces_like_keras(
    make_loss: Callable[..., keras.losses.Loss],
    y_true,
    y_pred,
    per_example: np.ndarray,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Every reduction, with and without per-example `sample_weight`, matches numpy on `per_example`."""
    batch = per_example.shape[0]
    sample_weight = np.linspace(0.0, 2.0, batch).astype("float32")
    for reduction in REDUCTIONS:
        loss = make_loss(reduction=reduction)
        for weights in (None, sample_weight):
            actual = np.asarray(loss(y_true, y_pred, sample_weight=weights))
            expected = expected_reduction(per_example, reduction, weights)
            where = f"reduction={reduction}, weighted={weights is not None}"
            np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=where)


def assert_compiled_roundtrip(loss: keras.losses.Loss, model: keras.Model, x, y, tmp_path) -> keras.Model:
    """Compile with `loss`, fit one step, save, reload with safe_mode: same loss config and value."""
    rebuilt = type(loss).from_config(loss.get_config())
    assert rebuilt.get_config() == loss.get_config()

    model.compile(optimizer="sgd", loss=loss)
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    before = model.evaluate(x, y, batch_size=len(x), verbose=0)

    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded.loss) is type(loss)
    assert reloaded.loss.get_config() == loss.get_config()
    after = reloaded.evaluate(x, y, batch_size=len(x), verbose=0)
    np.testing.assert_allclose(after, before, rtol=1e-6)
    return reloaded
