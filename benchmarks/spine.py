"""The spine's bars, measured in one run on this machine; figures go to BENCHMARKS.md.

1. `tfdl run` on the default config (digits CNN): wall time and test accuracy.
2. REST predict of one digits row, sequential requests over loopback:
   latency percentiles and throughput of `tfdl serve`, and of the tutorial
   baseline (`model.predict` in a Flask handler) serving the same model,
   measured side by side.

    python benchmarks/spine.py [--requests 1000] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfdl.serving.client import Client

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{model}, {os.cpu_count()} cores, {gpus} GPUs, Python {platform.python_version()}, TensorFlow {tf.__version__}"


def start(args: list[str], port: int, model_name: str, log: Path, deadline: float = 120) -> subprocess.Popen:
    # The server's output goes to a file: an unread pipe fills up and stalls
    # a server that logs every request.
    process = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)
    client = Client(f"http://127.0.0.1:{port}", model_name, timeout=5)
    row = [[0.0] * 64]
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args[:4]} exited: {log.read_text()[-2000:]}")
        try:
            client.predict(instances=row)
            return process
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{args[:4]} did not answer within {deadline} s")


def measure(port: int, model_name: str, rows: np.ndarray, requests: int) -> dict:
    client = Client(f"http://127.0.0.1:{port}", model_name)
    for i in range(50):  # warm up: graph tracing, allocator, connection
        client.predict(instances=rows[i % len(rows)][None])
    latencies = []
    begin = time.perf_counter()
    for i in range(requests):
        t = time.perf_counter()
        client.predict(instances=rows[i % len(rows)][None])
        latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - begin
    ms = np.array(latencies) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "requests_per_s": requests / total,
    }


def write_section(path: Path, title: str, body: str) -> None:
    begin, end = f"<!-- {title}: begin -->", f"<!-- {title}: end -->"
    text = path.read_text() if path.exists() else "# tfdl benchmarks\n\nFigures measured by the scripts in `benchmarks/`; each section says the machine and the command.\n"
    section = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tfdl-bench-"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfdl", "run", "--output-dir", str(work / "run")], check=True,
                   stdout=subprocess.DEVNULL)
    job_seconds = time.perf_counter() - t
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    export = work / "run" / "export"
    rows = np.array(json.loads((export / "sample_request.json").read_text())["instances"], dtype="float32")

    results = {}
    servers = {
        "tfdl serve": [sys.executable, "-m", "tfdl", "serve", "--model-base-path", str(export / "serving" / "digits")],
        "Flask + model.predict (baseline)": [sys.executable, str(HERE / "flask_baseline.py"), str(export / "model.keras")],
    }
    for name, command in servers.items():
        port = free_port()
        command = command + (["--rest_api_port", str(port), "--port", "0"] if name == "tfdl serve" else [str(port)])
        process = start(command, port, "digits", work / f"server{len(results)}.log")
        try:
            results[name] = measure(port, "digits", rows, args.requests)
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(name, results[name], flush=True)

    ours, base = results["tfdl serve"], results["Flask + model.predict (baseline)"]
    ratio = ours["requests_per_s"] / base["requests_per_s"]
    accuracy = metrics["test"]["accuracy"]
    lines = [
        "## Spine: digits CNN end to end, and REST predict latency",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        "Command: `python benchmarks/spine.py`",
        "",
        "| bar | target | measured | met |",
        "|---|---|---|---|",
        f"| digits CNN test accuracy | >= 0.97 | {accuracy:.4f} | {'yes' if accuracy >= 0.97 else 'NO'} |",
        f"| `tfdl run` (default config) wall time | < 300 s | {job_seconds:.1f} s | {'yes' if job_seconds < 300 else 'NO'} |",
        f"| REST predict, one row, p50, sequential | <= 5 ms | {ours['p50_ms']:.2f} ms | {'yes' if ours['p50_ms'] <= 5 else 'NO'} |",
        f"| throughput vs `model.predict` in Flask | >= 10x | {ratio:.1f}x | {'yes' if ratio >= 10 else 'NO'} |",
        "",
        f"{args.requests} sequential requests of one digits row each, one client over loopback, after 50 warm-up requests:",
        "",
        "| server | p50 ms | p90 ms | p99 ms | requests/s |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['requests_per_s']:.0f} |")
    lines += [
        "",
        f"The run trained {metrics['training']['epochs_run']} epochs (best {metrics['training']['best_epoch']}) "
        f"in {metrics['training']['seconds']:.1f} s; parity of the exports with Keras: "
        + ", ".join(f"{k} max abs diff {v['max_abs_diff']:.1e}" for k, v in metrics["parity"]["targets"].items())
        + f"; float32 TFLite {metrics['export']['tflite_bytes'] / 1024:.1f} KiB.",
    ]
    write_section(args.output, "spine", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
