"""Which Keras layer put each TensorFlow op that TFLite cannot run as a builtin into the graph, and the fix.

The TFLite converter names the ops it needs Select TF ops (Flex) for, or fails
on, but not the layer behind them. Keras 3 calls each layer inside a name
scope of the layer's name, so the graph node an op came from
(`model_1/lstm_1/while/TensorListReserve`) holds the layer's name as a path
component. `attribute_ops` reads it back, preferring the names a model
really has; `conversion_attributions` reads the op and node out of a
converter error, `flex_attributions` out of a converted `.tflite` file (its
tensor names are node names), and `builtin_attributions` runs a builtins-only
conversion of a SavedModel to find them. Each attribution carries a known
change that keeps the layer on builtins, where there is one.

A recurrent layer (SimpleRNN, LSTM, GRU) left as a loop over TensorLists has
two fixes (`export/recurrent_unroll.py` has the measurements): with no fixed
sequence length, fix it; with a fixed one, unroll the layer, which tfdl's
export does when it writes TFLite. `fixed_length_inputs` tells from the
signature which applies, and `with_recurrent_fix` picks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

# The ops a recurrent layer's loop leaves when TFLite cannot lower it.
RECURRENT_OPS = r"^TensorList|^TensorArray|^While$"
DYNAMIC_LENGTH_FIX = (
    "a recurrent layer over sequences of no fixed length, which TFLite builtins cannot run: fix the "
    "sequence length of the model's input, a static sequence length (keras.Input((T, features)), or (T,) for "
    "token ids; in tfdl's rnn and rnn_regressor set `input_shape: [T, features]` or `max_length: T`), and "
    "tfdl's export unrolls the layer over it (`unroll=True`) when it writes TFLite; or allow Select TF ops "
    "(export.tflite_tf_ops: true) for a runtime with the Flex delegate"
)
STATIC_LENGTH_FIX = (
    "a recurrent layer left as a loop, which TFLite builtins cannot run with a free batch size although "
    "the sequence length is fixed: export with tfdl asking for TFLite (export.tflite), which unrolls the "
    "layer over its length, or build the layer with `unroll=True` for the export only (unrolled training "
    "is much slower)"
)

# Known fixes, first match wins: (pattern on the op name, the change to make).
KNOWN_FIXES: tuple[tuple[str, str], ...] = (
    (RECURRENT_OPS, DYNAMIC_LENGTH_FIX),
    (r"^(Stateless)?Random|^Multinomial|^RandomStandardNormal",
     "random sampling at inference: serve the mean instead, e.g. `Sampling(mean_at_inference=True)`, "
     "or keep noise layers (Dropout, GaussianNoise) to training"),
    (r"^(String|Regex|StaticRegex|Substr|UnicodeDecode|UnicodeEncode|UnicodeTranscode|AsString|DecodeBase64"
     r"|EncodeBase64|Ragged|LookupTable|HashTable|MutableHashTable)",
     "string processing inside the model: tokenize and vectorize in the input pipeline "
     "(tf.data) and feed the model token ids"),
    (r"^StridedSlice$",
     "`x[:, None]`-style indexing adds axes with a strided slice: use `keras.ops.expand_dims(x, axis)`"),
    (r"^(MatrixInverse|MatrixDeterminant|LogMatrixDeterminant|MatrixSolve|MatrixTriangularSolve|Cholesky|Qr|Svd"
     r"|SelfAdjointEig|Eig|MatrixExponential|MatrixLogarithm|MatrixSquareRoot|Lu)",
     "a linear-algebra op with no TFLite builtin: compute it outside the model (or precompute it "
     "as a weight), or allow Select TF ops"),
    (r"^Einsum$", "an einsum TFLite cannot lower: write it as `keras.ops.matmul` with transposes"),
    (r"^ParseExample", "tf.Example parsing: convert only the predict (serving_default) signature"),
)

# Scope components that are graph plumbing, never a Keras layer.
_PLUMBING = re.compile(
    r"^(StatefulPartitionedCall(_\d+)?|PartitionedCall(_\d+)?|while(_\d+)?|cond(_\d+)?|"
    r"(serving_default|serve|signature_wrapper).*|__inference_.*|.*@.*)$"
)
# Keras 3 on TensorFlow re-enters a layer's name scope on each trace, which
# TensorFlow makes unique with `_1`, `_2`, ...
_UNIQUE_SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class OpAttribution:
    """One TensorFlow op outside the TFLite builtins, and where it came from.

    Attributes:
        op: the TensorFlow op type (`TensorListReserve`, `StringLower`).
        node: the graph node it came from, None when the converter gave none.
        layer: the Keras layer whose call made it, None when no layer is named.
        fix: the known change that keeps the layer on builtins, None when none is known.
    """

    op: str
    node: str | None
    layer: str | None
    fix: str | None

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        where = f"layer '{self.layer}'" if self.layer else "no layer found"
        node = f" (node {self.node})" if self.node else ""
        fix = f": {self.fix}" if self.fix else ""
        return f"{self.op} in {where}{node}{fix}"


def suggest_fix(op: str) -> str | None:
    """The known change that avoids TensorFlow op `op` in a TFLite model.

    Args:
        op: a TensorFlow op type, with or without the converter's `tf.` or
            the flatbuffer's `Flex` prefix.

    Returns:
        The suggestion, or None when no fix is known for the op.
    """
    op = op.removeprefix("tf.").removeprefix("Flex")
    return next((fix for pattern, fix in KNOWN_FIXES if re.search(pattern, op)), None)


def layer_from_node(node: str | None, layer_names: Iterable[str] | None = None) -> str | None:
    """The Keras layer a graph node belongs to, from the name scopes in its name.

    Args:
        node: a graph node name such as `model_1/lstm_1/while/TensorListReserve`
            (a trailing `@function` is ignored).
        layer_names: the model's layer names, when known; the innermost scope
            naming one of them wins, so nested layers are named precisely.

    Returns:
        The layer's name, or None when the node is missing or names no layer.
    """
    if not node:
        return None
    scopes = [part for part in node.split("@")[0].split("/")[:-1] if part and not _PLUMBING.match(part)]
    if layer_names is not None:
        known = set(layer_names)
        for scope in reversed(scopes):
            for candidate in (scope, _UNIQUE_SUFFIX.sub("", scope)):
                if candidate in known:
                    return candidate
        return None
    # Without names, the scope under the model's own is the top-level layer.
    if len(scopes) < 2:
        return None
    return _UNIQUE_SUFFIX.sub("", scopes[1])


def attribute_ops(
    ops: Iterable[tuple[str, str | None]], layer_names: Iterable[str] | None = None
) -> list[OpAttribution]:
    """Attribute each `(op, node)` pair to its layer and known fix, one entry per distinct pair.

    Args:
        ops: TensorFlow op types with the graph node each came from (None
            when unknown); `tf.` and `Flex` prefixes are dropped.
        layer_names: the model's layer names, when known (see `layer_from_node`).

    Returns:
        The attributions sorted by layer, then op.
    """
    names = None if layer_names is None else list(layer_names)
    seen = {}
    for op, node in ops:
        op = op.removeprefix("tf.").removeprefix("Flex")
        node = node.split("@")[0] if node else None
        attribution = OpAttribution(op, node, layer_from_node(node, names), suggest_fix(op))
        seen.setdefault((attribution.layer or "", op), attribution)
    return [seen[key] for key in sorted(seen)]


def conversion_attributions(error: Exception, layer_names: Iterable[str] | None = None) -> list[OpAttribution]:
    """Attribute the ops a failed TFLite conversion names to their layers.

    Args:
        error: the converter's `ConverterError` (its structured `errors` carry
            each op with the node it came from).
        layer_names: the model's layer names, when known.

    Returns:
        One attribution per op and layer; empty when the error names no op.
    """
    pairs = []
    for data in getattr(error, "errors", []):
        op = data.operator.name
        calls = [call.name for call in data.location.call if call.name]
        # A node-less op (a `tf.Const` carrying a summary sentence) is not a cause.
        if op and calls:
            pairs.append((op, calls[0]))
    if not pairs:
        # Without structured errors, the text lists Flex ops on one line.
        for line in str(error).splitlines():
            if line.strip().startswith("TF Select ops:"):
                pairs += [(op.strip(), None) for op in line.split(":", 1)[1].split(",") if op.strip()]
    return attribute_ops(pairs, layer_names)


def flex_attributions(flatbuffer: bytes, layer_names: Iterable[str] | None = None) -> list[OpAttribution]:
    """Attribute the Flex (Select TF) ops in a `.tflite` flatbuffer to their layers.

    Args:
        flatbuffer: the `.tflite` file's bytes.
        layer_names: the model's layer names, when known.

    Returns:
        One attribution per Flex op and layer, the node taken from the op's
        first output tensor name; empty for a builtins-only model.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    names = None if layer_names is None else list(layer_names)
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    pairs = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            operator = graph.Operators(i)
            code = codes[operator.OpcodeIndex()]
            if not code or not code.startswith(b"Flex"):
                continue
            pairs.append((code.decode(), _operator_node(graph, operator, names)))
    return attribute_ops(pairs, names)


def _operator_node(graph, operator, layer_names: list[str] | None) -> str | None:
    """The node name of the first tensor around `operator` that names a layer.

    Flex ops keep no node name of their own; their tensors do, except where a
    tensor was renamed as a signature input or output. A fused tensor is
    named `node_a;node_b`, the first being the op's own.
    """
    indices = [operator.Outputs(k) for k in range(operator.OutputsLength())]
    indices += [operator.Inputs(k) for k in range(operator.InputsLength())]
    nodes = [graph.Tensors(i).Name().decode().split(";")[0] for i in indices if i >= 0]
    named = [node for node in nodes if layer_from_node(node, layer_names)]
    return (named or nodes or [None])[0]


def builtin_attributions(saved_model_dir: Path | str, layer_names: Iterable[str] | None = None,
                         signature: str = "serving_default") -> list[OpAttribution]:
    """Convert a SavedModel with TFLite builtins only and attribute every op that stops it.

    Args:
        saved_model_dir: a SavedModel directory.
        layer_names: the model's layer names, when known.
        signature: the signature to convert.

    Returns:
        The ops outside the builtin set with their layers; empty when the
        model converts on builtins.

    Raises:
        ValueError: `saved_model_dir` is not a SavedModel, or the conversion
            fails without naming any op (the converter's reason is given).
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError  # not exported under tf.lite

    if not (Path(saved_model_dir) / "saved_model.pb").is_file():
        raise ValueError(f"{saved_model_dir} is not a SavedModel (no saved_model.pb)")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[signature])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        converter.convert()  # the flatbuffer is kept in memory and dropped: nothing is written
    except ConverterError as error:
        found = conversion_attributions(error, layer_names)
        if not found:
            raise ValueError(f"TFLite cannot convert {saved_model_dir}: {str(error).strip()[:500]}") from error
        return found
    return []


def is_recurrent_op(op: str) -> bool:
    """Whether TensorFlow op `op` is left by a recurrent layer's loop (TensorLists, While)."""
    return re.search(RECURRENT_OPS, op.removeprefix("tf.").removeprefix("Flex")) is not None


def fixed_length_inputs(inputs: Iterable[tuple[str, Iterable[int | None] | None]]) -> bool:
    """Whether every input of a signature has a fixed shape past the batch, so sequence lengths are fixed.

    Args:
        inputs: `(dtype name, shape)` per input, None or -1 for a free
            dimension, a shape of None for unknown rank.

    Returns:
        True when every input is numeric with every dimension after the
        first fixed; False otherwise (a string input is tokenized inside
        the model, to sequences whose length the signature does not show).
    """
    for dtype, shape in inputs:
        if dtype == "string" or shape is None:
            return False
        if any(size is None or size < 0 for size in list(shape)[1:]):
            return False
    return True


def with_recurrent_fix(attributions: Iterable[OpAttribution], fixed_length: bool) -> list[OpAttribution]:
    """The attributions, recurrent ops given the fix for a fixed or a free sequence length.

    Args:
        attributions: from `builtin_attributions` and friends.
        fixed_length: the model's inputs fix the sequence length (`fixed_length_inputs`).

    Returns:
        The same attributions, recurrent ops' fix replaced.
    """
    fix = STATIC_LENGTH_FIX if fixed_length else DYNAMIC_LENGTH_FIX
    return [replace(a, fix=fix) if is_recurrent_op(a.op) else a for a in attributions]


def describe_attributions(attributions: Iterable[OpAttribution]) -> str:
    """One line per attribution, for an error message or a report.

    Args:
        attributions: from `attribute_ops` and friends.

    Returns:
        The lines joined with newlines, each starting with `- `.
    """
    return "\n".join(f"- {a.describe()}" for a in attributions)
