"""The LiteRT runner (tfdl.export.litert) and the edge front end (tfdl.serving.edge) on tiny models."""

import json
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfdl.export import export_saved_model, to_tflite
from tfdl.export.litert import EdgeInputError, EdgeModelError, LiteRTModel, TensorInfo, dequantize, quantize
from tfdl.serving.edge import bench, load_inputs, main, predict


def image_model() -> keras.Model:
    """Takes raw 0..255 pixels of 8x8 RGB images, gives probabilities over 3 classes."""
    keras.utils.set_random_seed(0)
    pixels = keras.Input((8, 8, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255.0)(pixels)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # A wide initializer spreads the logits, so argmax is not decided by ties.
    logits = keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    return keras.Model(pixels, keras.layers.Softmax(name="probabilities")(logits))


def pair_model() -> keras.Model:
    """Two inputs with the batch pinned to 1, as a model converted from a concrete function has."""
    keras.utils.set_random_seed(1)
    a = keras.Input((4,), batch_size=1, name="a")
    b = keras.Input((2,), batch_size=1, name="b")
    out = keras.layers.Dense(3, name="score")(keras.layers.Concatenate()([a, b]))
    return keras.Model([a, b], out)


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, size=(count, 8, 8, 3)).astype("float32")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edge")
    keras_model = image_model()
    # float32 through tfdl's own export path: output named after the Keras output.
    float_path = to_tflite(export_saved_model(keras_model, folder / "saved"), folder / "float.tflite")

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([images(1, seed)] for seed in range(50))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8_path = folder / "int8.tflite"
    int8_path.write_bytes(converter.convert())

    pair = pair_model()
    pair_path = folder / "pair.tflite"
    pair_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(pair).convert())
    return {"keras": keras_model, "float": float_path, "int8": int8_path, "pair_keras": pair, "pair": pair_path}


def test_signature_is_read_with_free_batch_and_quantization(models):
    model = LiteRTModel(models["float"])
    assert model.signature == "serving_default"
    assert model.inputs == {"pixels": TensorInfo("pixels", (None, 8, 8, 3), np.dtype("float32"), 0.0, 0)}
    assert list(model.outputs) == ["probabilities"]
    assert model.describe() == (
        "float.tflite, signature 'serving_default'\n"
        "  inputs:\n    pixels: float32[-1, 8, 8, 3]\n"
        "  outputs:\n    probabilities: float32[-1, 3]"
    )
    int8 = LiteRTModel(models["int8"])
    (info,) = int8.inputs.values()
    assert info.dtype == np.int8 and info.quantized and info.shape == (None, 8, 8, 3)
    assert "(quantized: scale" in int8.describe()


@pytest.mark.parametrize("batch", [1, 7])
def test_float_model_matches_keras(models, batch):
    x = images(batch, seed=100 + batch)
    got = LiteRTModel(models["float"])(x)
    assert set(got) == {"probabilities"} and got["probabilities"].shape == (batch, 3)
    np.testing.assert_allclose(got["probabilities"], np.asarray(models["keras"](x)), atol=1e-5)


def test_batch_size_can_change_between_calls(models):
    model = LiteRTModel(models["float"])
    x = images(7, seed=3)
    first = model(x[:1])["probabilities"]
    all_seven = model(x)["probabilities"]
    again = model(x[:1])["probabilities"]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(all_seven[:1], first, atol=1e-6)


def test_float64_and_python_ints_are_cast_to_float32(models):
    model = LiteRTModel(models["float"])
    x = np.random.default_rng(4).integers(0, 256, size=(2, 8, 8, 3))
    expected = model(x.astype("float32"))["probabilities"]
    np.testing.assert_array_equal(model(x.astype("float64"))["probabilities"], expected)
    np.testing.assert_array_equal(model({"pixels": x.tolist()})["probabilities"], expected)


def test_quantize_rounds_half_away_from_zero_and_clips():
    info = TensorInfo("q", (None,), np.dtype("int8"), 0.5, 3)
    np.testing.assert_array_equal(quantize(np.array([0.25, -0.25, 0.75, 1000.0, -1000.0]), info), [4, 2, 5, 127, -128])
    np.testing.assert_array_equal(dequantize(np.array([3, 5, -128], dtype="int8"), info), [0.0, 1.0, -65.5])
    assert dequantize(np.array([1], dtype="int8"), info).dtype == np.float32


@pytest.mark.parametrize("batch", [1, 7])
def test_int8_model_quantizes_float_inputs_and_dequantizes_outputs(models, batch):
    model = LiteRTModel(models["int8"])
    info_in, info_out = model.inputs["pixels"], next(iter(model.outputs.values()))
    x = images(batch, seed=200 + batch)
    got = next(iter(model(x).values()))
    assert got.dtype == np.float32
    # The formula from the TFLite docs, written out here: round(x / scale) + zero_point.
    manual = np.clip(np.round(x / info_in.scale) + info_in.zero_point, -128, 127).astype("int8")
    raw = next(iter(model(manual, raw_outputs=True).values()))
    assert raw.dtype == np.int8
    np.testing.assert_array_equal(got, (raw.astype("float32") - info_out.zero_point) * np.float32(info_out.scale))


def test_int8_model_agrees_with_keras(models):
    x = images(64, seed=5)
    got = next(iter(LiteRTModel(models["int8"])(x).values()))
    expected = np.asarray(models["keras"](x))
    assert np.max(np.abs(got - expected)) < 0.02
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.95


def test_fixed_batch_of_one_model_runs_each_example(models):
    model = LiteRTModel(models["pair"])
    assert model.inputs["a"].shape == (1, 4)
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(7, 4)).astype("float32"), rng.normal(size=(7, 2)).astype("float32")
    (got,) = model({"a": a, "b": b}).values()
    expected = np.concatenate([np.asarray(models["pair_keras"]([a[i : i + 1], b[i : i + 1]])) for i in range(7)])
    assert got.shape == (7, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(EdgeInputError, match="different batch sizes"):
        model({"a": a, "b": b[:3]})


def test_wrong_name_shape_and_dtype_show_the_expected_signature(models):
    model = LiteRTModel(models["float"])
    expected = "\n  expected (float.tflite, signature 'serving_default'):\n    pixels: float32[-1, 8, 8, 3]\n  given:\n"
    cases = [
        ({"image": images(1, 0)}, "unknown input 'image'; missing input 'pixels'", "image: float32[1, 8, 8, 3]"),
        (np.zeros((2, 8, 8, 4)), "input 'pixels': dimension 3 is 4, expected 3", "pixels: float64[2, 8, 8, 4]"),
        (np.full((1, 8, 8, 3), "a"), "input 'pixels': string values cannot be converted to float32",
         "pixels: string[1, 8, 8, 3]"),
    ]
    for given, problem, shown in cases:
        with pytest.raises(EdgeInputError, match=re.escape(problem + expected + "    " + shown)):
            model(given)
    with pytest.raises(EdgeInputError, match=r"input 'pixels': rank 3, expected rank 4; add the batch dimension"):
        model(np.zeros((8, 8, 3), dtype="float32"))
    with pytest.raises(EdgeInputError, match=r"input 'pixels': empty array"):
        model(np.zeros((0, 8, 8, 3), dtype="float32"))
    pair_signature = r"\n    a: float32\[1, 4\]\n    b: float32\[1, 2\]\n"
    with pytest.raises(EdgeInputError, match=r"bare array .* has 2 inputs.*\n.*" + pair_signature):
        LiteRTModel(models["pair"])(np.zeros((1, 4), dtype="float32"))
    with pytest.raises(EdgeInputError, match=r"values 300\.\.300 do not fit int8 \(-128\.\.127\); integers .* quantized"):
        LiteRTModel(models["int8"])(np.full((1, 8, 8, 3), 300))


def test_bad_model_file_and_signature(models, tmp_path):
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(EdgeModelError, match=r"junk\.tflite is not a model the LiteRT runtime can load"):
        LiteRTModel(tmp_path / "junk.tflite")
    with pytest.raises(FileNotFoundError, match=r"model file .*missing\.tflite does not exist"):
        LiteRTModel(tmp_path / "missing.tflite")
    with pytest.raises(EdgeInputError, match=r"has no signature 'serve'; it has \['serving_default'\]"):
        LiteRTModel(models["float"], signature="serve")


def test_load_inputs_from_npy_and_json(models, tmp_path):
    model = LiteRTModel(models["float"])
    x = images(2, seed=7)
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(load_inputs([str(tmp_path / "x.npy")], model)["pixels"], x)
    rows = x.tolist()
    documents = [
        {"instances": rows},
        {"instances": [{"pixels": r} for r in rows]},
        {"inputs": {"pixels": rows}},
        {"inputs": rows},
        rows,
    ]
    for document in documents:
        (tmp_path / "x.json").write_text(json.dumps(document))
        loaded = load_inputs([str(tmp_path / "x.json")], model)
        assert list(loaded) == ["pixels"]
        np.testing.assert_array_equal(loaded["pixels"].astype("float32"), x)
    np.testing.assert_array_equal(load_inputs([json.dumps(rows)], model)["pixels"].astype("float32"), x)

    pair = LiteRTModel(models["pair"])
    np.save(tmp_path / "a.npy", np.ones((1, 4)))
    np.save(tmp_path / "b.npy", np.zeros((1, 2)))
    loaded = load_inputs([f"a={tmp_path / 'a.npy'}", f"b={tmp_path / 'b.npy'}"], pair)
    np.testing.assert_array_equal(loaded["a"], np.ones((1, 4)))
    np.testing.assert_array_equal(loaded["b"], np.zeros((1, 2)))
    loaded = load_inputs(['{"instances": [{"a": [1, 2, 3, 4], "b": [5, 6]}]}'], pair)
    assert loaded["a"].tolist() == [[1, 2, 3, 4]] and loaded["b"].tolist() == [[5, 6]]


def test_load_inputs_errors_name_the_input(models, tmp_path):
    model, pair = LiteRTModel(models["float"]), LiteRTModel(models["pair"])
    np.save(tmp_path / "a.npy", np.ones((1, 4)))
    (tmp_path / "bad.json").write_text('{"instances": [1, 2')
    with pytest.raises(FileNotFoundError, match=r"--input nope\.npy: no such file 'nope\.npy'"):
        load_inputs(["nope.npy"], model)
    with pytest.raises(EdgeInputError, match=r"bad\.json: invalid JSON at line 1, column 20: Expecting ',' delimiter"):
        load_inputs([str(tmp_path / "bad.json")], model)
    with pytest.raises(EdgeInputError, match=r"the model has inputs \['a', 'b'\]; say which one with --input NAME="):
        load_inputs([str(tmp_path / "a.npy")], pair)
    with pytest.raises(EdgeInputError, match=r"the model has no input 'c'; its inputs are \['a', 'b'\]"):
        load_inputs([f"c={tmp_path / 'a.npy'}"], pair)
    with pytest.raises(EdgeInputError, match=r"input 'a' is given twice"):
        load_inputs([f"a={tmp_path / 'a.npy'}", f"a={tmp_path / 'a.npy'}"], pair)
    with pytest.raises(EdgeInputError, match="lists of unequal length"):
        load_inputs(["[[1, 2], [3]]"], model)
    Image.new("RGB", (4, 4)).save(tmp_path / "p.png")
    with pytest.raises(EdgeInputError, match=r"input a: float32\[1, 4\] does not take images"):
        load_inputs([f"a={tmp_path / 'p.png'}"], pair)


def test_png_files_are_converted_resized_and_stacked(models, tmp_path):
    rgb = np.random.default_rng(8).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    # A flat 16x16 image stays flat when resized; a grayscale one becomes three equal channels.
    Image.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "big.png")
    Image.new("L", (8, 8), 100).save(tmp_path / "gray.png")
    files = [str(tmp_path / n) for n in ("rgb.png", "big.png", "gray.png")]
    for path in (models["float"], models["int8"]):
        pixels = load_inputs(files, LiteRTModel(path))["pixels"]
        assert pixels.shape == (3, 8, 8, 3) and pixels.dtype == np.float32
        np.testing.assert_array_equal(pixels[0], rgb)
        np.testing.assert_array_equal(pixels[1], np.broadcast_to([10, 20, 30], (8, 8, 3)))
        np.testing.assert_array_equal(pixels[2], np.full((8, 8, 3), 100))
    got = predict(models["float"], files)["probabilities"]
    np.testing.assert_allclose(got, np.asarray(models["keras"](pixels)), atol=1e-5)


def test_cli_predict_prints_outputs_and_top_k(models, tmp_path, capsys):
    x = images(2, seed=9)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n\n")
    expected = np.asarray(models["keras"](x))
    names = np.array(["cat", "dog", "bird"])

    args = ["predict", str(models["float"]), "--input", str(tmp_path / "x.npy")]
    args += ["--labels", str(tmp_path / "labels.txt")]
    assert main(args + ["--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("probabilities: float32[2, 3]\n")
    assert "top 2 of probabilities:\n" in out
    for row, scores in enumerate(expected):
        first, second = np.argsort(-scores)[:2]
        assert f"  example {row}: {names[first]} {scores[first]:.4f}, {names[second]} {scores[second]:.4f}" in out

    assert main(args + ["--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(document["outputs"]["probabilities"], expected, atol=1e-5)
    assert document["top_k"]["output"] == "probabilities"
    ranked = [[c["label"] for c in row] for row in document["top_k"]["classes"]]
    assert ranked == names[np.argsort(-expected, axis=1)].tolist()


def test_cli_returns_2_with_a_message_on_bad_input(models, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.zeros((1, 4, 4, 3), dtype="float32"))
    (tmp_path / "labels.txt").write_text("a\nb\n")
    np.save(tmp_path / "x.npy", images(1, 0))
    cases = [
        (["predict", str(models["float"]), "--input", str(tmp_path / "wrong.npy")],
         "tfdl edge: input 'pixels': dimension 1 is 4, expected 8\n"),
        (["predict", str(tmp_path / "none.tflite"), "--input", "x.npy"], "tfdl edge: model file "),
        (["predict", str(models["float"]), "--input", "missing.npy"], "tfdl edge: --input missing.npy: no such file"),
        (["predict", str(models["float"]), "--input", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "labels.txt")],
         "tfdl edge: there are 2 labels but no output of shape [batch, 2]"),
        (["bench", str(models["float"]), "--runs", "0"], "argument --runs: 0 is not >= 1"),
        (["predict", str(models["float"])], "the following arguments are required: --input"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == "", (argv, captured.err)


def test_bench_returns_sane_figures(models, capsys):
    figures = bench(models["float"], runs=30, warmup=3, batch=4, num_threads=1)
    assert set(figures) == {
        "model", "signature", "batch", "threads", "runs",
        "p50_ms", "p90_ms", "p99_ms", "mean_ms", "runs_per_s", "examples_per_s",
    }
    assert (figures["batch"], figures["threads"], figures["runs"]) == (4, 1, 30)
    assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] < 1000
    assert figures["runs_per_s"] == pytest.approx(1000 / figures["mean_ms"])
    assert figures["examples_per_s"] == pytest.approx(4 * figures["runs_per_s"])
    assert bench(models["pair"], runs=3, warmup=0, batch=3)["batch"] == 3
    assert bench(models["int8"], runs=3, warmup=0)["runs_per_s"] > 0
    with pytest.raises(ValueError, match=r"runs \(0\) and batch \(1\) must be >= 1"):
        bench(models["float"], runs=0)

    assert main(["bench", str(models["int8"]), "--runs", "5", "--batch", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["batch"] == 2
    assert main(["bench", str(models["float"]), "--runs", "5"]) == 0
    assert ", batch 1, threads default, 5 runs: p50 " in capsys.readouterr().out


def test_edge_runner_imports_no_tensorflow(models, tmp_path):
    x = images(2, seed=10)
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(
        f"""
        import json, sys
        import tfdl.serving.edge as edge
        outputs = edge.predict({str(models["float"])!r}, [{str(tmp_path / "x.npy")!r}])
        loaded = {{name: name in sys.modules for name in ("tensorflow", "keras", "pydantic")}}
        print(json.dumps({{"loaded": loaded, "probabilities": outputs["probabilities"].tolist()}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == {"tensorflow": False, "keras": False, "pydantic": False}
    np.testing.assert_allclose(report["probabilities"], np.asarray(models["keras"](x)), atol=1e-5)
