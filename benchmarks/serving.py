"""The serving issue's bars, measured in one run on this machine; figures go to BENCHMARKS.md.

The digits CNN from `tfdl run`, served by `tfdl serve` with and without
`--enable_batching`, under closed-loop load of one-row predict requests at
concurrency 1, 8 and 64, over REST and gRPC; the tutorial baseline (Flask +
`model.predict`) at concurrency 8; then resident memory of the server
during a soak at concurrency 8.

The load generator runs in worker processes (threads within each), so the
client's Python does not share a GIL with the server: on a 2-core machine
client and server still share the cores, which the figures include.

    python benchmarks/serving.py [--seconds 5] [--soak-seconds 300] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spine import free_port, machine, write_section  # noqa: E402

# Worker processes generating load; each runs concurrency / _PROCESSES threads.
_PROCESSES = 4


def _rest_worker(port: int, threads: int, seconds: float, row: list, queue) -> None:
    from tfdl.serving.client import Client

    def loop(out: list, errors: list):
        client = Client(f"http://127.0.0.1:{port}", "digits", timeout=30)
        end = time.perf_counter() + seconds
        while (start := time.perf_counter()) < end:
            try:
                client.predict(instances=[row])
                out.append(time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - counted, not hidden
                errors.append(1)

    _run_threads(loop, threads, queue)


def _grpc_worker(port: int, threads: int, seconds: float, row: list, queue) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(np.array([row], "float32")))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def loop(out: list, errors: list):
        end = time.perf_counter() + seconds
        while (start := time.perf_counter()) < end:
            try:
                stub.Predict(request, timeout=30)
                out.append(time.perf_counter() - start)
            except Exception:  # noqa: BLE001
                errors.append(1)

    _run_threads(loop, threads, queue)


def _run_threads(loop, threads: int, queue) -> None:
    outs, errors = [[] for _ in range(threads)], []
    workers = [threading.Thread(target=loop, args=(outs[i], errors)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(([t for o in outs for t in o], len(errors)))


def load(kind: str, port: int, concurrency: int, seconds: float, row: list) -> dict:
    """Closed-loop load: `concurrency` clients, each sending its next request when the last one returns."""
    processes = min(_PROCESSES, concurrency)
    threads = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    queue = multiprocessing.get_context("spawn").Queue()
    target = _rest_worker if kind == "rest" else _grpc_worker
    procs = [multiprocessing.get_context("spawn").Process(target=target, args=(port, t, seconds, row, queue))
             for t in threads]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = np.array([t for r in results for t in r[0]]) * 1000
    errors = sum(r[1] for r in results)
    return {
        "requests": int(len(latencies)),
        "errors": int(errors),
        "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
        "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
        "requests_per_s": len(latencies) / seconds,
    }


def start_server(command: list[str], probe_port: int, log: Path, deadline: float = 180) -> subprocess.Popen:
    from tfdl.serving.client import Client

    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    client = Client(f"http://127.0.0.1:{probe_port}", "digits", timeout=5)
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            client.predict(instances=[[0.0] * 64])
            return process
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("server did not come up")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def tfdl_serve(base: Path, rest: int, grpc: int, batching: Path | None) -> list[str]:
    command = [sys.executable, "-m", "tfdl", "serve", "--model_base_path", str(base), "--model_name", "digits",
               "--rest_api_port", str(rest), "--port", str(grpc), "--no-access-log"]
    if batching is not None:
        command += ["--enable_batching", "--batching_parameters_file", str(batching)]
    return command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load per measurement")
    parser.add_argument("--soak-seconds", type=float, default=300.0)
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = parser.parse_args()

    from tfdl.serving.batching import BatchingParameters, write_batching_parameters

    work = Path(tempfile.mkdtemp(prefix="tfdl-serving-bench-"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfdl", "run", "--output-dir", str(work / "run")], check=True,
                   stdout=subprocess.DEVNULL)
    export = work / "run" / "export"
    base = export / "serving" / "digits"
    row = json.loads((export / "sample_request.json").read_text())["instances"][0]
    batching = write_batching_parameters(
        work / "batching.pbtxt",
        BatchingParameters(max_batch_size=64, batch_timeout_micros=2000, max_enqueued_batches=1000,
                           num_batch_threads=2),
    )

    table = {}
    for label, params in (("no batching", None), ("batching", batching)):
        rest, grpc = free_port(), free_port()
        server = start_server(tfdl_serve(base, rest, grpc, params), rest, work / f"{label}.log")
        try:
            for kind, port in (("rest", rest), ("grpc", grpc)):
                for concurrency in (1, 8, 64):
                    load(kind, port, concurrency, 1.0, row)  # warm this path
                    table[(label, kind, concurrency)] = load(kind, port, concurrency, args.seconds, row)
                    print(label, kind, concurrency, table[(label, kind, concurrency)], flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)

    port = free_port()
    flask = start_server([sys.executable, str(HERE / "flask_baseline.py"), str(export / "model.keras"), str(port)],
                         port, work / "flask.log")
    try:
        load("rest", port, 8, 1.0, row)
        baseline = load("rest", port, 8, args.seconds, row)
    finally:
        flask.terminate()
        flask.wait(timeout=60)
    print("flask", baseline, flush=True)

    rest, grpc = free_port(), free_port()
    server = start_server(tfdl_serve(base, rest, grpc, batching), rest, work / "soak.log")
    try:
        first = load("rest", rest, 8, min(60.0, args.soak_seconds / 5), row)
        rss_first = rss_mib(server.pid)
        rest_of_soak = load("rest", rest, 8, args.soak_seconds - min(60.0, args.soak_seconds / 5), row)
        rss_last = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    soak_errors = first["errors"] + rest_of_soak["errors"]
    soak_requests = first["requests"] + rest_of_soak["requests"]

    c64 = {k: table[(b, k, 64)] for b in ("batching",) for k in ("rest", "grpc")}
    gain = {k: c64[k]["requests_per_s"] / table[("no batching", k, 64)]["requests_per_s"] for k in ("rest", "grpc")}
    best_c8 = max(table[(b, "rest", 8)]["requests_per_s"] for b in ("no batching", "batching"))
    vs_flask = best_c8 / baseline["requests_per_s"]
    growth = rss_last / rss_first - 1
    errors64 = sum(table[(b, k, 64)]["errors"] for b in ("no batching", "batching") for k in ("rest", "grpc"))
    lines = [
        "## Serving: latency and throughput by concurrency, batching, soak",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        f"Command: `python benchmarks/serving.py` ({time.perf_counter() - started:.0f} s); "
        f"{args.seconds:g} s of closed-loop load per row, one-row predict requests of the digits CNN, "
        f"load generated by {_PROCESSES} client processes on the same 2 cores.",
        "",
        "| bar | target | measured | met |",
        "|---|---|---|---|",
        f"| concurrency 64, batching / no batching, REST | >= 3x, 0 errors | {gain['rest']:.2f}x, "
        f"{errors64} errors | {'yes' if gain['rest'] >= 3 and not errors64 else 'NO'} |",
        f"| concurrency 64, batching / no batching, gRPC | >= 3x, 0 errors | {gain['grpc']:.2f}x | "
        f"{'yes' if gain['grpc'] >= 3 and not errors64 else 'NO'} |",
        f"| concurrency 8, tfdl REST / Flask + model.predict | >= 10x | {vs_flask:.1f}x | {'yes' if vs_flask >= 10 else 'NO'} |",
        f"| RSS after {args.soak_seconds:.0f} s soak vs after the first {min(60.0, args.soak_seconds / 5):.0f} s | within 10% | "
        f"{growth:+.1%} ({rss_first:.0f} -> {rss_last:.0f} MiB; {soak_requests} requests, {soak_errors} errors) | "
        f"{'yes' if abs(growth) <= 0.10 else 'NO'} |",
        "",
        "| server | protocol | concurrency | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
        *[f"| {b} | {k} | {c} | {r['requests_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |"
          for (b, k, c), r in table.items()],
        f"| Flask + model.predict | rest | 8 | {baseline['requests_per_s']:.0f} | {baseline['p50_ms']:.2f} | "
        f"{baseline['p99_ms']:.2f} | {baseline['errors']} |",
    ]
    write_section(args.output, "serving", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
