"""Every registry model exports to a SavedModel that serves what Keras computes, with the Keras names and
dtypes and a manifest.json describing the same signatures; GPT and seq2seq generate in the graph.

What is served for each model is in `tests/registry_models.py` (`served_forms`):
the model itself, or BERT's three heads, seq2seq's teacher-forced scorer
(plus the greedy `generate` signature below), the VAE and its decoder, the
GANs' generators, the detectors with NMS (and masks) inside, and word2vec
and GloVe behind one named input per key.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from registry_models import TINY, example_batch, served_forms
from tfdl.export.functional_view import functional_view
from tfdl.export.generation import export_generator, gpt_generate_signature, seq2seq_generate_signature
from tfdl.export.manifest import read_manifest
from tfdl.export.saved_model import named_outputs
from tfdl.export.serving_model import export_serving_model
from tfdl.models import available_models, build_model
from tfdl.models.gpt import generate
from tfdl.models.seq2seq import greedy_decode

# Registry model -> {served model: (input names, output names)}: the keys
# clients send and get back (`tests/registry_models.py` says what is served).
INTERFACES = {
    "autoencoder": {"autoencoder": (["features"], ["reconstruction"])},
    "bert": {"bert_encoder": (["tokens"], ["encoder_1"]), "bert_mlm": (["tokens"], ["mlm_logits"]),
             "bert_classifier": (["tokens"], ["probabilities"])},
    "cnn": {"cnn": (["pixels"], ["probabilities"])},
    "conditional_gan": {"conditional_gan_generator": (["labels", "noise"], ["images"])},
    "dcgan": {"dcgan_generator": (["noise"], ["images"])},
    "fcn": {"fcn": (["image"], ["probabilities"])},
    "glove": {"glove": (["columns", "rows"], ["score"])},
    "gpt": {"gpt": (["tokens"], ["logits"])},
    "mlp": {"mlp": (["features"], ["probabilities"])},
    "one_stage_detector": {"one_stage_detector": (["image"], ["box_deltas", "class_logits"]),
                           "one_stage_detector_nms": (["image"], ["boxes", "classes", "num_detections", "scores"])},
    "perceptron": {"perceptron": (["features"], ["probabilities"])},
    "resnet": {"resnet": (["pixels"], ["probabilities"])},
    "rnn": {"rnn": (["tokens"], ["probabilities"])},
    "rnn_regressor": {"rnn_regressor": (["sequence"], ["forecast"])},
    "seq2seq": {"seq2seq": (["decoder_input", "source"], ["logits"])},
    "transfer": {"transfer": (["image"], ["probabilities"])},
    "transformer_classifier": {"transformer_classifier": (["tokens"], ["probabilities"])},
    "two_stage_detector": {"two_stage_detector": (["image"], ["boxes", "classes", "masks", "num_detections",
                                                               "scores"])},
    "unet": {"unet": (["image"], ["probabilities"])},
    "vae": {"vae": (["inputs"], ["log_var", "mean", "reconstruction"]),
            "vae_decoder": (["latent"], ["reconstruction"])},
    "wgan": {"wgan_generator": (["noise"], ["images"])},
    "word2vec": {"word2vec": (["inputs", "inputs_mask", "negatives", "positive"], ["logits"])},
}


def token_input(name):
    return keras.Input((None,), dtype="int32", name=name)


def test_every_registered_model_has_a_served_form():
    assert sorted(INTERFACES) == sorted(TINY) == available_models()


def _signature_table(function) -> dict:
    _, inputs = function.structured_input_signature
    shape = lambda spec: [-1 if d is None else d for d in spec.shape.as_list()]  # noqa: E731
    return {"inputs": {k: (s.dtype.name, shape(s)) for k, s in inputs.items()},
            "outputs": {k: (s.dtype.name, shape(s)) for k, s in function.structured_outputs.items()}}


@pytest.mark.parametrize("name", available_models())
def test_saved_model_serves_what_keras_computes(name, tmp_path):
    """Names and dtypes as in Keras, the same numbers, and a manifest.json that describes the same signatures."""
    keras.utils.set_random_seed(0)
    served = served_forms(name, build_model(name, TINY[name]))
    interfaces = INTERFACES[name]
    assert sorted(served) == sorted(interfaces)
    rng = np.random.default_rng(0)
    for label, model in served.items():
        feed = example_batch(model, rng)
        directory = export_serving_model(model, tmp_path / label / "1")
        loaded = tf.saved_model.load(str(directory))
        signature = loaded.signatures["serving_default"]
        _, specs = signature.structured_input_signature
        input_names, output_names = interfaces[label]
        assert sorted(specs) == input_names, label
        assert {k: s.dtype.name for k, s in specs.items()} == {t.name: t.dtype for t in model.inputs}, label

        outputs = signature(**{k: tf.constant(v) for k, v in feed.items()})
        keras_out = named_outputs(model, model(feed if len(feed) > 1 else next(iter(feed.values())), training=False))
        assert sorted(outputs) == sorted(keras_out) == output_names, label
        for key, expected in keras_out.items():
            assert outputs[key].dtype.name == keras.backend.standardize_dtype(expected.dtype), (label, key)
            np.testing.assert_allclose(outputs[key].numpy(), np.asarray(expected), atol=1e-5, err_msg=f"{label}.{key}")
        manifest = read_manifest(directory)["signatures"]
        assert {key: {side: {k: (v["dtype"], v["shape"]) for k, v in sig[side].items()} for side in sig
                      if side in ("inputs", "outputs")} for key, sig in manifest.items()} == {
            key: _signature_table(function) for key, function in loaded.signatures.items()}, label


def test_functional_view_round_trips_through_the_keras_format(tmp_path):
    keras.utils.set_random_seed(0)
    view = served_forms("seq2seq", build_model("seq2seq", TINY["seq2seq"]))["seq2seq"]
    feed = example_batch(view, np.random.default_rng(1))
    view.save(tmp_path / "view.keras")
    reloaded = keras.saving.load_model(tmp_path / "view.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(feed)), np.asarray(view(feed)), atol=1e-6)


def test_functional_view_asks_for_output_names_that_match():
    model = build_model("seq2seq", TINY["seq2seq"])
    inputs = [token_input("source"), token_input("decoder_input")]
    with pytest.raises(ValueError, match=r"returns 1 output\(s\); pass 1 output_names, got None"):
        functional_view(model, inputs)
    vae = build_model("vae", TINY["vae"])
    with pytest.raises(ValueError, match=r"returns a dict, whose keys \['log_var', 'mean', 'reconstruction'\]"):
        functional_view(vae, [keras.Input((6,), name="inputs")], ["reconstruction"])
    with pytest.raises(ValueError, match="at least one keras.Input"):
        functional_view(vae, [])


# --- generation in the graph ---

PROMPTS = np.array([[3, 4, 5], [6, 7, 8]], dtype=np.int32)
SOURCES = np.array([[3, 4, 5, 0], [6, 7, 0, 0], [9, 9, 9, 9], [1, 2, 3, 4], [5, 0, 0, 0], [8, 3, 0, 0]], np.int32)


@pytest.fixture(scope="module")
def gpt():
    keras.utils.set_random_seed(0)
    return build_model("gpt", TINY["gpt"])


@pytest.fixture(scope="module")
def seq2seq():
    """Random weights large enough that greedy outputs differ per row and some rows end early.

    Keras's small initial weights make every step pick the same token; the
    output bias of the padding id is pushed down so it is never picked.
    """
    model = build_model("seq2seq", TINY["seq2seq"])
    model([SOURCES, SOURCES])
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0.0, 1.0, w.shape).astype("float32") for w in model.get_weights()])
    bias = np.zeros(model.output_layer.bias.shape, "float32")
    bias[0] = -100.0
    model.output_layer.bias.assign(bias)
    return model


def graph_tokens(signature, *args):
    return signature(*[tf.constant(a) for a in args])["tokens"].numpy()


def test_gpt_greedy_signature_gives_generates_tokens_past_the_window(gpt):
    # 3 prompt + 10 new tokens run past the 8-token window, so the context slides.
    expected = generate(gpt, PROMPTS, 10)
    tokens = graph_tokens(gpt_generate_signature(gpt, max_new_tokens=10), PROMPTS)
    assert tokens.dtype == np.int32 and tokens.shape == (2, 13)
    np.testing.assert_array_equal(tokens, expected)
    assert len(set(expected[:, 3:].ravel().tolist())) > 1  # not a constant output


def test_gpt_greedy_signature_never_generates_padding(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("gpt", TINY["gpt"])
    bias = np.zeros(20, "float32")
    bias[0] = 50.0  # the model now prefers the padding id everywhere
    model.get_layer("logits").bias.assign(bias)
    expected = generate(model, PROMPTS, 4)
    assert (expected[:, 3:] > 0).all()
    np.testing.assert_array_equal(graph_tokens(gpt_generate_signature(model, max_new_tokens=4), PROMPTS), expected)


def first_stop_differing_between_rows(free) -> int:
    """A generated token that row 0 emits before row 1 does (or row 1 never does)."""
    for token in free[0, 3:]:
        first = [np.flatnonzero(row[3:] == token) for row in free]
        if len(first[1]) == 0 or first[0][0] < first[1][0]:
            return int(token)
    raise AssertionError(f"no such token in {free}")


def test_gpt_signature_stops_and_pads_after_the_stop_token(gpt):
    free = generate(gpt, PROMPTS, 10)
    stop = first_stop_differing_between_rows(free)
    expected = generate(gpt, PROMPTS, 10, stop_token=stop)
    tokens = graph_tokens(gpt_generate_signature(gpt, max_new_tokens=10, stop_token=stop), PROMPTS)
    assert tokens.shape == (2, 13)
    np.testing.assert_array_equal(tokens[:, : expected.shape[1]], expected)
    assert (tokens[:, expected.shape[1]:] == 0).all()
    # Row 0 stops first and stays padded while row 1 goes on.
    first = 3 + int(np.flatnonzero(tokens[0, 3:] == stop)[0])
    assert (tokens[0, first + 1:] == 0).all() and (tokens[1, 3:first + 2] > 0).all()


def test_gpt_sampling_is_seeded_and_respects_top_k(gpt):
    signature = gpt_generate_signature(gpt, max_new_tokens=5, temperature=1.5, top_k=3)
    seed = np.int64(7)
    a, b = graph_tokens(signature, PROMPTS, seed), graph_tokens(signature, PROMPTS, seed)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, graph_tokens(signature, PROMPTS, np.int64(8)))
    # Each sampled token is among the 3 most likely non-padding ids given its prefix.
    for position in range(3, 8):
        logits = np.asarray(gpt(a[:, :position], training=False))[:, -1, 1:]
        top3 = np.argsort(-logits, axis=-1)[:, :3] + 1
        assert all(a[r, position] in top3[r] for r in range(len(a))), position
    greedy = generate(gpt, PROMPTS, 5)
    for narrow in (dict(top_k=1), dict(top_p=1e-6)):
        one = gpt_generate_signature(gpt, max_new_tokens=5, temperature=1.0, **narrow)
        np.testing.assert_array_equal(graph_tokens(one, PROMPTS, seed), greedy)


@pytest.mark.parametrize("settings, message", [
    (dict(max_new_tokens=0), r"max_new_tokens must be an integer >= 1, got 0"),
    (dict(max_new_tokens=4, window=9), r"window must be an integer in \[1, 8\] \(the model's max_length\), got 9"),
    (dict(max_new_tokens=4, stop_token=0), r"stop_token must be an integer in \[1, 19\]"),
    (dict(max_new_tokens=4, temperature=-1.0), r"temperature must be >= 0"),
    (dict(max_new_tokens=4, top_p=0.0), r"top_p must be in \(0, 1\]"),
])
def test_gpt_signature_rejects_bad_settings(gpt, settings, message):
    with pytest.raises(ValueError, match=message):
        gpt_generate_signature(gpt, **settings)


def test_gpt_signature_refuses_an_empty_prompt(gpt):
    with pytest.raises(tf.errors.InvalidArgumentError, match="send at least one prompt token per row"):
        gpt_generate_signature(gpt, max_new_tokens=2)(tf.zeros([2, 0], tf.int32))


def test_seq2seq_signature_gives_greedy_decodes_tokens(seq2seq):
    decoded = greedy_decode(seq2seq, SOURCES).tokens
    result = seq2seq_generate_signature(seq2seq)(tf.constant(SOURCES))
    tokens, lengths = result["tokens"].numpy(), result["lengths"].numpy()
    assert tokens.dtype == np.int32 and tokens.shape == (6, 6)  # max_output_length + 1, as greedy_decode
    assert lengths.tolist() == [len(t) for t in decoded]
    assert [row[:n].tolist() for row, n in zip(tokens, lengths)] == decoded
    assert all((row[n:] == 0).all() for row, n in zip(tokens, lengths))
    # Non-trivial: some rows stop at the end token, others run to the limit.
    assert min(lengths) < 6 and max(lengths) == 6 and len(set(tokens[:, 0].tolist())) > 1


def test_seq2seq_signature_rejects_a_bad_max_length(seq2seq):
    with pytest.raises(ValueError, match="max_length must be an integer >= 1, got 0"):
        seq2seq_generate_signature(seq2seq, max_length=0)


def test_export_generator_refuses_what_it_cannot_export(gpt):
    with pytest.raises(ValueError, match="tf.function with an input_signature"):
        export_generator(gpt, "unused", lambda tokens: tokens)
    unbuilt = build_model("seq2seq", TINY["seq2seq"])
    with pytest.raises(ValueError, match="seq2seq has not been built; call it once"):
        export_generator(unbuilt, "unused", seq2seq_generate_signature(unbuilt))


FRESH_PROCESS = """
import json, sys
import tensorflow as tf
gpt, s2s = tf.saved_model.load(sys.argv[1]), tf.saved_model.load(sys.argv[2])
prompts, sources = (tf.constant(json.loads(a), tf.int32) for a in sys.argv[3:5])
result = {
    "gpt_signatures": sorted(gpt.signatures),
    "gpt_inputs": sorted(gpt.signatures["serving_default"].structured_input_signature[1]),
    "gpt": gpt.signatures["serving_default"](tokens=prompts)["tokens"].numpy().tolist(),
    "gpt_generate": gpt.signatures["generate"](tokens=prompts)["tokens"].numpy().tolist(),
    "s2s": {k: v.numpy().tolist() for k, v in s2s.signatures["serving_default"](source=sources).items()},
    "tfdl_imported": any(m.split(".")[0] == "tfdl" for m in sys.modules),
}
print(json.dumps(result))
"""


def test_exported_generators_serve_the_same_tokens_in_a_fresh_process(gpt, seq2seq, tmp_path):
    gpt_dir = export_generator(gpt, tmp_path / "gpt" / "1", gpt_generate_signature(gpt, max_new_tokens=10))
    s2s_dir = export_generator(seq2seq, tmp_path / "s2s" / "1", seq2seq_generate_signature(seq2seq))
    run = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(gpt_dir), str(s2s_dir), json.dumps(PROMPTS.tolist()),
         json.dumps(SOURCES.tolist())],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert not result["tfdl_imported"]
    assert result["gpt_signatures"] == ["generate", "serving_default"]
    assert result["gpt_inputs"] == ["tokens"]
    expected = generate(gpt, PROMPTS, 10).tolist()
    assert result["gpt"] == result["gpt_generate"] == expected
    decoded = greedy_decode(seq2seq, SOURCES).tokens
    assert result["s2s"]["lengths"] == [len(t) for t in decoded]
    assert [row[:n] for row, n in zip(result["s2s"]["tokens"], result["s2s"]["lengths"])] == decoded
