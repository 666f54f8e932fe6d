"""One harness for layer tests: shape, reference value, config and `.keras` round trips, export.

    out = run_layer_test(Sampling(seed=1), {"mean": m, "log_var": v}, tmp_path,
                         call=lambda layer, t: layer([t["mean"], t["log_var"]]),
                         expected_shape=(4, 8), reference=m, tflite=True)

Checks, in order:
1. the layer inside a functional model computes `reference` (an array, or a
   function of the inputs) and has `expected_shape`;
2. `from_config(get_config())` rebuilds an equal config;
3. the `.keras` file of the model reloads with `safe_mode=True` and gives
   identical outputs;
4. the SavedModel written by `tfdl.export.export_saved_model` gives the same
   outputs through its `serving_default` signature;
5. if `tflite` is true, the SavedModel converts to TFLite and the signature
   runner gives the same outputs (to `tflite_atol`).

Returns the model's outputs as numpy (a dict keyed by output name when there
are several).
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfdl.export import export_saved_model, load_interpreter, to_tflite
from tfdl.export.saved_model import named_outputs


def _as_dict(inputs) -> dict[str, np.ndarray]:
    return inputs if isinstance(inputs, dict) else {"x": inputs}


def build_model(layer, inputs: dict[str, np.ndarray], call: Callable | None):
    tensors = {
        name: keras.Input(shape=value.shape[1:], dtype=str(value.dtype), name=name)
        for name, value in inputs.items()
    }
    if call is None:
        (only,) = tensors.values()
        tensors, outputs = only, layer(only)
    else:
        outputs = call(layer, tensors)
    if isinstance(outputs, (tuple, list)):
        outputs = {f"output_{i}": o for i, o in enumerate(outputs)}
    if isinstance(outputs, dict):
        outputs = {name: keras.layers.Identity(name=name)(o) for name, o in outputs.items()}
    return keras.Model(tensors, outputs)


def _numpy_outputs(model, outputs) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in named_outputs(model, outputs).items()}


def _feed(model, inputs: dict[str, np.ndarray]):
    return inputs if isinstance(model.input, dict) else next(iter(inputs.values()))


def _close(actual: dict, expected: dict, atol: float, what: str) -> None:
    assert set(actual) == set(expected), f"{what}: outputs {sorted(actual)} != {sorted(expected)}"
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], atol=atol, rtol=0, err_msg=f"{what}: {name}")


def run_layer_test(
    layer,
    inputs,
    tmp_path,
    *,
    call: Callable | None = None,
    expected_shape: tuple | dict | None = None,
    reference=None,
    atol: float = 1e-5,
    tflite: bool = True,
    tflite_atol: float = 1e-4,
):
    inputs = _as_dict(inputs)
    model = build_model(layer, inputs, call)
    outputs = _numpy_outputs(model, model(_feed(model, inputs), training=False))

    if expected_shape is not None:
        shapes = {k: v.shape for k, v in outputs.items()}
        want = expected_shape if isinstance(expected_shape, dict) else {next(iter(outputs)): tuple(expected_shape)}
        assert shapes == {k: tuple(v) for k, v in want.items()}, f"shapes {shapes} != {want}"
    if reference is not None:
        expected = reference(**inputs) if callable(reference) else reference
        expected = expected if isinstance(expected, dict) else {next(iter(outputs)): expected}
        _close(outputs, {k: np.asarray(v) for k, v in expected.items()}, atol, "reference")

    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config, "get_config does not round-trip"

    path = tmp_path / "layer_test.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    _close(_numpy_outputs(reloaded, reloaded(_feed(reloaded, inputs), training=False)), outputs, 1e-6, ".keras round trip")

    saved = export_saved_model(model, tmp_path / "layer_test_saved_model")
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    served = {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    _close(served, outputs, 1e-5, "SavedModel")

    if tflite:
        flat = to_tflite(saved, tmp_path / "layer_test.tflite")
        runner = load_interpreter(flat).get_signature_runner("serving_default")
        _close(dict(runner(**inputs)), outputs, tflite_atol, "TFLite")
    return outputs if len(outputs) > 1 else next(iter(outputs.values()))
