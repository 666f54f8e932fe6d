"""The language-model configs' `tfdl run`: test perplexity against a unigram model, and wall time.

Each config runs in a fresh process, as a user would run it; the figures come
from the run's own `metrics.json`. The bar is the classic-models issue's: every
config finishes `tfdl run` within 10 minutes on 2 cores without a GPU. Figures
go to BENCHMARKS.md.

    python benchmarks/language_models.py [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402
from vision import run_config  # noqa: E402

CONFIGS = ("sentences_gpt", "python_help_gpt", "prose_gpt")
MINUTES = 10
NOTE = (
    "`sentences` holds 400 sentences, about 3,000 training words: too few for a word-level model to learn"
    " more than word frequencies, so `sentences_gpt` is the quick demonstration and `prose_gpt` (30,000 words written for tfdl, CC0) the one that shows the lesson."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in CONFIGS:
            result = run_config(name, Path(work))
            test = result["metrics"]["test"]
            rows.append((name, test, result["seconds"]))
            print(name, f"{test['perplexity']:.1f} vs unigram {test['unigram_perplexity']:.1f}",
                  f"{result['seconds']:.0f} s", flush=True)
    lines = [
        "## Language models: each GPT config's `tfdl run`",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; load average at the start "
        f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}.",
        f"Command: `python benchmarks/language_models.py` ({time.perf_counter() - started:.0f} s); each config run "
        "by `tfdl run CONFIG` in a fresh process; figures from the run's `metrics.json` (test split: sentences "
        "the model never trained on). The unigram model is the training words' frequencies: the perplexity a "
        "model reaches by knowing which words are common and nothing about order.",
        "",
        "| config | corpus | test perplexity | unigram perplexity | next-word accuracy | vocabulary | "
        f"wall time (target <= {MINUTES} min) | beats unigram |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {name} | {name.rsplit('_', 1)[0]} | {test['perplexity']:.1f} | {test['unigram_perplexity']:.1f} | "
            f"{test['next_word_accuracy']:.3f} | {test['vocabulary_size']} | {seconds / 60:.1f} min"
            f"{'' if seconds <= MINUTES * 60 else ' (over)'} | "
            f"{'yes' if test['perplexity'] < test['unigram_perplexity'] else 'no'} |"
            for name, test, seconds in rows
        ],
        "",
        NOTE,
    ]
    write_section(args.output, "language_models", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
