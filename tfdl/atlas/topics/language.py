"""Atlas entries 61-70: word embeddings, word2vec, GloVe, recurrent layers, Transformers, BERT, MLM, GPT, seq2seq."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson
from tfdl.atlas.topics.fitting import fit_steps


def _planted(seed: int, sentences: int, groups: int = 5, words_per_group: int = 8):
    """A planted corpus (words of a group co-occur), its vocabulary, and the group of each vocabulary word (-1: filler)."""
    import numpy as np

    from tfdl.pipelines.planted_corpus import planted_corpus
    from tfdl.pipelines.word_vocabulary import build_word_vocabulary

    corpus = planted_corpus(sentences, seed, groups=groups, words_per_group=words_per_group, fillers=4,
                            filler_rate=0.3)
    vocabulary = build_word_vocabulary(corpus.sentences, min_count=1)
    word_group = np.array([corpus.word_groups.get(w, -1) for w in vocabulary.words])
    return corpus, vocabulary, word_group


def _cosine(vectors):
    import numpy as np

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def _group_similarity(vectors, word_group):
    """Mean cosine similarity within groups and across groups, and the share of group words whose nearest
    other word is in their group (fillers excluded throughout)."""
    import numpy as np

    keep = word_group >= 0
    similarity = _cosine(vectors[keep])
    groups = word_group[keep]
    same = groups[:, None] == groups[None, :]
    off = ~np.eye(len(groups), dtype=bool)
    np.fill_diagonal(similarity, -np.inf)
    nearest_in_group = float(np.mean(groups[similarity.argmax(1)] == groups))
    np.fill_diagonal(similarity, 1.0)
    return float(similarity[same & off].mean()), float(similarity[~same].mean()), nearest_in_group


@atlas_entry(
    61,
    formula=r"e_w = E^\top \operatorname{onehot}(w) = E_{w,:},\qquad E \in \mathbb{R}^{|V| \times d},\ d \ll |V|;"
    r"\qquad \cos(e_u, e_v) = \frac{e_u \cdot e_v}{\lVert e_u \rVert \lVert e_v \rVert}",
    see=("tfdl.layers.TokenAndPositionEmbedding", "tfdl.pipelines.vectorize", "tfdl.models.build_model"),
)
def word_embeddings(lesson: Lesson) -> None:
    """A **word embedding** maps each word of a vocabulary to a dense vector of a few
    dozen to a few hundred real numbers, learned so that words used alike get similar
    vectors. Technically it is a lookup table $E$ with one row per word; multiplying a
    one-hot vector by $E$ picks that row, which is what `keras.layers.Embedding` does
    without the multiplication.

    The alternative, a **one-hot** vector per word, is as long as the vocabulary and
    treats every pair of words as equally different: all distances are $\\sqrt2$, all
    similarities 0, so "hot" is as far from "warm" as from "keyboard", and nothing a
    model learns about one word carries over to another. Embeddings fix both problems:
    they are short (a 50 000-word vocabulary in 300 numbers) and their geometry
    encodes meaning, so similar words share statistical strength and rare words
    borrow from frequent neighbours. That is why nearly every NLP model starts with
    one, either trained with the task, pretrained on raw text (word2vec, GloVe,
    question 62-63) or contextual (BERT, question 66).

    The example trains an embedding of 8 numbers per word as the first layer of a
    small topic classifier on a corpus where words of the same topic co-occur, then
    compares the geometry of one-hot vectors and learned vectors.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    corpus, vocabulary, word_group = _planted(lesson.seed, sentences=lesson.budget(1500, 4000))
    x = np.array([vocabulary.encode(s) for s in corpus.sentences], dtype="int32")  # 12 words each
    y = corpus.sentence_groups

    one_hot = np.eye(len(vocabulary.words))
    distances = np.linalg.norm(one_hot[:, None] - one_hot[None], axis=-1)[~np.eye(len(one_hot), dtype=bool)]
    one_hot_same, one_hot_other, _ = _group_similarity(one_hot, word_group)

    model = keras.Sequential([keras.Input((x.shape[1],), dtype="int32"),
                              keras.layers.Embedding(len(vocabulary.words), 8, name="embedding"),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(5, activation="softmax")])
    fit_steps(model, x, y, steps=lesson.budget(150, 600), learning_rate=0.02, seed=lesson.seed)
    vectors = model.get_layer("embedding").embeddings.numpy()
    same, other, nearest = _group_similarity(vectors, word_group)
    lesson.table("Cosine similarity between words (fillers excluded)",
                 ("representation", "size per word", "same topic", "different topic", "nearest word in same topic"),
                 [("one-hot", len(vocabulary.words), one_hot_same, one_hot_other, "undefined (all tie)"),
                  ("learned embedding", 8, same, other, nearest)])
    lesson.number("one-hot: smallest distance between two words", float(distances.min()))
    lesson.number("one-hot: largest distance between two words", float(distances.max()))
    lesson.number("embedding: mean similarity, same topic", same)
    lesson.number("embedding: mean similarity, different topic", other)
    lesson.number("embedding: words whose nearest word shares their topic", nearest)

    order = np.argsort(word_group, kind="stable")
    order = order[word_group[order] >= 0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    for ax, matrix, title in ((axes[0], _cosine(one_hot), "one-hot vectors"),
                              (axes[1], _cosine(vectors), "learned 8-dimensional embedding")):
        image = ax.imshow(matrix[np.ix_(order, order)], cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set(title=f"Cosine similarity, {title}", xlabel="word (sorted by topic)", ylabel="word (sorted by topic)")
    fig.colorbar(image, ax=axes, shrink=0.8)
    lesson.figure(fig, "similarity", "Word-word cosine similarity, words sorted by topic (5 topics of 8 words). "
                  "One-hot vectors are all orthogonal; the learned embedding shows a block per topic.")

    lesson.check("one-hot vectors put every pair of words at the same distance sqrt(2)",
                 np.allclose(distances, np.sqrt(2)), f"{distances.min():.4f}..{distances.max():.4f}")
    lesson.check("learned vectors of the same topic are far more similar than of different topics "
                 "(mean cosine gap > 0.5)", same - other > 0.5, f"{same:.2f} vs {other:.2f}")
    lesson.check("every word's nearest learned vector belongs to a word of its topic (>= 0.95 of words)",
                 nearest >= 0.95, f"{nearest:.3f}")


def _word2vec(lesson: Lesson, vocabulary, ids, sentence, *, steps: int, dimension: int = 16):
    """Skip-gram with negative sampling trained for `steps` batches of 1024 (word, context) pairs."""
    import keras

    from tfdl.models import build_model
    from tfdl.pipelines.skipgram import word2vec_dataset

    feed = word2vec_dataset(ids, sentence, vocabulary.counts, architecture="skipgram", window=5, negatives=5,
                            sample=1e-3, batch_size=1024, seed=lesson.seed, steps=steps)
    model = build_model("word2vec", {"vocabulary_size": len(vocabulary.words), "embedding_dim": dimension,
                                     "seed": lesson.seed})
    model.compile(keras.optimizers.Adam(0.02), steps_per_execution=steps)
    return model, feed


@atlas_entry(
    62,
    formula=r"\mathcal{L} = -\log \sigma\big(u_{c}^\top v_{w}\big) - \sum_{k=1}^{K} \log \sigma\big(-u_{n_k}^\top v_{w}\big),"
    r"\qquad n_k \sim P(w)^{3/4}",
    see=("tfdl.models.build_model",),
    configs=("planted_word2vec", "python_help_word2vec"),
)
def word2vec(lesson: Lesson) -> None:
    """**word2vec** (Mikolov et al., 2013) learns word vectors from raw text by making them
    good at a fake prediction task built from the text itself. *Skip-gram* takes each
    word $w$ and asks its vector $v_w$ to predict the words $c$ within a few positions
    of it; *CBOW* averages the context's vectors to predict the word in the middle. A
    softmax over the whole vocabulary would be expensive, so **negative sampling**
    turns the prediction into binary classification: raise
    $\\sigma(u_c^\\top v_w)$ for the real context word and lower it for $K$ random
    "noise" words drawn from the unigram distribution to the power 3/4 (formula).
    Frequent words such as "the" are also *subsampled*, dropped with a probability that
    grows with their frequency.

    Because words that appear in the same contexts receive the same gradient pushes,
    their vectors end up close: the distributional hypothesis ("a word is known by the
    company it keeps") made into an optimisation problem. The input table $v$ is kept
    as the embedding; the context table $u$ is usually thrown away. The vectors are
    static: one per word, whatever its sense in a given sentence.

    The example trains tfdl's skip-gram model on a generated corpus where the words of
    each of 5 groups co-occur, and measures whether each word's neighbours are in its
    group, before and after training.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.pipelines.word_vocabulary import encode_corpus

    corpus, vocabulary, word_group = _planted(lesson.seed, sentences=lesson.budget(1500, 4000))
    ids, sentence = encode_corpus(corpus.sentences, vocabulary)
    steps = lesson.budget(40, 200)
    model, feed = _word2vec(lesson, vocabulary, ids, sentence, steps=steps)
    before = _group_similarity(model.vectors(), word_group)
    history = model.fit(feed, steps_per_epoch=steps, epochs=1, verbose=0)
    after = _group_similarity(model.vectors(), word_group)
    vectors = model.vectors()
    rows = [(name, *values) for name, values in (("random initialization", before), (f"after {steps} steps", after))]
    lesson.table("Skip-gram vectors (fillers excluded)",
                 ("vectors", "mean cosine, same group", "mean cosine, other groups", "nearest word in same group"),
                 rows)
    nearest_after = lesson.number("words whose nearest neighbour is in their group, trained", after[2])
    lesson.number("words whose nearest neighbour is in their group, untrained", before[2])
    lesson.number("final training loss", float(history.history["loss"][-1]))

    query = vocabulary.words.index("g00_w00")
    similarity = _cosine(vectors)[query]
    top = [i for i in np.argsort(-similarity) if i != query][:5]
    lesson.table("Nearest neighbours of g00_w00 (group 0, word 0)", ("word", "cosine"),
                 [(vocabulary.words[i], similarity[i]) for i in top])

    centred = vectors - vectors.mean(0)
    projected = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    for group in range(5):
        ax.scatter(*projected[word_group == group].T, s=25, label=f"group {group}")
    ax.scatter(*projected[word_group < 0].T, s=40, marker="x", color="black", label="fillers")
    ax.set(xlabel="principal component 1", ylabel="principal component 2", title="Skip-gram vectors, first two PCs")
    ax.legend(fontsize=8)
    lesson.figure(fig, "word2vec", "The learned 16-dimensional vectors projected on their first two principal "
                  "components: words that share contexts (a group) cluster; fillers that occur everywhere do not.")

    lesson.check("untrained, a word's nearest neighbour is in its group only by chance (<= 0.5)", before[2] <= 0.5,
                 f"{before[2]:.3f}")
    lesson.check("trained, every word's nearest neighbour is in its group (>= 0.95)", nearest_after >= 0.95,
                 f"{nearest_after:.3f}")
    lesson.check("vectors of a group are more similar than of different groups (mean cosine gap > 0.4)",
                 after[0] - after[1] > 0.4, f"{after[0]:.2f} vs {after[1]:.2f}")


@atlas_entry(
    63,
    formula=r"J = \sum_{i,j:\,X_{ij} > 0} f(X_{ij})\,\big(w_i^\top \tilde w_j + b_i + \tilde b_j - \log X_{ij}\big)^2,"
    r"\qquad f(x) = \min\!\big(1, (x / x_{\max})^{\alpha}\big)",
    see=("tfdl.models.build_model",),
    configs=("planted_glove",),
)
def glove(lesson: Lesson) -> None:
    """**GloVe** (Global Vectors, Pennington et al., 2014) learns word vectors from the
    corpus's global **co-occurrence matrix**: $X_{ij}$ counts how often word $j$ appears
    within a window of word $i$ (weighted by $1/\\text{distance}$). It fits two vectors
    and two biases per word so that $w_i^\\top \\tilde w_j + b_i + \\tilde b_j \\approx
    \\log X_{ij}$ (formula), a weighted least-squares problem over the non-zero cells;
    the weight $f$ stops rare, noisy pairs from counting much and frequent pairs from
    dominating. Ratios of co-occurrence probabilities then become differences of
    vectors, which is where the linear analogies come from. The kept vector is
    $w + \\tilde w$.

    **word2vec** optimises a local prediction task instead: it streams over the text, one
    (word, context) pair at a time, and never builds the matrix. The two are closer
    than they look (skip-gram with negative sampling implicitly factorises a shifted
    matrix of pointwise mutual information), and on most tasks their vectors perform
    alike. The practical differences: GloVe counts once and then trains on the
    non-zero cells, whose number stops growing with the corpus size, so training
    epochs are cheap and the objective is explicit; word2vec needs no matrix in
    memory, can learn online from new text, and each epoch costs time proportional to
    the corpus.

    The example counts co-occurrences in the planted corpus of question 62, checks tfdl's
    GloVe loss against the formula in numpy, trains it, and trains skip-gram on the
    same corpus for comparison.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines.cooccurrence import cooccurrence_counts, glove_dataset
    from tfdl.pipelines.word_vocabulary import encode_corpus

    corpus, vocabulary, word_group = _planted(lesson.seed, sentences=lesson.budget(1500, 4000))
    ids, sentence = encode_corpus(corpus.sentences, vocabulary)
    cells = cooccurrence_counts(ids, sentence, len(vocabulary.words), window=10)
    model = build_model("glove", {"vocabulary_size": len(vocabulary.words), "embedding_dim": 16, "x_max": 100.0,
                                  "alpha": 0.75, "seed": lesson.seed})
    steps = lesson.budget(100, 600)
    model.compile(keras.optimizers.Adam(0.05), steps_per_execution=50)
    model.fit(glove_dataset(cells, batch_size=256, seed=lesson.seed).repeat(), steps_per_epoch=steps, epochs=1,
              verbose=0)

    # The objective, recomputed in numpy from the trained tables.
    every_cell = {"rows": cells.rows, "columns": cells.columns, "counts": cells.counts}
    keras_loss = float(model.compute_loss(x=every_cell, y_pred=model(every_cell)))
    w, w_tilde = model.word_vectors.embeddings.numpy(), model.context_vectors.embeddings.numpy()
    b, b_tilde = model.word_biases.embeddings.numpy()[:, 0], model.context_biases.embeddings.numpy()[:, 0]
    fitted = (w[cells.rows] * w_tilde[cells.columns]).sum(1) + b[cells.rows] + b_tilde[cells.columns]
    weight = np.minimum(1.0, (cells.counts / 100.0) ** 0.75)
    numpy_loss = float(np.mean(weight * (fitted - np.log(cells.counts)) ** 2))
    lesson.number("GloVe loss, tfdl", keras_loss)
    lesson.number("GloVe loss, numpy formula", numpy_loss)
    correlation = lesson.number("correlation of w.w~ + b + b~ with log X",
                                float(np.corrcoef(fitted, np.log(cells.counts))[0, 1]))
    glove_scores = _group_similarity(model.vectors(), word_group)

    skipgram, feed = _word2vec(lesson, vocabulary, ids, sentence, steps=lesson.budget(40, 200))
    skipgram.fit(feed, steps_per_epoch=lesson.budget(40, 200), epochs=1, verbose=0)
    word2vec_scores = _group_similarity(skipgram.vectors(), word_group)
    lesson.table("Two routes to word vectors on the same corpus",
                 ("method", "trains on", "mean cosine, same group", "other groups", "nearest word in group"),
                 [("GloVe", f"{len(cells)} non-zero cells of X (counted once)", *glove_scores),
                  ("word2vec skip-gram", f"(word, context) pairs streamed from {len(ids)} words", *word2vec_scores)])
    lesson.number("GloVe: words whose nearest neighbour is in their group", glove_scores[2])
    lesson.number("word2vec: words whose nearest neighbour is in their group", word2vec_scores[2])

    order = np.argsort(word_group, kind="stable")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    image = axes[0].imshow(np.log1p(cells.dense()[np.ix_(order, order)]), cmap="magma")
    axes[0].set(title="log(1 + X): co-occurrence counts", xlabel="word (by group, fillers first)",
                ylabel="word (by group, fillers first)")
    fig.colorbar(image, ax=axes[0], shrink=0.8)
    axes[1].scatter(np.log(cells.counts), fitted, s=4, alpha=0.5)
    line = np.array([np.log(cells.counts).min(), np.log(cells.counts).max()])
    axes[1].plot(line, line, color="gray", ls=":", label="y = x")
    axes[1].set(xlabel="log X_ij", ylabel="w_i . w~_j + b_i + b~_j", title="What GloVe fits")
    axes[1].legend()
    lesson.figure(fig, "glove", "Left: the co-occurrence matrix GloVe factorises (one block per group, fillers "
                  "co-occur with all). Right: the trained model's prediction against log X for every non-zero cell.")

    lesson.check("tfdl's GloVe loss equals the weighted least-squares formula computed in numpy (relative < 1e-4)",
                 abs(keras_loss - numpy_loss) <= 1e-4 * max(numpy_loss, 1e-6), f"{keras_loss:.6f} vs {numpy_loss:.6f}")
    lesson.check("the trained dot products track log X (correlation > 0.9)", correlation > 0.9, f"{correlation:.3f}")
    lesson.check("GloVe and word2vec both put every word's nearest neighbour in its group (>= 0.95)",
                 glove_scores[2] >= 0.95 and word2vec_scores[2] >= 0.95,
                 f"GloVe {glove_scores[2]:.3f}, word2vec {word2vec_scores[2]:.3f}")


@atlas_entry(
    67,
    formula=r"\mathcal{L}_{\text{MLM}} = -\frac{1}{|M|} \sum_{i \in M} \log p_\theta\big(x_i \mid \tilde x\big),"
    r"\qquad M \subset \{\text{real tokens}\},\ |M| \approx 15\%;\ \ "
    r"\tilde x_i = \begin{cases} \texttt{[MASK]} & 80\% \\ \text{random word} & 10\% \\ x_i & 10\% \end{cases}",
    see=("tfdl.models.build_bert_mlm", "tfdl.models.build_bert_encoder", "tfdl.losses.MaskedSparseCategoricalCrossentropy"),
)
def masked_language_modeling(lesson: Lesson) -> None:
    """**Masked language modelling** is the self-supervised task BERT is pretrained on:
    hide some tokens of a sentence and train the model to recover them from the
    tokens around them, on *both* sides. Any text provides the labels for free. Unlike
    a left-to-right language model, the prediction at position $i$ may use the whole
    sentence, so the encoder learns representations that combine left and right
    context.

    BERT's recipe: choose 15% of the real tokens (never padding or special tokens) as
    prediction targets. Of those, replace 80% with `[MASK]`, 10% with a random word and
    leave 10% unchanged. If every target were `[MASK]`, the model could learn to work
    only at `[MASK]` positions, a token it never sees when fine-tuned on real text; the
    random and unchanged cases force it to keep a good representation of every token,
    since any of them might be a target. The loss is the cross-entropy at the chosen
    positions only (the formula's $M$), so the other 85% of positions give no gradient
    directly; tfdl labels them 0 and lets `MaskedSparseCategoricalCrossentropy` skip
    them. tfdl draws a new mask every time a sentence is seen (dynamic masking, as in
    RoBERTa).

    The example runs tfdl's masking on 2 000 padded sequences and counts what it did.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.losses import MaskedSparseCategoricalCrossentropy
    from tfdl.models.bert import CLS, FIRST_WORD, MASK
    from tfdl.pipelines.masked_language_modeling import mask_tokens

    rng = np.random.default_rng(lesson.seed)
    vocabulary_size, sequences, longest = 1000, lesson.budget(2000, 20000), 64
    ids = rng.integers(FIRST_WORD, vocabulary_size, (sequences, longest)).astype("int32")
    lengths = rng.integers(16, longest + 1, sequences)
    ids[np.arange(longest)[None, :] >= lengths[:, None]] = 0  # padding
    ids[:, 0] = CLS
    masked, labels = mask_tokens(tf.constant(ids), tf.constant([lesson.seed, 7]), mask_id=MASK,
                                 vocabulary_size=vocabulary_size, first_word_id=FIRST_WORD)
    masked, labels = masked.numpy(), labels.numpy()

    real = ids >= FIRST_WORD
    chosen = labels > 0
    to_mask = chosen & (masked == MASK)
    kept = chosen & (masked == ids)
    randomized = chosen & (masked != MASK) & (masked != ids)
    share = {
        "chosen / real tokens": chosen.sum() / real.sum(),
        "[MASK] / chosen": to_mask.sum() / chosen.sum(),
        "random word / chosen": randomized.sum() / chosen.sum(),
        "unchanged / chosen": kept.sum() / chosen.sum(),
    }
    for name, value in share.items():
        lesson.number(name, float(value))
    special_chosen = int((chosen & ~real).sum())
    changed_outside = int((masked != ids)[~chosen].sum())
    labels_right = bool(np.array_equal(labels[chosen], ids[chosen]))
    lesson.table("What tfdl's masking did", ("share", "measured", "BERT's rule"),
                 [(name, value, rule) for (name, value), rule in zip(share.items(), (0.15, 0.8, 0.1, 0.1))])
    lesson.table("One sequence (first 12 positions; 2 = [CLS], 3 = [MASK], 0 = padding)",
                 ("", *range(12)), [("input", *ids[0, :12]), ("masked", *masked[0, :12]), ("label", *labels[0, :12])])

    # The loss counts the chosen positions only: compare with the mean over them in numpy.
    logits = rng.normal(size=(8, longest, vocabulary_size)).astype("float32")
    loss = float(MaskedSparseCategoricalCrossentropy(from_logits=True)(labels[:8], logits))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = float(-np.mean(log_probs[:8][chosen[:8]][np.arange(chosen[:8].sum()), labels[:8][chosen[:8]]]))
    lesson.number("loss, tfdl", loss)
    lesson.number("loss, numpy mean over chosen positions", expected)

    fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
    names = list(share)
    ax.bar(np.arange(4) - 0.2, [share[n] for n in names], width=0.4, label="measured")
    ax.bar(np.arange(4) + 0.2, (0.15, 0.8, 0.1, 0.1), width=0.4, label="BERT's rule")
    ax.set_xticks(range(4), names, fontsize=8)
    ax.set(ylabel="share", title=f"Masking {sequences} sequences")
    ax.legend()
    lesson.figure(fig, "masking", "Shares of tokens chosen and of what happened to them, against the 15% / "
                  "80-10-10 rule.")

    lesson.check("about 15% of real tokens are chosen (0.14-0.16)", 0.14 <= share["chosen / real tokens"] <= 0.16,
                 f"{share['chosen / real tokens']:.4f}")
    lesson.check("of those, 80% / 10% / 10% become [MASK] / a random word / stay (each within 0.02)",
                 all(abs(share[n] - r) <= 0.02 for n, r in zip(names[1:], (0.8, 0.1, 0.1))),
                 ", ".join(f"{share[n]:.3f}" for n in names[1:]))
    lesson.check("padding and [CLS] are never chosen, nothing else is changed, labels hold the original ids",
                 special_chosen == 0 and changed_outside == 0 and labels_right,
                 f"{special_chosen} special chosen, {changed_outside} changed outside")
    lesson.check("the loss is the mean cross-entropy over the chosen positions only (numpy, < 1e-4)",
                 abs(loss - expected) < 1e-4, f"{loss:.5f} vs {expected:.5f}")


@atlas_entry(
    68,
    formula=r"\text{GPT: } p(x) = \prod_t p(x_t \mid x_{<t}),\ \text{mask } M_{ij} = [j \le i];\qquad "
    r"\text{BERT: } p(x_i \mid x_{\setminus i}),\ M_{ij} = 1",
    see=("tfdl.models.build_gpt", "tfdl.models.build_bert_encoder", "tfdl.models.generate",
         "tfdl.layers.TransformerDecoderBlock", "tfdl.layers.TransformerEncoderBlock"),
    configs=("sentences_gpt",),
)
def gpt_vs_bert(lesson: Lesson) -> None:
    """**GPT** (Generative Pre-trained Transformer) is a stack of Transformer *decoder*
    blocks trained as a left-to-right language model: predict each token from the
    tokens before it. A **causal mask** stops position $i$ from attending to positions
    after it, so every position of a training sentence is a prediction of the next
    token, all computed in one pass. Generating text is repeating that: predict, sample,
    append, predict again. Scaled up, the same model answers prompts, follows
    instructions and learns tasks from examples in its prompt.

    **BERT** is a stack of *encoder* blocks with no mask: every position sees the whole
    input, left and right, and it is pretrained by masked language modelling (question
    67). That makes it a strong *reader* (each token's vector uses its full context)
    but not a writer: it has no way to produce text left to right. So BERT is
    fine-tuned for understanding tasks (classification, tagging, extractive question
    answering, retrieval embeddings), GPT for generation, or prompted without
    fine-tuning. Both learn from raw text; the mask is the architectural difference,
    the objective follows from it.

    The example builds a small GPT and a small BERT encoder, changes one token in the
    middle of a sequence, and measures how much each output position moves.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model

    size = {"vocabulary_size": 50, "max_length": 16, "embed_dim": 16, "num_heads": 2, "num_layers": 2,
            "intermediate_dim": 32, "dropout": 0.0}
    models = {"GPT (causal decoder)": build_model("gpt", size), "BERT (bidirectional encoder)": build_model("bert", size)}
    rng = np.random.default_rng(lesson.seed)
    tokens = rng.integers(4, 50, (1, 12)).astype("int32")
    edited, where = tokens.copy(), 6
    edited[0, where] = 4 + (tokens[0, where] - 4 + 1 + rng.integers(45)) % 46  # a different word
    change = {}
    for name, model in models.items():
        before, after = model(tokens).numpy()[0], model(edited).numpy()[0]
        change[name] = np.abs(after - before).max(axis=-1)
    gpt, bert = change["GPT (causal decoder)"], change["BERT (bidirectional encoder)"]
    lesson.number("GPT: largest change before the edited position", float(gpt[:where].max()))
    lesson.number("GPT: smallest change from the edited position on", float(gpt[where:].min()))
    lesson.number("BERT: smallest change before the edited position", float(bert[:where].min()))
    lesson.table("Largest change of each output position's vector when token 6 changes",
                 ("position", *change), [(i, gpt[i], bert[i]) for i in range(tokens.shape[1])])

    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    positions = np.arange(tokens.shape[1])
    for offset, (name, values) in zip((-0.2, 0.2), change.items()):
        ax.bar(positions + offset, values, width=0.4, label=name)
    ax.axvline(where, color="gray", ls=":", label="edited token")
    ax.set(xlabel="output position", ylabel="max |change| of the output",
           title="Change one input token: which outputs move?")
    ax.legend(fontsize=8)
    lesson.figure(fig, "causal_mask", "GPT's outputs before the edited token do not move at all (the causal mask); "
                  "BERT's every output does (bidirectional attention).")

    lesson.check("GPT: outputs before the edited token are unchanged (exactly, < 1e-6)", gpt[:where].max() < 1e-6,
                 f"{gpt[:where].max():.1e}")
    lesson.check("GPT: outputs from the edited token on change (> 1e-3)", gpt[where:].min() > 1e-3,
                 f"{gpt[where:].min():.2e}")
    lesson.check("BERT: every output changes, before the edit too (> 1e-3)", bert.min() > 1e-3, f"{bert.min():.2e}")


@atlas_entry(
    64,
    formula=r"h_t = f(h_{t-1}, x_t),\qquad \hat y = \operatorname{softmax}(W h_T + b)",
    see=("tfdl.models.build_rnn", "tfdl.models.RNNConfig", "tfdl.pipelines.pad_sequences"),
    configs=("sentences_lstm",),
)
def recurrent_layers_in_nlp(lesson: Lesson) -> None:
    """Text is a sequence whose meaning depends on order and whose length varies: "the
    dog bit the man" and "the man bit the dog" contain the same words. A **recurrent
    layer** (SimpleRNN, LSTM, GRU) reads the tokens one at a time and updates a hidden
    state $h_t = f(h_{t-1}, x_t)$ with the same weights at every step, so it handles any
    length, its state can remember what came earlier (an LSTM's gates decide what to
    keep), and its outputs depend on the order of the words. Padding is skipped with a
    mask, so batches can mix lengths.

    In NLP the state serves three ways: the last state summarises a sentence for
    classification (sentiment, topic); the state at every step labels each token
    (part-of-speech tags, named entities), often read in both directions by a
    bidirectional layer; and a recurrent decoder generates text one token at a time
    (language models, the seq2seq models of questions 69-70). Transformers have
    replaced RNNs in most large models (question 65), but recurrent layers remain cheap
    per token, stream naturally and need no position encoding.

    The example contrasts an LSTM with a bag-of-words model (the average of the word
    embeddings, which ignores order) on a task that is only about order: sequences of
    4 to 10 tokens containing A and B once each; is A before B? The test set holds every
    sequence together with its A/B swap.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model

    rng = np.random.default_rng(lesson.seed)
    longest, vocabulary = 10, 20

    def sequences(n):  # A = 1, B = 2, fillers 3..19, padding 0 after the end
        x = np.zeros((n, longest), "int32")
        for row, size in zip(x, rng.integers(4, longest + 1, n)):
            row[:size] = rng.integers(3, vocabulary, size)
            row[rng.choice(size, 2, replace=False)] = (1, 2)
        return x, (np.argmax(x == 1, 1) < np.argmax(x == 2, 1)).astype("int32")

    x, y = sequences(2000)
    x_test, y_test = sequences(250)
    swapped = np.where(x_test == 1, 2, np.where(x_test == 2, 1, x_test))
    x_test, y_test = np.concatenate([x_test, swapped]), np.concatenate([y_test, 1 - y_test])

    bag = keras.Sequential([keras.Input((longest,), dtype="int32"),
                            keras.layers.Embedding(vocabulary, 16, mask_zero=True),
                            keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(16, activation="relu"),
                            keras.layers.Dense(2, activation="softmax")])
    lstm = build_model("rnn", {"vocabulary_size": vocabulary, "max_length": longest, "embed_dim": 16, "cell": "lstm",
                               "units": [32], "num_classes": 2})
    accuracy, curves = {}, {}
    checkpoints = lesson.budget((10, 25, 50), (10, 25, 50, 100, 200))
    for name, model in (("bag of words (mean of embeddings)", bag), ("LSTM", lstm)):
        feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=lesson.seed).repeat().batch(64)
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
        curves[name], done = [], 0
        for steps in checkpoints:  # one compiled model, trained on in stretches
            model.fit(feed, steps_per_epoch=steps - done, epochs=1, verbose=0)
            done = steps
            curves[name].append(float(np.mean(model(x_test).numpy().argmax(-1) == y_test)))
        accuracy[name] = lesson.number(f"{name}: test accuracy", curves[name][-1])
    lesson.table("Is A before B? (test set: each sequence and its A/B swap)", ("model", "test accuracy"),
                 list(accuracy.items()))

    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    for name, values in curves.items():
        ax.plot(checkpoints, values, "o-", label=name)
    ax.axhline(0.5, color="gray", ls=":", label="chance")
    ax.set(xlabel="training steps", ylabel="test accuracy", ylim=(0.3, 1.05), title="An order-only task")
    ax.legend(loc="center right")
    lesson.figure(fig, "order", "Test accuracy during training. The bag of words sees the same input for a "
                  "sequence and its swap, so it stays at chance; the LSTM reads in order and learns the task.")

    lesson.check("the bag of words cannot tell A..B from B..A (accuracy within 0.02 of 0.5)",
                 abs(accuracy["bag of words (mean of embeddings)"] - 0.5) <= 0.02,
                 f"{accuracy['bag of words (mean of embeddings)']:.3f}")
    lesson.check("the LSTM learns the order (accuracy >= 0.9)", accuracy["LSTM"] >= 0.9, f"{accuracy['LSTM']:.3f}")


@atlas_entry(
    65,
    formula=r"\text{path length between tokens } k \text{ apart: RNN } O(k),\ \text{Transformer } O(1);\qquad "
    r"\text{sequential steps per layer: RNN } T,\ \text{Transformer } 1",
    see=("tfdl.models.build_transformer_classifier", "tfdl.models.build_rnn", "tfdl.layers.TransformerEncoderBlock"),
)
def transformer_improves_on_rnns(lesson: Lesson) -> None:
    """Before 2017 the standard NLP model was an LSTM or GRU, often with attention on
    top (question 70). The **Transformer** dropped the recurrence and kept only
    attention, and that improved three things. *Long-range dependencies*: in an RNN,
    word $t$ reaches word $t + k$ only through $k$ state updates, and the gradient that
    would link them is a product of $k$ Jacobians that usually fades, so a dependency
    across a long sentence is learned slowly or not at all; in self-attention every
    pair of words is one step apart (question 31 measures this at initialization).
    *Parallel training*: an RNN layer needs $T$ steps one after the other, while a
    Transformer layer processes all $T$ positions in a few matrix products, which is
    what GPUs and TPUs are built for; training on billions of words became practical.
    *Transfer*: deep stacks of identical blocks trained on raw text (BERT, GPT,
    questions 66-68) turned out to carry over to almost every NLP task.

    The costs: attention compares every pair of positions, so time and memory grow as
    $T^2$ (on a CPU and for long inputs an LSTM can be faster per sequence), and word
    order must be supplied by position encodings (question 33). Generating text is
    still one token at a time for both; the Transformer's advantage there is in
    training and in reading the prompt.

    The example trains a one-layer LSTM and a one-block Transformer classifier, with
    the same data, steps and optimizer, to name the *first* token of a sequence of $L$
    random tokens from the same four symbols: the answer lies $L - 1$ steps back from
    where the LSTM's final state is read.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model

    rng = np.random.default_rng(lesson.seed)
    symbols = 4  # token ids 1..4; the label is the first token
    lengths, steps = lesson.budget((32,), (4, 8, 16, 32, 64)), lesson.budget(100, 200)

    def sequences(n, length):
        x = rng.integers(1, symbols + 1, (n, length)).astype("int32")
        return x, x[:, 0] - 1

    accuracy = {"LSTM": [], "Transformer": []}
    for length in lengths:
        (x, y), (x_test, y_test) = sequences(2000, length), sequences(500, length)
        models = {
            "LSTM": build_model("rnn", {"vocabulary_size": symbols + 1, "max_length": length, "embed_dim": 16,
                                        "cell": "lstm", "units": [32], "num_classes": symbols}),
            "Transformer": build_model("transformer_classifier", {
                "vocabulary_size": symbols + 1, "max_length": length, "embed_dim": 32, "num_heads": 2,
                "intermediate_dim": 64, "dropout": 0.0, "num_classes": symbols}),
        }
        for name, model in models.items():
            fit_steps(model, x, y, steps=steps, learning_rate=3e-3, seed=lesson.seed)
            accuracy[name].append(float(np.mean(model(x_test).numpy().argmax(-1) == y_test)))
    lesson.table(f"Test accuracy naming the first token after {steps} training steps (chance 0.25)",
                 ("sequence length L", "LSTM", "Transformer"),
                 [(length, a, b) for length, a, b in zip(lengths, accuracy["LSTM"], accuracy["Transformer"])])
    lstm = lesson.number(f"LSTM: accuracy at L={lengths[-1]}", accuracy["LSTM"][-1])
    transformer = lesson.number(f"Transformer: accuracy at L={lengths[-1]}", accuracy["Transformer"][-1])

    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    for name, values in accuracy.items():
        ax.plot(lengths, values, "o-", label=name)
    ax.axhline(1 / symbols, color="gray", ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(length) for length in lengths])
    ax.set(xlabel="sequence length L (the first token is L - 1 steps from the end)", ylabel="test accuracy",
           ylim=(0, 1.05), title="Name the first token, same training budget")
    ax.legend()
    lesson.figure(fig, "long_range", "The LSTM must carry the first token through L - 1 state updates and "
                  "learns it only for short sequences; the Transformer attends to it directly at any length.")

    lesson.check(f"the Transformer names the first token at L={lengths[-1]} (accuracy >= 0.95)",
                 transformer >= 0.95, f"{transformer:.3f}")
    lesson.check(f"the LSTM, trained the same way, stays near chance at L={lengths[-1]} (accuracy <= 0.4)",
                 lstm <= 0.4, f"{lstm:.3f}")


@atlas_entry(
    66,
    formula=r"\text{pretrain: } \min_\theta\, \mathcal{L}_{\text{MLM}}(\theta; \text{unlabelled text});\qquad "
    r"\text{fine-tune: } \min_{\theta, W}\, \mathcal{L}_{\text{task}}\big(\operatorname{softmax}(W h_{\texttt{[CLS]}}(\theta))\big),"
    r"\ \theta \text{ starting from the pretrained value}",
    see=("tfdl.models.build_bert_encoder", "tfdl.models.build_bert_mlm", "tfdl.models.build_bert_classifier",
         "tfdl.layers.TransformerEncoderBlock"),
)
def bert(lesson: Lesson) -> None:
    """**BERT** (Bidirectional Encoder Representations from Transformers, Devlin et al.,
    2018) is a stack of Transformer encoder blocks that turns a sentence (or a pair of
    sentences) into one vector per token, each computed from the whole sentence, left
    and right. A `[CLS]` token is put first and its vector serves as a summary of the
    input. The model is **pretrained** once, on a large amount of unlabelled text, by
    masked language modelling (question 67; the original also predicted whether two
    sentences follow each other). To recover a hidden word it must work out what the
    sentence is about, so its vectors come to encode syntax, word sense and topic.

    It is then **used** by fine-tuning: put a small head on top (a softmax on the
    `[CLS]` vector for classification, a softmax per token for tagging, start and end
    pointers for extractive question answering, two sentences in one input for
    entailment or similarity) and train head and encoder together briefly on the
    labelled task. Because the encoder already knows the language, a few thousand,
    sometimes a few dozen, labelled examples suffice. Its vectors can also be used as
    frozen features, and sentence-embedding models for search are fine-tuned BERTs.
    BERT reads but does not generate text (question 68).

    The example pretrains a one-block BERT on 2 500 unlabelled sentences of a corpus
    with four topics, where each topic has its own 24 words. Then it gives a linear
    classifier just **two labelled sentences per topic**, using as features the mean
    of the encoder's output vectors, pretrained or at random initialization; the
    cheapest use of BERT, with the encoder frozen.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from tfdl.losses import MaskedSparseCategoricalCrossentropy
    from tfdl.models import build_bert_mlm, build_model
    from tfdl.models.bert import CLS, FIRST_WORD, MASK
    from tfdl.pipelines.masked_language_modeling import masked_lm_dataset
    from tfdl.pipelines.planted_corpus import planted_corpus

    topics, unlabelled, test = 4, 2500, 500
    corpus = planted_corpus(unlabelled + test, lesson.seed, groups=topics, words_per_group=24, fillers=4,
                            filler_rate=0.3, zipf=0.0)
    words = sorted({w for sentence in corpus.sentences for w in sentence})
    ids = np.array([[CLS] + [FIRST_WORD + words.index(w) for w in s] for s in corpus.sentences], "int32")
    topic = corpus.sentence_groups
    size = {"vocabulary_size": FIRST_WORD + len(words), "max_length": ids.shape[1], "embed_dim": 32,
            "num_heads": 2, "num_layers": 1, "intermediate_dim": 64, "dropout": 0.0}
    pretrained, untrained = build_model("bert", size), build_model("bert", size)

    # 1. Pretraining: masked language modelling on the unlabelled sentences (no topic labels).
    mlm = build_bert_mlm(pretrained)
    mlm.compile(keras.optimizers.Adam(3e-3), MaskedSparseCategoricalCrossentropy(from_logits=True),
                steps_per_execution=50)
    steps = lesson.budget(100, 400)
    history = mlm.fit(masked_lm_dataset(ids[:unlabelled], batch_size=64, mask_id=MASK,
                                        vocabulary_size=size["vocabulary_size"], first_word_id=FIRST_WORD,
                                        seed=lesson.seed), steps_per_epoch=steps, epochs=1, verbose=0)
    lesson.number("MLM loss after pretraining", float(history.history["loss"][-1]))
    lesson.number("MLM loss of a uniform guess, log(number of words)", float(np.log(len(words))))

    # 2. The task: two labelled sentences per topic, a linear classifier on the mean encoder vector.
    rng = np.random.default_rng(lesson.seed)
    labelled = np.concatenate([rng.choice(np.flatnonzero(topic[:unlabelled] == t), 2, replace=False)
                               for t in range(topics)])
    held_out = np.arange(unlabelled, unlabelled + test)
    features, accuracy = {}, {}
    for name, encoder in (("BERT, pretrained", pretrained), ("same encoder, random weights", untrained)):
        features[name] = encoder(ids).numpy().mean(axis=1)
        probe = LogisticRegression(C=10, max_iter=2000).fit(features[name][labelled], topic[labelled])
        accuracy[name] = lesson.number(f"{name}: test accuracy",
                                       probe.score(features[name][held_out], topic[held_out]))
    counts = np.stack([np.bincount(row, minlength=size["vocabulary_size"]) for row in ids]).astype("float32")
    bag = LogisticRegression(C=10, max_iter=2000).fit(counts[labelled], topic[labelled])
    accuracy["bag of words"] = lesson.number("bag of words: test accuracy", bag.score(counts[held_out], topic[held_out]))
    lesson.table(f"Topic of {test} held-out sentences from 8 labelled ones (chance 0.25)",
                 ("features of the linear classifier", "test accuracy"), list(accuracy.items()))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    for ax, (name, values) in zip(axes, features.items()):
        centred = values[held_out] - values[held_out].mean(0)
        projected = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        for t in range(topics):
            ax.scatter(*projected[topic[held_out] == t].T, s=6, label=f"topic {t}")
        ax.set(title=f"{name}: accuracy {accuracy[name]:.2f}", xlabel="principal component 1",
               ylabel="principal component 2")
    axes[0].legend(fontsize=8, markerscale=2)
    lesson.figure(fig, "bert_features", "Mean encoder vector of each held-out sentence, first two principal "
                  "components, coloured by topic (never shown to the pretraining). Masked language modelling "
                  "alone sorts the sentences by topic; random weights do not.")

    lesson.check("with 8 labels, pretrained BERT features classify the topic (accuracy >= 0.95)",
                 accuracy["BERT, pretrained"] >= 0.95, f"{accuracy['BERT, pretrained']:.3f}")
    lesson.check("the same encoder without pretraining does not (accuracy <= 0.8, at least 0.2 below)",
                 accuracy["same encoder, random weights"] <= 0.8
                 and accuracy["BERT, pretrained"] - accuracy["same encoder, random weights"] >= 0.2,
                 f"{accuracy['same encoder, random weights']:.3f}")


# Sequence-to-sequence data of entries 69-70: token ids 0 padding, 1 start, 2 end, 3.. symbols.
_START, _END, _FIRST_SYMBOL = 1, 2, 3


def _sequence_pairs(rng, examples: int, shortest: int, longest: int, vocabulary: int, transform):
    """Random sources of `shortest..longest` symbols and `transform(source)` as targets.

    Returns (source, decoder input = [START] + output, target = output + [END], outputs as lists),
    the arrays padded with 0 to `longest` (+1 for the decoder's).
    """
    import numpy as np

    source = np.zeros((examples, longest), "int32")
    decoder_input = np.zeros((examples, longest + 1), "int32")
    target = np.zeros((examples, longest + 1), "int32")
    outputs = []
    for i, size in enumerate(rng.integers(shortest, longest + 1, examples)):
        symbols = rng.integers(_FIRST_SYMBOL, vocabulary, size)
        output = list(transform(symbols))
        source[i, :size] = symbols
        decoder_input[i, 0], decoder_input[i, 1 : len(output) + 1] = _START, output
        target[i, : len(output)], target[i, len(output)] = output, _END
        outputs.append([int(s) for s in output])
    return source, decoder_input, target, outputs


def _teacher_forcing_loss():
    from tfdl.losses import MaskedSparseCategoricalCrossentropy

    return MaskedSparseCategoricalCrossentropy(from_logits=True)  # padding (label 0) is not a target


@atlas_entry(
    69,
    formula=r"h = \operatorname{Encoder}(x_1, \dots, x_n);\quad "
    r"p(y_1, \dots, y_m \mid x) = \prod_{t=1}^{m+1} p\big(y_t \mid y_{<t}, h\big),\ y_{m+1} = \texttt{<end>};\quad "
    r"\mathcal{L} = -\sum_t \log p\big(y_t \mid y^{\text{true}}_{<t}, h\big)",
    see=("tfdl.models.build_seq2seq", "tfdl.models.Seq2Seq", "tfdl.models.greedy_decode",
         "tfdl.models.beam_search", "tfdl.losses.MaskedSparseCategoricalCrossentropy"),
)
def sequence_to_sequence(lesson: Lesson) -> None:
    """A **sequence-to-sequence** (seq2seq) model maps an input sequence to an output
    sequence when the two differ in length and no output token lines up with a
    particular input token: translation, summarization, speech recognition, dialogue.
    An *encoder* (an LSTM in Sutskever et al., 2014; Transformer blocks today) reads
    the whole input into vectors $h$; a *decoder* then writes the output one token at
    a time, each conditioned on $h$ and on the tokens written so far, until it writes
    an `<end>` token. The output's length is therefore a prediction like any other
    token (question 38 discusses the encoder-decoder split itself).

    **Training** uses *teacher forcing*: the decoder reads the true previous tokens
    (`<start>` $y_1 \\dots y_m$) and is trained, by cross-entropy at every position, to
    output the next ones ($y_1 \\dots y_m$ `<end>`), so all positions train in one
    pass. **Inference** has no true tokens: the decoder feeds back its own
    predictions, either the most likely one at each step (*greedy decoding*) or the
    $k$ best partial outputs (*beam search*), which finds more probable sequences at
    $k$ times the cost. Most seq2seq models today add attention between decoder and
    encoder (question 70); tfdl's `Seq2Seq` does.

    The example teaches tfdl's LSTM encoder-decoder to turn 3 to 10 random symbols into
    the sorted list of the *distinct* symbols they contain: the output's length
    depends on the content, not on the input's length. It is tested with greedy
    decoding on sequences it never saw.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model, greedy_decode

    rng = np.random.default_rng(lesson.seed)
    vocabulary, longest = 11, 10  # 8 symbols, ids 3..10

    def distinct_sorted(symbols):
        return sorted(set(symbols.tolist()))

    source, decoder_input, target, _ = _sequence_pairs(rng, 3000, 3, longest, vocabulary, distinct_sorted)
    test_source, _, _, wanted = _sequence_pairs(rng, 400, 3, longest, vocabulary, distinct_sorted)
    seen = {row.tobytes() for row in source}
    new = [i for i, row in enumerate(test_source) if row.tobytes() not in seen][:300]  # never trained on
    test_source, wanted = test_source[new], [wanted[i] for i in new]
    model = build_model("seq2seq", {"source_vocabulary_size": vocabulary, "target_vocabulary_size": vocabulary,
                                    "embed_dim": 16, "units": 32, "max_output_length": longest})
    fit_steps(model, (source, decoder_input), target, steps=lesson.budget(120, 400), learning_rate=1e-2,
         seed=lesson.seed, loss=_teacher_forcing_loss())  # teacher forcing: decoder reads the true tokens

    decoded = greedy_decode(model, test_source).tokens  # inference: decoder reads its own outputs
    lesson.number("held-out test sequences (none in the training set)", len(test_source))
    exact = lesson.number("exact-match accuracy (greedy decoding)", float(np.mean([d == w for d, w in
                                                                                   zip(decoded, wanted)])))
    input_length = (test_source > 0).sum(1)
    output_length = np.array([len(w) for w in wanted])
    decoded_length = np.array([len(d) for d in decoded])
    right_length = lesson.number("outputs of the right length", float(np.mean(decoded_length == output_length)))
    other_length = lesson.number("test pairs whose output is shorter than the input",
                                 float(np.mean(output_length < input_length)))
    lesson.table("Held-out examples, greedy decoding", ("source", "wanted", "decoded"),
                 [(" ".join(map(str, s[s > 0])), " ".join(map(str, w)), " ".join(map(str, d)))
                  for s, w, d in list(zip(test_source, wanted, decoded))[:6]])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    jitter = rng.uniform(-0.2, 0.2, (2, len(input_length)))
    axes[0].scatter(input_length + jitter[0], decoded_length + jitter[1], s=8, alpha=0.6)
    axes[0].set(xlabel="input length", ylabel="length of the decoded output",
                title="The decoder chooses the output's length")
    lengths = np.arange(3, longest + 1)
    axes[1].bar(lengths, [np.mean([d == w for d, w, n in zip(decoded, wanted, input_length) if n == k])
                          for k in lengths])
    axes[1].set(xlabel="input length", ylabel="exact-match accuracy", ylim=(0, 1.05),
                title=f"Held-out sequences: {exact:.2f} exactly right")
    lesson.figure(fig, "seq2seq", "Left: input length against the length of the greedy output (jittered); one "
                  "input length gives many output lengths, set by the content. Right: share of outputs exactly "
                  "right, by input length; no test sequence occurs in the training set.")

    lesson.check("greedy decoding writes the exact output for held-out sequences (>= 0.85)", exact >= 0.85,
                 f"{exact:.3f}")
    lesson.check("output length differs from input length (for >= 0.5 of pairs) and the decoder gets it right "
                 "(>= 0.9)", other_length >= 0.5 and right_length >= 0.9,
                 f"shorter {other_length:.2f}, right length {right_length:.3f}")


@atlas_entry(
    70,
    formula=r"\text{without: } p(y_t \mid y_{<t}, h_n);\qquad \text{with: } "
    r"\alpha_{tj} = \operatorname{softmax}_j\, \operatorname{score}(s_t, h_j),\ c_t = \sum_j \alpha_{tj} h_j,\ "
    r"p(y_t \mid y_{<t}, c_t, s_t)",
    see=("tfdl.models.build_seq2seq", "tfdl.models.greedy_decode", "tfdl.layers.BahdanauAttention",
         "tfdl.layers.LuongAttention"),
)
def attention_in_seq2seq(lesson: Lesson) -> None:
    """In the first seq2seq models the encoder's *final state* $h_n$ was all the decoder
    received: a fixed-size vector that had to hold the entire input, whatever its
    length. That **bottleneck** made quality fall steeply with sentence length, and
    every output token had to be read back out of the same compressed summary.
    **Attention** (Bahdanau et al., 2014; Luong et al., 2015) keeps all the encoder's
    states $h_1 \\dots h_n$ and lets the decoder, at every output step $t$, score them
    against its current state $s_t$, turn the scores into weights $\\alpha_{tj}$ and read
    their weighted average $c_t$ (the formulas are in question 39). Each output token
    looks at the input positions it needs, so the memory grows with the input instead
    of being fixed.

    The gains: long inputs are handled as well as short ones; gradients reach every
    input position directly through $c_t$ instead of through the whole chain of
    encoder steps; and the weights $\\alpha_{tj}$ form a *soft alignment* between output
    and input (in translation, which source words each target word came from), which
    can be plotted and checked. The cost is $n$ scores per output step. Taken to its
    end, with attention also replacing the recurrence inside encoder and decoder, the
    idea becomes the Transformer (questions 31, 65).

    The example trains two LSTM encoder-decoders of the same width to reverse sequences
    of random symbols: tfdl's `Seq2Seq` with Bahdanau attention, and the same design
    without attention, whose decoder starts from the encoder's final state only. A
    test sequence counts as right when every output token, `<end>` included, is right
    given the correct previous ones: exactly when greedy decoding reproduces it.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model, greedy_decode

    rng = np.random.default_rng(lesson.seed)
    vocabulary, longest, units = 13, lesson.budget(10, 16), 32  # 10 symbols, ids 3..12

    def reverse(symbols):
        return symbols[::-1]

    source, decoder_input, target, _ = _sequence_pairs(rng, 4000, 3, longest, vocabulary, reverse)
    test_source, test_input, test_target, _ = _sequence_pairs(rng, 500, 3, longest, vocabulary, reverse)

    with_attention = build_model("seq2seq", {"source_vocabulary_size": vocabulary,
                                             "target_vocabulary_size": vocabulary, "embed_dim": 16,
                                             "units": units, "attention": "bahdanau", "max_output_length": longest})
    # Without attention: the decoder LSTM starts from the encoder's final (h, c) and sees nothing else.
    tokens, previous = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    _, h, c = keras.layers.LSTM(units, return_state=True)(keras.layers.Embedding(vocabulary, 16, mask_zero=True)(tokens))
    decoded = keras.layers.LSTM(units, return_sequences=True)(
        keras.layers.Embedding(vocabulary, 16, mask_zero=True)(previous), initial_state=[h, c])
    without_attention = keras.Model([tokens, previous], keras.layers.Dense(vocabulary)(decoded))

    lengths = (test_source > 0).sum(1)
    sizes = np.arange(3, longest + 1)
    accuracy = {}
    for name, model in (("with attention", with_attention), ("without attention (final state only)",
                                                             without_attention)):
        fit_steps(model, (source, decoder_input), target, steps=lesson.budget(200, 600), learning_rate=1e-2,
             seed=lesson.seed, loss=_teacher_forcing_loss())
        predicted = model((test_source, test_input)).numpy().argmax(-1)
        right = np.all((predicted == test_target) | (test_target == 0), axis=1)
        accuracy[name] = np.array([right[lengths == k].mean() for k in sizes])
    long = sizes > longest - 3  # the three longest lengths
    attended = lesson.number(f"with attention: accuracy, lengths {longest - 2}-{longest}",
                             float(accuracy["with attention"][long].mean()))
    bottleneck = lesson.number(f"without attention: accuracy, lengths {longest - 2}-{longest}",
                               float(accuracy["without attention (final state only)"][long].mean()))
    lesson.number("without attention: accuracy, length 3", float(accuracy["without attention (final state only)"][0]))
    lesson.table("Held-out sequences reversed exactly, by length", ("length", *accuracy),
                 [(k, *(a[i] for a in accuracy.values())) for i, k in enumerate(sizes)])

    # The alignment: where each output step of the attention model looks, on full-length sequences.
    full = test_source[lengths == longest][:40]
    weights = [w for w in greedy_decode(with_attention, full).attention if len(w) == longest]
    mirrored = longest - 1 - np.arange(longest)  # output step t copies input position n - 1 - t
    lesson.number("mean attention weight on the mirrored input position",
                  float(np.mean([w[np.arange(longest), mirrored].mean() for w in weights])))
    mirror = lesson.number("output steps whose largest attention weight is on the mirrored input position",
                           float(np.mean([w.argmax(-1) == mirrored for w in weights])))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9), layout="constrained")
    for name, values in accuracy.items():
        axes[0].plot(sizes, values, "o-", label=name)
    axes[0].set(xlabel="input length", ylabel="exactly reversed", ylim=(-0.02, 1.05),
                title="Reversal, held-out sequences")
    axes[0].legend(fontsize=8)
    image = axes[1].imshow(weights[0], cmap="Blues", vmin=0, vmax=1)
    axes[1].set_xticks(range(longest), full[0], fontsize=7)
    axes[1].set_yticks(range(longest), [str(t) for t in full[0][::-1]], fontsize=7)
    axes[1].set(xlabel="input token", ylabel="output token", title="Attention weights while decoding")
    fig.colorbar(image, ax=axes[1], shrink=0.8)
    lesson.figure(fig, "attention_seq2seq", "Left: without attention the whole input must pass through the "
                  "encoder's final state, and accuracy collapses as sequences grow; with attention it stays high. "
                  "Right: each output step of the attention model looks at the input token it copies "
                  "(the anti-diagonal).")

    lesson.check(f"with attention, the longest sequences ({longest - 2}-{longest}) are mostly reversed exactly "
                 "(>= 0.6)", attended >= 0.6, f"{attended:.3f}")
    lesson.check("without attention they almost never are (<= 0.2), though it learns short ones",
                 bottleneck <= 0.2 and accuracy["without attention (final state only)"][0] >= 0.8,
                 f"{bottleneck:.3f}, length 3: {accuracy['without attention (final state only)'][0]:.2f}")
    lesson.check("the attention aligns output step t with input position n - 1 - t: the largest weight is there "
                 "for >= 0.9 of the steps", mirror >= 0.9, f"{mirror:.3f}")
