"""TF Serving's classify and regress signatures: serialized `tf.train.Example`s in, classes/scores or values out.

TF Serving answers `:classify` and `:regress` (REST) and `Classify` /
`Regress` (gRPC) only from signatures shaped the way its classifier.cc and
regressor.cc read them: one input keyed `inputs`, a batch of serialized
`tf.train.Example` strings; outputs keyed `classes` (DT_STRING,
`[batch, num_classes]`) and/or `scores` (DT_FLOAT, same shape), or `outputs`
(DT_FLOAT, `[batch]` or `[batch, 1]`); and, when the server runs with
`--enable_signature_method_name_check`, the method names
`tensorflow/serving/classify` and `tensorflow/serving/regress`.

The model's input is parsed from an Example feature named like the Keras
input, holding the flattened values of one example (a `(2, 3)` input reads
6 numbers from a `float_list`).

`tf.saved_model.save` (and so Keras's `ExportArchive`) writes every
signature with the predict method name; `write_method_names` sets the right
ones afterwards with TensorFlow's own `MethodNameUpdater`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tfdl.export.saved_model import named_outputs

CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
# Input and output keys TF Serving looks up (signature_constants in TensorFlow).
EXAMPLES_INPUT = "inputs"
CLASSES_OUTPUT = "classes"
SCORES_OUTPUT = "scores"
REGRESS_OUTPUT = "outputs"


def classify_signature(
    model,
    *,
    class_names: Sequence[str],
    input_name: str | None = None,
    feature_key: str | None = None,
    output: str | None = None,
):
    """A `tf.function` serving TF Serving's Classify API for `model`.

    It takes `inputs`, a `[batch]` string tensor of serialized
    `tf.train.Example`s, and returns `classes` (the class names, one row per
    example) and `scores` (the model's output as float32, column `i` for
    `class_names[i]`). A one-column output (a sigmoid binary classifier) with
    two class names gives scores `[1 - p, p]`.

    Args:
        model: a Keras model with one fixed-shape input.
        class_names: one name per column of the classified output.
        input_name: the Keras input to feed; default the model's only input.
        feature_key: the Example feature holding that input; default the
            input's name.
        output: the output holding the class scores; required when the model
            has several outputs.

    Returns:
        A `tf.function` with a fixed input signature, ready for
        `ExportArchive.add_endpoint`.

    Raises:
        ValueError: the model has several inputs or a free input dimension,
            `input_name` or `output` is not the model's, or the output's width
            does not match `class_names`.
    """
    import tensorflow as tf

    class_names = [str(name) for name in class_names]
    parse = _example_parser(model, input_name, feature_key)
    index = _output_index(model, output)
    width = _output_width(model, index)
    if len(class_names) < 2 or len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be two or more distinct names, got {class_names}")
    binary = width == 1 and len(class_names) == 2
    if width != len(class_names) and not binary:
        raise ValueError(
            f"output {model.output_names[index]!r} has {width} values per example but {len(class_names)} class "
            f"names were given ({class_names}); give one name per output column"
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def classify(inputs):
        scores = tf.cast(_call(model, parse(inputs), index), tf.float32)
        scores = tf.reshape(scores, [-1, width])
        if binary:
            scores = tf.concat([1.0 - scores, scores], axis=1)
        classes = tf.tile(tf.constant(class_names)[tf.newaxis], [tf.shape(scores)[0], 1])
        return {CLASSES_OUTPUT: classes, SCORES_OUTPUT: scores}

    return classify


def regress_signature(
    model,
    *,
    input_name: str | None = None,
    feature_key: str | None = None,
    output: str | None = None,
):
    """A `tf.function` serving TF Serving's Regress API for `model`.

    It takes `inputs`, a `[batch]` string tensor of serialized
    `tf.train.Example`s, and returns `outputs`: the regressed output as a
    `[batch]` float32 tensor.

    Args:
        model: a Keras model with one fixed-shape input.
        input_name: the Keras input to feed; default the model's only input.
        feature_key: the Example feature holding that input; default the
            input's name.
        output: the output to regress on (one value per example); required
            when the model has several outputs.

    Returns:
        A `tf.function` with a fixed input signature, ready for
        `ExportArchive.add_endpoint`.

    Raises:
        ValueError: the model has several inputs or a free input dimension,
            `input_name` or `output` is not the model's, or the output has more
            than one value per example.
    """
    import tensorflow as tf

    parse = _example_parser(model, input_name, feature_key)
    index = _output_index(model, output)
    width = _output_width(model, index)
    if width != 1:
        raise ValueError(
            f"output {model.output_names[index]!r} has {width} values per example; TF Serving's Regress API "
            "takes one float per example: pick a one-value output with `output`"
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def regress(inputs):
        values = tf.cast(_call(model, parse(inputs), index), tf.float32)
        return {REGRESS_OUTPUT: tf.reshape(values, [-1])}

    return regress


def write_method_names(saved_model_dir: Path | str, method_names: Mapping[str, str]) -> None:
    """Set the `method_name` of signatures in the SavedModel at `saved_model_dir`.

    Rewrites `saved_model.pb` in place, then its `fingerprint.pb`, whose
    signature hash covers the method names.

    Args:
        saved_model_dir: a SavedModel directory.
        method_names: method name by signature key, e.g.
            `{"classification": CLASSIFY_METHOD_NAME}`.

    Raises:
        ValueError: a signature key is not in the SavedModel.
    """
    import tensorflow as tf
    from tensorflow.python.saved_model import fingerprinting_utils

    updater = tf.compat.v1.saved_model.signature_def_utils.MethodNameUpdater(str(saved_model_dir))
    for key, method_name in method_names.items():
        updater.replace_method_name(signature_key=key, method_name=method_name)
    updater.save()
    # The same writer tf.saved_model.save ends with; there is no public one.
    fingerprinting_utils.write_fingerprint(str(saved_model_dir))


def _example_parser(model, input_name: str | None, feature_key: str | None):
    """`serialized Examples -> the model's input`, checked against the model now rather than at request time."""
    import numpy as np
    import tensorflow as tf

    if len(model.inputs) != 1:
        names = [t.name for t in model.inputs]
        raise ValueError(f"classify/regress signatures take models with one input; this one has {names}")
    (source,) = model.inputs
    if input_name is not None and input_name != source.name:
        raise ValueError(f"input_name {input_name!r} is not the model's input; it has {source.name!r}")
    shape = tuple(source.shape[1:])
    if any(dim is None for dim in shape):
        raise ValueError(
            f"input {source.name!r} has shape {(None, *shape)}; a tf.Example feature needs a fixed size: "
            "build the model with a fully known input shape"
        )
    dtype = tf.as_dtype(source.dtype)
    # tf.Example holds only float32, int64 and bytes lists.
    if dtype.is_floating:
        wire = tf.float32
    elif dtype.is_integer or dtype.is_bool:
        wire = tf.int64
    elif dtype == tf.string:
        wire = tf.string
    else:
        raise ValueError(f"input {source.name!r} has dtype {dtype.name}; tf.Example carries floats, integers or bytes")
    key = feature_key or source.name
    spec = {key: tf.io.FixedLenFeature([int(np.prod(shape, dtype=np.int64))], wire)}

    def parse(serialized):
        flat = tf.io.parse_example(serialized, spec)[key]
        return tf.cast(tf.reshape(flat, [-1, *shape]), dtype)

    return parse


def _output_index(model, output: str | None) -> int:
    names = list(model.output_names)
    if output is None:
        if len(names) != 1:
            raise ValueError(f"the model has outputs {names}; name the one to serve with `output`")
        return 0
    if output not in names:
        raise ValueError(f"output {output!r} is not one of the model's outputs {names}")
    return names.index(output)


def _output_width(model, index: int) -> int:
    """Values per example of an output; its trailing dimensions must be known."""
    import numpy as np

    shape = tuple(model.outputs[index].shape[1:])
    if any(dim is None for dim in shape):
        raise ValueError(f"output {model.output_names[index]!r} has shape {(None, *shape)}; it needs a fixed size")
    return int(np.prod(shape, dtype=np.int64))


def _call(model, features, index: int):
    outputs = named_outputs(model, model(features, training=False))
    return outputs[model.output_names[index]]
