"""TFLite in every mode: parity with Keras, sizes, integer io, Flex ops, the metadata sidecar."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import keras
import numpy as np
import pytest

import tfdl
from tfdl.export.litert import load_interpreter
from tfdl.export.saved_model import export_saved_model
from tfdl.export.tflite import (
    TFLiteConversionError,
    TFLiteExport,
    convert_tflite,
    metadata_path,
    read_tflite_metadata,
    representative_from_arrays,
    to_tflite,
    write_tflite_metadata,
)

FEATURES = 16
CLASSES = 10
TEXT_OPS = ["RaggedTensorToTensor", "StaticRegexReplace", "StringLower", "StringSplitV2"]
# (mode, io_dtype) of each artifact the module converts once.
ARTIFACTS = [
    ("float32", "float32"),
    ("dynamic_range", "float32"),
    ("float16", "float32"),
    ("int8", "float32"),
    ("int8", "int8"),
    ("int8", "uint8"),
]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """A Normalization -> MLP classifier on raw features (mean 3, std 2), its SavedModel and data."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (600, FEATURES)).astype(np.float32)
    normalize = keras.layers.Normalization(name="normalize")
    normalize.adapt(x[:300])
    raw = keras.Input((FEATURES,), name="features")
    hidden = keras.layers.Dense(256, activation="relu")(normalize(raw))
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    head = keras.layers.Dense(CLASSES, activation="softmax", name="probabilities")
    model = keras.Model(raw, head(hidden))
    # An untrained head gives near-uniform probabilities whose argmax flips on
    # any rounding; sharper logits make argmax agreement measure quantization.
    head.kernel.assign(head.kernel * 8.0)
    directory = tmp_path_factory.mktemp("mlp")
    saved = export_saved_model(model, directory / "saved")
    calibration, test = x[:300], x[300:]
    return SimpleNamespace(
        model=model,
        normalize=normalize,
        saved=saved,
        directory=directory,
        calibration=calibration,
        test=test,
        expected=np.asarray(model(test, training=False)),
    )


@pytest.fixture(scope="module")
def artifacts(mlp) -> dict[tuple[str, str], TFLiteExport]:
    representative = representative_from_arrays({"features": mlp.calibration}, samples=100)
    return {
        (mode, io): convert_tflite(
            mlp.saved,
            mlp.directory / f"model_{mode}_{io}.tflite",
            mode=mode,
            representative=representative if mode == "int8" else None,
            io_dtype=io,
        )
        for mode, io in ARTIFACTS
    }


@pytest.fixture(scope="module")
def text_saved_model(tmp_path_factory):
    """A string-in model whose TextVectorization needs TensorFlow string ops."""
    keras.utils.set_random_seed(0)
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=4, name="vectorize")
    vectorize.adapt(["the cat sat", "a dog ran fast", "The Cat!"])
    text = keras.Input((), dtype="string", name="text")
    embedded = keras.layers.Embedding(20, 3)(vectorize(text))
    model = keras.Model(text, keras.layers.GlobalAveragePooling1D(name="vector")(embedded))
    return export_saved_model(model, tmp_path_factory.mktemp("text") / "saved")


def _run(path, x: np.ndarray) -> np.ndarray:
    """The model's float output on float input, (de)quantizing at integer edges."""
    runner = load_interpreter(path).get_signature_runner("serving_default")
    source, sink = runner.get_input_details()["features"], runner.get_output_details()["probabilities"]
    if source["dtype"] != np.float32:
        scale, zero_point = source["quantization"]
        limits = np.iinfo(source["dtype"])
        x = np.clip(np.round(x / scale + zero_point), limits.min, limits.max).astype(source["dtype"])
    y = runner(features=x)["probabilities"]
    if sink["dtype"] != np.float32:
        scale, zero_point = sink["quantization"]
        y = (y.astype(np.float32) - zero_point) * scale
    return y


@pytest.mark.parametrize("mode, io", ARTIFACTS)
def test_each_mode_converts_and_matches_keras(mlp, artifacts, mode, io):
    exported = artifacts[mode, io]
    assert (exported.mode, exported.io_dtype, exported.tf_ops) == (mode, io, [])
    assert exported.bytes == exported.path.stat().st_size
    got = _run(exported.path, mlp.test)
    assert got.shape == mlp.expected.shape
    if mode == "float32":
        np.testing.assert_allclose(got, mlp.expected, atol=1e-5)
    elif mode == "float16":
        np.testing.assert_allclose(got, mlp.expected, atol=1e-2)
    else:
        assert np.mean(got.argmax(1) == mlp.expected.argmax(1)) >= 0.9


@pytest.mark.parametrize(
    "mode, io, stored",
    [
        ("float32", "float32", {"float32": 12}),
        # The three Dense kernels in int8, activations float.
        ("dynamic_range", "float32", {"float32": 9, "int8": 3}),
        # float16 copies of the weights, dequantized to float32 when loaded.
        ("float16", "float32", {"float32": 12, "float16": 5}),
        # Float only at the quantize/dequantize edges.
        ("int8", "float32", {"float32": 2, "int8": 12}),
        ("int8", "int8", {"int8": 12}),
        ("int8", "uint8", {"uint8": 2, "int8": 12}),
    ],
)
def test_each_mode_stores_tensors_of_its_type(artifacts, mode, io, stored):
    details = load_interpreter(artifacts[mode, io].path).get_tensor_details()
    assert dict(Counter(np.dtype(d["dtype"]).name for d in details)) == stored


def test_quantized_modes_shrink_the_model(artifacts):
    float32 = artifacts["float32", "float32"].bytes
    assert artifacts["int8", "float32"].bytes < float32 * 0.5
    assert artifacts["dynamic_range", "float32"].bytes < float32 * 0.5
    assert artifacts["float16", "float32"].bytes < float32 * 0.6


@pytest.mark.parametrize("io, dtype", [("float32", np.float32), ("int8", np.int8), ("uint8", np.uint8)])
def test_int8_io_dtype_sets_input_and_output_tensors(artifacts, io, dtype):
    runner = load_interpreter(artifacts["int8", io].path).get_signature_runner("serving_default")
    (source,) = runner.get_input_details().values()
    (sink,) = runner.get_output_details().values()
    assert source["dtype"] == dtype and sink["dtype"] == dtype
    assert (source["quantization"][0] > 0) == (io != "float32")


def test_to_tflite_still_writes_float32(mlp, tmp_path):
    path = to_tflite(mlp.saved, tmp_path / "model.tflite")
    assert path == tmp_path / "model.tflite"
    np.testing.assert_allclose(_run(path, mlp.test), mlp.expected, atol=1e-5)


def test_int8_without_representative_raises(mlp, tmp_path):
    with pytest.raises(TFLiteConversionError, match="mode 'int8' of .*saved needs a representative dataset"):
        convert_tflite(mlp.saved, tmp_path / "m.tflite", mode="int8")
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"mode": "int4"}, r"mode 'int4' is not one of \['float32', 'dynamic_range', 'float16', 'int8'\]"),
        ({"mode": "float16", "io_dtype": "int8"}, "io_dtype 'int8' needs mode 'int8'"),
        ({"mode": "dynamic_range", "representative": lambda: iter([])}, "calibrates mode 'int8' only"),
    ],
)
def test_arguments_that_do_not_fit_the_mode_raise(mlp, tmp_path, arguments, message):
    with pytest.raises(TFLiteConversionError, match=message):
        convert_tflite(mlp.saved, tmp_path / "m.tflite", **arguments)


def test_missing_saved_model_raises(tmp_path):
    with pytest.raises(TFLiteConversionError, match="nowhere is not a SavedModel .*export_saved_model"):
        convert_tflite(tmp_path / "nowhere", tmp_path / "m.tflite")


def test_representative_sample_without_the_input_raises(mlp, tmp_path):
    def wrong_names():
        yield {"pixels": mlp.calibration[:1]}

    with pytest.raises(TFLiteConversionError, match="has no input 'features'"):
        convert_tflite(mlp.saved, tmp_path / "m.tflite", mode="int8", representative=wrong_names)


def test_representative_from_arrays_draws_distinct_single_rows_deterministically():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    ids = np.arange(10, dtype=np.int32)
    draw = representative_from_arrays({"x": x, "ids": ids}, samples=4, seed=3)
    samples = list(draw())
    assert len(samples) == 4
    for sample in samples:
        assert sample["x"].shape == (1, 2) and sample["x"].dtype == np.float32
        assert sample["ids"].shape == (1,) and sample["ids"].dtype == np.int32
        # Rows stay aligned across inputs.
        np.testing.assert_array_equal(sample["x"][0], x[sample["ids"][0]])
    rows = [int(s["ids"][0]) for s in samples]
    assert len(set(rows)) == 4
    assert rows == [int(s["ids"][0]) for s in draw()], "a second pass must yield the same rows"
    again = [int(s["ids"][0]) for s in representative_from_arrays({"x": x, "ids": ids}, samples=4, seed=3)()]
    other = [int(s["ids"][0]) for s in representative_from_arrays({"x": x, "ids": ids}, samples=4, seed=4)()]
    assert again == rows and other != rows
    everything = [int(s["ids"][0]) for s in representative_from_arrays({"ids": ids}, samples=50)()]
    assert sorted(everything) == list(range(10))


@pytest.mark.parametrize(
    "inputs, samples, message",
    [
        ({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))}, 2, r"same number .* \{'a': 3, 'b': 4\}"),
        ({}, 2, "same number"),
        ({"a": np.zeros((3, 2))}, 0, "samples must be >= 1, got 0"),
    ],
)
def test_representative_from_arrays_rejects_bad_inputs(inputs, samples, message):
    with pytest.raises(TFLiteConversionError, match=message):
        representative_from_arrays(inputs, samples=samples)


def test_tf_only_ops_fail_naming_them_and_the_fix(text_saved_model, tmp_path):
    with pytest.raises(TFLiteConversionError) as caught:
        convert_tflite(text_saved_model, tmp_path / "text.tflite")
    message = str(caught.value)
    assert "not TFLite builtins: RaggedTensorToTensor (" in message
    for op in TEXT_OPS:
        assert op in message
    assert "StringLower (functional" in message and "vectorize" in message, "the op names its layer"
    assert "`export.tflite_tf_ops: true`" in message and "Flex delegate" in message
    assert "ai-edge-litert 2.3" in message


def test_allow_tf_ops_converts_and_reports_the_flex_ops(text_saved_model, tmp_path):
    exported = convert_tflite(text_saved_model, tmp_path / "text.tflite", allow_tf_ops=True)
    assert exported.tf_ops == TEXT_OPS
    assert exported.path.stat().st_size == exported.bytes
    # The claim in the error message: the pip LiteRT runtime loads a Flex
    # model but cannot run it. If a release links Flex in, update the message.
    runner = load_interpreter(exported.path).get_signature_runner("serving_default")
    with pytest.raises(RuntimeError, match=r"Select TensorFlow op\(s\).*not supported by this interpreter"):
        runner(text=np.array([b"the cat"]))
    metadata = read_tflite_metadata(write_tflite_metadata(exported.path, mode=exported.mode))
    assert metadata["tf_ops"] == TEXT_OPS
    assert metadata["signatures"]["serving_default"]["inputs"] == {
        "text": {"shape": [-1], "dtype": "string", "quantization": None}
    }


def test_metadata_sidecar_round_trips_int8_io(mlp, artifacts):
    exported = artifacts["int8", "int8"]
    labels = [f"class_{i}" for i in range(CLASSES)]
    preprocessing = {"mean": mlp.normalize.mean, "variance": mlp.normalize.variance}
    sidecar = write_tflite_metadata(
        exported.path, labels=labels, preprocessing=preprocessing, extra={"dataset": "synthetic"}, mode=exported.mode
    )
    assert sidecar == exported.path.with_name(exported.path.name + ".json") == metadata_path(exported.path)
    metadata = read_tflite_metadata(exported.path)
    assert metadata == read_tflite_metadata(sidecar)

    runner = load_interpreter(exported.path).get_signature_runner("serving_default")
    (source,) = runner.get_input_details().values()
    (sink,) = runner.get_output_details().values()
    scale, zero_point = source["quantization"]
    assert metadata["signatures"] == {
        "serving_default": {
            "inputs": {
                "features": {
                    "shape": [-1, FEATURES],
                    "dtype": "int8",
                    "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
                }
            },
            "outputs": {
                "probabilities": {
                    "shape": [-1, CLASSES],
                    "dtype": "int8",
                    # Softmax in int8 is fixed by TFLite to [0, 1) in 256 steps.
                    "quantization": {"scale": 1 / 256, "zero_point": -128},
                }
            },
        }
    }
    assert sink["quantization"] == (1 / 256, -128)
    assert metadata["labels"] == labels
    for name in ("mean", "variance"):
        stored = np.asarray(metadata["preprocessing"][name], np.float32)
        np.testing.assert_array_equal(stored, np.asarray(getattr(mlp.normalize, name)))
    assert metadata["extra"] == {"dataset": "synthetic"}
    assert (metadata["model"], metadata["mode"], metadata["bytes"]) == (exported.path.name, "int8", exported.bytes)
    assert (metadata["tf_ops"], metadata["tfdl_version"]) == ([], tfdl.__version__)


def test_metadata_of_a_float_model_has_no_quantization(artifacts):
    exported = artifacts["float32", "float32"]
    metadata = read_tflite_metadata(write_tflite_metadata(exported.path))
    assert metadata["signatures"]["serving_default"] == {
        "inputs": {"features": {"shape": [-1, FEATURES], "dtype": "float32", "quantization": None}},
        "outputs": {"probabilities": {"shape": [-1, CLASSES], "dtype": "float32", "quantization": None}},
    }
    assert [metadata[key] for key in ("mode", "labels", "preprocessing", "extra")] == [None] * 4


def test_metadata_errors_name_the_file(artifacts, tmp_path):
    with pytest.raises(FileNotFoundError, match="no TFLite metadata at .*orphan.tflite.json"):
        read_tflite_metadata(tmp_path / "orphan.tflite")
    broken = tmp_path / "broken.tflite.json"
    broken.write_text('{"model": \n')
    with pytest.raises(ValueError, match="broken.tflite.json, line 2: not valid JSON"):
        read_tflite_metadata(broken)
    with pytest.raises(ValueError, match="cannot be stored as JSON"):
        write_tflite_metadata(artifacts["float32", "float32"].path, extra={"when": object()})
