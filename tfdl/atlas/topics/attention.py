"""Atlas entries 31-33 and 38-39: Transformers against RNNs, self-attention, positional encoding, encoder-decoders, attention."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson
from tfdl.atlas.topics.fitting import fit_steps


def _influence(layer, x, projections: int = 8):
    """`|d y_i / d x_j|` for a layer mapping (1, T, d) to (1, T, d'), as a (T, T) array.

    One gradient call: copy b of the input is paired with output position
    b % T and a random direction r_b, so the gradient of r_b . y_b with
    respect to copy b is row b % T of the influence along r_b; the
    root-mean-square over the directions estimates the Jacobian block's size.
    """
    import numpy as np
    import tensorflow as tf

    length = x.shape[1]
    copies = tf.constant(np.repeat(x, length * projections, axis=0))
    rows = np.tile(np.arange(length), projections)
    with tf.GradientTape() as tape:
        tape.watch(copies)
        y = layer(copies)
        directions = tf.random.stateless_normal((len(rows), y.shape[-1]), seed=(1, 2))
        picked = tf.gather(y, rows, axis=1, batch_dims=1)  # (copies, d'): output row b % T of copy b
        total = tf.reduce_sum(picked * directions)
    gradient = np.linalg.norm(tape.gradient(total, copies).numpy(), axis=-1)  # (copies, T)
    return np.sqrt((gradient.reshape(projections, length, length) ** 2).mean(axis=0))


@atlas_entry(
    31,
    formula=r"\text{RNN: } h_t = f(h_{t-1}, x_t)\ \ (T \text{ sequential steps});\qquad "
    r"\text{Transformer: } Y = \operatorname{softmax}\!\Big(\frac{QK^\top}{\sqrt{d_k}}\Big)V,\ "
    r"Q, K, V = XW_Q, XW_K, XW_V\ \ (\text{one step per layer})",
    see=("tfdl.layers.TransformerEncoderBlock", "tfdl.layers.TransformerDecoderBlock",
         "tfdl.models.build_transformer_classifier", "tfdl.models.build_rnn"),
)
def transformer_vs_rnn(lesson: Lesson) -> None:
    """A **Transformer** is a network for sequences built from attention instead of recurrence.
    Each block lets every position look at every other position at once through
    (multi-head) self-attention, then transforms each position with the same small
    feed-forward network; residual connections and layer normalization wrap both.
    Stacking an embedding with position information, $N$ such blocks and a head gives
    an encoder (BERT), a decoder with a causal mask (GPT), or both joined by
    cross-attention (the original translation model).

    An **RNN** reads the sequence one element at a time and carries everything it knows
    in a hidden state, $h_t = f(h_{t-1}, x_t)$. That has two costs the Transformer
    removes. Computation is *sequential*: step $t$ cannot start before step $t-1$
    ends, so training cannot be parallelised over time, while a Transformer layer is a
    few matrix products over all positions at once. And the *path* between two tokens
    $k$ steps apart runs through $k$ applications of $f$, so their influence on each
    other (and the gradient) is multiplied by $k$ Jacobians and usually fades, while in
    self-attention every pair is one step apart. The price is that attention compares
    all pairs: time and memory grow as $T^2$ instead of $T$, and the model knows the
    order of its inputs only through position encodings (question 33).

    The example measures both structures directly: for an LSTM layer and a Transformer
    encoder block at initialization, the influence $\\lVert \\partial y_i / \\partial x_j
    \\rVert$ of every input position $j$ on every output position $i$.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    from tfdl.layers import TransformerEncoderBlock

    length, width = lesson.budget(32, 64), 16
    x = np.random.default_rng(lesson.seed).normal(size=(1, length, width)).astype("float32")
    lstm = keras.layers.LSTM(width, return_sequences=True)
    transformer = TransformerEncoderBlock(num_heads=2, intermediate_dim=32, dropout=0.0)
    influence = {"LSTM": _influence(lstm, x), "Transformer block": _influence(transformer, x)}
    # Mean influence of an input k positions back, over all output positions.
    by_distance = {name: np.array([np.diagonal(m, -k).mean() for k in range(length)]) for name, m in influence.items()}

    lstm_future = float(np.triu(influence["LSTM"], k=1).max())
    far = {name: lesson.number(f"{name}: influence from the far half / from 1 step back",
                               profile[length // 2:].mean() / profile[1]) for name, profile in by_distance.items()}
    lesson.table("Mean influence of an input k steps back", ("k", "LSTM", "Transformer block"),
                 [(k, by_distance["LSTM"][k], by_distance["Transformer block"][k])
                  for k in (0, 1, 2, 4, 8, 16, 31, 63) if k < length])

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
    for ax, (name, matrix) in zip(axes, influence.items()):
        image = ax.imshow(np.maximum(matrix, 1e-8), norm=LogNorm(1e-8, 10), cmap="viridis")
        ax.set_title(f"{name}: " + r"$\|\partial y_i / \partial x_j\|$", fontsize=10)
        ax.set_xlabel("input position j")
        ax.set_ylabel("output position i")
    fig.colorbar(image, ax=axes[:2], shrink=0.8, label="influence (log, floor 1e-8)")
    for name, profile in by_distance.items():
        axes[2].semilogy(np.arange(1, length), profile[1:], label=name)
    axes[2].set(xlabel="distance k = i - j (steps back)", ylabel="mean influence", title="Influence against distance")
    axes[2].legend()
    lesson.figure(fig, "influence", "How much each input position moves each output position, at initialization. "
                  "The LSTM's outputs see only the past and the influence fades with distance, because it "
                  "flows through every step between; the Transformer block links every pair in one step.")

    lesson.check("the LSTM is sequential: no output depends on a later input (largest influence exactly 0)",
                 lstm_future == 0.0, f"{lstm_future:.1e}")
    lesson.check("through the LSTM, inputs more than T/2 steps back move an output < 1/20 as much as the "
                 "previous input", far["LSTM"] < 0.05, f"ratio {far['LSTM']:.2e}")
    lesson.check("through the Transformer block, they move it > 0.3 times as much: distance does not matter",
                 far["Transformer block"] > 0.3, f"ratio {far['Transformer block']:.2f}")


def _softmax(scores):
    import numpy as np

    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


@atlas_entry(
    32,
    formula=r"\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d_k}}\Big) V,"
    r"\qquad Q = X W_Q,\ K = X W_K,\ V = X W_V",
    see=("tfdl.layers.ScaledDotProductAttention", "tfdl.layers.TransformerEncoderBlock"),
)
def self_attention(lesson: Lesson) -> None:
    """**Self-attention** recomputes each position of a sequence as a weighted average of
    all positions of the same sequence, with weights the model computes from the
    content. Every position $x_i$ is projected three ways: a *query* $q_i = x_i W_Q$
    (what it is looking for), a *key* $k_j = x_j W_K$ (what it offers to be found by)
    and a *value* $v_j = x_j W_V$ (what it passes on). Position $i$ scores every
    position $j$ by the dot product $q_i \\cdot k_j$, a softmax over $j$ turns the
    scores into weights that sum to 1, and the output is $\\sum_j w_{ij} v_j$. All
    positions do this at once, as the matrix formula above.

    The scores are divided by $\\sqrt{d_k}$ because a dot product of two $d_k$-dimensional
    vectors with unit-variance entries has variance $d_k$: unscaled, the scores grow
    with the width, the softmax saturates to a one-hot choice and its gradients vanish.
    **Multi-head** attention runs $h$ such attentions with separate, smaller
    projections and concatenates them, so different heads can track different
    relations (syntax, coreference, position). A causal mask (setting $w_{ij} = 0$ for
    $j > i$) gives the decoder variant used by GPT.

    The example checks tfdl's layer against the formula in numpy, with and without the
    causal mask, measures the saturation the $\\sqrt{d_k}$ avoids, and shows the
    attention map of a sentence whose queries and keys are its word vectors: each word
    attends most to itself and to the other occurrences of the same word.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.layers import ScaledDotProductAttention

    rng = np.random.default_rng(lesson.seed)
    attention = ScaledDotProductAttention()

    # 1. The layer against the formula, computed independently in numpy.
    q, k, v = (rng.normal(size=(2, 7, 16)).astype("float32") for _ in range(3))
    context, weights = attention(q, v, key=k, return_attention_scores=True)
    expected_weights = _softmax(q @ k.transpose(0, 2, 1) / np.sqrt(16))
    difference = lesson.number("max |layer - numpy formula|",
                               float(np.abs(context.numpy() - expected_weights @ v).max()))
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(16)
    scores[:, np.triu_indices(7, 1)[0], np.triu_indices(7, 1)[1]] = -np.inf  # query i sees keys 0..i
    causal = attention(q, v, key=k, use_causal_mask=True).numpy()
    causal_difference = lesson.number("max |causal layer - numpy formula|",
                                      float(np.abs(causal - _softmax(scores) @ v).max()))

    # 2. Why divide by sqrt(d_k): unit-variance queries and keys, 16 keys each.
    widths = lesson.budget((4, 16, 64, 256), (2, 4, 8, 16, 32, 64, 128, 256, 512))
    peak = {"scaled by 1/sqrt(d_k)": [], "unscaled": []}
    for d in widths:
        q, k = rng.normal(size=(256, 16, d)), rng.normal(size=(256, 16, d))
        raw = np.einsum("bd,bkd->bk", q[:, 0], k)
        peak["scaled by 1/sqrt(d_k)"].append(_softmax(raw / np.sqrt(d)).max(-1).mean())
        peak["unscaled"].append(_softmax(raw).max(-1).mean())
    lesson.table("Mean largest attention weight over 16 keys", ("d_k", *peak),
                 [(d, *(p[i] for p in peak.values())) for i, d in enumerate(widths)])
    scaled_peak = lesson.number(f"largest weight at d_k={widths[-1]}, scaled", peak["scaled by 1/sqrt(d_k)"][-1])
    unscaled_peak = lesson.number(f"largest weight at d_k={widths[-1]}, unscaled", peak["unscaled"][-1])

    # 3. An attention map: word vectors as queries, keys and values.
    sentence = "the cat sat on the mat because the cat was tired".split()
    vocabulary = sorted(set(sentence))
    vectors = rng.normal(size=(len(vocabulary), 32)).astype("float32")
    x = vectors[[vocabulary.index(w) for w in sentence]][None]
    _, sentence_weights = attention(x, x, return_attention_scores=True)
    sentence_weights = sentence_weights.numpy()[0]
    same_word = np.array([[a == b for b in sentence] for a in sentence])
    mass_on_same_word = lesson.number("mean attention weight on occurrences of the same word",
                                      float((sentence_weights * same_word).sum(-1).mean()))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    image = axes[0].imshow(sentence_weights, cmap="Blues", vmin=0, vmax=1)
    axes[0].set_xticks(range(len(sentence)), sentence, rotation=60)
    axes[0].set_yticks(range(len(sentence)), sentence)
    axes[0].set(xlabel="key (attended to)", ylabel="query (attending)", title="Self-attention weights")
    fig.colorbar(image, ax=axes[0], shrink=0.8)
    for name, values in peak.items():
        axes[1].semilogx(widths, values, "o-", base=2, label=name)
    axes[1].axhline(1 / 16, color="gray", ls=":", label="uniform (1/16)")
    axes[1].set(xlabel="$d_k$", ylabel="mean largest weight", ylim=(0, 1.05),
                title="Softmax saturation without the $1/\\sqrt{d_k}$")
    axes[1].legend()
    lesson.figure(fig, "self_attention", "Left: each word (row) spreads its attention over the sentence; with "
                  "queries and keys equal to the word vectors it attends to itself and to other occurrences of "
                  "the same word. Right: without the 1/sqrt(d_k) scaling the weights collapse to one key as d_k grows.")

    lesson.check("ScaledDotProductAttention equals softmax(QK^T/sqrt(d_k))V computed in numpy (< 1e-5)",
                 difference < 1e-5, f"{difference:.1e}")
    lesson.check("with use_causal_mask it equals the formula with future keys removed (< 1e-5)",
                 causal_difference < 1e-5, f"{causal_difference:.1e}")
    lesson.check(f"at d_k={widths[-1]} unscaled scores saturate (mean largest weight > 0.8) while scaled ones "
                 "stay spread (< 0.5)", unscaled_peak > 0.8 and scaled_peak < 0.5,
                 f"unscaled {unscaled_peak:.2f}, scaled {scaled_peak:.2f}")
    lesson.check("in the sentence, each word puts most of its attention (> 0.5) on occurrences of itself",
                 mass_on_same_word > 0.5, f"{mass_on_same_word:.2f}")


@atlas_entry(
    33,
    formula=r"PE_{p,\,2i} = \sin\!\big(p / 10000^{2i/d}\big),\quad PE_{p,\,2i+1} = \cos\!\big(p / 10000^{2i/d}\big),"
    r"\qquad \operatorname{SelfAttention}(P X) = P \operatorname{SelfAttention}(X)",
    see=("tfdl.layers.SinusoidalPositionEncoding", "tfdl.layers.LearnedPositionEmbedding",
         "tfdl.layers.TokenAndPositionEmbedding", "tfdl.models.TransformerClassifierConfig"),
)
def positional_encoding(lesson: Lesson) -> None:
    """Self-attention compares every position with every other by content alone, so it
    has no notion of order: permuting the input tokens permutes the outputs the same
    way (it is *permutation-equivariant*, $f(PX) = P f(X)$ for any permutation matrix
    $P$), and after pooling, "dog bites man" and "man bites dog" are the same input.
    **Positional encoding** breaks that symmetry by adding to each token's embedding a
    vector that depends on its position, so the same word at two places enters the
    attention as two different vectors.

    The original Transformer uses fixed sinusoids (formula): each pair of dimensions is
    a sine and cosine of the position at its own frequency, from one cycle per
    $2\\pi$ positions down to one per $2\\pi \\cdot 10000$. Every position gets a
    distinct code, nearby positions get similar codes, and the encoding of $p + k$ is
    a fixed rotation of that of $p$, so relative offsets are easy to read with a linear
    map; it also extends to lengths never trained on. BERT and GPT-2 instead *learn* a
    vector per position (`LearnedPositionEmbedding`), which fits the data but knows
    nothing beyond the longest trained length; later models put relative positions
    into the attention scores themselves (relative encodings, rotary embeddings).

    The example checks tfdl's encoding against the formula, measures the equivariance
    of an encoder block without positions, and trains the same small Transformer
    classifier with and without positions on a task that is only about order:
    does token A come before token B?
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.layers import SinusoidalPositionEncoding, TransformerEncoderBlock
    from tfdl.models import build_model

    # 1. The encoding against its formula.
    length, width = 64, 32
    encoding = SinusoidalPositionEncoding(max_length=length)(np.zeros((1, length, width), "float32")).numpy()[0]
    position, pair = np.arange(length)[:, None], np.arange(width // 2)[None, :]
    angle = position / 10000 ** (2 * pair / width)
    expected = np.zeros((length, width))
    expected[:, 0::2], expected[:, 1::2] = np.sin(angle), np.cos(angle)
    formula_error = lesson.number("max |layer - formula|", float(np.abs(encoding - expected).max()))

    # 2. Without positions an encoder block is permutation-equivariant.
    rng = np.random.default_rng(lesson.seed)
    tokens = rng.normal(size=(1, 10, width)).astype("float32")
    order = rng.permutation(10)
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64, dropout=0.0)
    plain = np.abs(block(tokens[:, order]).numpy() - block(tokens).numpy()[:, order]).max()
    with_positions = np.abs(block(tokens[:, order] + encoding[:10]).numpy()
                            - block(tokens + encoding[:10]).numpy()[:, order]).max()
    lesson.number("max |f(PX) - P f(X)|, no positions", float(plain))
    lesson.number("max |f(PX + E) - P f(X + E)|, with positions", float(with_positions))

    # 3. An order-only task: each sequence holds A (id 1) and B (id 2) once among filler ids 3..11;
    # the label is "A comes before B". The test set pairs every sequence with its A<->B swap.
    def sequences(n, size=8):
        x = rng.integers(3, 12, size=(n, size))
        for row in x:
            row[rng.choice(size, 2, replace=False)] = (1, 2)
        return x.astype("int32"), (np.argmax(x == 1, 1) < np.argmax(x == 2, 1)).astype("int32")

    x, y = sequences(2000)
    x_test, y_test = sequences(250)
    swapped = np.where(x_test == 1, 2, np.where(x_test == 2, 1, x_test))
    x_test, y_test = np.concatenate([x_test, swapped]), np.concatenate([y_test, 1 - y_test])
    accuracy = {}
    for kind in ("none", "sinusoidal"):
        model = build_model("transformer_classifier", {
            "vocabulary_size": 12, "max_length": 8, "num_classes": 2, "embed_dim": 16, "num_heads": 2,
            "intermediate_dim": 32, "dropout": 0.0, "position": kind})
        fit_steps(model, x, y, steps=lesson.budget(100, 400), learning_rate=5e-3, seed=lesson.seed)
        accuracy[kind] = lesson.number(f"test accuracy, position={kind}",
                                       float(np.mean(model(x_test).numpy().argmax(-1) == y_test)))
    lesson.table("Does A come before B?", ("position information", "test accuracy"),
                 [("none", accuracy["none"]), ("sinusoidal", accuracy["sinusoidal"])])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    image = axes[0].imshow(encoding.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    axes[0].set(xlabel="position p", ylabel="dimension", title="Sinusoidal position encoding")
    fig.colorbar(image, ax=axes[0])
    similarity = encoding @ encoding[20] / (np.linalg.norm(encoding, axis=1) * np.linalg.norm(encoding[20]))
    axes[1].plot(similarity, "o-", ms=3)
    axes[1].axvline(20, color="gray", ls=":")
    axes[1].set(xlabel="position p", ylabel="cosine similarity", title="Similarity of every position's code to position 20")
    lesson.figure(fig, "positional_encoding", "Left: each dimension pair is a sine/cosine of its own frequency. "
                  "Right: nearby positions have similar codes, far ones dissimilar.")

    lesson.check("SinusoidalPositionEncoding equals the sin/cos formula (< 1e-5)", formula_error < 1e-5,
                 f"{formula_error:.1e}")
    lesson.check("without positions, permuting the input permutes the block's output exactly (< 1e-5)",
                 plain < 1e-5, f"{plain:.1e}")
    lesson.check("with positions added, it does not (difference > 0.1)", with_positions > 0.1,
                 f"{with_positions:.2f}")
    lesson.check("without positions the classifier cannot tell A..B from B..A (test accuracy within 0.02 of 0.5)",
                 abs(accuracy["none"] - 0.5) <= 0.02, f"{accuracy['none']:.3f}")
    lesson.check("with sinusoidal positions it learns the order (test accuracy >= 0.85)",
                 accuracy["sinusoidal"] >= 0.85, f"{accuracy['sinusoidal']:.3f}")


# Reversal task shared by the sequence-to-sequence entries: token ids 0 padding, 1 start, 2 end, 3.. symbols.
START, END, FIRST_SYMBOL = 1, 2, 3


def _reversal_data(rng, examples: int, shortest: int, longest: int, vocabulary: int):
    """Sources of `shortest..longest` random symbols (padded with 0) and their reversals.

    Returns (source, decoder input = [START] + reversal, target = reversal + [END]),
    padded to `longest` (+1 for the decoder's arrays).
    """
    import numpy as np

    source = np.zeros((examples, longest), "int32")
    decoder_input = np.zeros((examples, longest + 1), "int32")
    target = np.zeros((examples, longest + 1), "int32")
    for i, size in enumerate(rng.integers(shortest, longest + 1, examples)):
        symbols = rng.integers(FIRST_SYMBOL, vocabulary, size)
        source[i, :size] = symbols
        decoder_input[i, 0], decoder_input[i, 1 : size + 1] = START, symbols[::-1]
        target[i, :size], target[i, size] = symbols[::-1], END
    return source, decoder_input, target


def _train_reverser(lesson: Lesson, data, *, vocabulary: int, longest: int, steps: int, attention: str = "bahdanau"):
    """tfdl's Seq2Seq trained with teacher forcing on `(source, decoder_input) -> target`."""
    from tfdl.losses import MaskedSparseCategoricalCrossentropy
    from tfdl.models import build_model

    source, decoder_input, target = data
    model = build_model("seq2seq", {"source_vocabulary_size": vocabulary, "target_vocabulary_size": vocabulary,
                                    "embed_dim": 16, "units": 32, "attention": attention,
                                    "max_output_length": longest})
    fit_steps(model, (source, decoder_input), target, steps=steps, learning_rate=1e-2, seed=lesson.seed,
         loss=MaskedSparseCategoricalCrossentropy(from_logits=True))
    return model


@atlas_entry(
    38,
    formula=r"c = \operatorname{Encoder}(x_1, \dots, x_n),\qquad "
    r"p(y_1, \dots, y_m \mid x) = \prod_{t=1}^{m} p\big(y_t \mid y_{<t},\, c\big)",
    see=("tfdl.models.build_seq2seq", "tfdl.models.Seq2Seq", "tfdl.models.greedy_decode",
         "tfdl.layers.TransformerDecoderBlock"),
)
def encoder_decoder(lesson: Lesson) -> None:
    """An **encoder-decoder** splits a sequence-to-sequence model in two. The *encoder*
    reads the whole input and turns it into a representation $c$ (a final state, or one
    vector per input position); the *decoder* then writes the output one token at a
    time, each conditioned on $c$ and on the tokens it has written so far, until it
    emits an end token. Its purpose is to map a sequence to another sequence when
    the two differ in length, order or vocabulary and no output token lines up with
    one input token: translation, summarization, speech to text, question answering,
    code generation.

    Two things make that possible and a plain per-position network cannot do either:
    the decoder starts only after the encoder has seen *everything*, so the first
    output may depend on the last input; and the output length is not tied to the
    input's, because the decoder decides when to stop. The same split appears in
    LSTM seq2seq models, in the original Transformer (encoder blocks plus decoder
    blocks with cross-attention) and in autoencoders, where the decoder reconstructs
    the input from a compressed code.

    The example reverses sequences of 3 to 8 symbols. An LSTM *tagger* that emits one
    output per input as it reads cannot: its first output must be the last input,
    which it has not seen yet. tfdl's LSTM encoder-decoder learns the task, including
    when to stop.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import greedy_decode

    vocabulary, longest = 10, 8
    rng = np.random.default_rng(lesson.seed)
    train = _reversal_data(rng, 3000, 3, longest, vocabulary)
    test_source, _, test_target = _reversal_data(rng, 200, 3, longest, vocabulary)
    steps = lesson.budget(140, 400)

    # A tagger: one LSTM pass over the source, one output per position (left to right).
    tagger = keras.Sequential([keras.Input((longest,), dtype="int32"), keras.layers.Embedding(vocabulary, 16),
                               keras.layers.LSTM(32, return_sequences=True), keras.layers.Dense(vocabulary)])
    from tfdl.losses import MaskedSparseCategoricalCrossentropy

    fit_steps(tagger, train[0], train[2][:, :longest], steps=steps, learning_rate=1e-2, seed=lesson.seed,
         loss=MaskedSparseCategoricalCrossentropy(from_logits=True))
    real = test_source > 0
    tagged = tagger(test_source).numpy().argmax(-1)
    tagger_first = lesson.number("tagger: accuracy of the first output token",
                                 float(np.mean(tagged[:, 0] == test_target[:, 0])))
    tagger_tokens = lesson.number("tagger: token accuracy", float(np.mean(tagged[real] == test_target[:, :longest][real])))

    model = _train_reverser(lesson, train, vocabulary=vocabulary, longest=longest, steps=steps)
    decoded = greedy_decode(model, test_source).tokens
    wanted = [list(row[row > 0][::-1]) for row in test_source]
    exact = lesson.number("encoder-decoder: exact-match accuracy", float(np.mean([d == w for d, w in zip(decoded, wanted)])))
    first = lesson.number("encoder-decoder: accuracy of the first output token",
                          float(np.mean([bool(d) and d[0] == w[0] for d, w in zip(decoded, wanted)])))
    right_length = lesson.number("encoder-decoder: outputs of the right length",
                                 float(np.mean([len(d) == len(w) for d, w in zip(decoded, wanted)])))
    lesson.table("Reversal, held-out sequences", ("model", "first output token correct", "all tokens"),
                 [("LSTM tagger (one output per input)", tagger_first, f"{tagger_tokens:.3f} (per token)"),
                  ("LSTM encoder-decoder", first, f"{exact:.3f} (whole sequence)")])
    lesson.table("Examples", ("source", "encoder-decoder output"),
                 [(" ".join(map(str, w[::-1])), " ".join(map(str, d))) for d, w in list(zip(decoded, wanted))[:5]])

    position_accuracy = {"LSTM tagger": [], "encoder-decoder": []}
    for t in range(longest):
        has = real.sum(1) > t
        position_accuracy["LSTM tagger"].append(np.mean(tagged[has, t] == test_target[has, t]))
        position_accuracy["encoder-decoder"].append(
            np.mean([len(d) > t and d[t] == w[t] for d, w, h in zip(decoded, wanted, has) if h]))
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, values in position_accuracy.items():
        ax.plot(np.arange(1, longest + 1), values, "o-", label=name)
    ax.axhline(1 / (vocabulary - FIRST_SYMBOL), color="gray", ls=":", label="chance")
    ax.set(xlabel="output position", ylabel="accuracy", ylim=(0, 1.05), title="Reversing sequences of 3-8 symbols")
    ax.legend()
    lesson.figure(fig, "reversal", "Accuracy at each output position. The tagger must output the reversal while "
                  "reading, so its early outputs are guesses; the encoder-decoder reads the whole input first.")

    lesson.check("the tagger cannot produce the first output (the last input) before reading it: "
                 "accuracy <= 0.35", tagger_first <= 0.35, f"{tagger_first:.3f}")
    lesson.check("the encoder-decoder reverses held-out sequences exactly (>= 0.9)", exact >= 0.9, f"{exact:.3f}")
    lesson.check("and stops at the right length by itself (>= 0.95 of outputs)", right_length >= 0.95,
                 f"{right_length:.3f}")


@atlas_entry(
    39,
    formula=r"\alpha_{j} = \frac{\exp \operatorname{score}(s, h_j)}{\sum_{k} \exp \operatorname{score}(s, h_k)},\quad "
    r"c = \sum_j \alpha_j h_j,\qquad \operatorname{score}(s, h) = "
    r"\begin{cases} v^\top \tanh(W_1 s + W_2 h) & \text{additive (Bahdanau)} \\ s^\top h & \text{dot (Luong)} \\ "
    r"s^\top W h & \text{general (Luong)} \\ s^\top h / \sqrt{d} & \text{scaled dot (Transformer)} \end{cases}",
    see=("tfdl.layers.BahdanauAttention", "tfdl.layers.LuongAttention", "tfdl.layers.ScaledDotProductAttention"),
)
def attention_mechanisms(lesson: Lesson) -> None:
    """An **attention mechanism** lets a network read from a set of vectors by content
    rather than by position. A *query* $s$ (say, the decoder's current state) is scored
    against each *key* $h_j$ (say, the encoder's output at step $j$); a softmax turns the
    scores into weights $\\alpha_j \\ge 0$ that sum to 1; the result is the weighted
    average $c = \\sum_j \\alpha_j h_j$ of the *values* (here the $h_j$ themselves). It
    is a soft, differentiable dictionary lookup: a query close to one key retrieves
    that key's value, a vague one a blend, and the gradient reaches every entry, so
    what to look for is learned with the rest of the network. Masked positions
    (padding) get weight 0.

    The mechanisms differ in the score. **Additive** (Bahdanau) attention passes query
    and key through a small one-layer network; it works when they have different
    sizes and was the first used in translation. **Multiplicative** (Luong) attention
    takes a dot product, directly ($s^\\top h$) or through a learned matrix
    ($s^\\top W h$); it is a single matrix product for all pairs, which is faster. The
    Transformer's **scaled dot product** divides by $\\sqrt{d}$ to keep the softmax
    from saturating (question 32), and applies attention of a sequence to itself.

    The example checks tfdl's Bahdanau and Luong layers against these formulas in
    numpy, then uses dot-product attention as a lookup: 12 key-value pairs, queried
    with noisy copies of the keys in shuffled order.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.layers import BahdanauAttention, LuongAttention

    rng = np.random.default_rng(lesson.seed)
    query = rng.normal(size=(3, 8)).astype("float32")  # one decoder state per example
    values = rng.normal(size=(3, 6, 8)).astype("float32")  # six encoder outputs per example
    mask = np.arange(6)[None, :] < np.array([[6], [4], [2]])  # examples 2 and 3 are padded

    def reference(scores):  # masked softmax, then the weighted sum of the values
        weights = _softmax(np.where(mask, scores, -np.inf))
        return np.einsum("bt,btd->bd", weights, values), weights

    bahdanau, dot, general = BahdanauAttention(units=5), LuongAttention(score="dot"), LuongAttention(score="general")
    results = {name: layer(query, values, mask=mask) for name, layer in
               (("additive (Bahdanau)", bahdanau), ("dot (Luong)", dot), ("general (Luong)", general))}
    w1, w2, v = bahdanau.query_kernel.numpy(), bahdanau.values_kernel.numpy(), bahdanau.score_vector.numpy()
    expected = {
        "additive (Bahdanau)": reference(np.tanh((query @ w1)[:, None, :] + values @ w2) @ v),
        "dot (Luong)": reference(np.einsum("bd,btd->bt", query, values)),
        "general (Luong)": reference(np.einsum("bd,de,bte->bt", query, general.kernel.numpy(), values)),
    }
    rows, worst = [], 0.0
    for name, (context, weights) in results.items():
        error = max(np.abs(context.numpy() - expected[name][0]).max(), np.abs(weights.numpy() - expected[name][1]).max())
        worst = max(worst, error)
        rows.append((name, error, float(np.abs(weights.numpy()[~mask]).max())))
    lesson.table("tfdl's layers against the formulas", ("score", "max |layer - numpy|", "largest weight on padding"), rows)
    lesson.number("largest difference from the formulas", worst)

    # Attention as a soft lookup: queries are noisy keys in shuffled order.
    memory = 12
    keys = rng.normal(size=(1, memory, 16)).astype("float32")
    order = rng.permutation(memory)
    queries = keys[:, order] + 0.5 * rng.normal(size=(1, memory, 16)).astype("float32")
    _, lookup = LuongAttention(score="dot")(queries, keys)
    lookup = lookup.numpy()[0]
    retrieved = lesson.number("queries whose largest weight is on their own key", float(np.mean(lookup.argmax(-1) == order)))
    weight_on_own = lesson.number("mean weight on the query's own key", float(lookup[np.arange(memory), order].mean()))

    fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
    image = ax.imshow(lookup, cmap="Blues", vmin=0, vmax=1)
    ax.scatter(order, np.arange(memory), marker="x", color="tab:red", label="the query's own key")
    ax.set(xlabel="key j", ylabel="query i (a noisy copy of key order[i])", title="Dot-product attention as a lookup")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.colorbar(image, ax=ax, label="weight")
    lesson.figure(fig, "lookup", "Attention weights of 12 queries over 12 keys: each query is a noisy copy of one "
                  "key (red cross) and puts almost all its weight there.")

    lesson.check("Bahdanau, Luong dot and Luong general equal their formulas in numpy, padding weights 0 (< 1e-5)",
                 worst < 1e-5 and all(r[2] == 0 for r in rows), f"{worst:.1e}")
    lesson.check("as a lookup, every noisy query puts its largest weight on its own key", retrieved == 1.0,
                 f"{retrieved:.2f}")
    lesson.check("and on average > 0.8 of its weight", weight_on_own > 0.8, f"{weight_on_own:.3f}")
