"""Issue 10's word2vec bars: planted groups recovered, speed against gensim, every embedding config's `tfdl run` time.

1. word2vec (skip-gram, negative sampling) on the planted corpus: the share
   of group words whose 5 nearest neighbours are all in their group (bar >= 0.9).
2. Training speed in corpus words per second (words of the corpus x epochs /
   training seconds), tfdl and gensim back to back in this one process on the
   same corpus and settings, so both see the same load on a shared machine.
   tfdl trains with what `tfdl run configs/planted_word2vec.yaml` uses, read
   from that config (model settings, batch size, optimizer,
   steps_per_execution, jit_compile); gensim gets the same model settings.
3. Each embedding config run as a user runs it (`tfdl run CONFIG` in a fresh
   process), its wall time against the 10-minute bar.

    python benchmarks/word2vec.py [--sentences 20000] [--epochs 5] [--skip-runs] [--output BENCHMARKS.md]

The figures go to the `word2vec` section of `--output` (and as JSON to `--json`).

gensim is a benchmark-only dependency (`pip install gensim`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402

CONFIGS = ("planted_word2vec", "planted_glove", "python_help_word2vec", "prose_word2vec")
BAR_SCORE, BAR_MINUTES = 0.9, 10


def _run_settings(config) -> dict:
    """What `tfdl run` trains `config` with, read from the config itself (nothing restated here)."""
    import tensorflow as tf

    from tfdl.models.word2vec import Word2VecConfig
    from tfdl.training.steps import resolve_jit_compile

    training = config.training
    return {"model": Word2VecConfig(**config.model.params),
            "batch_size": config.data.batch_size, "optimizer": training.optimizer,
            "steps_per_execution": training.steps_per_execution,
            "jit_compile": resolve_jit_compile(training.jit_compile, tf.distribute.get_strategy())}


def _tfdl(corpus, config, epochs: int) -> dict:
    import keras

    from tfdl.evaluation.embeddings import WordVectors, group_neighbour_score
    from tfdl.models.word2vec import build_word2vec
    from tfdl.pipelines.skipgram import count_examples, word2vec_dataset
    from tfdl.pipelines.word_vocabulary import build_word_vocabulary, encode_corpus
    from tfdl.training.optimizers import make_optimizer

    run = _run_settings(config)
    model_config, batch_size = run["model"], run["batch_size"]
    keras.utils.set_random_seed(config.seed)
    vocabulary = build_word_vocabulary(corpus.sentences, model_config.min_count, model_config.max_words)
    ids, sentence = encode_corpus(corpus.sentences, vocabulary)
    feed = dict(architecture=model_config.architecture, window=model_config.window,
                negatives=model_config.negatives, sample=model_config.sample,
                negative_power=model_config.negative_power, shrink_window=model_config.shrink_window,
                batch_size=batch_size, seed=config.seed)
    examples = count_examples(word2vec_dataset(ids, sentence, vocabulary.counts, training=False, **feed))
    data = word2vec_dataset(ids, sentence, vocabulary.counts, steps=-(-examples // batch_size), **feed)
    model = build_word2vec(model_config.model_copy(update={"vocabulary_size": len(vocabulary)}))
    model.compile(optimizer=make_optimizer(run["optimizer"]), steps_per_execution=run["steps_per_execution"],
                  jit_compile=run["jit_compile"])
    model.fit(data.take(2), epochs=1, verbose=0)  # tracing, outside the timing as for gensim's set-up
    started = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    score = group_neighbour_score(WordVectors(vocabulary.words, model.vectors()), corpus.word_groups, 5)
    return {"seconds": seconds, "score": score, "examples_per_epoch": examples,
            "settings": {"batch_size": batch_size, "optimizer": run["optimizer"].model_dump(exclude_defaults=True,
                                                                               exclude_none=True)
                         | {"name": run["optimizer"].name},
                         "steps_per_execution": run["steps_per_execution"], "jit_compile": run["jit_compile"]}}


def _gensim(corpus, settings: dict, epochs: int, workers: int) -> dict:
    from gensim.models import Word2Vec

    from tfdl.evaluation.embeddings import WordVectors, group_neighbour_score

    model = Word2Vec(vector_size=settings["dim"], window=settings["window"], negative=settings["negatives"],
                     sample=settings["sample"], min_count=settings["min_count"], sg=1, workers=workers, seed=0)
    model.build_vocab(corpus.sentences)
    started = time.perf_counter()
    model.train(corpus.sentences, total_examples=len(corpus.sentences), epochs=epochs)
    seconds = time.perf_counter() - started
    words = tuple(model.wv.index_to_key)
    score = group_neighbour_score(WordVectors(words, model.wv.vectors), corpus.word_groups, 5)
    return {"seconds": seconds, "score": score}


def _run_config(name: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tfdl", "run", f"configs/{name}.yaml", "--output-dir", out],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode:
            return {"seconds": seconds, "error": done.stderr[-2000:]}
        test = json.loads((Path(out) / "metrics.json").read_text())["test"]
        return {"seconds": seconds, "test": {k: v for k, v in test.items() if not isinstance(v, dict)}}


def _markdown(figures: dict, args, seconds: float) -> str:
    c, t, g = figures["corpus"], figures["tfdl"], figures["gensim"]
    ts = t["settings"]
    command = "python benchmarks/word2vec.py" + ("" if (args.sentences, args.epochs) == (20000, 5) else
                                                  f" --sentences {args.sentences} --epochs {args.epochs}")
    lines = [
        "## word2vec and GloVe",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {figures['machine']}. Command: `{command}` ({seconds / 60:.1f} min). "
        f"Skip-gram with negative sampling on the planted corpus ({c['sentences']} sentences, {c['words']} words, "
        f"{c['epochs']} epochs; dim {c['dim']}, window {c['window']}, {c['negatives']} negatives, "
        f"sample {c['sample']}, min_count {c['min_count']}); tfdl then gensim (skip-gram, {args.workers} workers) "
        "back to back in one process. "
        f"tfdl trains as `tfdl run configs/{CONFIGS[0]}.yaml` does: batch {ts['batch_size']}, optimizer "
        f"{ts['optimizer']}, steps_per_execution {ts['steps_per_execution']}, jit_compile {ts['jit_compile']} "
        f"({t['examples_per_epoch']:,} (word, context) pairs per epoch). Load average at the start: {figures['load']}.",
        "",
        "| figure | bar | tfdl | gensim | met |",
        "|---|---|---|---|---|",
        f"| words whose 5 nearest neighbours are all in their group | >= {BAR_SCORE} | {t['score']:.3f} | "
        f"{g['score']:.3f} | {'yes' if figures['score_passed'] else 'NO'} |",
        f"| training speed, words/s | compared | {t['words_per_second']:,.0f} | {g['words_per_second']:,.0f} | "
        f"ratio {figures['speed_ratio_tfdl_over_gensim']:.2f} |",
    ]
    if "runs" in figures:
        lines += ["", "| config (`tfdl run`) | wall time | test figures | within 10 min |", "|---|---|---|---|"]
        for name, run in figures["runs"].items():
            shown = run.get("error", ", ".join(f"{k} {v:.4g}" for k, v in run.get("test", {}).items()))
            lines.append(f"| {name} | {run['seconds']:.0f} s | {shown} | "
                         f"{'yes' if run['seconds'] < BAR_MINUTES * 60 and 'error' not in run else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from tfdl.config import load_config
    from tfdl.pipelines.planted_corpus import planted_corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gensim's threads")
    parser.add_argument("--skip-runs", action="store_true", help="leave out the `tfdl run` timings")
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks/word2vec.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # the machine is shared: figures move with the load

    config = load_config(HERE.parent / "configs" / f"{CONFIGS[0]}.yaml")
    model = _run_settings(config)["model"]
    settings = {"dim": model.embedding_dim, "window": model.window, "negatives": model.negatives,
                "sample": model.sample, "min_count": model.min_count}
    corpus = planted_corpus(args.sentences, seed=0, **config.data.source.params)  # the config's corpus, made larger
    words = sum(len(s) for s in corpus.sentences) * args.epochs
    tfdl = _tfdl(corpus, config, args.epochs)
    gensim = _gensim(corpus, settings, args.epochs, args.workers)
    for result in (tfdl, gensim):
        result["words_per_second"] = words / result["seconds"]
    figures = {
        "machine": machine(), "load": load,
        "corpus": {"sentences": args.sentences, "words": words // args.epochs, "epochs": args.epochs, **settings},
        "tfdl": tfdl, "gensim": gensim,
        "speed_ratio_tfdl_over_gensim": tfdl["words_per_second"] / gensim["words_per_second"],
        "score_bar": BAR_SCORE, "score_passed": tfdl["score"] >= BAR_SCORE,
    }
    if not args.skip_runs:
        figures["runs"] = {name: _run_config(name) for name in CONFIGS}
        figures["runs_passed"] = all(r["seconds"] < BAR_MINUTES * 60 and "error" not in r
                                     for r in figures["runs"].values())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    body = _markdown(figures, args, time.perf_counter() - started)
    write_section(args.output, "word2vec", body)
    print(body)
    return 0 if figures["score_passed"] and figures.get("runs_passed", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
