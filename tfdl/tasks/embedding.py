"""The embedding task of `tfdl run`: word2vec and GloVe on a generated or shipped corpus.

Data: the corpus comes from a `generated` source, one sentence per example
(`planted_words`, `python_help`). The vocabulary is counted on the training
sentences with the model's `min_count` / `max_words`. word2vec splits the
sentences into training, validation and test (`data.split`), each fed as
`word2vec_dataset` batches (validation and test draw the same examples
every pass). GloVe counts co-occurrences on all sentences and holds out a
share of the matrix's cells (a cell and its mirror together) for validation
and test. When the sentences carry several labels (the planted corpus's
groups), a word used only in sentences of one label belongs to that group.

Evaluation: the group-neighbour score (`group_neighbour_score`, k=5) and
planted analogies when there are groups; nearest neighbours of frequent words;
the TensorBoard Projector files under `projector/`.

Export: `word_vectors_model`, a SavedModel (TF Serving layout) whose
`serving_default` takes `words` (string [batch]) and returns `vectors`
(float32 [batch, dim]); a word outside the vocabulary gets the zero vector.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfdl.schema import ConfigError
from tfdl.tasks.base import RunTask, TaskEvaluation

NEIGHBOURS_K = 5
SAMPLE_WORDS = 6
GROUP_ANALOGIES = 20
OOV_PROBE = "<not-a-word>"  # sent in the parity check and sample request to show the OOV answer


@dataclass
class EmbeddingData:
    """What `tfdl run` reads of a data stage, for a word-embedding model."""

    train: Any
    validation: Any
    test: Any
    sizes: dict[str, int]
    report: Any
    words: tuple[str, ...]
    counts: np.ndarray
    word_groups: dict[str, int]
    group_names: tuple[str, ...]
    corpus_words: int
    model_params: dict[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    class_weight: None = None
    input_shape: tuple[int, ...] | None = None
    input_name: str = "words"


def split_sentences(count: int, validation: float, test: float, seed: int) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(count)
    n_val, n_test = max(1, round(count * validation)), max(1, round(count * test))
    if count - n_val - n_test < 1:
        raise ConfigError(f"data.source.examples: {count} sentences leave none for training; generate more")
    return order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]


def words_by_group(texts: list[list[str]], labels: np.ndarray, class_names: tuple[str, ...]) -> dict[str, int]:
    """Word -> label for each word that occurs only in sentences of one label (none when one label)."""
    if len(class_names) < 2:
        return {}
    seen: dict[str, set] = {}
    for sentence, label in zip(texts, labels):
        for word in sentence:
            seen.setdefault(word, set()).add(int(label))
    return {w: next(iter(labels_)) for w, labels_ in seen.items() if len(labels_) == 1}


class EmbeddingTask(RunTask):
    name = "embedding"

    def build_data(self, config, seed: int, global_batch_size: int) -> EmbeddingData:
        from tfdl.models import model_entry
        from tfdl.pipelines.data_report import DataReport
        from tfdl.pipelines.generated import generate
        from tfdl.pipelines.word_vocabulary import build_word_vocabulary, tokenize

        source = config.data.source
        if source.type != "generated":
            raise ConfigError(f"data.source: embedding models read a generated corpus (type: generated, name: "
                              f"planted_words or python_help), got type {source.type!r}")
        entry = model_entry(config.model.name)
        settings = entry.config_class(**{**config.model.params, "vocabulary_size": 1})
        data = generate(source.name, source.examples, source.seed if source.seed is not None else seed, source.params)
        if data.features.dtype != object or not isinstance(data.features[0], str):
            raise ConfigError(f"data.source.name: {source.name!r} does not make sentences; embedding models need text")
        texts = [tokenize(t) for t in data.features]
        split = config.data.split
        train_rows, val_rows, test_rows = split_sentences(len(texts), split.validation, split.test, seed)
        vocabulary = build_word_vocabulary([texts[i] for i in train_rows], settings.min_count, settings.max_words)
        report = DataReport()
        all_words = sum(len(t) for t in texts)
        train_words = sum(len(texts[i]) for i in train_rows)
        dropped = sum(1 for i in train_rows for w in texts[i] if w not in vocabulary.index)
        report.add(f"training words left out (below min_count {settings.min_count} or past max_words)", dropped)
        common = dict(words=vocabulary.words, counts=vocabulary.counts, report=report,
                      word_groups=words_by_group(texts, data.labels, data.class_names),
                      group_names=data.class_names, model_params={"vocabulary_size": len(vocabulary)})
        if config.model.name == "glove":
            return self._glove_data(texts, vocabulary, settings, config, seed, global_batch_size, all_words, common)
        return self._word2vec_data(texts, (train_rows, val_rows, test_rows), vocabulary, settings, seed,
                                   global_batch_size, train_words, common)

    @staticmethod
    def _word2vec_data(texts, rows, vocabulary, settings, seed, batch_size, train_words, common) -> EmbeddingData:
        from tfdl.pipelines.skipgram import count_examples, word2vec_dataset
        from tfdl.pipelines.word_vocabulary import encode_corpus

        feed = dict(architecture=settings.architecture, window=settings.window, negatives=settings.negatives,
                    sample=settings.sample, negative_power=settings.negative_power,
                    shrink_window=settings.shrink_window, batch_size=batch_size)
        encoded = [encode_corpus([texts[i] for i in part], vocabulary) for part in rows]
        for (ids, _), part in zip(encoded[1:], ("validation", "test")):
            if len(ids) == 0:
                raise ConfigError(f"data.split.{part}: no {part} sentence holds a vocabulary word; raise the fraction")
        passes = [word2vec_dataset(*e, vocabulary.counts, seed=seed + i, training=False, **feed)
                  for i, e in enumerate(encoded)]
        sizes = dict(zip(("train", "validation", "test"), (count_examples(p) for p in passes)))
        steps = max(1, math.ceil(sizes["train"] / batch_size))
        train = word2vec_dataset(*encoded[0], vocabulary.counts, seed=seed, training=True, steps=steps, **feed)
        return EmbeddingData(train, passes[1], passes[2], sizes, corpus_words=train_words, **common)

    @staticmethod
    def _glove_data(texts, vocabulary, settings, config, seed, batch_size, all_words, common) -> EmbeddingData:
        from tfdl.pipelines.cooccurrence import cooccurrence_counts, glove_dataset
        from tfdl.pipelines.word_vocabulary import encode_corpus

        ids, sentence = encode_corpus(texts, vocabulary)
        cells = cooccurrence_counts(ids, sentence, len(vocabulary), settings.window, settings.distance_weighting)
        upper = np.flatnonzero(cells.rows <= cells.columns)
        train_part, val_part, test_part = (upper[p] for p in split_sentences(
            len(upper), config.data.split.validation, config.data.split.test, seed))
        mirror = {(int(r), int(c)): i for i, (r, c) in enumerate(zip(cells.rows, cells.columns))}

        def with_mirrors(part):
            return np.unique(np.concatenate([part, [mirror[(int(cells.columns[i]), int(cells.rows[i]))] for i in part]]))

        parts = [cells.take(with_mirrors(p)) for p in (train_part, val_part, test_part)]
        sizes = dict(zip(("train", "validation", "test"), (len(p) for p in parts)))
        feeds = [glove_dataset(p, batch_size, seed, training=i == 0) for i, p in enumerate(parts)]
        return EmbeddingData(*feeds, sizes, corpus_words=all_words, **common)

    def objective(self, pipeline):
        return None, []  # the models' compute_loss holds their loss

    def evaluate(self, model, pipeline: EmbeddingData, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation.embeddings import (
            PROJECTOR_FOLDER, WordVectors, analogy, group_neighbour_score, nearest_neighbours, write_projector_files,
        )
        from tfdl.evaluation.tables import markdown_table

        vectors = WordVectors(pipeline.words, model.vectors())
        test_loss = float(model.evaluate(pipeline.test, verbose=0, return_dict=True)["loss"])
        figures: dict[str, Any] = {"loss": test_loss, "vocabulary_size": len(vectors.words),
                                   "embedding_dim": int(vectors.vectors.shape[1])}
        section = [f"Test loss {test_loss:.4f} over {pipeline.sizes['test']} held-out examples; "
                   f"{len(vectors.words)} words x {vectors.vectors.shape[1]} dimensions.", ""]
        headline = f"test loss {test_loss:.4f}"
        groups = {w: pipeline.group_names[g] for w, g in pipeline.word_groups.items() if w in vectors.index}
        if groups:
            score = group_neighbour_score(vectors, groups, NEIGHBOURS_K)
            hits = self._group_analogies(vectors, pipeline, analogy)
            figures.update({"group_neighbour_score": score, "group_analogy_accuracy": hits})
            headline += f", {score:.1%} of words have their {NEIGHBOURS_K} nearest neighbours in their group"
            section += [f"Group-neighbour score (share of {len(groups)} grouped words whose {NEIGHBOURS_K} nearest "
                        f"neighbours share their group): **{score:.4f}**. Planted analogies "
                        "(a - b + c with a, b of one group and c of another lands in c's group): "
                        f"**{hits:.4f}**.", ""]
        sample = [w for w in vectors.words if w in groups or not groups][:SAMPLE_WORDS]
        neighbours = {w: nearest_neighbours(vectors, w, NEIGHBOURS_K) for w in sample}
        figures["sample_neighbours"] = {w: [n for n, _ in ns] for w, ns in neighbours.items()}
        section += markdown_table(["word", f"{NEIGHBOURS_K} nearest neighbours (cosine)"],
                                  [[w, ", ".join(f"{n} {s:.2f}" for n, s in ns)] for w, ns in neighbours.items()])
        projector = write_projector_files(vectors, run_dir / PROJECTOR_FOLDER, groups or None)
        section += ["", f"Embedding Projector files: `{projector['vectors.tsv']}`, `{projector['metadata.tsv']}`."]
        return TaskEvaluation(figures=figures, headline=headline, section=section,
                              extra_files={f"projector {k}": p for k, p in projector.items()})

    @staticmethod
    def _group_analogies(vectors, pipeline: EmbeddingData, analogy) -> float:
        members: dict[int, list[str]] = {}
        for word in vectors.words:  # most frequent first
            if word in pipeline.word_groups:
                members.setdefault(pipeline.word_groups[word], []).append(word)
        usable = [g for g, ws in sorted(members.items()) if len(ws) >= 2]
        if len(usable) < 2:
            return float("nan")
        trials = [(usable[i % len(usable)], usable[(i + 1) % len(usable)]) for i in range(GROUP_ANALOGIES)]
        hits = []
        for n, (g, h) in enumerate(trials):
            a, b = members[g][n % len(members[g])], members[g][(n + 1) % len(members[g])]
            answer = analogy(vectors, a, b, members[h][0], k=1)[0][0]
            hits.append(pipeline.word_groups.get(answer) == h)
        return float(np.mean(hits))

    def export(self, model, pipeline: EmbeddingData, config, export_dir: Path, log):
        from tfdl.export.export_stage import ExportResult
        from tfdl.export.model_server_config import ModelEntry, write_model_server_config
        from tfdl.export.parity import check_parity
        from tfdl.export.serving_layout import next_version, version_dir
        from tfdl.export.serving_model import export_serving_model
        from tfdl.layers.pretrained_embedding import word_vectors_model

        export_dir.mkdir(parents=True, exist_ok=True)
        vectors = model.vectors()
        served = word_vectors_model(pipeline.words, vectors, input_name="words", name=config.model_name)
        probe = np.array(list(pipeline.words[: max(config.sample_size, 8)]) + [OOV_PROBE], dtype=object)
        serving_model_dir = export_dir / "serving" / config.model_name
        version = config.version or next_version(serving_model_dir)
        warmup = {"words": probe[: config.warmup_requests]} if config.warmup_requests else None
        saved = export_serving_model(served, version_dir(serving_model_dir, version), warmup=warmup,
                                     warmup_records=max(config.warmup_requests, 1), model_name=config.model_name)
        artifacts = {"SavedModel (TF Serving layout)": saved, "TF Serving models.config": write_model_server_config(
            export_dir / "serving" / "models.config",
            [ModelEntry(name=config.model_name, base_path=str(serving_model_dir.resolve()))])}
        if config.keras:
            artifacts["Keras"] = export_dir / "model.keras"
            served.save(artifacts["Keras"])
        parity = check_parity(served, {"words": probe}, saved, atol=config.parity_atol)
        # The served table must be the trained one, row for row, and the OOV probe must get zeros.
        expected = np.concatenate([vectors[: len(probe) - 1], np.zeros((1, vectors.shape[1]), np.float32)])
        served_vectors = np.asarray(served(probe))
        table_matches = bool(np.array_equal(served_vectors, expected))
        if not table_matches:
            log("      WARNING: the served vectors differ from the trained table")
        sample = export_dir / "sample_request.json"
        sample.write_text(json.dumps({"instances": probe[: config.sample_size].tolist() + [OOV_PROBE]}))
        artifacts["sample request"] = sample
        notes = ["words outside the vocabulary are served the zero vector",
                 "no TFLite file: the in-graph string lookup (a hash table) is not a TFLite builtin"]
        if not table_matches:
            notes.append("the served vectors differ from the trained table")
            parity.atol = 0.0
        return ExportResult(artifacts, parity, version=version, serving_model_dir=serving_model_dir,
                            saved_model_dir=saved, sample_request=sample, notes=notes)
