"""The export issue's bars, measured in one run on this machine; figures go to BENCHMARKS.md.

1. `tfdl run` on the default config writes TFLite in four modes; from its
   per-mode report: int8 size against float32, and int8 / float16 test
   accuracy against float32.
2. LiteRT latency of the int8 file against the float32 file, one example
   per call, timed alternately in the same process.
3. `tfdl serve` on the exported version with its warm-up records, and on a
   copy without them: the first request's latency against the steady p50.

    python benchmarks/export.py [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import free_port, machine, measure, write_section  # noqa: E402

from tfdl.serving.client import Client  # noqa: E402
from tfdl.serving.edge import bench  # noqa: E402


def wait_until_available(port: int, model_name: str, process: subprocess.Popen, deadline: float = 120) -> None:
    """Poll model status (never predict, so the first predict stays the first)."""
    client = Client(f"http://127.0.0.1:{port}", model_name, timeout=5)
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            client.status()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not come up within {deadline} s")


def first_and_steady(base_path: Path, rows: np.ndarray, work: Path, requests: int = 300) -> dict:
    port = free_port()
    log = work / f"serve-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tfdl", "serve", "--model-base-path", str(base_path), "--model-name", "digits",
         "--rest_api_port", str(port), "--port", "0"], stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        wait_until_available(port, "digits", process)
        client = Client(f"http://127.0.0.1:{port}", "digits")
        client.status()  # open the connection, so the first predict pays only for itself
        started = time.perf_counter()
        client.predict(instances=rows[:1])
        first_ms = (time.perf_counter() - started) * 1000
        steady = measure(port, "digits", rows, requests)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"first_ms": first_ms, **steady, "ratio": first_ms / steady["p50_ms"]}


def latency_pair(float32: Path, int8: Path, rounds: int = 5) -> dict:
    """Median of alternating rounds, so drift on a shared machine hits both alike."""
    times = {"float32": [], "int8": []}
    for _ in range(rounds):
        for mode, path in (("float32", float32), ("int8", int8)):
            times[mode].append(bench(path, runs=500, warmup=50, batch=1, num_threads=1)["p50_ms"])
    return {mode: float(np.median(values)) for mode, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tfdl-export-bench-"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfdl", "run", "--output-dir", str(work / "run")], check=True,
                   stdout=subprocess.DEVNULL)
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    modes = {r["mode"]: r for r in metrics["export"]["tflite"]}
    export = work / "run" / "export"
    latency = latency_pair(export / "model.tflite", export / "model_int8.tflite")

    rows = np.array(json.loads((export / "sample_request.json").read_text())["instances"], dtype="float32")
    cold = work / "cold" / "digits"
    shutil.copytree(export / "serving" / "digits", cold)
    for version in cold.iterdir():
        shutil.rmtree(version / "assets.extra", ignore_errors=True)
    serving = {
        "with warm-up records": first_and_steady(export / "serving" / "digits", rows, work),
        "without (baseline)": first_and_steady(cold, rows, work),
    }
    print(json.dumps({"modes": modes, "latency": latency, "serving": serving}, indent=2), flush=True)

    f32, i8, f16 = modes["float32"], modes["int8"], modes["float16"]
    size = i8["bytes"] / f32["bytes"]
    int8_drop = (f32["accuracy"] - i8["accuracy"]) * 100
    f16_drop = (f32["accuracy"] - f16["accuracy"]) * 100
    warm = serving["with warm-up records"]
    lines = [
        "## Export: TFLite modes, LiteRT latency, warm-up",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/export.py` ({time.perf_counter() - started:.0f} s).",
        "",
        "| bar | target | measured | met |",
        "|---|---|---|---|",
        f"| int8 file / float32 file | <= 30% | {size:.1%} | {'yes' if size <= 0.30 else 'NO'} |",
        f"| int8 test accuracy vs float32 | within 1 point | {-int8_drop:+.2f} points | {'yes' if abs(int8_drop) <= 1 else 'NO'} |",
        f"| float16 test accuracy vs float32 | within 0.1 point | {-f16_drop:+.2f} points | {'yes' if abs(f16_drop) <= 0.1 else 'NO'} |",
        f"| LiteRT int8 / float32 latency, one example | <= 1.0x | {latency['int8'] / latency['float32']:.2f}x | "
        f"{'yes' if latency['int8'] <= latency['float32'] else 'NO'} |",
        f"| first request / steady p50, with warm-up records | <= 2x | {warm['ratio']:.2f}x | {'yes' if warm['ratio'] <= 2 else 'NO'} |",
        "",
        "| TFLite mode | KiB | max abs diff vs Keras | argmax agreement | test accuracy | ms/example (report) |",
        "|---|---|---|---|---|---|",
        *[f"| {m} | {r['bytes'] / 1024:.1f} | {r['max_abs_diff']:.2e} | {r['argmax_agreement']:.4f} | "
          f"{r['accuracy']:.4f} | {r['latency_ms_p50']:.3f} |" for m, r in modes.items()],
        "",
        f"LiteRT p50 per example, one thread, median of 5 alternating rounds of 500 calls: float32 "
        f"{latency['float32'] * 1000:.1f} us, int8 {latency['int8'] * 1000:.1f} us.",
        "",
        "| `tfdl serve`, digits | first request ms | steady p50 ms | first / p50 |",
        "|---|---|---|---|",
        *[f"| {name} | {r['first_ms']:.2f} | {r['p50_ms']:.2f} | {r['ratio']:.2f}x |" for name, r in serving.items()],
    ]
    write_section(args.output, "export", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
