"""Judging word vectors: nearest neighbours, analogies, a planted-structure score, projector files.

Similarity is cosine throughout. `nearest_neighbours` and `analogy` take a
`WordVectors`, or a run directory (or its `projector/` folder) holding the
TensorBoard Embedding Projector files a run writes with
`write_projector_files`:

    vectors.tsv    one vector per line, values separated by tabs
    metadata.tsv   the word of each line (a single column has no header;
                   with groups: a `word<TAB>group` header, then one row per word)

Load them in the Projector (projector.tensorflow.org, "Load") or in
TensorBoard's projector plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

PROJECTOR_FOLDER = "projector"


@dataclass(frozen=True)
class WordVectors:
    """Words and their vectors, row i the vector of words[i].

    Raises:
        ValueError: not one 2-D row per word, or a word twice.
    """

    words: tuple[str, ...]
    vectors: np.ndarray
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        vectors = np.asarray(self.vectors, np.float32)
        if vectors.ndim != 2 or len(vectors) != len(self.words):
            raise ValueError(f"need one vector per word: {len(self.words)} words, vectors of shape {vectors.shape}")
        if len(set(self.words)) != len(self.words):
            raise ValueError("each word must appear once in words")
        object.__setattr__(self, "vectors", vectors)
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    def unit(self) -> np.ndarray:
        """The vectors scaled to length 1 (a zero vector stays zero)."""
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return self.vectors / np.maximum(norms, 1e-12)

    def row(self, word: str) -> int:
        """The row of `word`.

        Raises:
            ValueError: the word has no vector (says how many words do).
        """
        if word not in self.index:
            raise ValueError(f"{word!r} is not in the vocabulary of {len(self.words)} words "
                             "(words are lower-cased; rare words below min_count have no vector)")
        return self.index[word]


def write_projector_files(vectors: WordVectors, directory: Path | str,
                          groups: Mapping[str, object] | None = None) -> dict[str, Path]:
    """Write `vectors.tsv` and `metadata.tsv` for the TensorBoard Embedding Projector.

    Args:
        vectors: the words and their vectors.
        directory: created if missing.
        groups: word -> group label; adds a `group` column (words without
            one get `-`). None: a single word column without header.

    Returns:
        {"vectors.tsv": path, "metadata.tsv": path}.

    Raises:
        ValueError: a word holds a tab or a newline (it would break the TSV).
    """
    bad = [w for w in vectors.words if "\t" in w or "\n" in w]
    if bad:
        raise ValueError(f"words may not hold tabs or newlines for the TSV files, e.g. {bad[0]!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"vectors.tsv": directory / "vectors.tsv", "metadata.tsv": directory / "metadata.tsv"}
    rows = ("\t".join(f"{v:.6g}" for v in vector) for vector in vectors.vectors)
    paths["vectors.tsv"].write_text("\n".join(rows) + "\n", encoding="utf-8")
    if groups is None:
        metadata = list(vectors.words)
    else:
        metadata = ["word\tgroup"] + [f"{w}\t{groups.get(w, '-')}" for w in vectors.words]
    paths["metadata.tsv"].write_text("\n".join(metadata) + "\n", encoding="utf-8")
    return paths


def read_projector_files(directory: Path | str) -> WordVectors:
    """Read what `write_projector_files` wrote; `directory` may also be a run directory.

    Raises:
        ValueError: the files are missing, or their line counts disagree.
    """
    directory = Path(directory)
    if not (directory / "vectors.tsv").exists() and (directory / PROJECTOR_FOLDER / "vectors.tsv").exists():
        directory = directory / PROJECTOR_FOLDER
    vectors_file, metadata_file = directory / "vectors.tsv", directory / "metadata.tsv"
    if not vectors_file.exists() or not metadata_file.exists():
        raise ValueError(f"{directory} holds no vectors.tsv and metadata.tsv; give a run directory of an "
                         "embedding run (it writes them under projector/) or the folder holding them")
    vectors = np.loadtxt(vectors_file, delimiter="\t", dtype=np.float32, ndmin=2)
    lines = metadata_file.read_text(encoding="utf-8").splitlines()
    words = [line.split("\t")[0] for line in (lines[1:] if lines and lines[0] == "word\tgroup" else lines)]
    if len(words) != len(vectors):
        raise ValueError(f"{metadata_file} names {len(words)} words but {vectors_file} holds {len(vectors)} vectors")
    return WordVectors(tuple(words), vectors)


def _as_vectors(source: WordVectors | Path | str) -> WordVectors:
    return source if isinstance(source, WordVectors) else read_projector_files(source)


def _closest(vectors: WordVectors, query: np.ndarray, k: int, exclude: Sequence[int]) -> list[tuple[str, float]]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    similarity = vectors.unit() @ (query / max(float(np.linalg.norm(query)), 1e-12))
    similarity[list(exclude)] = -np.inf
    order = np.argsort(-similarity, kind="stable")[: min(k, len(vectors.words) - len(exclude))]
    return [(vectors.words[i], float(similarity[i])) for i in order]


def nearest_neighbours(run_dir_or_vectors: WordVectors | Path | str, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The `k` words most cosine-similar to `word` (itself excluded), most similar first.

    Args:
        run_dir_or_vectors: a `WordVectors`, a run directory or a folder with the projector files.
        word: the query word.
        k: how many neighbours, >= 1.

    Returns:
        (word, cosine similarity) pairs.

    Raises:
        ValueError: `word` has no vector, `k` < 1, or no vectors at the path.
    """
    vectors = _as_vectors(run_dir_or_vectors)
    row = vectors.row(word)
    return _closest(vectors, vectors.unit()[row], k, [row])


def analogy(run_dir_or_vectors: WordVectors | Path | str, a: str, b: str, c: str,
            k: int = 5) -> list[tuple[str, float]]:
    """Words closest to a - b + c ("king" - "man" + "woman" ~ "queen"), the three excluded.

    Unit vectors are combined (3CosAdd of Levy and Goldberg), so a frequent
    word's long vector does not dominate.

    Args:
        run_dir_or_vectors: a `WordVectors`, a run directory or a folder with the projector files.
        a, b, c: the words of a - b + c.
        k: how many answers, >= 1.

    Returns:
        (word, cosine similarity to a - b + c) pairs, best first.

    Raises:
        ValueError: a word has no vector, or `k` < 1.
    """
    vectors = _as_vectors(run_dir_or_vectors)
    rows = [vectors.row(w) for w in (a, b, c)]
    unit = vectors.unit()
    return _closest(vectors, unit[rows[0]] - unit[rows[1]] + unit[rows[2]], k, rows)


def group_neighbour_score(vectors: WordVectors, groups: Mapping[str, object], k: int = 5) -> float:
    """The share of grouped words whose `k` nearest neighbours (among all words) all share their group.

    Words without a group (fillers) can be neighbours, and then count as
    outside the group; they are not scored themselves.

    Args:
        vectors: the word vectors.
        groups: word -> group, for the words to score.
        k: neighbours per word, >= 1.

    Returns:
        A fraction in [0, 1].

    Raises:
        ValueError: no word of `groups` has a vector, or `k` < 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scored = [vectors.index[w] for w in groups if w in vectors.index]
    if not scored:
        raise ValueError("none of the grouped words has a vector; check min_count and the corpus")
    unit = vectors.unit()
    similarity = unit[scored] @ unit.T
    similarity[np.arange(len(scored)), scored] = -np.inf
    neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    label = np.array([groups.get(w) for w in vectors.words], dtype=object)
    same = label[neighbours] == label[scored][:, None]
    return float(np.mean(same.all(axis=1)))
