"""TF Serving's Classify and Regress APIs over JSON: examples in, results out.

Follows TF Serving's `json_tensor.cc` (`FillClassificationRequestFromJson`,
`MakeJsonFromClassificationResult`, `MakeJsonFromRegressionResult`) and its
`classifier.cc` / `regressor.cc`:

* a request is `{"signature_name": ..., "context": {...}, "examples": [...]}`;
  each example is an object of features, each feature one value or a list of
  values whose JSON type picks the `tf.train.Feature` kind: integers and
  booleans -> `int64_list`, numbers written with a fraction or exponent ->
  `float_list`, strings and `{"b64": ...}` -> `bytes_list`; one feature holds
  one kind, so `[1, 2.5]` is refused as in TF Serving (write `1.0`);
* the `context` features go into every example; an example's own feature
  wins over a context feature of the same name (TF Serving concatenates the
  serialized context and example, and protobuf keeps the last map entry);
* the signature (default `serving_default`, as in TF Serving) must take one
  input `inputs`, a batch of serialized `tf.train.Example`s, and give
  `classes` and/or `scores` (classify) or `outputs` (regress);
* the answer is `{"results": [[["label", score], ...], ...]}` (classify) or
  `{"results": [value, ...]}` (regress), floats written as the shortest text
  that reads back to the same float32, as TF Serving's `WriteDecimal` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np

from tfdl.serving.errors import InvalidArgument
from tfdl.serving.json_codec import DEFAULT_SIGNATURE, _decode_b64, _is_b64, _short
from tfdl.serving.model_store import Servable, Signature

Method = Literal["classify", "regress"]

# TensorFlow's signature_constants: the keys and method names TF Serving reads.
METHOD_NAMES = {"classify": "tensorflow/serving/classify", "regress": "tensorflow/serving/regress"}
EXAMPLES_INPUT = "inputs"
CLASSES_OUTPUT = "classes"
SCORES_OUTPUT = "scores"
REGRESS_OUTPUT = "outputs"
_INT64 = np.iinfo(np.int64)


@dataclass(frozen=True)
class ExamplesRequest:
    """A parsed classify or regress request.

    Args:
        signature_name: the signature to call (`serving_default` when the
            request names none).
        examples: one serialized `tf.train.Example` per example, the context
            features merged in.
    """

    signature_name: str
    examples: list[bytes]


def _json_type(value: Any) -> str:
    """The JSON type name TF Serving's `JsonTypeString` prints."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _utf8(text: str, what: str) -> bytes:
    """`text` as UTF-8; a lone surrogate (JSON's "\\ud800", which TF Serving's parser refuses) is an error."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"{what} is not valid UTF-8 (a lone surrogate); send binary data as {{\"b64\": ...}}"
        ) from None


def _add_values(values: list, name: str, feature) -> None:
    """Append the JSON values of one feature, checking that they share one kind."""
    kind = None
    converted = []
    for value in values:
        if isinstance(value, bool):
            value_kind, value = "int64", int(value)
        elif isinstance(value, int):
            if not _INT64.min <= value <= _INT64.max:
                raise InvalidArgument(
                    f"Feature: {name} has element {_short(value, 40)} outside the int64 range. "
                    "Only int64_t is supported."
                )
            value_kind = "int64"
        elif isinstance(value, float):
            value_kind = "float"
        elif isinstance(value, str):
            value_kind, value = "bytes", _utf8(value, f"Feature: {name} has a string that")
        elif _is_b64(value):
            value_kind, value = "bytes", _decode_b64(value)
        else:
            raise InvalidArgument(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
        if kind is None:
            kind = value_kind
        elif value_kind != kind:
            raise InvalidArgument(
                f"Unexpected element type in feature: {name} expecting type: {kind} "
                "(every value of a feature must have one type; write floats with a decimal point, e.g. 1.0)"
            )
        converted.append(value)
    if kind is not None:
        getattr(feature, f"{kind}_list").value.extend(converted)


def example_from_json(value: Any, where: str) -> bytes:
    """Serialize one JSON example (an object of features) as a `tf.train.Example`.

    Args:
        value: the example's JSON value: `{feature: value or [values]}`.
        where: where the example sits in the request, for error messages
            (`examples[3]`, `context`).

    Returns:
        The serialized `tf.train.Example`.

    Raises:
        InvalidArgument: the value is not an object, or a feature holds a
            null, a nested list, an object other than `{"b64": ...}`, bad
            base64, an integer outside int64, or values of mixed kinds.
    """
    from tensorflow.core.example import example_pb2

    if not isinstance(value, dict):
        raise InvalidArgument(f"Example must be JSON object but got JSON {_json_type(value)} (at {where})")
    example = example_pb2.Example()
    features = example.features.feature
    for name, content in value.items():
        try:
            _utf8(name, f"Feature name {_short(name)}")
            _add_values(content if isinstance(content, list) else [content], name, features[name])
        except InvalidArgument as error:
            raise InvalidArgument(f"{error.message} (at {where})") from None
    return example.SerializeToString()


def read_examples_request(doc: dict, method: Method) -> ExamplesRequest:
    """Check a classify/regress request body and serialize its examples.

    Args:
        doc: the parsed JSON body (an object).
        method: `classify` or `regress`.

    Returns:
        The signature name and the serialized examples.

    Raises:
        InvalidArgument: `signature_name` is not a string, `examples` is
            missing, not a list or empty, or an example or the context is
            malformed (see `example_from_json`).
    """
    signature = doc.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str):
        raise InvalidArgument(
            "JSON Value: signature_name not formatted correctly. 'signature_name' key must be a string value."
        )
    # TF Serving concatenates the serialized context and example: a merge in which the example's features win.
    context = example_from_json(doc["context"], "context") if "context" in doc else b""
    if "examples" not in doc:
        raise InvalidArgument(f"When method is {method}, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise InvalidArgument("Expecting 'examples' value to be an list/array")
    if not examples:
        raise InvalidArgument("'examples' value is an empty array")
    serialized = [context + example_from_json(value, f"examples[{i}]") for i, value in enumerate(examples)]
    return ExamplesRequest(signature or DEFAULT_SIGNATURE, serialized)


def examples_signature(servable: Servable, method: Method, name: str) -> Signature:
    """The servable's signature `name`, checked to be one TF Serving's classifier or regressor runs.

    A signature with the right method name is checked for TF Serving's
    shape (one string input `inputs`; `classes`/`scores`, or `outputs`). One
    with another method name is still taken when it has that shape (TF
    Serving without `--enable_signature_method_name_check`, which serves
    native TF2 classifiers); otherwise the error is TF Serving's method-name
    text, followed by the signatures the client could name instead.

    Args:
        servable: the model version the request addresses.
        method: `classify` or `regress`.
        name: the requested signature key.

    Returns:
        The signature to call with `{"inputs": serialized examples}`.

    Raises:
        InvalidArgument: no signature `name`, or it cannot serve `method`.
    """
    if name not in servable.signatures:
        raise InvalidArgument(
            f"No signature was found with the name: {name} (this model has: {', '.join(sorted(servable.signatures))})"
        )
    signature = servable.signatures[name]
    problem = _shape_problem(method, signature)
    if problem is None:
        return signature
    method_name = _method_name(servable, name)
    if method_name == METHOD_NAMES[method]:
        raise InvalidArgument(f"{problem} (signature \"{name}\")")
    kind = "classification" if method == "classify" else "regression"
    fitting = [key for key, other in sorted(servable.signatures.items()) if _shape_problem(method, other) is None]
    hint = (
        f'pass "signature_name": one of {", ".join(fitting)}' if fitting
        else f"this model has no {kind} signature: export one (export_serving_model with "
        f"{'classify=True' if method == 'classify' else 'regress=OUTPUT_NAME'}) or call :predict"
    )
    raise InvalidArgument(
        f"Expected {kind} signature method_name to be {METHOD_NAMES[method]}. Was: {method_name} "
        f"(signature \"{name}\" takes {', '.join(sorted(signature.inputs)) or 'no input'}; {hint})"
    )


def _method_name(servable: Servable, name: str) -> str:
    return servable.signature_def.get("signature_def", {}).get(name, {}).get("method_name", "")


def _shape_problem(method: Method, signature: Signature) -> str | None:
    """TF Serving's `PreProcessClassification` / `PreProcessRegression` checks; None when they pass."""
    inputs, outputs = signature.inputs, signature.outputs
    if len(inputs) != 1:
        return "Expected one input Tensor."
    if EXAMPLES_INPUT not in inputs or inputs[EXAMPLES_INPUT].dtype != object:
        kind = "classification" if method == "classify" else "regression"
        return f"No {kind} inputs found in SignatureDef: expected one string input '{EXAMPLES_INPUT}'"
    if method == "classify":
        if len(outputs) not in (1, 2):
            return f"Expected one or two output Tensors, found {len(outputs)}"
        if CLASSES_OUTPUT not in outputs and SCORES_OUTPUT not in outputs:
            return 'Expected classification signature outputs to contain at least one of "classes" or "scores".'
        return None
    if len(outputs) != 1:
        return "Expected one output Tensor."
    if REGRESS_OUTPUT not in outputs:
        return f"No regression outputs found in SignatureDef: expected an output '{REGRESS_OUTPUT}'"
    return None


def _float32_json(values: np.ndarray) -> list:
    """Floats whose JSON text is the shortest that reads back to the same float32 (0.1, not 0.10000000149)."""
    return values.astype(np.float32).astype(str).astype(np.float64).tolist()


def _checked(outputs: Mapping[str, np.ndarray], key: str, num_examples: int) -> np.ndarray | None:
    """A classify output (`classes` or `scores`) checked as TF Serving's `PostProcessClassificationResult` does."""
    array = outputs.get(key)
    if array is None:
        return None
    if array.ndim != 2:
        raise InvalidArgument(f"Expected Tensor shape: [batch_size num_classes] but got {list(array.shape)}")
    want, wire = (np.dtype(object), "DT_STRING") if key == CLASSES_OUTPUT else (np.dtype(np.float32), "DT_FLOAT")
    if array.dtype != want:
        raise InvalidArgument(f"Expected {key} Tensor of {wire}. Got: {array.dtype.name}")
    if array.shape[0] != num_examples:
        raise InvalidArgument(f"Expected {key} output batch size of {num_examples}. Got: {array.shape[0]}")
    return array


def classification_outputs(outputs: Mapping[str, np.ndarray], num_examples: int) -> tuple[list, np.ndarray]:
    """A classify signature's outputs, checked, as labels and scores of equal shape.

    Args:
        outputs: `classes` (strings, `[batch, num_classes]`) and/or `scores`
            (float32, same shape).
        num_examples: the number of examples sent.

    Returns:
        `(labels, scores)`: labels as nested lists of str (`""` everywhere
        when the signature has no `classes`), scores as a float32 array
        (zeros when it has no `scores`), as TF Serving fills its
        `ClassificationResult`.

    Raises:
        InvalidArgument: the outputs have the wrong rank, dtype or batch
            size, or `classes` and `scores` disagree in width.
    """
    classes = _checked(outputs, CLASSES_OUTPUT, num_examples)
    scores = _checked(outputs, SCORES_OUTPUT, num_examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise InvalidArgument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    shape = (classes if classes is not None else scores).shape
    # Labels are bytes in the graph; TF Serving copies them into a proto string.
    labels = ([[label.decode("utf-8", "replace") for label in row] for row in classes.tolist()]
              if classes is not None else [[""] * shape[1] for _ in range(shape[0])])
    return labels, scores if scores is not None else np.zeros(shape, np.float32)


def regression_outputs(outputs: Mapping[str, np.ndarray], num_examples: int) -> np.ndarray:
    """A regress signature's `outputs`, checked as TF Serving's `PostProcessRegressionResult` does.

    Args:
        outputs: `outputs`, float32 of shape `[batch]` or `[batch, 1]`.
        num_examples: the number of examples sent.

    Returns:
        One float32 value per example, shape `[batch]`.

    Raises:
        InvalidArgument: the output has the wrong shape, dtype or batch size.
    """
    values = outputs[REGRESS_OUTPUT]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise InvalidArgument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {list(values.shape)}"
        )
    if values.shape[0] != num_examples:
        raise InvalidArgument(
            f"Input batch size did not match output batch size: {num_examples} vs. {values.shape[0]}"
        )
    if values.dtype != np.float32:
        raise InvalidArgument(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype.name}")
    return values.reshape(-1)


def classification_results(outputs: Mapping[str, np.ndarray], num_examples: int) -> bytes:
    """The `:classify` response body from a classify signature's outputs.

    Args:
        outputs: the signature's outputs (see `classification_outputs`).
        num_examples: the number of examples sent.

    Returns:
        `{"results": [[["label", score], ...], ...]}` as JSON bytes.

    Raises:
        InvalidArgument: the outputs are not a classify signature's (see
            `classification_outputs`).
    """
    labels, scores = classification_outputs(outputs, num_examples)
    results = [[[label, score] for label, score in zip(row_labels, row_scores)]
               for row_labels, row_scores in zip(labels, _float32_json(scores))]
    return json.dumps({"results": results}, separators=(",", ":")).encode("utf-8")


def regression_results(outputs: Mapping[str, np.ndarray], num_examples: int) -> bytes:
    """The `:regress` response body from a regress signature's outputs.

    Args:
        outputs: the signature's outputs (see `regression_outputs`).
        num_examples: the number of examples sent.

    Returns:
        `{"results": [value, ...]}` as JSON bytes, one value per example.

    Raises:
        InvalidArgument: the output is not a regress signature's (see
            `regression_outputs`).
    """
    values = regression_outputs(outputs, num_examples)
    return json.dumps({"results": _float32_json(values)}, separators=(",", ":")).encode("utf-8")
