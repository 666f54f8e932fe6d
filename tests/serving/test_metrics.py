"""Prometheus metrics: request counts, latency and batch histograms, model state, the metrics page,
and the compose deployment in which Prometheus scrapes tfdl and TF Serving."""

import asyncio
import re
import shlex
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from tfdl.cli import build_parser
from tfdl.serving.metrics import LATENCY_BUCKETS_S, METRICS_PATH, ServingMetrics, status_name
from tfdl.serving.middleware import MetricsMiddleware, build_middleware, route_of

DOCKER = Path(__file__).resolve().parents[2] / "docker"
REQUESTS = ":tensorflow:serving:request_count_total"
LATENCY = "tfdl_serving_request_latency_seconds"


def call(app, method, path, headers=(), body=b""):
    """One request through an ASGI app in this process: (status, headers, body)."""

    async def run():
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http",
            "method": method, "path": unquote(path), "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8501),
            "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        }
        messages, delivered = [], False

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # a client that stays connected

        async def send(message):
            messages.append(message)

        await app(scope, receive, send)
        return messages

    messages = asyncio.run(run())
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in messages[1:])


async def fake_rest(request):
    """Answers as rest.py does for a server holding only `digits`, and takes 20 ms to predict."""
    path, method = request.url.path, request.method
    if method == "POST" and path.startswith("/v1/models/digits") and path.endswith(":predict"):
        if await request.body() == b"not json":
            return JSONResponse({"error": "JSON Parse error"}, 400)
        await run_in_threadpool(time.sleep, 0.02)
        return JSONResponse({"predictions": [[1.0]]})
    if method == "GET" and path in ("/v1/models/digits", "/v1/models/digits/metadata"):
        return JSONResponse({})
    return JSONResponse({"error": "not found"}, 404)


def make_app(metrics, **options):
    return Starlette(
        routes=[Route("/{path:path}", fake_rest, methods=["GET", "POST"])],
        middleware=build_middleware(metrics=metrics, model_names=lambda: ["digits"], access_log=False, **options),
    )


def scrape(app) -> dict:
    """The metrics page parsed as Prometheus would: {(series, labels): value}."""
    status, headers, body = call(app, "GET", METRICS_PATH)
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def labels(**pairs):
    return frozenset(pairs.items())


def test_requests_are_counted_by_model_api_and_tf_serving_status():
    metrics = ServingMetrics()
    app = make_app(metrics)
    for path in ["/v1/models/digits:predict", "/v1/models/digits/versions/1:predict"]:
        assert call(app, "POST", path, body=b"[]")[0] == 200
    assert call(app, "POST", "/v1/models/digits:predict", body=b"not json")[0] == 400
    assert call(app, "GET", "/v1/models/digits")[0] == 200
    assert call(app, "GET", "/v1/models/digits/metadata")[0] == 200
    # Names the server does not hold share one series, whatever clients invent.
    assert call(app, "POST", "/v1/models/invented-1:predict")[0] == 404
    assert call(app, "POST", "/v1/models/invented-2:regress")[0] == 404
    assert call(app, "GET", "/favicon.ico")[0] == 404
    series = scrape(app)
    counts = {key[1]: value for key, value in series.items() if key[0] == REQUESTS}
    assert counts == {
        labels(model_name="digits", API="predict", status="OK", code="200"): 2.0,
        labels(model_name="digits", API="predict", status="INVALID_ARGUMENT", code="400"): 1.0,
        labels(model_name="digits", API="status", status="OK", code="200"): 1.0,
        labels(model_name="digits", API="metadata", status="OK", code="200"): 1.0,
        labels(model_name="", API="predict", status="NOT_FOUND", code="404"): 1.0,
        labels(model_name="", API="regress", status="NOT_FOUND", code="404"): 1.0,
        labels(model_name="", API="other", status="NOT_FOUND", code="404"): 1.0,
    }  # and the scrapes themselves are not counted
    assert scrape(app)[(REQUESTS, labels(model_name="digits", API="predict", status="OK", code="200"))] == 2.0


def test_latency_histogram_times_successful_requests_in_seconds():
    metrics = ServingMetrics()
    app = make_app(metrics)
    for _ in range(2):
        call(app, "POST", "/v1/models/digits:predict", body=b"[]")
    call(app, "POST", "/v1/models/digits:predict", body=b"not json")
    series = scrape(app)
    predict = dict(model_name="digits", API="predict", entrypoint="REST")
    bounds = sorted(float(dict(key[1])["le"]) for key in series if key[0] == LATENCY + "_bucket"
                    and dict(key[1])["API"] == "predict")
    assert bounds == [*LATENCY_BUCKETS_S, float("inf")]
    assert series[(LATENCY + "_count", labels(**predict))] == 2.0  # the 400 is counted, not timed
    assert series[(LATENCY + "_sum", labels(**predict))] >= 0.04  # two 20 ms predictions, in seconds
    assert series[(LATENCY + "_bucket", labels(**predict, le="0.01"))] == 0.0
    assert series[(LATENCY + "_bucket", labels(**predict, le="+Inf"))] == 2.0


def test_a_request_the_app_fails_is_counted_as_500_and_the_error_goes_on():
    async def broken(scope, receive, send):
        raise RuntimeError("bug")

    metrics = ServingMetrics()
    with pytest.raises(RuntimeError, match="bug"):
        call(MetricsMiddleware(broken, metrics, lambda: ["digits"]), "GET", "/v1/models/digits")
    value = metrics.registry.get_sample_value(
        REQUESTS, {"model_name": "digits", "API": "status", "status": "INTERNAL", "code": "500"})
    assert value == 1.0


def test_batches_are_counted_and_sized():
    metrics = ServingMetrics()
    for size in (3, 8, 8, 100):
        metrics.observe_batch("digits", size)
    get = metrics.registry.get_sample_value
    name = ":tensorflow:serving:batching_session:processed_batch_size"
    assert get(name + "_count", {"model_name": "digits"}) == 4.0
    assert get(name + "_sum", {"model_name": "digits"}) == 119.0
    assert get(name + "_bucket", {"model_name": "digits", "le": "2.0"}) == 0.0
    assert get(name + "_bucket", {"model_name": "digits", "le": "4.0"}) == 1.0
    assert get(name + "_bucket", {"model_name": "digits", "le": "8.0"}) == 3.0
    assert get(name + "_bucket", {"model_name": "digits", "le": "128.0"}) == 4.0
    assert get(":tensorflow:serving:batching_session:wrapped_run_count_total", {"model_name": "digits"}) == 4.0
    with pytest.raises(ValueError, match="batch size must be at least 1, got 0 for model 'digits'"):
        metrics.observe_batch("digits", 0)


def test_model_state_gauge_follows_load_and_unload():
    metrics = ServingMetrics()
    metrics.set_model_available("digits", 1, True)
    metrics.set_model_available("digits", 2, True)
    metrics.set_model_available("digits", 1, False)
    series = scrape(make_app(metrics))
    assert series[("tfdl_serving_model_available", labels(model_name="digits", version="1"))] == 0.0
    assert series[("tfdl_serving_model_available", labels(model_name="digits", version="2"))] == 1.0


def test_each_server_counts_in_its_own_registry():
    first, second = ServingMetrics(), ServingMetrics()
    call(make_app(first), "GET", "/v1/models/digits")
    key = {"model_name": "digits", "API": "status", "status": "OK", "code": "200"}
    assert first.registry.get_sample_value(REQUESTS, key) == 1.0
    assert second.registry.get_sample_value(REQUESTS, key) is None


def test_status_names_are_tf_servings_and_paths_parse_as_rest_routes_them():
    assert [status_name(code) for code in (200, 400, 401, 404, 413, 429, 501, 504, 418)] == [
        "OK", "INVALID_ARGUMENT", "UNAUTHENTICATED", "NOT_FOUND", "RESOURCE_EXHAUSTED",
        "RESOURCE_EXHAUSTED", "UNIMPLEMENTED", "DEADLINE_EXCEEDED", "UNKNOWN"]

    def route(method, path):
        return route_of({"method": method, "path": unquote(path), "raw_path": path.encode()})

    assert route("POST", "/v1/models/digits/versions/2:PREDICT") == ("digits", "predict")
    assert route("POST", "/v1/models/digits/labels/stable:classify") == ("digits", "classify")
    assert route("POST", "/v1/models/a%2Fb:regress") == ("a/b", "regress")  # %2F stays in the name
    assert route("GET", "/V1/MODELS/digits/versions/1/metadata") == ("digits", "metadata")
    assert route("GET", "/v1/models/digits/labels/stable") == ("digits", "status")
    assert route("GET", "/v1/openapi.json") == ("", "other")
    assert route("POST", "/v1/models/digits") == ("", "other")
    assert route("DELETE", "/v1/models/digits") == ("", "other")


# --- The deployment: tfdl beside TF Serving, both scraped by Prometheus. No docker engine
# runs here, so these check what the files say, parsed as the tools parse them.


def monitoring_config_message():
    """TF Serving's MonitoringConfig, built from monitoring_config.proto's two messages
    (tensorflow-serving-api ships no Python module for it)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="monitoring_config.proto", package="tensorflow.serving",
                                               syntax="proto3")
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1)  # bool
    prometheus.field.add(name="path", number=2, type=9, label=1)  # string
    config = proto.message_type.add(name="MonitoringConfig")
    config.field.add(name="prometheus_config", number=1, type=11, label=1,
                     type_name=".tensorflow.serving.PrometheusConfig")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def test_compose_runs_both_servers_on_one_read_only_models_folder():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"tfdl", "tf-serving", "prometheus"}
    assert services["tfdl"]["build"] == {"context": "..", "dockerfile": "docker/tfdl-serving.Dockerfile"}
    assert (DOCKER / ".." / services["tfdl"]["build"]["dockerfile"]).resolve() == DOCKER / "tfdl-serving.Dockerfile"
    assert services["tf-serving"]["image"].startswith("tensorflow/serving:")
    models = [[v for v in services[name]["volumes"] if v["target"] == "/models"] for name in ("tfdl", "tf-serving")]
    assert models[0] == models[1] and len(models[0]) == 1
    assert models[0][0]["read_only"] is True and models[0][0]["type"] == "bind"
    assert services["tfdl"]["ports"] == ["8501:8501", "8500:8500"]
    assert services["tf-serving"]["ports"] == ["9501:8501", "9500:8500"]
    assert services["prometheus"]["ports"] == ["9090:9090"]
    flag = "--monitoring_config_file=/etc/tf-serving/monitoring.config"
    assert services["tf-serving"]["command"] == [flag]
    mounted = {v["target"]: v for v in services["tf-serving"]["volumes"]}["/etc/tf-serving/monitoring.config"]
    assert (DOCKER / mounted["source"]).is_file() and mounted["read_only"] is True
    prometheus_mount = services["prometheus"]["volumes"][0]
    assert prometheus_mount["target"] == "/etc/prometheus/prometheus.yml"
    assert (DOCKER / prometheus_mount["source"]).is_file()


def test_prometheus_scrapes_both_servers_on_tf_servings_metrics_path():
    from google.protobuf import text_format

    scrape_configs = yaml.safe_load((DOCKER / "prometheus.yml").read_text())["scrape_configs"]
    jobs = {job["job_name"]: job for job in scrape_configs}
    assert set(jobs) == {"tfdl", "tf-serving"}
    for name in jobs:
        assert jobs[name]["metrics_path"] == METRICS_PATH
        assert jobs[name]["static_configs"][0]["targets"] == [f"{name}:8501"]
    config = text_format.Parse((DOCKER / "tf-serving-monitoring.config").read_text(), monitoring_config_message()())
    assert config.prometheus_config.enable is True
    assert config.prometheus_config.path == METRICS_PATH


def test_dockerfile_serves_as_a_non_root_user_with_a_healthcheck():
    text = (DOCKER / "tfdl-serving.Dockerfile").read_text()
    instructions = re.findall(r"^([A-Z]+) ((?:[^\n]*\\\n)*[^\n]*)", text, re.MULTILINE)
    keywords = [keyword for keyword, _ in instructions]
    args = {keyword: rest for keyword, rest in instructions}
    assert keywords[0] == "FROM" and args["FROM"] == "python:3.11-slim"
    assert any(k == "RUN" and "pip install ." in rest for k, rest in instructions)
    assert args["USER"] == "10001" and keywords.index("USER") > keywords.index("RUN")
    assert args["EXPOSE"] == "8501 8500"
    assert "http://127.0.0.1:8501/v1/models/' + os.environ['MODEL_NAME']" in args["HEALTHCHECK"]
    command = yaml.safe_load(args["CMD"])  # the exec form is a JSON array
    assert command[:2] == ["sh", "-c"] and command[2].startswith("exec tfdl serve ")
    # The command line, as the shell expands it, is one `tfdl serve` accepts.
    assert "MODEL_BASE_PATH=/models" in text
    env = {"MODEL_BASE_PATH": "/models", "MODEL_NAME": "digits"}
    argv = shlex.split(command[2].replace("$MODEL_BASE_PATH", env["MODEL_BASE_PATH"])
                       .replace("$MODEL_NAME", env["MODEL_NAME"]))[2:]
    parsed = build_parser().parse_args(argv)
    assert (parsed.host, parsed.port, parsed.model_base_path, parsed.model_name) == (
        "0.0.0.0", 8501, "/models/digits", "digits")
