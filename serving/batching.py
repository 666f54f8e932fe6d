"""Server-side dynamic batching: concurrent requests to one signature run as one model call.

The semantics and parameter names are TF Serving's (`--enable_batching
--batching_parameters_file=FILE`, a text `BatchingParameters` proto; the
BatchingSession on a SharedBatchScheduler queue):

- A request (a task) may hold several rows. Tasks whose inputs have the same
  names, dtypes and non-batch shapes share a queue (with
  `pad_variable_length_inputs`, the same names, dtypes and ranks); each
  queue is a line of batches, the last one open.
- A task joins the open batch when its rows fit under `max_batch_size`;
  otherwise that batch is closed and a new one opened. A task of more than
  `max_batch_size` rows is rejected (400, TF Serving's "Task size N is larger
  than maximum input batch size M"): TF Serving splits tasks only with
  `enable_large_batch_splitting`, which tfdl does not implement.
- A closed batch runs as soon as one of `num_batch_threads` threads is free;
  the open one when it is full, or `batch_timeout_micros` after its first
  task arrived, or when the batcher closes.
- Opening a batch when a queue already holds `max_enqueued_batches` (a batch
  being run no longer counts) is refused at once with `BatchQueueFull` (503):
  a server past its capacity answers fast rather than queueing without end.
- A batch is padded up to the next of `allowed_batch_sizes` by repeating its
  last row; the rows of the padding are dropped from the outputs. (TF
  Serving repeats the first row of the last task; any real row serves, as
  the padding's outputs are discarded.)

Differences from TF Serving: each `Batcher` owns its threads (TF Serving
shares one pool across all models), and a file that leaves a field unset
gets tfdl's defaults below, not TF Serving's built-in ones (1000, 0, 10, one
thread per core); `write_batching_parameters` writes every field, so both
servers read a written file the same way.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfdl.serving.errors import InvalidArgument, ServingError

# TF Serving's name for the file a SavedModel may carry its own parameters in
# (read with `--enable_per_model_batching_parameters`).
BATCHING_PARAMS_FILENAME = "batching_params.pbtxt"

_WRAPPED_INT_FIELDS = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")


class BatchQueueFull(ServingError):
    """The batch queue holds `max_enqueued_batches` already; TF Serving answers UNAVAILABLE (503)."""

    status = 503


class BatchTimeout(ServingError):
    """A request's `timeout` passed: 429 while it was queued (as TF Serving), 504 once its batch was running."""

    status = 429


@dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's `BatchingParameters`, with the fields tfdl's batcher uses.

    Args:
        max_batch_size: most rows in one batch, and in one request.
        batch_timeout_micros: how long the first request of a batch that is
            not full waits for others before the batch runs; 0 runs it as
            soon as a thread is free.
        max_enqueued_batches: most batches waiting per queue; past it
            requests are refused with `BatchQueueFull`.
        num_batch_threads: threads running batches, i.e. most model calls at
            once.
        allowed_batch_sizes: if set, the only batch sizes the model sees,
            increasing and ending at `max_batch_size`; a batch is padded up
            to the next one.
        pad_variable_length_inputs: let requests whose inputs differ in
            non-batch dimensions share a batch; each is padded at the end of
            those dimensions to the batch's largest, with its own first value
            (as TF Serving does).
        thread_pool_name: the name of the batch threads (`NAME_0`, ...).

    Raises:
        ValueError: a field out of range, naming it and the value.
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 100
    num_batch_threads: int = 2
    allowed_batch_sizes: Sequence[int] = ()
    pad_variable_length_inputs: bool = False
    thread_pool_name: str = "batch_threads"

    def __post_init__(self):
        for name in _WRAPPED_INT_FIELDS:
            value = getattr(self, name)
            lowest = 0 if name == "batch_timeout_micros" else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest:
                raise ValueError(f"batching parameter {name} must be an integer >= {lowest}, got {value!r}")
            object.__setattr__(self, name, int(value))
        sizes = [int(size) for size in self.allowed_batch_sizes]
        object.__setattr__(self, "allowed_batch_sizes", tuple(sizes))
        if sizes:
            if sizes[0] < 1 or any(b <= a for a, b in zip(sizes, sizes[1:])):
                raise ValueError(
                    f"batching parameter allowed_batch_sizes must be positive and strictly increasing, got {sizes}"
                )
            if sizes[-1] != self.max_batch_size:
                raise ValueError(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {self.max_batch_size}"
                )
        if not isinstance(self.pad_variable_length_inputs, bool):
            raise ValueError(
                f"batching parameter pad_variable_length_inputs must be true or false, "
                f"got {self.pad_variable_length_inputs!r}"
            )
        if not self.thread_pool_name:
            raise ValueError("batching parameter thread_pool_name must not be empty")

    def padded_size(self, rows: int) -> int:
        """The batch size the model sees for `rows` rows: the next allowed size, or `rows` itself."""
        return next((size for size in self.allowed_batch_sizes if size >= rows), rows)


def read_batching_parameters(path: Path | str) -> BatchingParameters:
    """Parse a TF Serving `--batching_parameters_file` (a text `BatchingParameters` proto).

    The file looks like `max_batch_size { value: 128 }` per line, with
    `allowed_batch_sizes: 8` repeated (or `allowed_batch_sizes: [8, 128]`).
    tensorflow-serving-api does not ship this proto's Python module, so the
    message is declared here field for field, with the same names, numbers
    and types, and parsed by protobuf's own `text_format`.

    Args:
        path: the file to read.

    Returns:
        The parameters; fields the file leaves out keep tfdl's defaults.

    Raises:
        ValueError: the file is missing, is not a `BatchingParameters` text
            proto (the message gives line and column), turns on
            `enable_large_batch_splitting` or sets `max_execution_batch_size`
            (not implemented), or holds a value out of range.
    """
    from google.protobuf import text_format

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no batching parameters file at {path}")
    proto = _message_class()()
    try:
        text_format.Parse(path.read_text(), proto)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a TF Serving BatchingParameters text proto: {error}") from None
    if proto.enable_large_batch_splitting.value or proto.HasField("max_execution_batch_size"):
        raise ValueError(
            f"{path}: enable_large_batch_splitting and max_execution_batch_size are not supported by tfdl's "
            "batcher; remove them (requests over max_batch_size are then rejected, as TF Serving does without them)"
        )
    values = {name: getattr(proto, name).value for name in _WRAPPED_INT_FIELDS if proto.HasField(name)}
    if proto.HasField("thread_pool_name"):
        values["thread_pool_name"] = proto.thread_pool_name.value
    try:
        return BatchingParameters(
            **values,
            allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
            pad_variable_length_inputs=proto.pad_variable_length_inputs,
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def write_batching_parameters(path: Path | str, params: BatchingParameters) -> Path:
    """Write `params` as a text `BatchingParameters` proto that TF Serving and `read_batching_parameters` read.

    Every field is written, even at its default, so TF Serving (whose
    built-in defaults differ) batches exactly as tfdl does.

    Args:
        path: the file to write.
        params: the parameters.

    Returns:
        `path`.
    """
    from google.protobuf import text_format

    path = Path(path)
    proto = _message_class()()
    for name in _WRAPPED_INT_FIELDS:
        getattr(proto, name).value = getattr(params, name)
    proto.thread_pool_name.value = params.thread_pool_name
    proto.allowed_batch_sizes.extend(params.allowed_batch_sizes)
    proto.pad_variable_length_inputs = params.pad_variable_length_inputs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_format.MessageToString(proto))
    return path


@functools.cache
def _message_class():
    """`tensorflow.serving.BatchingParameters` as in session_bundle_config.proto, in a private descriptor pool.

    A private pool, so the real module, if a later tensorflow-serving-api
    ships it, can still register the same name.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="tfdl/batching_parameters.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    message = file.message_type.add(name="BatchingParameters")
    field_type = descriptor_pb2.FieldDescriptorProto
    wrapped = {
        "max_batch_size": (1, "Int64Value"),
        "batch_timeout_micros": (2, "Int64Value"),
        "max_enqueued_batches": (3, "Int64Value"),
        "num_batch_threads": (4, "Int64Value"),
        "thread_pool_name": (5, "StringValue"),
        "enable_large_batch_splitting": (8, "BoolValue"),
        "max_execution_batch_size": (9, "Int64Value"),
    }
    for name, (number, wrapper) in wrapped.items():
        message.field.add(
            name=name,
            number=number,
            type=field_type.TYPE_MESSAGE,
            type_name=f".google.protobuf.{wrapper}",
            label=field_type.LABEL_OPTIONAL,
        )
    message.field.add(
        name="allowed_batch_sizes", number=6, type=field_type.TYPE_INT64, label=field_type.LABEL_REPEATED
    )
    message.field.add(
        name="pad_variable_length_inputs", number=7, type=field_type.TYPE_BOOL, label=field_type.LABEL_OPTIONAL
    )
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


_QUEUED, _RUNNING, _DONE, _ABANDONED = "queued", "running", "done", "abandoned"


@dataclass(eq=False)
class _Task:
    """One request: its inputs, and the slot its outputs or error are handed back in."""

    inputs: dict[str, np.ndarray]
    rows: int
    state: str = _QUEUED
    outputs: dict[str, np.ndarray] | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Batch:
    tasks: list[_Task] = field(default_factory=list)
    rows: int = 0
    opened: float = 0.0


class Batcher:
    """Runs `run` on batches merged from concurrent `submit` calls, each caller getting its own rows back.

    Args:
        run: the model call, e.g. a `model_store.Signature`: inputs keyed by
            name, batch first, to outputs keyed by name with one row per
            input row.
        params: the batching parameters; the defaults when `None`.
        on_batch: called with each batch's padded size after it runs (the
            server's Prometheus batch-size histogram).

    Example:
        >>> batcher = Batcher(lambda x: {"y": x["x"] * 2}, BatchingParameters(max_batch_size=8))
        >>> batcher.submit({"x": np.array([[1.0], [2.0]])})["y"].tolist()
        [[2.0], [4.0]]
        >>> batcher.close()
    """

    def __init__(
        self,
        run: Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]],
        params: BatchingParameters | None = None,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.params = params or BatchingParameters()
        self._run = run
        self._on_batch = on_batch
        self._lock = threading.Condition()
        # Insertion-ordered; one entry per input shape key, removed when empty.
        self._queues: dict[tuple, deque[_Batch]] = {}
        self._cursor = 0
        self._closing = False
        self._counts: Counter[str] = Counter()
        self._batch_sizes: Counter[int] = Counter()
        self._threads = [
            threading.Thread(target=self._work, name=f"{self.params.thread_pool_name}_{i}", daemon=True)
            for i in range(self.params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Mapping[str, np.ndarray], timeout: float | None = None) -> dict[str, np.ndarray]:
        """Queue one request, wait for its batch to run, and return its own rows of the outputs.

        Safe to call from many threads at once.

        Args:
            inputs: arrays keyed by input name, all with the same number of
                rows (at least 1, at most `max_batch_size`).
            timeout: most seconds to wait; `None` waits as long as it takes.

        Returns:
            The outputs of `run` for this request's rows, keyed by name.

        Raises:
            InvalidArgument: no inputs, a scalar input, inputs with different
                row counts, no rows, or more rows than `max_batch_size`.
            BatchQueueFull: the queue holds `max_enqueued_batches` batches.
            BatchTimeout: `timeout` passed (429 while queued, as TF Serving;
                504 once the batch was running).
            ServingError: the batcher is closed (503), or `run` returned
                outputs that are not one row per input row (400).
            Exception: whatever `run` raised for this request's batch; every
                request of the batch gets the same exception object.
        """
        arrays, rows = self._checked(inputs)
        task = _Task(arrays, rows)
        self._enqueue(task, self._queue_key(arrays))
        if not task.done.wait(timeout):
            with self._lock:
                if task.state == _QUEUED:
                    # Left in its batch, and skipped when the batch is formed.
                    task.state = _ABANDONED
                    self._counts["timed_out"] += 1
                    raise BatchTimeout("Run() timeout exceeded while waiting in batching queue")
                if task.state == _RUNNING:
                    task.state = _ABANDONED
                    self._counts["timed_out"] += 1
                    raise BatchTimeout(
                        f"Deadline exceeded: the request's batch was still running after {timeout} s", status=504
                    )
        if task.error is not None:
            raise task.error
        return task.outputs

    def stats(self) -> dict:
        """Counters for monitoring (all monotonic except `queued_batches`).

        Returns:
            `batches`: batches run; `requests`, `rows`: requests and their
            rows run in them; `padding_rows`: rows added to reach an allowed
            size; `batch_size_histogram`: {rows of requests in a batch (before
            padding): number of batches}; `mean_batch_size`: `rows / batches`;
            `failed_batches`: batches whose `run` raised; `rejected_queue_full`,
            `rejected_invalid`, `timed_out`: requests refused or given up;
            `queued_batches`, `queued_requests`: batches (open ones included)
            and requests waiting now.
        """
        with self._lock:
            counts = self._counts
            return {
                "batches": counts["batches"],
                "requests": counts["requests"],
                "rows": counts["rows"],
                "padding_rows": counts["padding_rows"],
                "batch_size_histogram": dict(sorted(self._batch_sizes.items())),
                "mean_batch_size": counts["rows"] / counts["batches"] if counts["batches"] else 0.0,
                "failed_batches": counts["failed_batches"],
                "rejected_queue_full": counts["rejected_queue_full"],
                "rejected_invalid": counts["rejected_invalid"],
                "timed_out": counts["timed_out"],
                "queued_batches": sum(len(batches) for batches in self._queues.values()),
                "queued_requests": sum(len(b.tasks) for batches in self._queues.values() for b in batches),
            }

    def close(self) -> None:
        """Refuse new requests, run every queued one (open batches without waiting), and stop the threads."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> Batcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _checked(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        """The inputs as arrays and their row count; the texts are TF Serving's, with what to do."""
        try:
            if not inputs:
                raise InvalidArgument("Batching Run() must have at least one input tensor")
            arrays = {name: np.asarray(value) for name, value in inputs.items()}
            scalars = sorted(name for name, array in arrays.items() if array.ndim == 0)
            if scalars:
                raise InvalidArgument(
                    f"Batching Run() input tensors must have at least one dimension; inputs {scalars} are scalars: "
                    "give them a batch dimension"
                )
            counts = {name: array.shape[0] for name, array in arrays.items()}
            if len(set(counts.values())) > 1:
                raise InvalidArgument(
                    f"Batching Run() input tensors must have equal 0th-dimension size; got {counts}: send the "
                    "same number of rows for every input"
                )
            rows = next(iter(counts.values()))
            if rows == 0:
                raise InvalidArgument("the request has 0 rows; send at least one instance")
            if rows > self.params.max_batch_size:
                raise InvalidArgument(
                    f"Task size {rows} is larger than maximum input batch size {self.params.max_batch_size}; "
                    "send fewer instances per request or raise max_batch_size in the batching parameters"
                )
        except InvalidArgument:
            with self._lock:
                self._counts["rejected_invalid"] += 1
            raise
        return arrays, rows

    def _queue_key(self, arrays: dict[str, np.ndarray]) -> tuple:
        if self.params.pad_variable_length_inputs:
            return tuple(sorted((name, a.dtype.str, a.ndim) for name, a in arrays.items()))
        return tuple(sorted((name, a.dtype.str, a.shape[1:]) for name, a in arrays.items()))

    def _enqueue(self, task: _Task, key: tuple) -> None:
        with self._lock:
            if self._closing:
                raise ServingError("the batcher is closed: the server is shutting down; retry on another", 503)
            batches = self._queues.setdefault(key, deque([_Batch()]))
            if batches[-1].rows + task.rows > self.params.max_batch_size:
                if len(batches) >= self.params.max_enqueued_batches:
                    self._counts["rejected_queue_full"] += 1
                    raise BatchQueueFull(
                        "The batch scheduling queue to which this task was submitted is full; currently "
                        f"{len(batches)} batches enqueued and max_enqueued_batches is "
                        f"{self.params.max_enqueued_batches}; retry later, or raise max_enqueued_batches or "
                        "num_batch_threads"
                    )
                batches.append(_Batch())
            batch = batches[-1]
            if not batch.tasks:
                batch.opened = time.monotonic()
            batch.tasks.append(task)
            batch.rows += task.rows
            self._lock.notify()

    def _work(self) -> None:
        while True:
            with self._lock:
                batch = self._wait_for_batch()
                if batch is None:
                    return
                tasks = [task for task in batch.tasks if task.state == _QUEUED]
                for task in tasks:
                    task.state = _RUNNING
            if tasks:
                self._process(tasks)

    def _wait_for_batch(self) -> _Batch | None:
        """The next batch to run, round-robin over queues; `None` once closing and empty. Holds the lock."""
        timeout_s = self.params.batch_timeout_micros / 1e6
        while True:
            now = time.monotonic()
            keys = list(self._queues)
            next_deadline = None
            for offset in range(len(keys)):
                index = (self._cursor + offset) % len(keys)
                batches = self._queues[keys[index]]
                front = batches[0]
                ready = (
                    len(batches) > 1
                    or self._closing
                    or front.rows >= self.params.max_batch_size
                    or now >= front.opened + timeout_s
                )
                if ready:
                    batches.popleft()
                    if not batches:
                        del self._queues[keys[index]]
                    self._cursor = index + 1
                    # Another batch may be ready too: wake a second thread for it.
                    self._lock.notify()
                    return front
                deadline = front.opened + timeout_s
                next_deadline = deadline if next_deadline is None else min(next_deadline, deadline)
            if self._closing:
                return None
            self._lock.wait(None if next_deadline is None else max(next_deadline - now, 0.0))

    def _process(self, tasks: list[_Task]) -> None:
        rows = sum(task.rows for task in tasks)
        size = self.params.padded_size(rows)
        try:
            outputs = self._run(_merge(tasks, size, self.params.pad_variable_length_inputs))
            parts = _split(outputs, [task.rows for task in tasks], size)
        except BaseException as error:
            self._finish(tasks, rows, size, error=error)
            if not isinstance(error, Exception):
                raise
            return
        self._finish(tasks, rows, size, parts=parts)

    def _finish(self, tasks, rows, size, *, parts=None, error=None) -> None:
        with self._lock:
            self._counts["batches"] += 1
            self._counts["requests"] += len(tasks)
            self._counts["rows"] += rows
            self._counts["padding_rows"] += size - rows
            self._counts["failed_batches"] += error is not None
            self._batch_sizes[rows] += 1
            for index, task in enumerate(tasks):
                if task.state == _RUNNING:
                    task.state = _DONE
                task.outputs = None if parts is None else parts[index]
                task.error = error
                task.done.set()
        if self._on_batch is not None:
            self._on_batch(size)


def _merge(tasks: list[_Task], size: int, pad_variable_length: bool) -> dict[str, np.ndarray]:
    """The tasks' inputs stacked along rows, padded to `size` rows by repeating the last row."""
    merged = {}
    for name in tasks[0].inputs:
        parts = [task.inputs[name] for task in tasks]
        if pad_variable_length:
            parts = _to_common_shape(name, parts)
        rows = sum(len(part) for part in parts)
        if size > rows:
            parts.append(np.repeat(parts[-1][-1:], size - rows, axis=0))
        merged[name] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    return merged


def _to_common_shape(name: str, parts: list[np.ndarray]) -> list[np.ndarray]:
    """Each part padded at the end of its non-batch dimensions to the largest, with its own first value."""
    target = tuple(max(sizes) for sizes in zip(*(part.shape[1:] for part in parts)))
    padded = []
    for part in parts:
        if part.shape[1:] == target:
            padded.append(part)
            continue
        if part.size == 0:
            raise InvalidArgument(f"input {name!r}: Got empty tensor in batch of non-empty tensors.")
        out = np.full((len(part),) + target, part.flat[0], dtype=part.dtype)
        out[tuple(slice(0, n) for n in part.shape)] = part
        padded.append(out)
    return padded


def _split(outputs: Mapping[str, np.ndarray], rows: list[int], size: int) -> list[dict[str, np.ndarray]]:
    """Each task's rows of the batch outputs; the padding rows at the end are dropped."""
    if not isinstance(outputs, Mapping):
        raise TypeError(f"the batched function must return a dict of arrays keyed by output name, got {outputs!r}")
    # TF Serving answers these with FAILED_PRECONDITION, which it maps to 400.
    bounds = np.cumsum(rows)[:-1]
    parts: list[dict[str, np.ndarray]] = [{} for _ in rows]
    for name, value in outputs.items():
        array = np.asarray(value)
        if array.ndim == 0:
            raise ServingError(
                f"output {name!r}: Batched output tensor has 0 dimensions; serve this signature without batching",
                400,
            )
        if array.shape[0] != size:
            raise ServingError(
                f"output {name!r}: Batched output tensor's 0th dimension ({array.shape[0]}) does not equal the sum "
                f"of the 0th dimension sizes of the input tensors ({size}); serve this signature without batching",
                400,
            )
        for part, piece in zip(parts, np.split(array[: sum(rows)], bounds)):
            part[name] = piece
    return parts
