"""The language-model task of `tfdl run`: a GPT trained to predict the next word of a shipped corpus.

Data: a `generated` text source (`sentences`, `python_help`, `prose`), one sentence
per example, split into training, validation and test sentences
(`data.split`). Words (`tfdl.pipelines.word_vocabulary.tokenize`) get ids by
their frequency in the training sentences, after three reserved ids:
0 padding, 1 an out-of-vocabulary word, 2 the end of a sentence; the
vocabulary keeps at most `data.text.max_tokens` ids. Each split's sentences,
each followed by the end mark, form one stream of ids cut into windows of
the model's `max_length` + 1; a window's first `max_length` ids are the
input and its last `max_length` the targets. The end marks teach the model
where sentences start, so generation can begin at the start of one.

Evaluation: the test perplexity (`tfdl.models.perplexity`) against a unigram
model of the training words (what the model must beat to have learned
anything about context), next-word accuracy, and greedy continuations of
test sentences in the report.

Export: a SavedModel (TF Serving layout) whose `serving_default` (also
`generate`) takes `tokens`, int32 prompts, and returns the prompt followed by
the generated ids (`tfdl.export.generation.gpt_generate_signature`, greedy,
stopping at the end mark); `vocabulary.txt` beside it maps ids to words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfdl.schema import ConfigError
from tfdl.tasks.base import RunTask, TaskEvaluation
from tfdl.tasks.embedding import split_sentences

PAD, UNKNOWN, END = 0, 1, 2
RESERVED = ("<pad>", "<unk>", "<end>")
PROMPT_WORDS = 3  # words of a test sentence the report's samples start from
SAMPLES = 5
NEW_TOKENS = 16


@dataclass
class LanguageModelData:
    """What `tfdl run` reads of a data stage, for a language model."""

    train: Any
    validation: Any
    test: Any
    sizes: dict[str, int]
    report: Any
    words: tuple[str, ...]  # the word of each id, reserved ids first
    test_windows: tuple[np.ndarray, np.ndarray]
    unigram_perplexity: float
    prompts: list[list[int]]
    model_params: dict[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    class_weight: None = None
    input_shape: tuple[int, ...] | None = None
    input_name: str = "tokens"

    def decode(self, ids) -> str:
        """The words of `ids`, padding left out, the end mark shown as `<end>`."""
        return " ".join(self.words[i] for i in ids if i != PAD)


def stream_windows(sentences: list[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the sentences, each followed by the end mark, into `(inputs, targets)` windows of `length`.

    The stream starts with an end mark, so the first sentence is predicted
    from a sentence start like every other. Windows do not overlap; the last,
    shorter one is dropped.
    """
    stream = np.concatenate([[END]] + [np.append(s, END) for s in sentences]).astype(np.int32)
    count = (len(stream) - 1) // length
    if count < 1:
        raise ConfigError(
            f"the corpus split holds {len(stream)} ids, fewer than one window of model.params.max_length "
            f"{length} + 1; lower max_length or give more sentences"
        )
    starts = np.arange(count) * length
    inputs = np.stack([stream[s : s + length] for s in starts])
    targets = np.stack([stream[s + 1 : s + length + 1] for s in starts])
    return inputs, targets


def unigram_perplexity(train: list[np.ndarray], targets: np.ndarray, vocabulary_size: int) -> float:
    """Perplexity on `targets` of word frequencies counted on `train` (add-one smoothed)."""
    counts = np.bincount(np.concatenate([np.append(s, END) for s in train]), minlength=vocabulary_size)[1:] + 1.0
    probabilities = np.concatenate([[0.0], counts / counts.sum()])
    real = targets[targets != PAD]
    return float(np.exp(-np.mean(np.log(probabilities[real]))))


class LanguageModelTask(RunTask):
    name = "language_model"

    def build_data(self, config, seed: int, global_batch_size: int) -> LanguageModelData:
        import tensorflow as tf

        from tfdl.models import model_entry
        from tfdl.pipelines.data_report import DataReport
        from tfdl.pipelines.generated import generate
        from tfdl.pipelines.word_vocabulary import build_word_vocabulary, tokenize

        source = config.data.source
        if source.type != "generated":
            raise ConfigError(f"data.source: a language model reads a generated corpus (type: generated, name: "
                              f"sentences, python_help or prose), got type {source.type!r}")
        length = model_entry(config.model.name).config_class(**{**config.model.params, "vocabulary_size": 3}).max_length
        data = generate(source.name, source.examples, source.seed if source.seed is not None else seed, source.params)
        if data.features.dtype != object or not isinstance(data.features[0], str):
            raise ConfigError(f"data.source.name: {source.name!r} does not make sentences; a language model needs text")
        texts = [tokenize(t) for t in data.features]
        split = config.data.split
        rows = split_sentences(len(texts), split.validation, split.test, seed)
        max_words = config.data.text.max_tokens - len(RESERVED)
        vocabulary = build_word_vocabulary([texts[i] for i in rows[0]], 1, max_words)
        words = RESERVED + vocabulary.words

        index = {word: i for i, word in enumerate(words)}

        def encode(indices) -> list[np.ndarray]:
            return [np.array([index.get(w, UNKNOWN) for w in texts[i]], np.int32) for i in indices if texts[i]]

        train_s, val_s, test_s = (encode(r) for r in rows)
        windows = [stream_windows(s, length) for s in (train_s, val_s, test_s)]

        def feed(pair, training: bool):
            ds = tf.data.Dataset.from_tensor_slices(pair)
            if training:
                ds = ds.shuffle(len(pair[0]), seed=seed, reshuffle_each_iteration=True)
            return ds.batch(global_batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)

        report = DataReport()
        unknown = sum(int((s == UNKNOWN).sum()) for s in val_s + test_s)
        report.add("validation and test words outside the training vocabulary", unknown)
        prompts = [list(s[:PROMPT_WORDS]) for s in test_s if len(s) > PROMPT_WORDS][:SAMPLES]
        return LanguageModelData(
            train=feed(windows[0], True), validation=feed(windows[1], False), test=feed(windows[2], False),
            sizes={"train": len(windows[0][0]), "validation": len(windows[1][0]), "test": len(windows[2][0])},
            report=report, words=words, test_windows=windows[2],
            unigram_perplexity=unigram_perplexity(train_s, windows[2][1], len(words)),
            prompts=prompts, model_params={"vocabulary_size": len(words)},
        )

    def objective(self, pipeline) -> tuple[Any, list]:
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD), ["accuracy"]

    def evaluate(self, model, pipeline: LanguageModelData, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation.tables import markdown_table
        from tfdl.models import generate, perplexity

        inputs, targets = pipeline.test_windows
        model_perplexity = perplexity(model, inputs, targets)
        predicted = np.concatenate([np.asarray(model(inputs[i : i + 64], training=False)).argmax(-1)
                                    for i in range(0, len(inputs), 64)])
        real = targets != PAD
        accuracy = float((predicted[real] == targets[real]).mean())
        samples = []
        if pipeline.prompts:  # one batch: every prompt has the same length
            continued = generate(model, np.array([[END] + p for p in pipeline.prompts]), NEW_TOKENS, stop_token=END)
            samples = [(pipeline.decode(p), pipeline.decode(_until_end(ids[1 + len(p):])))
                       for p, ids in zip(pipeline.prompts, continued)]
        figures = {"perplexity": model_perplexity, "unigram_perplexity": pipeline.unigram_perplexity,
                   "next_word_accuracy": accuracy, "vocabulary_size": len(pipeline.words)}
        section = markdown_table(
            ["figure", "value"],
            [["perplexity", f"{model_perplexity:.2f}"],
             ["unigram perplexity (word frequencies alone)", f"{pipeline.unigram_perplexity:.2f}"],
             ["next-word accuracy", f"{accuracy:.4f}"], ["vocabulary (reserved ids included)", len(pipeline.words)]],
        )
        section += ["", "Greedy continuations of test sentences:", ""]
        section += markdown_table(["prompt", "continuation"], [[p, c] for p, c in samples])
        (run_dir / "samples.json").write_text(json.dumps([{"prompt": p, "continuation": c} for p, c in samples], indent=2))
        headline = f"test perplexity {model_perplexity:.2f} (unigram {pipeline.unigram_perplexity:.2f})"
        return TaskEvaluation(figures, headline, section, extra_files={"samples": run_dir / "samples.json"})

    def export(self, model, pipeline: LanguageModelData, config, export_dir: Path, log):
        from tfdl.export.export_stage import ExportResult
        from tfdl.export.generation import export_generator, gpt_generate_signature
        from tfdl.export.model_server_config import ModelEntry, write_model_server_config
        from tfdl.export.parity import ParityReport
        from tfdl.export.serving_layout import next_version, version_dir
        from tfdl.models import generate

        export_dir = Path(export_dir)
        export_dir.mkdir(parents=True, exist_ok=True)
        serving_model_dir = export_dir / "serving" / config.model_name
        version = config.version or next_version(serving_model_dir)
        signature = gpt_generate_signature(model, max_new_tokens=NEW_TOKENS, stop_token=END)
        saved = export_generator(model, version_dir(serving_model_dir, version), signature)
        vocabulary = export_dir / "vocabulary.txt"
        vocabulary.write_text("\n".join(pipeline.words) + "\n")
        artifacts = {
            "SavedModel (TF Serving layout, `generate` signature)": saved,
            "TF Serving models.config": write_model_server_config(
                export_dir / "serving" / "models.config",
                [ModelEntry(name=config.model_name, base_path=str(serving_model_dir.resolve()))]),
            "vocabulary (line i is the word of id i)": vocabulary,
        }
        if config.keras:
            artifacts["Keras"] = export_dir / "model.keras"
            model.save(artifacts["Keras"])
        notes = ["the served signature takes token ids and returns the prompt and its continuation (greedy); "
                 "map ids to words with vocabulary.txt"]
        if config.tflite:
            notes.append("no TFLite file: generation loops in the graph (a while loop over the model)")
            log(f"      {notes[-1]}")
        prompt = np.array([[END] + pipeline.prompts[0]], np.int32) if pipeline.prompts else np.array([[END]], np.int32)
        parity = ParityReport(examples=1, atol=0.0, results=[_generation_parity(model, saved, prompt, generate)])
        sample = export_dir / "sample_request.json"
        sample.write_text(json.dumps({"inputs": {"tokens": prompt.tolist()}}))
        artifacts["sample request"] = sample
        return ExportResult(artifacts, parity, version=version, serving_model_dir=serving_model_dir,
                            saved_model_dir=saved, sample_request=sample, notes=notes)


def _until_end(ids: np.ndarray) -> np.ndarray:
    """A generated row up to and including its end mark (a batch pads finished rows with 0)."""
    ends = np.flatnonzero(ids == END)
    return ids[: ends[0] + 1] if len(ends) else ids


def _generation_parity(model, saved: Path, prompt: np.ndarray, generate):
    """The SavedModel's tokens must be exactly the in-process greedy `generate`'s."""
    import tensorflow as tf

    from tfdl.export.parity import ParityResult

    served = tf.saved_model.load(str(saved)).signatures["serving_default"](tokens=tf.constant(prompt))["tokens"]
    served = np.asarray(served)
    expected = generate(model, prompt, NEW_TOKENS, stop_token=END)
    width = max(served.shape[1], expected.shape[1])
    served = np.pad(served, ((0, 0), (0, width - served.shape[1])))
    expected = np.pad(expected, ((0, 0), (0, width - expected.shape[1])))
    agreement = float((served == expected).mean())
    return ParityResult("saved_model", float(np.abs(served - expected).max()), agreement, agreement == 1.0)
