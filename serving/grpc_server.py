"""TF Serving's gRPC API (PredictionService, ModelService) over a `ModelStore`.

The official client works unchanged:

    channel = grpc.insecure_channel("127.0.0.1:8500")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    stub.Predict(request)

Behaviour follows TF Serving's `prediction_service_impl.cc`, `predict_util.cc`,
`classifier.cc`, `regressor.cc`, `get_model_metadata_impl.cc`,
`get_model_status_impl.cc` and `model_service_impl.cc`: the same request
checks, error texts (as message prefixes, with what to do added) and status
codes, and a response `model_spec` filled the same way. Classify and Regress
pick and check their signature with `tfdl.serving.example_codec`, as the REST
`:classify` and `:regress` do, so both APIs accept the same signatures.
HandleReloadConfigRequest reads its `ModelServerConfig` with the reader of
`--model_config_file` and hands it to `ModelStore.reload_config`. Errors keep
TF Serving's codes: a bad input or unknown signature for Classify/Regress is
INVALID_ARGUMENT, an unknown signature for Predict FAILED_PRECONDITION, a
config that cannot be served INVALID_ARGUMENT (the models served before stay
served), an unknown model or version NOT_FOUND, a message over the size limit
RESOURCE_EXHAUSTED (raised by gRPC itself). A `ServingError` raised elsewhere
(a full batch queue, say) maps from its HTTP status, the inverse of TF
Serving's own gRPC-to-HTTP table. Anything else is a bug of ours: it is logged
whole and answered INTERNAL, and the server keeps serving.

Importing this module imports TensorFlow: the servicer base classes come from
`tensorflow_serving.apis`, whose protos live in the `tensorflow` package.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format, struct_pb2, text_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfdl.export.model_server_config import ModelEntry, read_model_server_config
from tfdl.serving.errors import InvalidArgument, ServingError
from tfdl.serving.example_codec import (
    EXAMPLES_INPUT,
    SCORES_OUTPUT,
    classification_outputs,
    examples_signature,
    regression_outputs,
)
from tfdl.serving.json_codec import DEFAULT_SIGNATURE, TensorSpec
from tfdl.serving.model_config import check_model_entry
from tfdl.serving.model_store import ModelStore, Servable, Signature

log = logging.getLogger("tfdl.serving")

DEFAULT_GRPC_PORT = 8500
# TF Serving accepts messages up to 2 GiB; a Python server would hold such a
# request in memory several times over, so the default is smaller and a
# larger one is a decision (`max_message_bytes`).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_MESSAGE_BYTES_LIMIT = 2**31 - 1
SIGNATURE_DEF_FIELD = "signature_def"
# tfdl's own metadata field: the version's manifest.json as a google.protobuf.Struct.
MANIFEST_FIELD = "manifest"
# TF Serving's ToGRPCStatus cuts error messages at this length.
_ERROR_MESSAGE_LIMIT = 1024


class FailedPrecondition(ServingError):
    """TF Serving's FAILED_PRECONDITION (HTTP 400 in its REST mapping): Predict names a signature the model lacks."""

    status = 400


# The inverse of TF Serving's gRPC -> HTTP table (http_server.cc), plus 413
# for a body over the limit.
_CODE_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: ServingError) -> grpc.StatusCode:
    """The gRPC status code answering `error`.

    Args:
        error: a request error; its `status` is the HTTP status REST answers.

    Returns:
        FAILED_PRECONDITION for `FailedPrecondition`, else the code TF Serving
        pairs with that HTTP status; an unlisted 4xx is INVALID_ARGUMENT and
        anything else INTERNAL.
    """
    if isinstance(error, FailedPrecondition):
        return grpc.StatusCode.FAILED_PRECONDITION
    if error.status in _CODE_BY_HTTP_STATUS:
        return _CODE_BY_HTTP_STATUS[error.status]
    return grpc.StatusCode.INVALID_ARGUMENT if 400 <= error.status < 500 else grpc.StatusCode.INTERNAL


def _truncated(message: str) -> str:
    if len(message) <= _ERROR_MESSAGE_LIMIT:
        return message
    return message[:_ERROR_MESSAGE_LIMIT] + "...TRUNCATED"


def _answer(context: grpc.ServicerContext, api: str, call: Callable[[], object]):
    """Run one RPC; turn its errors into gRPC statuses instead of letting them reach gRPC's own handler."""
    try:
        return call()
    except ServingError as error:
        code, message = status_code(error), error.message
        log.debug("gRPC %s failed (%s): %s", api, code.name, message)
    except Exception as error:  # a bug of ours: log it whole, answer INTERNAL, keep serving
        log.exception("internal error serving gRPC %s", api)
        code = grpc.StatusCode.INTERNAL
        message = f"{api} failed with an internal error ({type(error).__name__}); the server log has the details"
    # abort() raises; it must run outside the except blocks so that its
    # exception is not taken for the request's own.
    context.abort(code, _truncated(message))


def _servable(store: ModelStore, spec: model_pb2.ModelSpec) -> Servable:
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return store.get(spec.name, version, label)


def _response_spec(name: str, signature_name: str | None, version: int) -> model_pb2.ModelSpec:
    """The response `model_spec` as TF Serving's MakeModelSpec fills it."""
    spec = model_pb2.ModelSpec(name=name)
    if signature_name is not None:
        spec.signature_name = signature_name or DEFAULT_SIGNATURE
    spec.version.value = version
    return spec


def _check_input_keys(inputs: Mapping[str, object], signature: Signature) -> None:
    sent, expected = set(inputs), set(signature.inputs)
    if sent != expected:
        raise InvalidArgument(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}. Signature '{signature.name}' "
            f"takes {', '.join(spec.describe() for spec in signature.inputs.values())}"
        )


def _to_array(name: str, proto, spec: TensorSpec) -> np.ndarray:
    """One request TensorProto as an array, checked against the signature's dtype and shape.

    TF Serving hands the tensor to the graph as it is, without casting: a
    float64 tensor for a float32 input is refused, so it is here too, with a
    message naming the input instead of the graph's argument index.
    """
    try:
        array = tf.make_ndarray(proto)
    except (TypeError, ValueError, KeyError) as error:
        raise InvalidArgument(
            f"tensor parsing error: {name} ({error}); build the TensorProto with tf.make_tensor_proto"
        ) from None
    expected = "string" if spec.dtype == object else tf.as_dtype(spec.dtype).name
    got = tf.as_dtype(proto.dtype).name
    if got != expected:
        raise InvalidArgument(
            f"input '{name}' is a {got} tensor but the signature expects {spec.describe()}; send "
            f"tf.make_tensor_proto(values, dtype=tf.{expected})"
        )
    fits = array.ndim == len(spec.shape) and all(want in (None, size) for want, size in zip(spec.shape, array.shape))
    if not fits:
        raise InvalidArgument(
            f"input '{name}' has shape {list(array.shape)} but the signature expects {spec.describe()} "
            "(-1: any size; the first dimension is the batch)"
        )
    return array


def _output_aliases(output_filter, signature: Signature) -> list[str]:
    """The outputs a Predict response carries: those in `output_filter`, or all."""
    aliases = list(output_filter)
    for index, alias in enumerate(aliases):
        if alias not in signature.outputs:
            raise InvalidArgument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                f"{{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in aliases[:index]:
            raise InvalidArgument(f"duplicate output tensor alias: {alias}")
    return aliases or sorted(signature.outputs)


def _serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    """The request's tf.Examples serialized, one string each, as the classify/regress signatures take them.

    With `example_list_with_context` each example is the context's bytes
    followed by its own: protobuf merges concatenated messages, so the
    example's features join the context's and win where both have a key,
    exactly as in TF Serving.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        serialized = [example.SerializeToString() for example in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        context = with_context.context.SerializeToString()
        serialized = [context + example.SerializeToString() for example in with_context.examples]
    else:
        serialized = []
    if not serialized:
        raise InvalidArgument("Input is empty. Put tf.train.Example protos in input.example_list.examples")
    return np.array(serialized, dtype=object)


def _classification_result(outputs: Mapping[str, np.ndarray], examples: int) -> classification_pb2.ClassificationResult:
    # One check of the outputs for REST and gRPC alike.
    labels, scores = classification_outputs(outputs, examples)
    has_scores = SCORES_OUTPUT in outputs
    result = classification_pb2.ClassificationResult()
    for row_labels, row_scores in zip(labels, scores):
        classifications = result.classifications.add()
        for label, score in zip(row_labels, row_scores):
            entry = classifications.classes.add(label=label)
            if has_scores:
                entry.score = float(score)
    return result


def _regression_result(outputs: Mapping[str, np.ndarray], examples: int) -> regression_pb2.RegressionResult:
    result = regression_pb2.RegressionResult()
    for number in regression_outputs(outputs, examples).tolist():
        result.regressions.add(value=number)
    return result


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's `tensorflow.serving.PredictionService` answered from a `ModelStore`."""

    def __init__(self, store: ModelStore):
        self._store = store

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext):
        return _answer(context, "Predict", lambda: self._predict(request))

    def Classify(self, request: classification_pb2.ClassificationRequest, context: grpc.ServicerContext):
        return _answer(context, "Classify", lambda: self._classify(request))

    def Regress(self, request: regression_pb2.RegressionRequest, context: grpc.ServicerContext):
        return _answer(context, "Regress", lambda: self._regress(request))

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext):
        return _answer(context, "GetModelMetadata", lambda: self._metadata(request))

    def MultiInference(self, request, context: grpc.ServicerContext):
        def unsupported():
            raise ServingError("MultiInference is not supported by this server; send Classify and Regress "
                               "requests one by one", status=501)

        return _answer(context, "MultiInference", unsupported)

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        servable = _servable(self._store, request.model_spec)
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in servable.signatures:
            raise FailedPrecondition(
                f'Serving signature key "{name}" not found. {servable.name} version {servable.version} has '
                f"{sorted(servable.signatures)}; set model_spec.signature_name to one of them"
            )
        signature = servable.signatures[name]
        _check_input_keys(request.inputs, signature)
        aliases = _output_aliases(request.output_filter, signature)
        inputs = {key: _to_array(key, proto, signature.inputs[key]) for key, proto in request.inputs.items()}
        outputs = signature(inputs)
        spec = _response_spec(request.model_spec.name, name, servable.version)
        response = predict_pb2.PredictResponse(model_spec=spec)
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias]))
        return response

    def _classify(self, request: classification_pb2.ClassificationRequest) -> classification_pb2.ClassificationResponse:
        servable = _servable(self._store, request.model_spec)
        signature = examples_signature(servable, "classify", request.model_spec.signature_name or DEFAULT_SIGNATURE)
        examples = _serialized_examples(request.input)
        result = _classification_result(signature({EXAMPLES_INPUT: examples}), len(examples))
        spec = _response_spec(request.model_spec.name, request.model_spec.signature_name, servable.version)
        return classification_pb2.ClassificationResponse(model_spec=spec, result=result)

    def _regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        servable = _servable(self._store, request.model_spec)
        signature = examples_signature(servable, "regress", request.model_spec.signature_name or DEFAULT_SIGNATURE)
        examples = _serialized_examples(request.input)
        result = _regression_result(signature({EXAMPLES_INPUT: examples}), len(examples))
        spec = _response_spec(request.model_spec.name, request.model_spec.signature_name, servable.version)
        return regression_pb2.RegressionResponse(model_spec=spec, result=result)

    def _metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest):
        if not request.HasField("model_spec"):
            raise InvalidArgument("Missing ModelSpec")
        if not request.metadata_field:
            raise InvalidArgument(
                f"GetModelMetadataRequest must specify at least one metadata_field; add '{SIGNATURE_DEF_FIELD}'"
            )
        for field in request.metadata_field:
            if field not in (SIGNATURE_DEF_FIELD, MANIFEST_FIELD):
                raise InvalidArgument(
                    f"Metadata field {field} is not supported; the fields are '{SIGNATURE_DEF_FIELD}' and "
                    f"'{MANIFEST_FIELD}'"
                )
        servable = _servable(self._store, request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        if SIGNATURE_DEF_FIELD in request.metadata_field:
            signature_map = json_format.ParseDict(servable.signature_def, get_model_metadata_pb2.SignatureDefMap())
            response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        if MANIFEST_FIELD in request.metadata_field:
            if servable.manifest is None:
                raise FailedPrecondition(
                    f"version {servable.version} of {servable.name} was exported without a manifest.json; "
                    f"ask for '{SIGNATURE_DEF_FIELD}' only, or re-export it with tfdl"
                )
            manifest = struct_pb2.Struct()
            manifest.update(servable.manifest)
            response.metadata[MANIFEST_FIELD].Pack(manifest)
        return response


# Where a reload's config is in error messages, instead of the scratch file it is read from.
_RELOAD_CONFIG = "ReloadConfigRequest.config"


def _reload_entries(config) -> list[ModelEntry]:
    """A reload request's `ModelServerConfig` as model entries, checked as a `--model_config_file` is.

    The config goes through the same reader as a `models.config` file
    (`read_model_server_config`), so both paths accept and refuse the same
    configs with the same messages. A relative base path is refused, as TF
    Serving refuses it without `--model_config_list_root_dir`: a request has
    no folder to resolve it against.
    """
    if config.WhichOneof("config") != "model_config_list":
        raise InvalidArgument(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently "
            "supported; fill config.model_config_list"
        )
    with tempfile.TemporaryDirectory(prefix="tfdl-reload-") as folder:
        path = Path(folder) / "models.config"
        path.write_text(text_format.MessageToString(config))
        try:
            entries = read_model_server_config(path)
        except ValueError as error:
            raise InvalidArgument(str(error).replace(str(path), _RELOAD_CONFIG)) from None
    for index, entry in enumerate(entries):
        where = f"{_RELOAD_CONFIG}, models[{index}]"
        try:
            check_model_entry(entry, where)
        except ValueError as error:
            raise InvalidArgument(str(error)) from None
        if not Path(entry.base_path).is_absolute():
            raise InvalidArgument(
                f"Expected model {entry.name} to have an absolute path or URI; got base_path()={entry.base_path} "
                f"({where}; this server has no model_config_list_root_dir to resolve it against)"
            )
    return entries


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's `tensorflow.serving.ModelService`: model status, and config reloads into the store."""

    def __init__(self, store: ModelStore):
        self._store = store

    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext):
        return _answer(context, "GetModelStatus", lambda: self._status(request))

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ):
        return _answer(context, "HandleReloadConfigRequest", lambda: self._reload(request))

    def _reload(self, request: model_management_pb2.ReloadConfigRequest) -> model_management_pb2.ReloadConfigResponse:
        """Serve exactly the request's models; a config the store refuses changes nothing."""
        entries = _reload_entries(request.config)
        for entry in entries:
            log.info("reload config: %s from %s (%s policy)", entry.name, entry.base_path, entry.version_policy)
        try:
            # Blocks until the new versions are loaded, as TF Serving's ReloadConfig does.
            self._store.reload_config(entries)
        except ValueError as error:  # ModelConfigError, ModelLoadError: the store kept its previous config
            log.warning("reload config refused, serving the previous models: %s", error)
            raise InvalidArgument(f"{error}; the models served before this request are served unchanged") from None
        response = model_management_pb2.ReloadConfigResponse()
        response.status.SetInParent()  # error_code OK, as TF Serving fills it
        return response

    def _status(self, request: get_model_status_pb2.GetModelStatusRequest):
        if not request.HasField("model_spec"):
            raise InvalidArgument("Missing ModelSpec")
        spec = request.model_spec
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            version = self._store.get(spec.name, label=spec.version_label).version
        else:
            version = spec.version.value if choice == "version" else None
        # The store answers in the REST API's JSON, which is this response's JSON mapping.
        status = self._store.status(spec.name, version)
        return json_format.ParseDict(status, get_model_status_pb2.GetModelStatusResponse())


class GrpcServer:
    """The gRPC endpoint (TF Serving's `--port`, 8500) serving the models in a `ModelStore`.

        with GrpcServer(store, port=0) as server:
            channel = grpc.insecure_channel(server.address)

    Args:
        store: the models to serve; the REST server may share it.
        host: the interface to listen on; 127.0.0.1 unless exposing the
            server is intended ("0.0.0.0" or "[::]" for all).
        port: the TCP port; 0 picks a free one (read `port` after `start`).
        max_workers: threads answering requests at once; more requests
            wait in gRPC's queue.
        max_message_bytes: the largest request or response; a larger one is
            answered RESOURCE_EXHAUSTED.

    Raises:
        ValueError: a port, worker count or message size out of range.
    """

    def __init__(
        self,
        store: ModelStore,
        host: str = "127.0.0.1",
        port: int = DEFAULT_GRPC_PORT,
        max_workers: int = 16,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 to 65535 (0: any free port), got {port}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if not 1 <= max_message_bytes <= MAX_MESSAGE_BYTES_LIMIT:
            raise ValueError(
                f"max_message_bytes must be 1 to {MAX_MESSAGE_BYTES_LIMIT} (2 GiB), got {max_message_bytes}"
            )
        self.store = store
        self.host = host
        self.port = port
        self.max_workers = max_workers
        self.max_message_bytes = max_message_bytes
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None

    @property
    def address(self) -> str:
        """`host:port`, as `grpc.insecure_channel` takes it."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def start(self) -> "GrpcServer":
        """Bind the port and start answering.

        Returns:
            This server, its `port` set to the one bound.

        Raises:
            RuntimeError: the server is already started.
            OSError: the address cannot be bound (the port is taken, or the
                host is not an interface of this machine).
        """
        if self._server is not None:
            raise RuntimeError(f"the gRPC server on {self.address} is already started")
        executor = futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="tfdl-grpc")
        server = grpc.server(
            executor,
            options=[
                ("grpc.max_receive_message_length", self.max_message_bytes),
                ("grpc.max_send_message_length", self.max_message_bytes),
                # gRPC sets SO_REUSEPORT by default, so a second server on a
                # taken port would start and share its traffic unnoticed.
                ("grpc.so_reuseport", 0),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self.store), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.store), server)
        try:
            bound = server.add_insecure_port(self.address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            executor.shutdown(wait=False)
            raise OSError(
                f"cannot listen for gRPC on {self.address}: the port is in use or the host is not an interface "
                "of this machine; pick another port (0 takes any free one) or host"
            )
        server.start()
        self._server, self._executor, self.port = server, executor, bound
        log.info("gRPC API listening on %s (models: %s)", self.address, ", ".join(self.store.model_names()))
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (`tfdl serve` waits here) or `timeout` seconds pass.

        Args:
            timeout: seconds to wait at most; None waits until `stop`.

        Returns:
            True when the server has stopped, False when the time ran out.
        """
        if self._server is None:
            return True
        # gRPC answers whether the wait timed out.
        return not self._server.wait_for_termination(timeout)

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop taking requests; those running get `grace` seconds to finish (None: cancel them now)."""
        if self._server is None:
            return
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=False)
        self._server = self._executor = None

    def __enter__(self) -> "GrpcServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
