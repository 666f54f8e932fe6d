"""Run a LiteRT (TFLite) model from numpy: checked inputs, quantization handled.

    model = LiteRTModel("model.tflite")
    print(model.describe())
    model({"pixels": batch})["output_0"]

`load_interpreter` tries `ai_edge_litert` (maintained), then `tflite_runtime`
(old devices), then `tf.lite`. This module imports only numpy and that
runtime, so it runs on a device without TensorFlow.

`LiteRTModel` wraps one signature runner. It checks input names, ranks, fixed
dimensions and dtypes before the runtime sees them (the runtime's own errors
name tensor indices, not inputs), quantizes float inputs of a quantized
model and dequantizes its quantized outputs, so callers work in real values
whether the file is float32 or full-integer int8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

DEFAULT_SIGNATURE = "serving_default"

# Integer io tensors that carry a scale hold quantized real values. Wider
# integer inputs (int32 token ids, int64 indices) are plain integers even if
# a converter left a scale on them.
_QUANTIZED_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))

# Which numpy kinds a model input of a given kind accepts: ints widen to
# floats, but nothing turns strings or floats into integers implicitly.
_ACCEPTED_KINDS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b", "S": "SU", "O": "SUO"}


class EdgeInputError(ValueError):
    """Inputs that do not fit the model's signature (name, shape or dtype).

    The message says what was wrong, shows the signature the model expects
    (each input's name, shape with -1 for free dimensions, dtype) and what
    was given.
    """


class EdgeModelError(ValueError):
    """A file the LiteRT runtime cannot run: not a `.tflite` model, or one without signatures."""


def load_interpreter(path: Path | str, num_threads: int | None = None):
    """Return an allocated interpreter for the `.tflite` file at `path`.

    Args:
        path: the `.tflite` file.
        num_threads: CPU threads for the runtime; None lets it choose.

    Returns:
        An `Interpreter` from the first runtime found: `ai_edge_litert`,
        `tflite_runtime`, then `tf.lite`.

    Raises:
        ValueError: the runtime cannot load the file.
        ImportError: none of the three runtimes is installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                import tensorflow as tf
            except ImportError:
                raise ImportError(
                    "no LiteRT runtime is installed: pip install ai-edge-litert (it comes with tfdl[edge])"
                ) from None
            Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def _dtype_name(dtype: np.dtype) -> str:
    return "string" if dtype.kind in "SUO" else dtype.name


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature.

    `shape` has None for free dimensions (usually the batch); `scale` and
    `zero_point` are the per-tensor quantization (`scale == 0`: not
    quantized; real value = (q - zero_point) * scale).
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in _QUANTIZED_DTYPES and self.scale != 0.0

    def to_dict(self) -> dict:
        """JSON-ready: shape with -1 for free dimensions, dtype name, quantization or None."""
        return {
            "shape": [-1 if d is None else d for d in self.shape],
            "dtype": _dtype_name(self.dtype),
            "quantization": {"scale": self.scale, "zero_point": self.zero_point} if self.scale else None,
        }

    def describe(self) -> str:
        dims = ", ".join("-1" if d is None else str(d) for d in self.shape)
        text = f"{self.name}: {_dtype_name(self.dtype)}[{dims}]"
        if self.quantized:
            text += f" (quantized: scale {self.scale:.6g}, zero_point {self.zero_point})"
        return text


def tensor_info(name: str, details: Mapping[str, Any]) -> TensorInfo:
    """A `TensorInfo` from an interpreter's input or output details."""
    # `shape` is the currently allocated shape (batch 1 for a free batch);
    # `shape_signature` keeps -1 for free dimensions.
    signature = details.get("shape_signature")
    dims = details["shape"] if signature is None or len(signature) != len(details["shape"]) else signature
    scale, zero_point = details.get("quantization", (0.0, 0))
    return TensorInfo(
        name=name,
        shape=tuple(None if int(d) < 0 else int(d) for d in dims),
        dtype=np.dtype(details["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def _describe_value(name: str, value: Any) -> str:
    if isinstance(value, np.ndarray):
        dims = ", ".join(str(d) for d in value.shape)
        return f"{name}: {_dtype_name(value.dtype)}[{dims}]"
    return f"{name}: {type(value).__name__}"


def quantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Real values to the quantized integers of `info`: round(x / scale) + zero_point, clipped.

    Rounds half away from zero, as TFLite's own quantize kernels do.

    Args:
        values: float array of real values.
        info: a quantized tensor (`info.quantized`).

    Returns:
        An array of `info.dtype`.
    """
    scaled = np.asarray(values, dtype=np.float64) / info.scale
    rounded = np.trunc(scaled + np.copysign(0.5, scaled)) + info.zero_point
    limits = np.iinfo(info.dtype)
    return np.clip(rounded, limits.min, limits.max).astype(info.dtype)


def dequantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Quantized integers of `info` to float32 real values: (q - zero_point) * scale.

    Args:
        values: integer array as the model returned it.
        info: the quantized tensor it came from.

    Returns:
        A float32 array.
    """
    return (np.asarray(values, dtype=np.float32) - np.float32(info.zero_point)) * np.float32(info.scale)


class LiteRTModel:
    """One signature of a `.tflite` model, called with numpy arrays.

    Args:
        path: the `.tflite` file.
        signature: the signature to run; default `serving_default` if the
            model has it, else its only signature.
        num_threads: CPU threads for the runtime; None lets it choose.

    Calling it takes a dict of input name -> array (or a bare array when the
    signature has one input) and returns a dict of output name -> array.
    Float arrays given to a quantized (int8/uint8) input are quantized;
    integer arrays given to it are taken as already-quantized values.
    Quantized outputs come back dequantized to float32 unless
    `raw_outputs=True`. The batch size may change from call to call: the
    signature runner resizes its inputs; a model converted with a fixed batch
    of 1 is run once per example. A `LiteRTModel` is not thread-safe; give
    each thread its own.

    Raises:
        FileNotFoundError: `path` does not exist.
        EdgeModelError: the runtime cannot load the file, or it has no signatures.
        EdgeInputError: `signature` is not one of the model's.
    """

    def __init__(self, path: Path | str, signature: str | None = None, num_threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"model file {self.path} does not exist; give the path of a .tflite file")
        try:
            self._interpreter = load_interpreter(self.path, num_threads=num_threads)
        except ValueError as error:
            raise EdgeModelError(f"{self.path} is not a model the LiteRT runtime can load: {error}") from None
        self.signature = self._pick_signature(signature)
        self._runner = self._interpreter.get_signature_runner(self.signature)
        self._inputs = {n: tensor_info(n, d) for n, d in self._runner.get_input_details().items()}
        self._outputs = {n: tensor_info(n, d) for n, d in self._runner.get_output_details().items()}
        # Models converted from a concrete function often pin the batch to 1.
        self._batch_of_one = bool(self._inputs) and all(i.shape[:1] == (1,) for i in self._inputs.values())

    def _pick_signature(self, signature: str | None) -> str:
        names = list(self._interpreter.get_signature_list())
        if not names:
            raise EdgeModelError(
                f"{self.path} has no signatures; convert it again with TensorFlow >= 2.7 "
                "(tfdl.export.to_tflite keeps the SavedModel's signatures)"
            )
        if signature is None:
            if DEFAULT_SIGNATURE in names or len(names) == 1:
                return DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in names else names[0]
            raise EdgeInputError(f"{self.path} has several signatures {names}; choose one with signature=")
        if signature not in names:
            raise EdgeInputError(f"{self.path} has no signature {signature!r}; it has {names}")
        return signature

    @property
    def inputs(self) -> dict[str, TensorInfo]:
        return dict(self._inputs)

    @property
    def outputs(self) -> dict[str, TensorInfo]:
        return dict(self._outputs)

    def describe(self) -> str:
        """The signature as text: one line per input and output.

        Returns:
            e.g. `model.tflite, signature 'serving_default'` then
            `inputs:` / `x: float32[-1, 4]` and `outputs:` / ... lines.
        """
        lines = [f"{self.path.name}, signature {self.signature!r}", "  inputs:"]
        lines += [f"    {info.describe()}" for info in self._inputs.values()]
        lines.append("  outputs:")
        lines += [f"    {info.describe()}" for info in self._outputs.values()]
        return "\n".join(lines)

    def __call__(
        self, inputs: Mapping[str, np.ndarray] | np.ndarray, *, raw_outputs: bool = False
    ) -> dict[str, np.ndarray]:
        """Run the signature on a batch.

        Args:
            inputs: input name -> array (batch dimension included), or a bare
                array when the signature has exactly one input.
            raw_outputs: return quantized outputs as the model's integers
                instead of dequantizing them.

        Returns:
            Output name -> array.

        Raises:
            EdgeInputError: a missing or unknown input name, a wrong rank or
                fixed dimension, or a dtype that cannot be converted.
        """
        arrays = self._prepare(inputs)
        batch = next(iter(arrays.values())).shape[0] if self._batch_of_one else 1
        if batch > 1:
            parts = [self._runner(**{n: a[i : i + 1] for n, a in arrays.items()}) for i in range(batch)]
            outputs = {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}
        else:
            outputs = self._runner(**arrays)
        if raw_outputs:
            return outputs
        return {n: dequantize(v, self._outputs[n]) if self._outputs[n].quantized else v for n, v in outputs.items()}

    def _mismatch(self, problem: str, given: Mapping[str, Any]) -> EdgeInputError:
        expected = "\n".join(f"    {info.describe()}" for info in self._inputs.values())
        shown = "\n".join(f"    {_describe_value(n, v)}" for n, v in given.items())
        return EdgeInputError(
            f"{problem}\n  expected ({self.path.name}, signature {self.signature!r}):\n{expected}\n  given:\n{shown}"
        )

    def _prepare(self, inputs: Mapping[str, Any] | Any) -> dict[str, np.ndarray]:
        if not isinstance(inputs, Mapping):
            if len(self._inputs) != 1:
                raise self._mismatch(
                    f"a bare array was given but the signature has {len(self._inputs)} inputs; "
                    "give a dict of name -> array",
                    {"(bare array)": inputs},
                )
            inputs = {next(iter(self._inputs)): inputs}
        given = {}
        for name, value in inputs.items():
            try:
                given[name] = np.asarray(value)
            except ValueError:
                raise self._mismatch(
                    f"input {name!r}: lists of unequal length (ragged); every example must have the same shape",
                    {name: value},
                ) from None
        unknown = [n for n in given if n not in self._inputs]
        missing = [n for n in self._inputs if n not in given]
        if unknown or missing:
            problems = [f"unknown input {n!r}" for n in unknown] + [f"missing input {n!r}" for n in missing]
            raise self._mismatch("; ".join(problems), given)
        arrays = {n: self._convert(self._inputs[n], a, given) for n, a in given.items()}
        if self._batch_of_one and len({a.shape[0] for a in arrays.values()}) > 1:
            problem = "inputs have different batch sizes; give every input the same number of examples"
            raise self._mismatch(problem, given)
        return arrays

    def _convert(self, info: TensorInfo, array: np.ndarray, given: Mapping[str, np.ndarray]) -> np.ndarray:
        self._check_shape(info, array, given)
        kind = array.dtype.kind
        if info.quantized and kind == "f":
            return quantize(array, info)
        if kind not in _ACCEPTED_KINDS.get(info.dtype.kind, ""):
            given_type, wanted_type = _dtype_name(array.dtype), _dtype_name(info.dtype)
            problem = f"input {info.name!r}: {given_type} values cannot be converted to {wanted_type}"
            raise self._mismatch(problem, given)
        if info.dtype.kind in "iu" and array.size:
            limits = np.iinfo(info.dtype)
            if array.min() < limits.min or array.max() > limits.max:
                hint = ""
                if info.quantized:
                    hint = "; integers given to a quantized input are taken as quantized values, give floats"
                raise self._mismatch(
                    f"input {info.name!r}: values {array.min()}..{array.max()} do not fit {info.dtype.name} "
                    f"({limits.min}..{limits.max}){hint}",
                    given,
                )
        if info.dtype.kind in "SO":
            return np.char.encode(array, "utf-8") if kind == "U" else array
        return array.astype(info.dtype, copy=False)

    def _check_shape(self, info: TensorInfo, array: np.ndarray, given: Mapping[str, np.ndarray]) -> None:
        if array.ndim != len(info.shape):
            hint = ""
            if array.ndim + 1 == len(info.shape):
                hint = "; add the batch dimension (a batch of one example has shape (1, ...))"
            problem = f"input {info.name!r}: rank {array.ndim}, expected rank {len(info.shape)}{hint}"
            raise self._mismatch(problem, given)
        if array.size == 0:
            problem = f"input {info.name!r}: empty array (shape {array.shape}); give at least one example"
            raise self._mismatch(problem, given)
        for axis, (want, got) in enumerate(zip(info.shape, array.shape)):
            free = want is None or (axis == 0 and self._batch_of_one)
            if not free and want != got:
                raise self._mismatch(f"input {info.name!r}: dimension {axis} is {got}, expected {want}", given)
