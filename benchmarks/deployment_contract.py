"""The deployment-contract bars of issue #12 (part B), measured in one run on this machine.

1. Every served form of every registry model (BERT's heads, the detector
   with NMS, the VAE's decoder included) exports with `export_serving_model`:
   the `serving_default` input and output keys and dtypes equal the Keras
   model's, and the manifest's signatures equal the SavedModel's. Export,
   manifest and check times per model.
2. What the manifest costs a server: `verify_manifest` (SHA-256 of every
   file) against `tf.saved_model.load` on a larger SavedModel (MobileNetV2
   at 160x160, about 9 MB of variables).
3. The image + tabular model with a class and a regression output, served
   by `tfdl serve`'s REST app (row and columnar) and gRPC in one process:
   output keys and p50 latency of one-example requests.

    python benchmarks/deployment_contract.py [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "export"))

from spine import machine, write_section  # noqa: E402


def signature_bar(work: Path) -> list[dict]:
    """Export every served form of every registry model; check names, dtypes and the manifest."""
    import keras
    import tensorflow as tf

    from registry_models import TINY, example_batch, served_forms
    from tfdl.export.manifest import read_manifest, verify_manifest, write_manifest
    from tfdl.export.saved_model import named_outputs
    from tfdl.export.serving_model import export_serving_model
    from tfdl.models import available_models, build_model

    rows = []
    for name in available_models():
        keras.utils.set_random_seed(0)
        for label, model in served_forms(name, build_model(name, TINY[name])).items():
            feed = example_batch(model, np.random.default_rng(0), batch=2)
            outputs = named_outputs(model, model(feed if len(feed) > 1 else next(iter(feed.values())), training=False))
            began = time.perf_counter()
            directory = export_serving_model(model, work / "signatures" / label / "1")
            exported = time.perf_counter() - began
            began = time.perf_counter()
            manifest = write_manifest(directory)
            written = time.perf_counter() - began
            began = time.perf_counter()
            verify_manifest(directory)
            verified = time.perf_counter() - began
            signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
            _, inputs = signature.structured_input_signature
            inputs_ok = {k: s.dtype.name for k, s in inputs.items()} == {t.name: t.dtype for t in model.inputs}
            served_outputs = {k: s.dtype.name for k, s in signature.structured_outputs.items()}
            outputs_ok = served_outputs == {k: keras.backend.standardize_dtype(v.dtype) for k, v in outputs.items()}
            listed = read_manifest(directory)["signatures"]["serving_default"]
            manifest_ok = (sorted(listed["inputs"]) == sorted(inputs)
                           and sorted(listed["outputs"]) == sorted(served_outputs))
            rows.append({"model": name, "served": label, "inputs": sorted(inputs), "outputs": sorted(served_outputs),
                         "names_and_dtypes": inputs_ok and outputs_ok, "manifest": manifest_ok,
                         "export_s": exported, "manifest_s": written, "verify_s": verified,
                         "bytes": sum(f["size"] for f in json.loads(manifest.read_text())["files"].values())})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def checksum_cost(work: Path) -> dict:
    """verify_manifest against tf.saved_model.load on a MobileNetV2 SavedModel."""
    import keras
    import tensorflow as tf

    from tfdl.export.manifest import verify_manifest
    from tfdl.export.serving_model import export_serving_model

    backbone = keras.applications.MobileNetV2(input_shape=(160, 160, 3), weights=None, classes=10)
    inputs = keras.Input((160, 160, 3), name="image")
    model = keras.Model(inputs, keras.layers.Identity(name="probabilities")(backbone(inputs)))
    directory = export_serving_model(model, work / "mobilenet" / "1")
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    verify, load = [], []
    for _ in range(3):
        began = time.perf_counter()
        verify_manifest(directory)
        verify.append(time.perf_counter() - began)
        began = time.perf_counter()
        tf.saved_model.load(str(directory))
        load.append(time.perf_counter() - began)
    return {"bytes": size, "verify_s": float(np.median(verify)), "load_s": float(np.median(load))}


def multi_io_serving(work: Path, requests: int) -> dict:
    """The image + tabular model over REST (row, columnar) and gRPC: output keys and p50 latency."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from test_multi_io import image_tabular_model  # the model the tests serve
    from tfdl.export.serving_model import export_serving_model
    from tfdl.serving.grpc_server import GrpcServer
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    rng = np.random.default_rng(0)
    image, tabular = rng.random((1, 4, 4, 1)).astype("float32"), rng.normal(size=(1, 3)).astype("float32")
    export_serving_model(image_tabular_model(), work / "shop" / "1", warmup={"image": image, "tabular": tabular})
    store = ModelStore()
    store.add_model("shop", work / "shop")
    bodies = {
        "REST row": {"instances": [{"image": image[0].tolist(), "tabular": tabular[0].tolist()}]},
        "REST columnar": {"inputs": {"image": image.tolist(), "tabular": tabular.tolist()}},
    }
    results = {}
    with BackgroundServer(store) as rest, GrpcServer(store, port=0) as server:
        connection = http.client.HTTPConnection(rest.host, rest.port, timeout=30)
        for label, body in bodies.items():
            payload = json.dumps(body).encode()

            def call():
                connection.request("POST", "/v1/models/shop:predict", body=payload,
                                   headers={"Content-Type": "application/json"})
                return json.loads(connection.getresponse().read())

            answer = call()
            keys = sorted(answer["predictions"][0]) if "predictions" in answer else sorted(answer["outputs"])
            results[label] = {"keys": keys, "p50_ms": _p50(call, requests)}
        connection.close()
        channel = grpc.insecure_channel(server.address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "shop"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(image))
        request.inputs["tabular"].CopyFrom(tf.make_tensor_proto(tabular))
        keys = sorted(stub.Predict(request, timeout=30).outputs)
        results["gRPC"] = {"keys": keys, "p50_ms": _p50(lambda: stub.Predict(request, timeout=30), requests)}
        channel.close()
    return results


def _p50(call, requests: int) -> float:
    for _ in range(20):
        call()
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return float(np.percentile(np.array(times) * 1000, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tfdl-contract-bench-"))
    rows = signature_bar(work)
    cost = checksum_cost(work)
    serving = multi_io_serving(work, args.requests)
    print(json.dumps({"checksum": cost, "serving": serving}, indent=2), flush=True)

    names_ok = all(r["names_and_dtypes"] for r in rows)
    manifests_ok = all(r["manifest"] for r in rows)
    own_names = all(r["keys"] == ["class", "value"] for r in serving.values())
    keys_by_api = ", ".join(f"{api}: {'/'.join(r['keys'])}" for api, r in serving.items())
    lines = [
        "## Deployment contract: named signatures, manifest.json, multi-input serving",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/deployment_contract.py` ({time.perf_counter() - started:.0f} s).",
        "",
        "| bar | measured | met |",
        "|---|---|---|",
        f"| every served form of every registry model: signature names and dtypes = Keras | "
        f"{sum(r['names_and_dtypes'] for r in rows)}/{len(rows)} | {'yes' if names_ok else 'NO'} |",
        f"| manifest signatures = SavedModel signatures | {sum(r['manifest'] for r in rows)}/{len(rows)} | "
        f"{'yes' if manifests_ok else 'NO'} |",
        f"| image + tabular model answers with its own output names (REST row, columnar, gRPC) | "
        f"{keys_by_api} | {'yes' if own_names else 'NO'} |",
        "",
        f"Checksums at load, MobileNetV2 160x160 SavedModel ({cost['bytes'] / 2**20:.1f} MiB): verify_manifest "
        f"{cost['verify_s'] * 1000:.0f} ms against tf.saved_model.load {cost['load_s'] * 1000:.0f} ms "
        f"(median of 3).",
        "",
        "Multi-input model, one example per request, p50: "
        + ", ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in serving.items()) + ".",
        "",
        "| model | served form | inputs | outputs | export s | manifest ms | verify ms | KiB |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {r['model']} | {r['served']} | {', '.join(r['inputs'])} | {', '.join(r['outputs'])} | "
          f"{r['export_s']:.1f} | {r['manifest_s'] * 1000:.1f} | {r['verify_s'] * 1000:.1f} | {r['bytes'] / 1024:.0f} |"
          for r in rows],
    ]
    write_section(args.output, "deployment_contract", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
