import base64
import json

import numpy as np
import pytest

from tfdl.serving.errors import InvalidArgument
from tfdl.serving.json_codec import TensorSpec, decode_inputs, encode_outputs, parse_json, read_predict_request

PIXELS = {"pixels": TensorSpec("pixels", np.dtype("float32"), (None, 4))}
TWO = {
    "image": TensorSpec("image", np.dtype("float32"), (None, 2)),
    "count": TensorSpec("count", np.dtype("int32"), (None,)),
}


def decode(body, specs=PIXELS):
    request = read_predict_request(parse_json(json.dumps(body).encode()))
    return request, decode_inputs(request, specs)


def test_row_format_with_one_input():
    request, inputs = decode({"instances": [[1, 2, 3, 4], [5, 6, 7, 8.5]]})
    assert request.format == "row" and request.signature_name == "serving_default"
    assert inputs["pixels"].dtype == np.float32
    np.testing.assert_array_equal(inputs["pixels"], [[1, 2, 3, 4], [5, 6, 7, 8.5]])


def test_row_format_with_named_inputs():
    _, inputs = decode({"instances": [{"image": [1, 2], "count": 3}, {"image": [4, 5], "count": 6}]}, TWO)
    np.testing.assert_array_equal(inputs["image"], [[1, 2], [4, 5]])
    np.testing.assert_array_equal(inputs["count"], [3, 6])
    assert inputs["count"].dtype == np.int32


def test_columnar_format_single_and_named():
    request, inputs = decode({"inputs": [[1, 2, 3, 4]], "signature_name": "other"})
    assert request.format == "columnar" and request.signature_name == "other"
    assert inputs["pixels"].shape == (1, 4)
    _, inputs = decode({"inputs": {"image": [[1, 2]], "count": [7]}}, TWO)
    assert inputs["count"].tolist() == [7]


def test_b64_strings_are_decoded():
    specs = {"text": TensorSpec("text", np.dtype(object), (None,))}
    blob = base64.b64encode(b"\x00\xffraw").decode()
    _, inputs = decode({"instances": [{"b64": blob}, "plain"]}, specs)
    assert inputs["text"].tolist() == [b"\x00\xffraw", b"plain"]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "The document is empty"),
        (b"{not json", "JSON Parse error"),
        (b"[1, 2]", "Is not object"),
        (b'{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}', "only one of 'inputs' or 'instances'"),
        (b'{"instance": [[1,2,3,4]]}', "Missing 'inputs' or 'instances' key"),
        (b'{"instances": []}', "No values in 'instances'"),
        (b'{"instances": 3}', "list/array"),
        (b'{"instances": [[1,2,3,4]], "signature_name": 5}', "signature_name"),
    ],
)
def test_malformed_requests_are_invalid_arguments(body, message):
    with pytest.raises(InvalidArgument, match=message):
        request = read_predict_request(parse_json(body))
        decode_inputs(request, PIXELS)


@pytest.mark.parametrize(
    "body, specs, message",
    [
        ({"instances": [[1, 2, 3]]}, PIXELS, r"shape \[1, 3\] but the signature expects pixels: float32\[-1, 4\]"),
        ({"instances": [[1, 2, 3, 4], [1, 2]]}, PIXELS, "unequal length"),
        ({"instances": [["a", "b", "c", "d"]]}, PIXELS, "type string are not of expected type float32"),
        ({"instances": [[True, False, True, False]]}, PIXELS, "type bool"),
        ({"instances": [[1, None, 3, 4]]}, PIXELS, "mixed or null"),
        ({"instances": [{"image": [1.5, 2], "count": 1.5}]}, TWO, "type float are not of expected type int32"),
        ({"instances": [{"image": [1, 2], "count": 2**40}]}, TWO, "outside the range of int32"),
        ({"instances": [{"image": [1, 2]}]}, TWO, "keys must be equal to: count,image"),
        ({"instances": [[1, 2]]}, TWO, "expecting list of objects"),
        ({"inputs": {"image": [[1, 2]]}}, TWO, "Missing named input: count"),
        ({"inputs": {"pixels": [[1, 2, 3, 4]], "extra": 1}}, PIXELS, "does not have named input: extra"),
    ],
)
def test_wrong_shapes_and_types_name_the_input(body, specs, message):
    with pytest.raises(InvalidArgument, match=message):
        decode(body, specs)


def test_encode_row_and_columnar():
    one = {"probabilities": np.array([[0.25, 0.75], [1.0, 0.0]], dtype="float32")}
    assert json.loads(encode_outputs(one, "row")) == {"predictions": [[0.25, 0.75], [1.0, 0.0]]}
    assert json.loads(encode_outputs(one, "columnar")) == {"outputs": [[0.25, 0.75], [1.0, 0.0]]}
    two = {"a": np.array([1, 2]), "b": np.array([[0.5], [1.5]])}
    assert json.loads(encode_outputs(two, "row")) == {"predictions": [{"a": 1, "b": [0.5]}, {"a": 2, "b": [1.5]}]}
    assert json.loads(encode_outputs(two, "columnar")) == {"outputs": {"a": [1, 2], "b": [[0.5], [1.5]]}}


def test_string_outputs_named_bytes_are_base64():
    out = {"label": np.array([b"seven"], dtype=object), "raw_bytes": np.array([b"\xff"], dtype=object)}
    assert json.loads(encode_outputs(out, "columnar")) == {"outputs": {"label": ["seven"], "raw_bytes": [{"b64": "/w=="}]}}
