"""Where one REST predict request's time goes in `tfdl serve`, and what batching can save of it.

Measured in one process, on the digits CNN served by the store, with no HTTP:
decoding the JSON body, the model call at batch 1 and at batch 64, and
encoding the response. Batching shares only the model call among requests,
so with `other` the per-request work outside the model, batching N requests
can raise throughput at most `(other + model(1)) / (other + model(N) / N)`,
whatever the server does. The HTTP layer and the load generator, which the
end-to-end benchmark (`benchmarks/serving.py`) also pays per request, only
add to `other`.

    python benchmarks/serving_cost.py [--repeats 2000] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402


def _median_ms(function, repeats: int) -> float:
    for _ in range(min(50, repeats)):  # warm
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def measure(serving_dir: Path, model_name: str, repeats: int, batch: int = 64) -> dict:
    from tfdl.serving.json_codec import decode_inputs, encode_outputs, read_predict_request
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.rest import _parse_body

    store = ModelStore()
    store.add_model(model_name, serving_dir)
    signature = store.get(model_name).signature(None)
    row = np.random.default_rng(0).random(64).round(4).tolist()
    body = json.dumps({"instances": [row]}).encode()
    request = read_predict_request(_parse_body(body))
    inputs = decode_inputs(request, signature.inputs)
    outputs = signature.run(inputs)
    many = {k: np.repeat(v, batch, axis=0) for k, v in inputs.items()}
    figures = {
        "decode_ms": _median_ms(lambda: decode_inputs(read_predict_request(_parse_body(body)), signature.inputs), repeats),
        "model_1_ms": _median_ms(lambda: signature.run(inputs), repeats),
        f"model_{batch}_ms": _median_ms(lambda: signature.run(many), max(repeats // 8, 50)),
        "encode_ms": _median_ms(lambda: encode_outputs(outputs, request.format), repeats),
    }
    other = figures["decode_ms"] + figures["encode_ms"]
    figures["bound"] = (other + figures["model_1_ms"]) / (other + figures[f"model_{batch}_ms"] / batch)
    figures["batch"] = batch
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    import subprocess

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "tfdl", "run", "--output-dir", f"{work}/run", "--set",
                        "training.epochs=2", "--set", "export.tflite=[]"], check=True, capture_output=True)
        f = measure(Path(work) / "run" / "export" / "serving" / "digits", "digits", args.repeats)
    b = f["batch"]
    lines = [
        "## Serving: where a predict request's time goes",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/serving_cost.py` ({time.perf_counter() - started:.0f} s); medians of "
        f"{args.repeats} calls in one process, digits CNN, one 64-pixel row per request, no HTTP.",
        "",
        "| step | ms |",
        "|---|---|",
        f"| JSON body -> checked input arrays | {f['decode_ms']:.3f} |",
        f"| model call, batch 1 | {f['model_1_ms']:.3f} |",
        f"| model call, batch {b} | {f[f'model_{b}_ms']:.3f} ({f[f'model_{b}_ms'] / b:.3f} per request) |",
        f"| outputs -> JSON response | {f['encode_ms']:.3f} |",
        "",
        f"Batching shares only the model call, so even with no HTTP at all it could raise throughput at most "
        f"**{f['bound']:.2f}x** here (batches of {b}). End to end (`benchmarks/serving.py`) every request also "
        "pays the HTTP layer and, on these same 2 cores, the load generator; batching cannot share that cost, "
        "and it is what holds the measured gain at concurrency 64 below this bound. A GPU, or a model whose "
        "call costs more per example, leaves more to share.",
    ]
    write_section(args.output, "serving-cost", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
