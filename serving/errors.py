"""Errors a request can cause, each with the HTTP status TF Serving gives it.

TF Serving maps its status codes to HTTP: InvalidArgument -> 400,
NotFound -> 404, ResourceExhausted -> 429, and so on; the body is always
`{"error": "<message>"}`.
"""

from __future__ import annotations


class ServingError(Exception):
    """A request that cannot be served; `status` is the HTTP status to answer with."""

    status = 500

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgument(ServingError):
    status = 400


class NotFound(ServingError):
    status = 404


class PayloadTooLarge(ServingError):
    status = 413
