"""Server-side dynamic batching: requests merge, each caller gets its own rows, and TF Serving's limits hold."""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import pytest

from tfdl.serving.batching import (
    BatchingParameters,
    BatchQueueFull,
    Batcher,
    BatchTimeout,
    read_batching_parameters,
    write_batching_parameters,
)
from tfdl.serving.errors import InvalidArgument, ServingError

# Long enough that a test finishes before a batch would time out: only a full
# batch, or close(), runs it.
NEVER_US = 60_000_000


class Recorder:
    """A batched function: y = 2x, plus each row's index in its batch; remembers every batch it ran."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.batches: list[dict[str, np.ndarray]] = []
        self._lock = threading.Lock()

    def __call__(self, inputs):
        with self._lock:
            self.batches.append({k: v.copy() for k, v in inputs.items()})
        time.sleep(self.delay_s)
        x = inputs["x"]
        return {"y": x * 2, "index": np.arange(len(x))}

    def sizes(self) -> list[int]:
        return [len(batch["x"]) for batch in self.batches]


def in_threads(count: int, work) -> list:
    """`work(i)` for i in range(count), each in its own thread, started together; results or exceptions by i."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def target(i):
        start.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # the test inspects it
            results[i] = error

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return results


def wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def request(i: int) -> np.ndarray:
    """Request i: 1 to 3 rows of values no other request has."""
    rows = i % 3 + 1
    return (i * 10 + np.arange(rows * 2, dtype="float32")).reshape(rows, 2)


def test_64_concurrent_requests_each_get_exactly_their_own_rows_from_merged_batches():
    run = Recorder(delay_s=0.005)
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=5_000, num_batch_threads=2)
    with Batcher(run, params) as batcher:
        results = in_threads(64, lambda i: batcher.submit({"x": request(i)}, timeout=20))
        stats = batcher.stats()
    for i, outputs in enumerate(results):
        np.testing.assert_array_equal(outputs["y"], request(i) * 2)
        # The request's rows sit next to each other in their batch.
        assert np.all(np.diff(outputs["index"]) == 1)
    assert stats["requests"] == 64
    assert stats["rows"] == sum(len(request(i)) for i in range(64)) == sum(run.sizes())
    assert stats["batches"] == len(run.batches) < 64
    assert stats["mean_batch_size"] > 1
    assert max(run.sizes()) <= 8 and max(stats["batch_size_histogram"]) <= 8
    assert sum(stats["batch_size_histogram"].values()) == stats["batches"]
    assert stats["queued_batches"] == stats["queued_requests"] == 0


def test_batches_are_padded_to_allowed_sizes_by_repeating_the_last_row_and_padding_is_dropped():
    run = Recorder()
    params = BatchingParameters(max_batch_size=8, allowed_batch_sizes=[2, 4, 8], batch_timeout_micros=0)
    with Batcher(run, params) as batcher:
        x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "float32")
        outputs = batcher.submit({"x": x})
        np.testing.assert_array_equal(outputs["y"], x * 2)
        np.testing.assert_array_equal(run.batches[0]["x"], np.concatenate([x, x[-1:]]))
        assert batcher.submit({"x": x[:1]})["y"].shape == (1, 2)
        results = in_threads(16, lambda i: batcher.submit({"x": request(i)}, timeout=20))
        stats = batcher.stats()
    for i, outputs in enumerate(results):
        np.testing.assert_array_equal(outputs["y"], request(i) * 2)
    assert run.sizes()[:2] == [4, 2]
    assert set(run.sizes()) <= {2, 4, 8}
    assert stats["padding_rows"] == sum(run.sizes()) - stats["rows"] > 0


def test_a_lone_request_runs_once_batch_timeout_has_passed():
    run = Recorder()
    with Batcher(run, BatchingParameters(max_batch_size=32, batch_timeout_micros=100_000)) as batcher:
        start = time.monotonic()
        batcher.submit({"x": np.ones((1, 2), "float32")})
        elapsed = time.monotonic() - start
    # It waited for company for the timeout (0.1 s), then ran alone, not much later.
    assert 0.095 <= elapsed < 0.6
    assert run.sizes() == [1]


def test_a_full_batch_runs_without_waiting_for_the_timeout():
    run = Recorder()
    with Batcher(run, BatchingParameters(max_batch_size=4, batch_timeout_micros=NEVER_US)) as batcher:
        start = time.monotonic()
        results = in_threads(4, lambda i: batcher.submit({"x": np.full((1, 2), i, "float32")}))
        elapsed = time.monotonic() - start
    assert elapsed < 2
    assert run.sizes() == [4]
    assert [r["y"][0, 0] for r in results] == [0, 2, 4, 6]


def test_a_full_queue_rejects_at_once_with_tf_servings_error_and_503():
    started, release = threading.Event(), threading.Event()

    def blocked(inputs):
        started.set()
        release.wait(10)
        return {"y": inputs["x"] * 2}

    params = BatchingParameters(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1, batch_timeout_micros=0)
    batcher = Batcher(blocked, params)
    results = {}
    running = threading.Thread(target=lambda: results.setdefault("a", batcher.submit({"x": np.ones((1, 1))})))
    running.start()
    assert started.wait(5)
    queued = threading.Thread(target=lambda: results.setdefault("b", batcher.submit({"x": np.full((1, 1), 3.0)})))
    queued.start()
    wait_until(lambda: batcher.stats()["queued_batches"] == 1)
    start = time.monotonic()
    with pytest.raises(
        BatchQueueFull,
        match="The batch scheduling queue to which this task was submitted is full; currently 1 batches enqueued "
        "and max_enqueued_batches is 1",
    ) as error:
        batcher.submit({"x": np.ones((1, 1))})
    # Refused, not blocked: a blocked submit would wait the 10 s until `release`.
    assert time.monotonic() - start < 0.5
    assert error.value.status == 503
    release.set()
    running.join(5)
    queued.join(5)
    batcher.close()
    assert results["a"]["y"].tolist() == [[2.0]] and results["b"]["y"].tolist() == [[6.0]]
    assert batcher.stats()["rejected_queue_full"] == 1


def test_an_error_in_run_reaches_every_request_of_the_batch_as_the_same_exception():
    calls = []

    def failing(inputs):
        calls.append(len(inputs["x"]))
        raise RuntimeError("the model crashed")

    with Batcher(failing, BatchingParameters(max_batch_size=4, batch_timeout_micros=NEVER_US)) as batcher:
        results = in_threads(4, lambda i: batcher.submit({"x": np.full((1, 2), i)}))
        stats = batcher.stats()
    assert calls == [4]
    assert all(isinstance(r, RuntimeError) and str(r) == "the model crashed" for r in results)
    assert all(r is results[0] for r in results)
    assert stats["failed_batches"] == stats["batches"] == 1


def test_outputs_that_are_not_one_row_per_input_row_fail_the_batch_with_400():
    with Batcher(lambda inputs: {"total": inputs["x"].sum(axis=0)}, BatchingParameters(batch_timeout_micros=0)) as b:
        with pytest.raises(ServingError, match="output 'total': Batched output tensor's 0th dimension") as error:
            b.submit({"x": np.ones((3, 2))})
    assert error.value.status == 400


def test_close_runs_every_queued_request_without_waiting_for_timeouts_then_refuses_new_ones():
    run = Recorder()
    batcher = Batcher(run, BatchingParameters(max_batch_size=4, batch_timeout_micros=NEVER_US))
    results: list = [None] * 10
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, batcher.submit({"x": np.full((1, 2), i)})))
        for i in range(10)
    ]
    for thread in threads:
        thread.start()
    # Two full batches ran; the last 2 requests wait in the open batch for a timeout that never comes.
    wait_until(lambda: batcher.stats()["requests"] == 8 and batcher.stats()["queued_requests"] == 2)
    start = time.monotonic()
    batcher.close()
    assert time.monotonic() - start < 2
    for thread in threads:
        thread.join(5)
    assert [r["y"][0, 0] for r in results] == [2 * i for i in range(10)]
    assert batcher.stats()["batch_size_histogram"] == {2: 1, 4: 2}
    assert not any(thread.is_alive() for thread in batcher._threads)
    with pytest.raises(ServingError, match="the batcher is closed") as error:
        batcher.submit({"x": np.ones((1, 2))})
    assert error.value.status == 503


def test_a_request_that_times_out_in_the_queue_gets_429_and_is_never_run():
    run = Recorder()
    batcher = Batcher(run, BatchingParameters(batch_timeout_micros=NEVER_US))
    with pytest.raises(BatchTimeout, match="Run\\(\\) timeout exceeded while waiting in batching queue") as error:
        batcher.submit({"x": np.ones((1, 2))}, timeout=0.05)
    assert error.value.status == 429
    batcher.close()
    assert run.batches == []
    assert batcher.stats()["timed_out"] == 1


def test_a_request_whose_batch_outlasts_its_timeout_gets_504():
    with Batcher(Recorder(delay_s=0.5), BatchingParameters(batch_timeout_micros=0)) as batcher:
        with pytest.raises(BatchTimeout, match="still running") as error:
            batcher.submit({"x": np.ones((1, 2))}, timeout=0.1)
    assert error.value.status == 504


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({}, "must have at least one input tensor"),
        ({"x": np.float32(1.0)}, r"must have at least one dimension; inputs \['x'\] are scalars"),
        ({"x": np.ones((2, 2)), "z": np.ones((3,))}, r"must have equal 0th-dimension size; got \{'x': 2, 'z': 3\}"),
        ({"x": np.ones((0, 2))}, "the request has 0 rows"),
        ({"x": np.ones((5, 2))}, "Task size 5 is larger than maximum input batch size 4; send fewer instances"),
    ],
)
def test_requests_that_cannot_be_batched_are_rejected_with_400(inputs, message):
    run = Recorder()
    with Batcher(run, BatchingParameters(max_batch_size=4, allowed_batch_sizes=[2, 4])) as batcher:
        with pytest.raises(InvalidArgument, match=message) as error:
            batcher.submit(inputs)
        assert batcher.stats()["rejected_invalid"] == 1
    assert error.value.status == 400
    assert run.batches == []


def test_inputs_of_different_shapes_go_to_separate_batches():
    run = Recorder()
    with Batcher(run, BatchingParameters(max_batch_size=2, batch_timeout_micros=200_000)) as batcher:
        shapes = [(1, 2), (1, 3)]
        results = in_threads(2, lambda i: batcher.submit({"x": np.full(shapes[i], i + 1.0)}))
    assert sorted(run.sizes()) == [1, 1]
    assert [r["y"].tolist() for r in results] == [[[2.0, 2.0]], [[4.0, 4.0, 4.0]]]


def test_pad_variable_length_inputs_pads_each_request_with_its_first_value_into_one_batch():
    run = Recorder()
    params = BatchingParameters(max_batch_size=2, batch_timeout_micros=NEVER_US, pad_variable_length_inputs=True)
    requests = [np.array([[7.0, 8.0]]), np.array([[1.0, 2.0, 3.0]])]
    with Batcher(run, params) as batcher:
        results = in_threads(2, lambda i: batcher.submit({"x": requests[i]}))
    (batch,) = run.batches
    assert sorted(batch["x"].tolist()) == [[1.0, 2.0, 3.0], [7.0, 8.0, 7.0]]
    assert results[0]["y"].tolist() == [[14.0, 16.0, 14.0]]
    assert results[1]["y"].tolist() == [[2.0, 4.0, 6.0]]


def test_string_inputs_batch_too():
    run = lambda inputs: {"length": np.array([len(s) for s in inputs["text"]])}  # noqa: E731
    with Batcher(run, BatchingParameters(max_batch_size=3, batch_timeout_micros=NEVER_US)) as batcher:
        texts = [b"a", b"bbb", b"cc"]
        results = in_threads(3, lambda i: batcher.submit({"text": np.array([texts[i]], dtype=object)}))
    assert [r["length"].tolist() for r in results] == [[1], [3], [2]]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"max_batch_size": 0}, "max_batch_size must be an integer >= 1, got 0"),
        ({"batch_timeout_micros": -1}, "batch_timeout_micros must be an integer >= 0, got -1"),
        ({"max_enqueued_batches": 0}, "max_enqueued_batches must be an integer >= 1"),
        ({"num_batch_threads": 1.5}, "num_batch_threads must be an integer >= 1, got 1.5"),
        ({"allowed_batch_sizes": [4, 2, 32]}, r"must be positive and strictly increasing, got \[4, 2, 32\]"),
        (
            {"allowed_batch_sizes": [8, 16]},
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 16; expected 32",
        ),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        BatchingParameters(**fields)


def test_padded_size_is_the_next_allowed_size():
    params = BatchingParameters(max_batch_size=16, allowed_batch_sizes=(4, 16))
    assert [params.padded_size(n) for n in (1, 4, 5, 16)] == [4, 4, 16, 16]
    assert BatchingParameters().padded_size(7) == 7


def test_tf_servings_own_batching_config_file_parses(tmp_path):
    path = tmp_path / "batching_parameters.txt"
    # tensorflow_serving/servables/tensorflow/testdata/batching_config.txt, plus a comment and allowed sizes.
    path.write_text(
        "max_batch_size { value: 128 }\n"
        "batch_timeout_micros { value: 0 }\n"
        "max_enqueued_batches { value: 1000000 }\n"
        "num_batch_threads { value: 8 }  # one per core\n"
        "allowed_batch_sizes: 32\nallowed_batch_sizes: [64, 128]\n"
        'pad_variable_length_inputs: true\nthread_pool_name { value: "model_batch_threads" }\n'
    )
    assert read_batching_parameters(path) == BatchingParameters(
        max_batch_size=128,
        batch_timeout_micros=0,
        max_enqueued_batches=1_000_000,
        num_batch_threads=8,
        allowed_batch_sizes=(32, 64, 128),
        pad_variable_length_inputs=True,
        thread_pool_name="model_batch_threads",
    )
    (tmp_path / "partial.txt").write_text("max_batch_size { value: 8 }\n")
    assert read_batching_parameters(tmp_path / "partial.txt") == BatchingParameters(max_batch_size=8)


def test_written_parameters_read_back_equal_and_spell_every_field(tmp_path):
    params = BatchingParameters(max_batch_size=64, allowed_batch_sizes=(16, 64), num_batch_threads=4)
    path = write_batching_parameters(tmp_path / "conf" / "batching.txt", params)
    assert read_batching_parameters(path) == params
    text = path.read_text()
    assert "max_batch_size {\n  value: 64\n}" in text
    assert "batch_timeout_micros {\n  value: 1000\n}" in text and "max_enqueued_batches {\n  value: 100\n}" in text


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_batch_size { value: 8 }\nmax_batch_sise { value: 8 }\n", r'2:1 : .*has no field named "max_batch_sise"'),
        ("max_batch_size: 8\n", "not a TF Serving BatchingParameters text proto"),
        ("enable_large_batch_splitting { value: true }\n", "enable_large_batch_splitting and max_execution_batch_size"),
        ("max_execution_batch_size { value: 8 }\n", "are not supported by tfdl's batcher; remove them"),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n", "Last entry in allowed_batch_sizes must match"),
        ("num_batch_threads { value: 0 }\n", "num_batch_threads must be an integer >= 1, got 0"),
    ],
)
def test_bad_batching_files_are_refused_naming_the_file(tmp_path, text, message):
    path = tmp_path / "batching.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_batching_parameters(path)
    assert str(path) in str(error.value)


def test_a_missing_batching_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no batching parameters file at .*nothing.txt"):
        read_batching_parameters(tmp_path / "nothing.txt")


def test_a_savedmodel_signature_batched_gives_the_outputs_it_gives_unbatched(tmp_path):
    import tensorflow as tf

    from tfdl.export.serving_model import export_serving_model
    from tfdl.serving.model_store import load_servable

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs))
    directory = export_serving_model(model, tmp_path / "m" / "1", class_names=["a", "b", "c"], classify=True)
    servable = load_servable("m", directory, 1)
    rng = np.random.default_rng(0)
    features = [rng.normal(size=(i % 3 + 1, 4)).astype("float32") for i in range(24)]

    predict = servable.signatures["serving_default"]
    with Batcher(predict, BatchingParameters(max_batch_size=8, batch_timeout_micros=5_000)) as batcher:
        batched = in_threads(24, lambda i: batcher.submit({"features": features[i]}, timeout=20))
        assert batcher.stats()["mean_batch_size"] > 1
    for x, outputs in zip(features, batched):
        np.testing.assert_array_equal(outputs["probabilities"], predict({"features": x})["probabilities"])

    def examples(x):
        return np.array(
            [
                tf.train.Example(
                    features=tf.train.Features(
                        feature={"features": tf.train.Feature(float_list=tf.train.FloatList(value=row))}
                    )
                ).SerializeToString()
                for row in x
            ],
            dtype=object,
        )

    classify = servable.signatures["classification"]
    with Batcher(classify, BatchingParameters(max_batch_size=8, batch_timeout_micros=5_000)) as batcher:
        batched = in_threads(24, lambda i: batcher.submit({"inputs": examples(features[i])}, timeout=20))
    for x, outputs in zip(features, batched):
        alone = classify({"inputs": examples(x)})
        np.testing.assert_array_equal(outputs["scores"], alone["scores"])
        np.testing.assert_array_equal(outputs["classes"], alone["classes"])
