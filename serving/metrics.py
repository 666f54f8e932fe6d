"""Prometheus metrics of a REST server, under TF Serving's names where TF Serving has the metric.

Each app owns one `ServingMetrics` with its own `CollectorRegistry`, so two
servers in one process (or two tests) never share counts. `MetricsMiddleware`
(middleware.py) counts and times requests and answers
`GET /monitoring/prometheus/metrics`, TF Serving's path; the batcher calls
`observe_batch`, and whatever loads or unloads a model version calls
`set_model_available`.

What each series is, and its TF Serving counterpart (enabled there with
`--monitoring_config_file`, see docker/tf-serving-monitoring.config):

    tfdl                                         TF Serving
    :tensorflow:serving:request_count_total      :tensorflow:serving:request_count
      {model_name, status, API, code}              {model_name, status}
    tfdl_serving_request_latency_seconds         :tensorflow:serving:request_latency
      {model_name, API, entrypoint}                {model_name, API, entrypoint}, in µs
    :tensorflow:serving:batching_session:        :tensorflow:serving:batching_session:
      processed_batch_size {model_name}            processed_batch_size (no labels)
    :tensorflow:serving:batching_session:        :tensorflow:serving:batching_session:
      wrapped_run_count_total {model_name}         wrapped_run_count (no labels)
    tfdl_serving_model_available                 (none; TF Serving reports state
      {model_name, version}                        only through GET /v1/models/NAME)

The differences are deliberate. prometheus_client ends every counter's
series in `_total`, as OpenMetrics requires, so a TF Serving query for
`:tensorflow:serving:request_count` reads `..._total` here. `status` holds
the canonical code name TF Serving uses (`OK`, `INVALID_ARGUMENT`, ...);
`API` (predict, classify, regress, status, metadata, other) and `code` (the
HTTP status) are added, so a `sum by (model_name, status)` means the same on
both servers. Latency is in seconds, Prometheus's base unit, under a name of
its own, since the same name with another unit would be wrong by 10^6 on a
dashboard built for TF Serving; as there, only successful requests are
timed (failures are counted, and are fast). `model_name` is `""` for a
request that names no model the server holds, as TF Serving does for a path
it cannot parse, so a client cannot create series by inventing names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

METRICS_PATH = "/monitoring/prometheus/metrics"
# What `generate_latest` writes; said explicitly because Prometheus 3 refuses
# a page whose type it cannot place, and prometheus_client's own "latest"
# has moved between releases.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# 0.5 ms (a status request) to 10 s (a large batch on a busy CPU), about
# three buckets a decade, so a p99 reads within a factor of ~2.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# TF Serving's batch size buckets: powers of two from 1 to 8192.
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(14))

# HTTP status -> the canonical code TF Serving would report; where several
# codes share a status (400), the one TF Serving's REST handler gives most.
_STATUS_NAMES = {
    200: "OK",
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(code: int) -> str:
    """The canonical (gRPC) status name TF Serving reports for an HTTP status.

    Args:
        code: the HTTP status of a response.

    Returns:
        `OK`, `INVALID_ARGUMENT`, ...; `UNKNOWN` for a status TF Serving never answers.
    """
    return _STATUS_NAMES.get(code, "UNKNOWN")


class ServingMetrics:
    """The Prometheus metrics of one server, in a registry of their own.

        metrics = ServingMetrics()
        metrics.set_model_available("digits", 1, True)
        metrics.observe_batch("digits", 32)
        metrics.exposition()  # b'# HELP :tensorflow:serving:request_count_total ...'
    """

    def __init__(self):
        self.registry = CollectorRegistry()
        self._requests = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ["model_name", "status", "API", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "tfdl_serving_request_latency_seconds",
            "Wall time of successful requests, in seconds, from the first byte read to the last byte sent.",
            ["model_name", "API", "entrypoint"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing.",
            ["model_name"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self._batches = Counter(
            ":tensorflow:serving:batching_session:wrapped_run_count",
            "Total count of batches run on the model.",
            ["model_name"],
            registry=self.registry,
        )
        self._available = Gauge(
            "tfdl_serving_model_available",
            "1 while the model version serves requests, 0 once it does not.",
            ["model_name", "version"],
            registry=self.registry,
        )

    def observe_request(self, model: str, api: str, code: int, seconds: float) -> None:
        """Count one answered request, and time it if it succeeded.

        Args:
            model: the model it addressed, `""` for none the server holds.
            api: predict, classify, regress, status, metadata or other.
            code: the HTTP status it was answered with.
            seconds: wall time from the request's arrival to its last byte sent.
        """
        self._requests.labels(model, status_name(code), api, str(code)).inc()
        if code == 200:
            self._latency.labels(model, api, "REST").observe(seconds)

    def observe_batch(self, model: str, size: int) -> None:
        """Record one batch the batcher ran on `model`.

        Args:
            model: the model name.
            size: examples in the batch, padding included.

        Raises:
            ValueError: if `size` is below 1 (a batcher bug: no batch is empty).
        """
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size} for model {model!r}")
        self._batch_size.labels(model).observe(size)
        self._batches.labels(model).inc()

    def set_model_available(self, model: str, version: int, available: bool) -> None:
        """Set the load state of one model version: 1 while it serves, 0 once unloaded or failed.

        Args:
            model: the model name.
            version: the version number.
            available: whether the version answers requests now.
        """
        self._available.labels(model, str(version)).set(1 if available else 0)

    def exposition(self) -> bytes:
        """All metrics in the Prometheus text format 0.0.4, which Prometheus 2 and 3 both read.

        Returns:
            The page `GET /monitoring/prometheus/metrics` answers.
        """
        return generate_latest(self.registry)

    def metrics_response(self) -> Response:
        """The response to `GET /monitoring/prometheus/metrics`.

        Returns:
            A 200 response holding `exposition()`.
        """
        return Response(self.exposition(), media_type=CONTENT_TYPE)
