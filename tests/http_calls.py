"""One JSON call to a test server (`BackgroundServer`), for the tests that talk to tfdl's REST API."""

from __future__ import annotations

import http.client
import json


def call(server, method: str, path: str, body=None) -> tuple[int, dict]:
    """Send `body` (JSON-encoded unless bytes) and return the status and the decoded JSON answer."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    status, data = response.status, json.loads(response.read())
    connection.close()
    return status, data
