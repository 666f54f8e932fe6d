"""The shipped prose corpus (`prose`) feeds the language-model task end to end in a tiny budget."""

import json
from pathlib import Path

from tfdl.pipelines.prose_corpus import load_prose_sentences
from tfdl.pipelines.word_vocabulary import tokenize

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "prose_gpt.yaml"
TINY = ["training.epochs=3", "model.params.embed_dim=32", "model.params.num_layers=1",
        "model.params.intermediate_dim=64", "model.params.max_length=16"]


def test_a_gpt_on_the_prose_corpus_beats_word_frequencies(tmp_path):
    from tfdl.config import load_config
    from tfdl.run import run

    result = run(load_config(CONFIG, TINY), output_dir=tmp_path / "prose_gpt", log=lambda _: None)
    test = result.metrics["test"]
    # Three epochs of context already beat word frequencies alone on this corpus.
    assert 1.0 < test["perplexity"] < test["unigram_perplexity"]
    corpus_words = {w for s in load_prose_sentences(min_words=1) for w in tokenize(s)}
    words = (result.run_dir / "export" / "vocabulary.txt").read_text().splitlines()
    assert words[:3] == ["<pad>", "<unk>", "<end>"] and 1_500 < len(words) - 3 and set(words[3:]) <= corpus_words
    samples = json.loads((result.run_dir / "samples.json").read_text())
    assert samples and all(set(tokenize(s["prompt"])) <= corpus_words | {"unk"} for s in samples)
