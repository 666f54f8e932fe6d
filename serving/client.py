"""A client for the TensorFlow Serving REST API: tfdl's server and the real TF Serving alike.

    client = Client("http://127.0.0.1:8501", "digits")
    client.predict(instances=rows)["predictions"]
    client.classify([{"pixels": row} for row in rows], signature_name="classification")

It keeps one HTTP/1.1 connection open (reconnecting when the server closed
it), so sequential requests skip the TCP handshake. One `Client` is for one
thread; give each thread its own.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit


class ServingClientError(RuntimeError):
    """The server answered with an error; `status` is its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _jsonable(value: Any) -> Any:
    """numpy arrays (and nested dicts of them) to plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Client:
    """Talks to one model on a TF Serving REST endpoint."""

    def __init__(self, url: str = "http://127.0.0.1:8501", model_name: str = "default", timeout: float = 30.0):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"url {url!r}: use http:// or https://")
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self.model_name = model_name
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _path(self, version: int | None, label: str | None) -> str:
        if version is not None and label is not None:
            raise ValueError("give a version or a label, not both")
        path = f"/v1/models/{quote(self.model_name, safe='')}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += f"/labels/{quote(label, safe='')}"
        return path

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._connection = kind(self._netloc, timeout=self.timeout)
        return self._connection

    def _request(self, method: str, path: str, body: bytes | None = None) -> dict:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                # The server closed an idle keep-alive connection: reconnect once.
                self.close()
                if attempt == 2:
                    raise
        try:
            data = json.loads(payload) if payload else {}
        except json.JSONDecodeError:
            data = {"error": payload.decode("utf-8", "replace")}
        if response.status >= 400:
            raise ServingClientError(response.status, data.get("error", str(data)) if isinstance(data, dict) else str(data))
        return data

    def status(self, version: int | None = None, label: str | None = None) -> dict:
        """`GET /v1/models/NAME[/versions/N]`: the model's version states."""
        return self._request("GET", self._path(version, label))

    def metadata(self, version: int | None = None, label: str | None = None) -> dict:
        """`GET .../metadata`: the signature defs."""
        return self._request("GET", self._path(version, label) + "/metadata")

    def predict(
        self,
        instances: Any = None,
        inputs: Any = None,
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> dict:
        """`POST ...:predict` in the row (`instances`) or columnar (`inputs`) format.

        Returns the response: `{"predictions": [...]}` or `{"outputs": ...}`.
        """
        if (instances is None) == (inputs is None):
            raise ValueError("give exactly one of instances (row format) or inputs (columnar format)")
        body: dict[str, Any] = {"instances": _jsonable(instances)} if instances is not None else {"inputs": _jsonable(inputs)}
        if signature_name:
            body["signature_name"] = signature_name
        return self._request("POST", self._path(version, label) + ":predict", json.dumps(body).encode("utf-8"))

    def classify(
        self,
        examples: Sequence[Mapping[str, Any]],
        signature_name: str | None = None,
        context: Mapping[str, Any] | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> list:
        """`POST ...:classify`: tf.Examples given as JSON objects of features.

        Each example maps a feature name to a value or a list of values;
        integers become `int64_list`, floats `float_list`, strings and
        `{"b64": ...}` `bytes_list`. `context` features go into every example
        (an example's own feature wins).

        Returns:
            The response's `results`: per example, `[label, score]` pairs.
        """
        return self._examples("classify", examples, signature_name, context, version, label)

    def regress(
        self,
        examples: Sequence[Mapping[str, Any]],
        signature_name: str | None = None,
        context: Mapping[str, Any] | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> list:
        """`POST ...:regress`: the examples as in `classify`.

        Returns:
            The response's `results`: one value per example.
        """
        return self._examples("regress", examples, signature_name, context, version, label)

    def _examples(self, method: str, examples, signature_name, context, version, label) -> list:
        body: dict[str, Any] = {"examples": _jsonable(examples)}
        if signature_name:
            body["signature_name"] = signature_name
        if context is not None:
            body["context"] = _jsonable(context)
        path = self._path(version, label) + f":{method}"
        response = self._request("POST", path, json.dumps(body).encode("utf-8"))
        # TF Serving's key is "results" (kClassifyRegressResponseKey), though its API doc says "result".
        if "results" not in response:
            raise ServingClientError(200, f"the {method} response has no 'results': {str(response)[:200]}")
        return response["results"]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_request(source: str, columnar: bool = False) -> dict:
    """Arguments for `Client.predict` from a file or inline JSON.

    `source` is a `.npy` file (an array of examples), a `.json` file, or a
    JSON string. JSON that already is a request (`instances` or `inputs`) is
    used as it is; a bare list is taken as the examples.
    """
    path = Path(source)
    if path.suffix == ".npy" and path.is_file():
        import numpy as np

        data: Any = np.load(path, allow_pickle=False).tolist()
    else:
        text = path.read_text() if path.suffix == ".json" or path.is_file() else source
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"--input {source!r} is neither a file nor valid JSON: {error}") from None
    if isinstance(data, dict) and ("instances" in data or "inputs" in data):
        return {k: data[k] for k in ("instances", "inputs") if k in data}
    return {"inputs": data} if columnar else {"instances": data}
