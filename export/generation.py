"""Generation as a serving signature: decoding runs inside the graph, not in Python.

`tfdl.models.gpt.generate` and `tfdl.models.seq2seq.greedy_decode` loop in
Python, one model call per token, so they cannot be exported. The functions
here build `tf.function`s with fixed input specs that run the same decoding
in a `tf.while_loop`, so a SavedModel (and TF Serving, or `tfdl.serving`)
answers one request with the whole generated sequence:

    signature = gpt_generate_signature(model, max_new_tokens=32, stop_token=2)
    export_generator(model, "serving/lm/1", signature)
    # POST /v1/models/lm:predict {"inputs": {"tokens": [[5, 9, 4]]}}

Each is written to give exactly the tokens of its Python counterpart for the
same settings (greedy), so the Python functions stay the reference.
"""

from __future__ import annotations

from pathlib import Path

_NEG_INF = float("-inf")


def gpt_generate_signature(
    model,
    *,
    max_new_tokens: int,
    window: int | None = None,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    stop_token: int | None = None,
):
    """A `tf.function` that extends prompts with a GPT (`build_gpt`) model, decoding in the graph.

    Mirrors `tfdl.models.gpt.generate` with `Sampler(temperature, top_k, top_p)`:
    each step runs the model on the last `window` tokens (a fixed-size
    context, zero-padded on the right while shorter), never picks the
    padding id 0, and a row that emits `stop_token` keeps it and gets 0 after
    it. Greedy (temperature 0) gives exactly `generate`'s tokens.

    Inputs: `tokens`, int32 (batch, prompt_length): prompts of one length, no
    padding, at least one token. When sampling (temperature > 0) also
    `seed`, an int64 scalar: the same seed and prompts give the same tokens
    (stateless random ops; the numbers differ from `generate`'s numpy ones).
    Output: `{"tokens": int32 (batch, prompt_length + max_new_tokens)}`, the
    prompt followed by the generated ids, 0 after a stop token.

    Args:
        model: a GPT built by `build_gpt` (its layer `embedding` knows the context length).
        max_new_tokens: how many tokens to generate per prompt, >= 1.
        window: context length the model reads; None: the model's `max_length`, as `generate`.
        temperature: 0 picks the most likely token; otherwise logits are divided by it and sampled.
        top_k: sample among the k most likely tokens only; None or 0: all.
        top_p: sample among the smallest set of tokens whose probability reaches p (1.0: all).
        stop_token: id that ends a row; None: always generate `max_new_tokens`.

    Returns:
        A `tf.function` with an input signature, ready for `export_generator`.

    Raises:
        ValueError: a setting is out of range (names it and the accepted range).
    """
    import tensorflow as tf

    from tfdl.models.gpt import Sampler

    sampler = Sampler(temperature=temperature, top_k=top_k or 0, top_p=top_p)
    context_length = int(model.get_layer("embedding").max_length)
    vocabulary_size = int(model.output_shape[-1])
    window = context_length if window is None else window
    _check_range("max_new_tokens", max_new_tokens, 1, None)
    _check_range("window", window, 1, context_length, "the model's max_length")
    if stop_token is not None:
        _check_range("stop_token", stop_token, 1, vocabulary_size - 1, "the vocabulary (0 is padding)")

    def decode(tokens, seed):
        batch, prompt_length = tf.shape(tokens)[0], tf.shape(tokens)[1]
        checks = [tf.debugging.assert_positive(prompt_length, message="tokens: send at least one prompt token per row")]
        with tf.control_dependencies(checks):
            # Room for the generated tokens, plus a window of zeros so the
            # context slice never runs past the end.
            ids = tf.concat([tokens, tf.zeros([batch, max_new_tokens + window], tf.int32)], axis=1)
        columns = tf.range(tf.shape(ids)[1])

        def step(i, ids, done):
            position = prompt_length + i
            start = tf.maximum(0, position - window)
            context = tf.ensure_shape(tf.slice(ids, [0, start], [-1, window]), [None, window])
            # Causal attention: the zeros after the last real token cannot change its logits.
            logits = tf.gather(model(context, training=False), position - start - 1, axis=1)
            chosen = _pick(logits, sampler, seed, i)
            written = tf.where(done, 0, chosen)
            if stop_token is not None:
                done = done | tf.equal(chosen, stop_token)
            ids = tf.where(tf.equal(columns, position)[None, :], written[:, None], ids)
            return i + 1, ids, done

        def running(i, ids, done):
            return (i < max_new_tokens) & ~tf.reduce_all(done)

        _, ids, _ = tf.while_loop(running, step, (tf.constant(0), ids, tf.zeros([batch], tf.bool)))
        return {"tokens": ids[:, : prompt_length + max_new_tokens]}

    tokens_spec = tf.TensorSpec((None, None), tf.int32, name="tokens")
    if sampler.temperature > 0.0:
        return tf.function(decode, input_signature=[tokens_spec, tf.TensorSpec((), tf.int64, name="seed")])

    # Greedy decoding draws nothing, so its clients send no seed.
    def decode_greedy(tokens):
        return decode(tokens, None)

    return tf.function(decode_greedy, input_signature=[tokens_spec])


def _pick(logits, sampler, seed, step):
    """One token id per row of `logits` (batch, vocabulary), as `Sampler.pick` does in numpy."""
    import tensorflow as tf

    vocabulary_size = logits.shape[-1]
    never_padding = tf.concat([[_NEG_INF], tf.zeros([vocabulary_size - 1])], axis=0)
    logits = tf.cast(logits, tf.float32) + never_padding
    if sampler.temperature == 0.0:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    logits = logits / sampler.temperature
    if sampler.top_k:
        kth = tf.math.top_k(logits, k=min(sampler.top_k, vocabulary_size)).values[:, -1:]
        logits = tf.where(logits < kth, _NEG_INF, logits)
    if sampler.top_p < 1.0:
        probs = tf.nn.softmax(logits, axis=-1)
        ordered = tf.sort(probs, axis=-1, direction="DESCENDING")
        # Kept: tokens whose preceding mass is below p (a prefix of the
        # sorted order, never empty); the last kept probability is the bar.
        kept = tf.math.cumsum(ordered, axis=-1, exclusive=True) < sampler.top_p
        bar = tf.reduce_min(tf.where(kept, ordered, 2.0), axis=-1, keepdims=True)
        logits = tf.where(probs < bar, _NEG_INF, logits)
    step_seed = tf.stack([seed, tf.cast(step, tf.int64)])
    return tf.random.stateless_categorical(logits, 1, seed=step_seed, dtype=tf.int32)[:, 0]


def seq2seq_generate_signature(model, *, max_length: int | None = None):
    """A `tf.function` that decodes greedily with a `Seq2Seq` model, in the graph.

    The encoder runs once; a `tf.while_loop` then feeds the decoder its own
    most likely token, from the start token on, until every row has emitted
    the end token or `max_length + 1` steps have run. That is exactly
    `tfdl.models.seq2seq.greedy_decode`, which also allows `max_length + 1`
    tokens when no end token comes.

    Input: `source`, int32 (batch, source_length), 0-padded.
    Outputs: `tokens`, int32 (batch, max_length + 1): each row's tokens (end
    token excluded), then 0; `lengths`, int32 (batch,): tokens per row.

    Args:
        model: a `Seq2Seq` built by `build_seq2seq`.
        max_length: longest output; None: the model's `max_output_length`.

    Returns:
        A `tf.function` with an input signature, ready for `export_generator`.

    Raises:
        ValueError: `max_length` is below 1.
    """
    import tensorflow as tf

    config = model.config
    max_length = config.max_output_length if max_length is None else max_length
    _check_range("max_length", max_length, 1, None)
    steps = max_length + 1

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, name="source")])
    def decode(source):
        encoder_outputs, states, mask = model.encode(source)
        batch = tf.shape(source)[0]
        columns = tf.range(steps)

        def step(i, previous, h, c, out, lengths, done):
            logits, (h, c), _ = model.decode_step(previous, [h, c], encoder_outputs, mask)
            token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            ended = tf.equal(token, config.end_token)
            emitted = ~done & ~ended
            out = tf.where(tf.equal(columns, i)[None, :] & emitted[:, None], token[:, None], out)
            return i + 1, token, h, c, out, lengths + tf.cast(emitted, tf.int32), done | ended

        def running(i, previous, h, c, out, lengths, done):
            return (i < steps) & ~tf.reduce_all(done)

        start = tf.fill([batch], tf.constant(config.start_token, tf.int32))
        loop_vars = (tf.constant(0), start, *states, tf.zeros([batch, steps], tf.int32),
                     tf.zeros([batch], tf.int32), tf.zeros([batch], tf.bool))
        _, _, _, _, out, lengths, _ = tf.while_loop(running, step, loop_vars)
        return {"tokens": out, "lengths": lengths}

    return decode


def export_generator(model, directory: Path | str, signature) -> Path:
    """Write a SavedModel whose `serving_default` (also named `generate`) is `signature`.

    Args:
        model: the Keras model `signature` calls; its variables are saved.
        directory: the SavedModel folder to write (e.g. `serving/NAME/VERSION`).
        signature: a `tf.function` with an input signature, from
            `gpt_generate_signature` or `seq2seq_generate_signature`.

    Returns:
        The SavedModel folder.

    Raises:
        ValueError: `signature` has no input signature (pass one of the
            functions above), or `model` has not been built yet.
    """
    import keras

    if getattr(signature, "input_signature", None) is None:
        raise ValueError(
            "signature must be a tf.function with an input_signature; build it with "
            "gpt_generate_signature or seq2seq_generate_signature"
        )
    if not model.built:
        raise ValueError(
            f"{model.name} has not been built; call it once on an example batch "
            "(or train or load it) before exporting"
        )
    from tfdl.export.manifest import write_manifest

    directory = Path(directory)
    # Tracing here lets ExportArchive take the tf.function as it is.
    signature.get_concrete_function()
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", signature)
    archive.add_endpoint("generate", signature)
    archive.write_out(str(directory), verbose=False)
    write_manifest(directory)  # versions, signatures and file checksums, which tfdl serve checks
    return directory


def _check_range(name: str, value: int, low: int, high: int | None, high_meaning: str = "") -> None:
    if value < low or (high is not None and value > high):
        accepted = f">= {low}" if high is None else f"in [{low}, {high}] ({high_meaning})"
        raise ValueError(f"{name} must be an integer {accepted}, got {value}")
