"""TF Serving warm-up records: requests a server replays when it loads a model, before taking traffic.

The first requests to a freshly loaded model are slow (graph optimization,
lazy allocation, autotuning). TF Serving reads
`<SavedModel>/assets.extra/tf_serving_warmup_requests`, a TFRecord file of
`PredictionLog` protos, and runs each one at load time; a failing record
fails the load, and more than 1000 records (its `WarmupConsts::kMaxNumRecords`)
are refused. So the records are checked here against the signature they
call: input keys, dtypes and shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

WARMUP_DIRECTORY = "assets.extra"
WARMUP_FILENAME = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


def write_warmup_requests(
    saved_model_dir: Path | str,
    model_name: str,
    inputs: Mapping[str, np.ndarray],
    *,
    signature_name: str = "serving_default",
    num_records: int = 10,
    examples_per_record: int = 1,
) -> Path:
    """Write predict requests built from `inputs` as the SavedModel's warm-up file.

    Record `i` is a `PredictLog` whose request carries examples
    `[i * examples_per_record, (i + 1) * examples_per_record)` of every input;
    there are `num_records` records, or fewer when `inputs` run out.

    Args:
        saved_model_dir: the SavedModel (a version folder) to warm up.
        model_name: the served model's name, put in each request's model spec.
        inputs: example arrays keyed by signature input name, batch first.
        signature_name: the (predict) signature the requests call.
        num_records: most records to write, 1 to 1000.
        examples_per_record: examples in each request's batch.

    Returns:
        The path of the written `assets.extra/tf_serving_warmup_requests`.

    Raises:
        ValueError: `num_records` or `examples_per_record` is out of range, the
            signature is missing, or `inputs` do not match its input keys,
            dtypes or shapes.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    if not 1 <= num_records <= MAX_WARMUP_RECORDS:
        raise ValueError(
            f"num_records must be 1 to {MAX_WARMUP_RECORDS} (TF Serving refuses a model with more warm-up "
            f"records), got {num_records}"
        )
    if examples_per_record < 1:
        raise ValueError(f"examples_per_record must be at least 1, got {examples_per_record}")
    saved_model_dir = Path(saved_model_dir)
    arrays = _checked_inputs(saved_model_dir, signature_name, inputs)
    count = len(next(iter(arrays.values())))
    path = saved_model_dir / WARMUP_DIRECTORY / WARMUP_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for start in range(0, min(count, num_records * examples_per_record), examples_per_record):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            for key, array in arrays.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(array[start : start + examples_per_record]))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(path: Path | str) -> list:
    """The `PredictionLog` protos in a warm-up file, in order.

    Args:
        path: a `tf_serving_warmup_requests` TFRecord file.

    Returns:
        A list of `tensorflow.serving.PredictionLog`.

    Raises:
        ValueError: the file is missing or a record is not a `PredictionLog`.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow_serving.apis import prediction_log_pb2

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no warm-up file at {path}")
    logs = []
    for index, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except DecodeError:
            raise ValueError(f"{path}, record {index}: not a PredictionLog") from None
        logs.append(log)
    return logs


def _checked_inputs(saved_model_dir: Path, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict:
    """`inputs` as arrays of the signature's dtypes; a mismatch raises here instead of failing the model's load."""
    import tensorflow as tf

    signature = _signature_def(saved_model_dir, signature_name)
    where = f"{saved_model_dir}, signature {signature_name!r}"
    if set(inputs) != set(signature.inputs):
        raise ValueError(f"{where} takes inputs {sorted(signature.inputs)}; the warm-up inputs are {sorted(inputs)}")
    arrays, counts = {}, set()
    for key, info in signature.inputs.items():
        dtype = tf.as_dtype(info.dtype)
        array = np.asarray(inputs[key], dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
        expected = [dim.size for dim in info.tensor_shape.dim]
        fits = array.ndim == len(expected) and all(e in (-1, a) for e, a in zip(expected[1:], array.shape[1:]))
        if array.ndim == 0 or not (info.tensor_shape.unknown_rank or fits):
            shape = ["batch" if e == -1 else e for e in expected]
            raise ValueError(f"{where}, input {key!r}: expected shape {shape}, the warm-up array has {array.shape}")
        arrays[key] = array
        counts.add(len(array))
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"{where}: warm-up inputs need the same, non-zero number of examples; got {sorted(counts)}")
    return arrays


def _signature_def(saved_model_dir: Path, signature_name: str):
    from tensorflow.core.protobuf import saved_model_pb2

    pb = saved_model_dir / "saved_model.pb"
    if not pb.is_file():
        raise ValueError(f"{saved_model_dir} is not a SavedModel (no saved_model.pb)")
    saved_model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    signatures = saved_model.meta_graphs[0].signature_def
    if signature_name not in signatures:
        names = sorted(k for k in signatures if not k.startswith("__"))
        raise ValueError(f"{saved_model_dir} has no signature {signature_name!r}; it has {names}")
    return signatures[signature_name]
