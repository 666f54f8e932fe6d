"""TFLite conversion of an exported SavedModel, in every mode, with a metadata sidecar.

`convert_tflite` turns a SavedModel into a `.tflite` file as float32, dynamic
range (int8 weights), float16 (float16 weights) or full integer int8
(calibrated on a representative dataset, with float, int8 or uint8 input and
output). Converting the SavedModel (not the Keras object) keeps its
signatures, so the file has a `serving_default` signature runner with the
same input and output names.

Ops outside the TFLite builtin set fail the conversion with a
`TFLiteConversionError` that names them, each with the Keras layer that made
it and the known change that keeps that layer on builtins (`op_attribution`):
a recurrent layer converts only unrolled over a fixed sequence length (the
export stage unrolls it, `recurrent_unroll`), so the error for one says to
fix the length, or to unroll where it is fixed already;
`allow_tf_ops=True` keeps them as Select TF ("Flex") ops, and the result
records which ones it holds and their layers, because a Flex model runs only
on a runtime with the Flex delegate linked in.

`write_tflite_metadata` writes `<name>.tflite.json` beside the model: what an
edge client needs to feed it (input and output names, shapes, dtypes and
quantization read back from the model), its labels and its preprocessing
constants.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from tfdl.export.config import TFLiteMode
from tfdl.export.op_attribution import (
    OpAttribution,
    conversion_attributions,
    describe_attributions,
    fixed_length_inputs,
    flex_attributions,
    is_recurrent_op,
    with_recurrent_fix,
)

IODtype = Literal["float32", "int8", "uint8"]

# Why a Flex model fails where it does, measured with ai-edge-litert 2.3 and
# TensorFlow 2.21 (neither wheel defines TF_AcquireFlexDelegate).
FLEX_RUNTIME_NOTE = (
    "the model then runs only on a TFLite runtime with the Flex delegate linked in "
    "(a TFLite build with tensorflow/lite/delegates/flex, or the "
    "tensorflow-lite-select-tf-ops package on Android). The pip runtimes lack it: "
    "ai-edge-litert 2.3 and tf.lite.Interpreter of TensorFlow 2.21 load such a model and "
    "allocate its tensors, then fail at the first invoke with 'Select TensorFlow op(s), "
    "included in the given model, is(are) not supported by this interpreter'"
)


# The signature every tfdl SavedModel serves predictions with.
_SIGNATURE = "serving_default"


class TFLiteConversionError(ValueError):
    """A SavedModel that cannot become a `.tflite` file with the arguments given.

    The message names the SavedModel, the mode and the cause: the ops outside
    the TFLite builtin set (with the graph node each came from), a missing
    representative dataset, or an argument that does not fit the mode.
    """


@dataclass
class TFLiteExport:
    """One converted `.tflite` file.

    Attributes:
        path: where the file was written.
        mode: `float32`, `dynamic_range`, `float16` or `int8`.
        bytes: the file's size.
        tf_ops: the TensorFlow ops kept as Select TF (Flex) ops, sorted;
            empty when the model needs only TFLite builtins.
        io_dtype: the dtype of the model's float inputs and outputs as seen
            by a caller (`int8`/`uint8` only for full integer int8).
        tf_op_layers: each Flex op with the Keras layer it came from and the
            known fix; empty when the model needs only TFLite builtins.
    """

    path: Path
    mode: str
    bytes: int
    tf_ops: list[str]
    io_dtype: str
    tf_op_layers: list[OpAttribution] = field(default_factory=list)


def to_tflite(saved_model_dir: Path | str, path: Path | str) -> Path:
    """Convert the SavedModel at `saved_model_dir` to a float32 `.tflite` file.

    Args:
        saved_model_dir: a SavedModel directory (`export_saved_model`).
        path: the `.tflite` file to write.

    Returns:
        `path`.

    Raises:
        TFLiteConversionError: the model needs ops TFLite has no builtin for.
    """
    return convert_tflite(saved_model_dir, path).path


def convert_tflite(
    saved_model_dir: Path | str,
    path: Path | str,
    *,
    mode: TFLiteMode = "float32",
    representative: Callable[[], Iterable[dict[str, np.ndarray]]] | None = None,
    io_dtype: IODtype = "float32",
    allow_tf_ops: bool = False,
) -> TFLiteExport:
    """Convert the SavedModel at `saved_model_dir` to a `.tflite` file in `mode`.

    Args:
        saved_model_dir: a SavedModel directory (`export_saved_model`).
        path: the `.tflite` file to write.
        mode: `float32`; `dynamic_range` (int8 weights, float activations);
            `float16` (float16 weights); `int8` (weights and activations int8,
            integer-only builtin ops).
        representative: for `int8` only, a callable returning an iterable of
            calibration samples, each a dict keyed by the signature's input
            names (`representative_from_arrays` makes one). A SavedModel with
            several signatures needs `(signature_key, dict)` tuples instead.
        io_dtype: for `int8`, the type of the model's inputs and outputs:
            `int8` or `uint8` (full integer, for integer-only accelerators) or
            `float32` (quantize and dequantize inside the model).
        allow_tf_ops: keep ops TFLite has no builtin for as Select TF (Flex)
            ops instead of failing.

    Returns:
        The written file, its size and the Flex ops it holds.

    Raises:
        TFLiteConversionError: an argument does not fit the mode, the
            SavedModel is missing, a calibration sample lacks an input, or the
            converter fails (for ops outside the builtin set, naming them).
    """
    _check_arguments(saved_model_dir, mode, representative, io_dtype)
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError  # not exported under tf.lite

    # Only the predict signature: classify/regress signatures parse
    # tf.Examples, which TFLite has no builtin op for.
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[_SIGNATURE])
    _configure(tf, converter, mode, representative, io_dtype, allow_tf_ops)
    try:
        flatbuffer = converter.convert()
    except ConverterError as error:
        raise _conversion_error(error, saved_model_dir, mode) from error
    except KeyError as error:
        if representative is None:
            raise
        # The calibrator looks each signature input up in the sample dict.
        raise TFLiteConversionError(
            f"a representative sample for {saved_model_dir} has no input {error}: yield dicts "
            "keyed by the signature's input names (representative_from_arrays does)"
        ) from error
    path = Path(path)
    path.write_bytes(flatbuffer)
    tf_ops = _flex_ops(flatbuffer)
    layers = flex_attributions(flatbuffer) if tf_ops else []
    return TFLiteExport(path, mode, len(flatbuffer), tf_ops, io_dtype, layers)


def _check_arguments(saved_model_dir, mode, representative, io_dtype) -> None:
    if mode not in get_args(TFLiteMode):
        raise TFLiteConversionError(f"TFLite mode {mode!r} is not one of {list(get_args(TFLiteMode))}")
    if io_dtype not in get_args(IODtype):
        raise TFLiteConversionError(f"TFLite io_dtype {io_dtype!r} is not one of {list(get_args(IODtype))}")
    if io_dtype != "float32" and mode != "int8":
        raise TFLiteConversionError(
            f"io_dtype {io_dtype!r} needs mode 'int8' (got {mode!r}): only a full integer model "
            "has integer inputs and outputs; use io_dtype 'float32'"
        )
    if mode == "int8" and representative is None:
        raise TFLiteConversionError(
            f"mode 'int8' of {saved_model_dir} needs a representative dataset to calibrate activation "
            "ranges: pass representative=representative_from_arrays({input_name: examples})"
        )
    if mode != "int8" and representative is not None:
        raise TFLiteConversionError(
            f"a representative dataset calibrates mode 'int8' only; mode {mode!r} would silently "
            "become integer quantization with float fallback. Drop it or use mode 'int8'"
        )
    if not (Path(saved_model_dir) / "saved_model.pb").is_file():
        raise TFLiteConversionError(
            f"{saved_model_dir} is not a SavedModel (no saved_model.pb): write it with "
            "tfdl.export.export_saved_model first"
        )


def _configure(tf, converter, mode, representative, io_dtype, allow_tf_ops) -> None:
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if mode == "int8" else tf.lite.OpsSet.TFLITE_BUILTINS
    converter.target_spec.supported_ops = [builtins] + ([tf.lite.OpsSet.SELECT_TF_OPS] if allow_tf_ops else [])
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        converter.representative_dataset = representative
        converter.inference_input_type = getattr(tf, io_dtype)
        converter.inference_output_type = getattr(tf, io_dtype)


def _conversion_error(error, saved_model_dir, mode: str) -> TFLiteConversionError:
    flex = _ops_needing_flex(error)
    attributions = conversion_attributions(error)
    recurrent = sorted({a.layer or a.node or a.op for a in attributions if is_recurrent_op(a.op)})
    if recurrent:
        attributions = with_recurrent_fix(attributions, _fixed_length(saved_model_dir))
    by_layer = describe_attributions(attributions)
    by_layer = f"\nEach op, its layer and the known fix:\n{by_layer}" if by_layer else ""
    if recurrent and not flex:
        # The converter's own sentence (disable `_experimental_lower_tensor_list_ops`) is no fix here.
        return TFLiteConversionError(
            f"TFLite cannot convert {saved_model_dir} ({mode}): recurrent layer(s) {', '.join(recurrent)} "
            f"run as a loop over TensorLists, which TFLite builtins cannot hold.{by_layer}"
        )
    if flex:
        ops = ", ".join(f"{op} ({node})" if node else op for op, node in sorted(flex.items()))
        return TFLiteConversionError(
            f"{saved_model_dir} ({mode}) uses TensorFlow ops that are not TFLite builtins: {ops}. "
            "Set `export.tflite_tf_ops: true` (convert_tflite(..., allow_tf_ops=True)) to keep them "
            f"as Select TF (Flex) ops; {FLEX_RUNTIME_NOTE}. Or build the model without them "
            f"(for text, tokenize outside the model).{by_layer}"
        )
    # The structured errors hold the converter's own sentence; the text leads
    # with MLIR locations.
    messages = [data.error_message for data in getattr(error, "errors", []) if data.error_message]
    text = (messages[0] if messages else str(error)).strip()
    cause = text.splitlines()[0] if text else type(error).__name__
    return TFLiteConversionError(f"TFLite cannot convert {saved_model_dir} ({mode}): {cause}{by_layer}")


def _fixed_length(saved_model_dir) -> bool:
    """Whether the predict signature's inputs fix every dimension past the batch (so sequence lengths)."""
    from tfdl.export.manifest import saved_model_signatures

    inputs = saved_model_signatures(saved_model_dir).get(_SIGNATURE, {}).get("inputs", {})
    return fixed_length_inputs((spec["dtype"], spec["shape"]) for spec in inputs.values())


def _ops_needing_flex(error) -> dict[str, str | None]:
    """`{op: graph node it came from}` for each op the converter says needs Flex."""
    found = {}
    for data in getattr(error, "errors", []):
        if type(data).ErrorCode.Name(data.error_code) != "ERROR_NEEDS_FLEX_OPS" or not data.operator.name:
            continue
        calls = list(data.location.call)
        # The innermost call is `scope/.../Op@function`; the scope names the layer.
        node = calls[0].name.split("@")[0] if calls and calls[0].name else None
        found[data.operator.name.removeprefix("tf.")] = node
    if not found:
        # Without structured errors, the text lists them on one line.
        for line in str(error).splitlines():
            if line.strip().startswith("TF Select ops:"):
                found.update((op.strip(), None) for op in line.split(":", 1)[1].split(",") if op.strip())
    return found


def _flex_ops(flatbuffer: bytes) -> list[str]:
    """The TensorFlow ops a `.tflite` flatbuffer holds as Flex custom ops (`FlexStringLower`)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    codes = (model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength()))
    names = (code.decode() for code in codes if code)
    return sorted({name.removeprefix("Flex") for name in names if name.startswith("Flex")})


def representative_from_arrays(
    inputs: Mapping[str, np.ndarray], *, samples: int = 200, seed: int = 0
) -> Callable[[], Iterable[dict[str, np.ndarray]]]:
    """A representative dataset for int8 calibration, drawn from example arrays.

    Args:
        inputs: raw examples keyed by signature input name, all with the same
            number of rows.
        samples: how many rows to draw (all rows when there are fewer).
        seed: the draw's seed; the same seed draws the same rows.

    Returns:
        A callable yielding one dict per drawn row, each array a batch of one;
        floating arrays are cast to float32, others keep their dtype (token ids).

    Raises:
        TFLiteConversionError: no inputs, inputs of different lengths, no rows,
            or `samples` below 1.
    """
    arrays = {name: np.asarray(values) for name, values in inputs.items()}
    lengths = {name: len(a) if a.ndim else 0 for name, a in arrays.items()}
    if not arrays or len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise TFLiteConversionError(
            f"calibration inputs need the same number (>= 1) of rows for each input, got {lengths}"
        )
    if samples < 1:
        raise TFLiteConversionError(f"calibration samples must be >= 1, got {samples}")
    rows = next(iter(lengths.values()))
    chosen = np.random.default_rng(seed).choice(rows, size=min(samples, rows), replace=False)

    def representative():
        for i in chosen:
            yield {name: _calibration_dtype(a[i : i + 1]) for name, a in arrays.items()}

    return representative


def _calibration_dtype(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array


def metadata_path(tflite_path: Path | str) -> Path:
    """The sidecar of a `.tflite` file: `model.tflite` -> `model.tflite.json`.

    Args:
        tflite_path: the `.tflite` file.

    Returns:
        The path of its metadata sidecar.
    """
    tflite_path = Path(tflite_path)
    return tflite_path.with_name(tflite_path.name + ".json")


def write_tflite_metadata(
    tflite_path: Path | str,
    *,
    labels: Sequence[str] | None = None,
    preprocessing: Mapping | None = None,
    extra: Mapping | None = None,
    mode: str | None = None,
) -> Path:
    """Write the JSON sidecar `<name>.tflite.json` beside a `.tflite` file.

    Signatures are read back from the model with the LiteRT interpreter, so
    the sidecar describes the file as it is: per signature, each input and
    output's shape (-1 where any size goes), dtype, and quantization
    (`{"scale", "zero_point"}`, null for float tensors). The Flex ops are read
    from the flatbuffer.

    Args:
        tflite_path: the `.tflite` file.
        labels: class names in output order.
        preprocessing: constants a client needs (e.g. normalization mean and
            variance); numpy arrays and tensors are stored as lists.
        extra: anything else to record, stored under `extra`.
        mode: the conversion mode (`TFLiteExport.mode`); null when not given.

    Returns:
        The sidecar's path.

    Raises:
        FileNotFoundError: `tflite_path` does not exist.
        ValueError: a value in `preprocessing` or `extra` cannot be stored as JSON.
    """
    from tfdl import __version__
    from tfdl.export.litert import load_interpreter

    tflite_path = Path(tflite_path)
    if not tflite_path.is_file():
        raise FileNotFoundError(f"no TFLite model at {tflite_path}: convert it with convert_tflite first")
    flatbuffer = tflite_path.read_bytes()
    interpreter = load_interpreter(tflite_path)
    record = {
        "model": tflite_path.name,
        "bytes": len(flatbuffer),
        "mode": mode,
        "tf_ops": _flex_ops(flatbuffer),
        "tfdl_version": __version__,
        "signatures": {
            key: _signature_metadata(interpreter.get_signature_runner(key))
            for key in interpreter.get_signature_list()
        },
        "labels": None if labels is None else [str(label) for label in labels],
        "preprocessing": None if preprocessing is None else dict(preprocessing),
        "extra": None if extra is None else dict(extra),
    }
    try:
        text = json.dumps(record, indent=2, default=_json_array)
    except TypeError as error:
        raise ValueError(
            f"the metadata for {tflite_path} cannot be stored as JSON ({error}): "
            "pass numbers, strings, lists or numpy arrays in preprocessing and extra"
        ) from error
    sidecar = metadata_path(tflite_path)
    sidecar.write_text(text + "\n")
    return sidecar


def _json_array(value):
    if hasattr(value, "__array__"):
        return np.asarray(value).tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _signature_metadata(runner) -> dict:
    return {
        "inputs": _tensors_metadata(runner.get_input_details()),
        "outputs": _tensors_metadata(runner.get_output_details()),
    }


def _tensors_metadata(details: Mapping[str, dict]) -> dict:
    ordered = sorted(details.items(), key=lambda item: item[1]["index"])
    from tfdl.export.litert import tensor_info

    return {name: tensor_info(name, detail).to_dict() for name, detail in ordered}


def read_tflite_metadata(path: Path | str) -> dict:
    """Read a sidecar written by `write_tflite_metadata`.

    Args:
        path: the `.tflite` file or its `.tflite.json` sidecar.

    Returns:
        The sidecar's content.

    Raises:
        FileNotFoundError: there is no sidecar.
        ValueError: the sidecar is not valid JSON.
    """
    path = Path(path)
    sidecar = path if path.suffix == ".json" else metadata_path(path)
    if not sidecar.is_file():
        raise FileNotFoundError(f"no TFLite metadata at {sidecar}: write it with write_tflite_metadata")
    try:
        return json.loads(sidecar.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{sidecar}, line {error.lineno}: not valid JSON ({error.msg}); rewrite it with write_tflite_metadata"
        ) from error
