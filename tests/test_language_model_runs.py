"""The language-model task of `tfdl run`: windows of a sentence stream, perplexity, and a served `generate`."""

import json
from pathlib import Path

import numpy as np
import pytest

from tfdl.schema import ConfigError
from tfdl.tasks.language_model import END, PAD, stream_windows, unigram_perplexity
from http_calls import call

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sentences_gpt.yaml"
SHORT = ["training.epochs=2", "model.params.embed_dim=16", "model.params.num_layers=1",
         "model.params.intermediate_dim=32", "model.params.max_length=16"]


def test_windows_cut_a_stream_of_sentences_each_ended_by_the_end_mark():
    inputs, targets = stream_windows([np.array([5, 6]), np.array([7, 8, 9])], length=3)
    # The stream: END 5 6 END 7 8 9 END -> two windows of 3 (the rest is dropped).
    np.testing.assert_array_equal(inputs, [[END, 5, 6], [END, 7, 8]])
    np.testing.assert_array_equal(targets, [[5, 6, END], [7, 8, 9]])
    with pytest.raises(ConfigError, match="fewer than one window of model.params.max_length 8"):
        stream_windows([np.array([5, 6])], length=8)


def test_unigram_perplexity_is_the_exponent_of_the_mean_surprise_of_word_frequencies():
    train = [np.array([3, 3, 4])]  # with the end mark: 3 x2, 4 x1, END x1 over ids 1..4
    counts = np.array([0, 1, 2, 3, 2], float)  # add-one: unknown 1, END 2, word 3 -> 3, word 4 -> 2
    p = counts / counts[1:].sum()
    targets = np.array([[3, 4, PAD]])
    expected = np.exp(-(np.log(p[3]) + np.log(p[4])) / 2)
    assert unigram_perplexity(train, targets, vocabulary_size=5) == pytest.approx(expected)


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    from tfdl.config import load_config
    from tfdl.run import run

    return run(load_config(CONFIG, SHORT), output_dir=tmp_path_factory.mktemp("runs") / "gpt", log=lambda _: None)


def test_the_run_reports_perplexity_against_word_frequencies(gpt_run):
    test = gpt_run.metrics["test"]
    assert 1.0 < test["perplexity"] < test["vocabulary_size"]
    assert test["unigram_perplexity"] > 1.0 and 0.0 <= test["next_word_accuracy"] <= 1.0
    report = (gpt_run.run_dir / "report.md").read_text()
    assert "unigram perplexity" in report and "Greedy continuations" in report
    samples = json.loads((gpt_run.run_dir / "samples.json").read_text())
    assert samples and all(s["prompt"] and s["continuation"] for s in samples)
    assert gpt_run.metrics["parity"]["passed"]


def test_the_served_generate_signature_continues_the_sample_prompt(gpt_run):
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    export = gpt_run.run_dir / "export"
    words = (export / "vocabulary.txt").read_text().splitlines()
    assert words[:3] == ["<pad>", "<unk>", "<end>"] and len(words) == gpt_run.metrics["test"]["vocabulary_size"]
    request = json.loads((export / "sample_request.json").read_text())
    prompt = request["inputs"]["tokens"][0]
    store = ModelStore()
    store.add_model("lm", gpt_run.serving_dir)
    with BackgroundServer(store) as server:
        status, body = call(server, "POST", "/v1/models/lm:predict", request)
    assert status == 200, body
    tokens = body["outputs"][0]  # one output: TF Serving's columnar answer is its value, not a dict
    assert tokens[: len(prompt)] == prompt and len(tokens) > len(prompt)
    assert all(0 <= t < len(words) for t in tokens)


def test_a_language_model_refuses_a_source_without_sentences(tmp_path):
    from tfdl.config import load_config
    from tfdl.run import run

    config = load_config(CONFIG, [*SHORT, "data.source.name=xor"])
    with pytest.raises(ConfigError, match="'xor' does not make sentences"):
        run(config, output_dir=tmp_path, log=lambda _: None)
