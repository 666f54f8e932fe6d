"""`tfdl run` on an embedding config end to end: data, training, group score, projector files, served vectors."""

import json
from pathlib import Path

import numpy as np
import pytest
from http_calls import call

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "planted_word2vec.yaml"
SHORT = ["data.source.examples=800", "training.epochs=3", "training.steps_per_execution=8",
         "data.batch_size=256", "model.params.embedding_dim=16", "model.params.min_count=1",
         "training.jit_compile=false"]  # XLA's compile costs more than it saves on a run this small


@pytest.fixture(scope="module")
def embedding_run(tmp_path_factory):
    from tfdl.config import load_config
    from tfdl.run import run

    return run(load_config(CONFIG, SHORT), output_dir=tmp_path_factory.mktemp("runs") / "w2v", log=lambda _: None)


def test_the_run_learns_the_planted_groups_and_writes_projector_files(embedding_run):
    from tfdl.evaluation.embeddings import nearest_neighbours

    test = embedding_run.metrics["test"]
    assert test["vocabulary_size"] == 105  # 10 groups x 10 words + 5 fillers
    assert test["group_neighbour_score"] >= 0.9
    lines = (embedding_run.run_dir / "projector" / "metadata.tsv").read_text().splitlines()
    assert lines[0] == "word\tgroup" and len(lines) == 106
    neighbours = nearest_neighbours(embedding_run.run_dir, "g03_w00", k=3)
    assert all(word.startswith("g03_") for word, _ in neighbours)
    assert embedding_run.metrics["parity"]["passed"]


def test_the_exported_model_serves_vectors_through_the_rest_app(embedding_run):
    import tensorflow as tf

    from tfdl.evaluation.embeddings import read_projector_files
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    request = json.loads((embedding_run.run_dir / "export" / "sample_request.json").read_text())
    assert request["instances"][-1] == "<not-a-word>"
    store = ModelStore()
    store.add_model("planted", embedding_run.serving_dir)
    with BackgroundServer(store) as server:
        status, body = call(server, "POST", "/v1/models/planted:predict", request)
    assert status == 200, body
    served = np.asarray(body["predictions"], np.float32)
    trained = read_projector_files(embedding_run.run_dir)
    expected = [trained.vectors[trained.index[w]] for w in request["instances"][:-1]]
    np.testing.assert_allclose(served[:-1], expected, atol=1e-5)  # the TSV holds 6 significant digits
    assert (served[-1] == 0).all()
    version = sorted(p for p in embedding_run.serving_dir.iterdir() if p.name.isdigit())[-1]
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    assert signature(words=tf.constant(request["instances"][:1]))["vectors"].shape == (1, 16)


def test_the_cli_answers_neighbours_and_analogies_and_names_an_unknown_word(embedding_run, capsys):
    from tfdl.cli import main
    from tfdl.evaluation.embeddings import nearest_neighbours

    assert main(["embeddings", "neighbours", str(embedding_run.run_dir), "g03_w00", "-k", "3"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    expected = nearest_neighbours(embedding_run.run_dir, "g03_w00", k=3)
    assert [(w, round(s, 4)) for w, s in expected] == [(w, float(s)) for w, s in rows]
    assert main(["embeddings", "analogy", str(embedding_run.run_dir), "g03_w00", "g03_w01", "g05_w00"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert main(["embeddings", "neighbours", str(embedding_run.run_dir), "no-such-word"]) == 2
    assert "no-such-word" in capsys.readouterr().err
