"""The edge runner: predict with, and benchmark, a `.tflite` model on a device without TensorFlow.

    tfdl edge predict model.tflite --input x.npy [--labels labels.txt --top-k 3] [--json]
    tfdl edge predict model.tflite --input pixels=a.png --input pixels=b.png
    tfdl edge bench model.tflite --runs 200 --batch 1 --threads 4 [--json]
    python -m tfdl.serving.edge predict ...   (the same, where the `tfdl` CLI is not installed)

It imports numpy, the standard library and `tfdl.export.litert` only (and
Pillow when an image file is given), so it runs where only `tfdl[edge]`
(`ai-edge-litert`, numpy, Pillow) is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tfdl.export.litert import EdgeInputError, EdgeModelError, LiteRTModel, TensorInfo

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Pillow's mode for each channel count an image input may have.
_IMAGE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def load_inputs(paths_or_inline: Sequence[str], model: LiteRTModel) -> dict[str, np.ndarray]:
    """Read `--input` values into arrays for `model`.

    Each value is `SOURCE` or `NAME=SOURCE` (needed when the model has
    several inputs). A source is:

    * a `.npy` file: the input's array, batch dimension included;
    * a `.json` file or inline JSON: a TF Serving request
      (`{"instances": [...]}` with rows, or rows that are objects keyed by
      input name; `{"inputs": value}` or `{"inputs": {"name": value}}`), or a
      bare list of examples;
    * image files (`.png`, `.jpg`, `.jpeg`, `.bmp`): decoded with Pillow,
      converted to the input's channels (1: grayscale, 3: RGB, 4: RGBA),
      resized to its height and width, and stacked in the order given into
      one batch. Pixels are float32 in 0..255 (a quantized input quantizes
      them), or uint8 for an unquantized integer input.

    Args:
        paths_or_inline: the `--input` values.
        model: the model the arrays are for.

    Returns:
        Input name -> array.

    Raises:
        FileNotFoundError: a named file does not exist.
        EdgeInputError: unreadable JSON, an unknown input name, an input given
            twice, or an image input whose shape does not fit images.
        ImportError: an image file was given and Pillow is not installed.
    """
    arrays: dict[str, np.ndarray] = {}
    images: dict[str, list[Path]] = {}
    for item in paths_or_inline:
        name, source = _split_name(item, model)
        if Path(source).suffix.lower() in IMAGE_SUFFIXES:
            images.setdefault(_input_for(name, model, item), []).append(Path(source))
            continue
        for key, value in _read_source(source, item).items():
            target = _input_for(key if key is not None else name, model, item)
            if target in arrays:
                raise EdgeInputError(f"--input {item}: input {target!r} is given twice; give each input once")
            arrays[target] = value
    for target, files in images.items():
        if target in arrays:
            raise EdgeInputError(f"input {target!r} is given both as images and as an array; give one")
        arrays[target] = _load_images(files, model.inputs[target])
    return arrays


def _split_name(item: str, model: LiteRTModel) -> tuple[str | None, str]:
    # Inline JSON may itself contain "=" in a string; only `NAME=` before it counts.
    if "=" not in item or item.lstrip()[:1] in ("[", "{"):
        return None, item
    name, source = item.split("=", 1)
    # A file whose path holds "=" is still a file, unless the part before it names an input.
    if name not in model.inputs and Path(item).exists():
        return None, item
    return name, source


def _input_for(name: str | None, model: LiteRTModel, item: str) -> str:
    if name is None:
        if len(model.inputs) == 1:
            return next(iter(model.inputs))
        raise EdgeInputError(
            f"--input {item}: the model has inputs {list(model.inputs)}; say which one with --input NAME={item}"
        )
    if name not in model.inputs:
        raise EdgeInputError(f"--input {item}: the model has no input {name!r}; its inputs are {list(model.inputs)}")
    return name


def _read_source(source: str, item: str) -> dict[str | None, np.ndarray]:
    """A `.npy` file, a JSON file or inline JSON -> {input name or None (the only one): array}."""
    if source.lstrip()[:1] in ("[", "{"):
        return _from_json(_parse_json(source, f"--input {item}"), f"--input {item}")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"--input {item}: no such file {str(path)!r}; give a .npy, .json or image file, or inline JSON"
        )
    if path.suffix.lower() == ".npy":
        try:
            return {None: np.load(path, allow_pickle=False)}
        except ValueError as error:
            raise EdgeInputError(f"{path}: not a numeric .npy array ({error}); save it with numpy.save") from None
    if path.suffix.lower() == ".json":
        return _from_json(_parse_json(path.read_text(encoding="utf-8"), str(path)), str(path))
    raise EdgeInputError(
        f"--input {item}: unsupported file type {path.suffix!r}; use .npy, .json or {', '.join(IMAGE_SUFFIXES)}"
    )


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        message = f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        raise EdgeInputError(f"{where}: {message}") from None


def _from_json(document: Any, where: str) -> dict[str | None, np.ndarray]:
    if isinstance(document, list):
        return {None: _array(document, where, None)}
    if isinstance(document, dict) and "instances" in document:
        return _from_instances(document["instances"], where)
    if isinstance(document, dict) and "inputs" in document:
        inputs = document["inputs"]
        if isinstance(inputs, dict):
            return {name: _array(value, where, name) for name, value in inputs.items()}
        return {None: _array(inputs, where, None)}
    raise EdgeInputError(f'{where}: expected {{"instances": [...]}}, {{"inputs": ...}} or a list of examples')


def _from_instances(instances: Any, where: str) -> dict[str | None, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise EdgeInputError(f'{where}: "instances" must be a non-empty list of examples')
    if not all(isinstance(row, dict) for row in instances):
        return {None: _array(instances, where, None)}
    names = list(instances[0])
    for number, row in enumerate(instances):
        if set(row) != set(names):
            raise EdgeInputError(
                f"{where}: instance {number} has keys {sorted(row)}, instance 0 has {sorted(names)}; "
                "every instance needs the same inputs"
            )
    return {name: _array([row[name] for row in instances], where, name) for name in names}


def _array(value: Any, where: str, name: str | None) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError:
        label = f"input {name!r}" if name else "the examples"
        raise EdgeInputError(
            f"{where}: {label} are lists of unequal length; every example must have the same shape"
        ) from None


def _load_images(files: Sequence[Path], info: TensorInfo) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError("reading image files needs Pillow: pip install pillow (it comes with tfdl[edge])") from None
    height, width, channels = _image_geometry(info)
    pixels = []
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"no such image file {str(path)!r}")
        try:
            with Image.open(path) as image:
                image = image.convert(_IMAGE_MODES[channels])
                if height is not None and width is not None and image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                array = np.asarray(image)
        except UnidentifiedImageError:
            raise EdgeInputError(f"{path}: not an image Pillow can read") from None
        pixels.append(array[..., None] if channels == 1 and len(info.shape) == 4 else array)
    if len({p.shape for p in pixels}) > 1:
        sizes = ", ".join(f"{f.name} {p.shape[1]}x{p.shape[0]}" for f, p in zip(files, pixels))
        raise EdgeInputError(
            f"input {info.name!r} has free height/width, so its images must have one size; got {sizes}"
        )
    batch = np.stack(pixels)
    # Float and quantized inputs take real pixel values; LiteRTModel quantizes the latter.
    return batch.astype(np.float32) if info.dtype.kind == "f" or info.quantized else batch


def _image_geometry(info: TensorInfo) -> tuple[int | None, int | None, int]:
    if len(info.shape) == 4 and info.shape[3] in _IMAGE_MODES:
        return info.shape[1], info.shape[2], info.shape[3]
    if len(info.shape) == 3:
        return info.shape[1], info.shape[2], 1
    raise EdgeInputError(
        f"input {info.describe()} does not take images; image files fit inputs of shape "
        "[batch, height, width, 1|3|4] or [batch, height, width]"
    )


def predict(
    model_path: Path | str,
    inputs: Mapping[str, np.ndarray] | np.ndarray | Sequence[str],
    *,
    signature: str | None = None,
    num_threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Run a `.tflite` model once on a batch.

    Args:
        model_path: the `.tflite` file.
        inputs: input name -> array, a bare array (one-input models), or
            `--input` strings as `load_inputs` reads them.
        signature: the signature to run (default: `serving_default`, or the only one).
        num_threads: CPU threads for the runtime; None lets it choose.

    Returns:
        Output name -> array (quantized outputs dequantized to float32).

    Raises:
        FileNotFoundError: the model or an input file does not exist.
        EdgeModelError: the model file cannot be run.
        EdgeInputError: the inputs do not fit the signature.
    """
    model = LiteRTModel(model_path, signature=signature, num_threads=num_threads)
    if isinstance(inputs, str):
        inputs = [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(i, str) for i in inputs):
        inputs = load_inputs(inputs, model)
    return model(inputs)


def random_inputs(model: LiteRTModel, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the right shape and dtype for timing `model`.

    Free dimensions are `batch` (the first) or 1 (the others). Floats (also
    for quantized inputs, which then go through quantization as real data
    would) are standard normal; plain integers are zeros, since random ids
    could fall outside an embedding table.

    Args:
        model: the model.
        batch: examples per call.
        seed: the random generator's seed.

    Returns:
        Input name -> array.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, info in model.inputs.items():
        # A batch pinned to 1 still takes `batch` examples: LiteRTModel runs them one by one.
        shape = tuple(
            batch if axis == 0 and d in (None, 1) else (1 if d is None else d) for axis, d in enumerate(info.shape)
        )
        if info.dtype.kind == "f" or info.quantized:
            arrays[name] = rng.standard_normal(shape).astype(np.float32)
        elif info.dtype.kind in "SO":
            arrays[name] = np.full(shape, b"", dtype=object)
        else:
            arrays[name] = np.zeros(shape, dtype=info.dtype)
    return arrays


def bench(
    model_path: Path | str,
    *,
    runs: int = 200,
    warmup: int = 20,
    batch: int = 1,
    num_threads: int | None = None,
    signature: str | None = None,
) -> dict:
    """Time `runs` calls of the model on random inputs (see `random_inputs`).

    Each call is timed as a user sees it: input checks, quantization, the
    runtime, dequantization.

    Args:
        model_path: the `.tflite` file.
        runs: timed calls.
        warmup: untimed calls first (the runtime allocates and the caches fill).
        batch: examples per call.
        num_threads: CPU threads for the runtime; None lets it choose.
        signature: the signature to run.

    Returns:
        `{"model", "signature", "batch", "threads", "runs", "p50_ms",
        "p90_ms", "p99_ms", "mean_ms", "runs_per_s", "examples_per_s"}`.

    Raises:
        ValueError: runs or batch below 1, or warmup below 0.
        FileNotFoundError, EdgeModelError, EdgeInputError: as for `LiteRTModel`.
    """
    if runs < 1 or batch < 1 or warmup < 0:
        raise ValueError(f"runs ({runs}) and batch ({batch}) must be >= 1 and warmup ({warmup}) >= 0")
    model = LiteRTModel(model_path, signature=signature, num_threads=num_threads)
    inputs = random_inputs(model, batch)
    for _ in range(warmup):
        model(inputs)
    seconds = np.empty(runs)
    for run in range(runs):
        start = time.perf_counter()
        model(inputs)
        seconds[run] = time.perf_counter() - start
    p50, p90, p99 = np.percentile(seconds * 1000.0, [50, 90, 99])
    total = float(seconds.sum())
    return {
        "model": str(model_path),
        "signature": model.signature,
        "batch": batch,
        "threads": num_threads,
        "runs": runs,
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": total * 1000.0 / runs,
        "runs_per_s": runs / total,
        "examples_per_s": runs * batch / total,
    }


def read_labels(path: Path | str) -> list[str]:
    """Class names from a text file, one per line, in class-index order.

    Args:
        path: the labels file.

    Returns:
        The names (trailing blank lines dropped).

    Raises:
        FileNotFoundError: the file does not exist.
        EdgeInputError: the file has no labels.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise EdgeInputError(f"{path}: no labels; write one class name per line")
    return [line.strip() for line in lines]


def top_k(outputs: Mapping[str, np.ndarray], labels: Sequence[str], k: int) -> tuple[str, list[list[dict]]]:
    """The `k` best classes of each example, from the 2-D output with one column per label.

    Args:
        outputs: output name -> array, as the model returned them.
        labels: class names, one per column.
        k: classes per example (at most the number of labels).

    Returns:
        (the output used, per example a list of `{"label", "score"}` best first).

    Raises:
        EdgeInputError: no output has shape [batch, len(labels)].
    """
    names = [n for n, v in outputs.items() if v.ndim == 2 and v.shape[1] == len(labels)]
    if not names:
        shapes = ", ".join(f"{n} {list(v.shape)}" for n, v in outputs.items())
        raise EdgeInputError(
            f"there are {len(labels)} labels but no output of shape [batch, {len(labels)}] (outputs: {shapes}); "
            "give a labels file with one line per class"
        )
    scores = outputs[names[0]]
    best = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, len(labels))]
    return names[0], [[{"label": labels[c], "score": float(row[c])} for c in order] for row, order in zip(scores, best)]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not >= 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfdl edge", description="Run a .tflite model with LiteRT, without TensorFlow."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("predict", help="run the model on inputs and print its outputs")
    run.add_argument("model", type=Path, help="the .tflite file")
    run.add_argument(
        "--input", action="append", required=True, metavar="[NAME=]SOURCE",
        help="a .npy, .json or image file, or inline JSON; repeat for several inputs or images",
    )
    run.add_argument("--labels", type=Path, help="class names, one per line, for the top-k")
    run.add_argument("--top-k", type=_positive, default=5, help="classes to show per example (default 5)")
    time_it = commands.add_parser("bench", help="time the model on random inputs")
    time_it.add_argument("model", type=Path, help="the .tflite file")
    time_it.add_argument("--runs", type=_positive, default=200, help="timed calls (default 200)")
    time_it.add_argument("--warmup", type=_non_negative, default=20, help="untimed calls first (default 20)")
    time_it.add_argument("--batch", type=_positive, default=1, help="examples per call (default 1)")
    for sub in (run, time_it):
        sub.add_argument("--signature", help="the signature to run (default serving_default, or the only one)")
        sub.add_argument("--threads", type=_positive, help="CPU threads (default: the runtime's choice)")
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _predict_command(args: argparse.Namespace) -> int:
    model = LiteRTModel(args.model, signature=args.signature, num_threads=args.threads)
    outputs = model(load_inputs(args.input, model))
    best = top_k(outputs, read_labels(args.labels), args.top_k) if args.labels else None
    if args.json:
        document: dict[str, Any] = {"outputs": {n: v.tolist() for n, v in outputs.items()}}
        if best:
            document["top_k"] = {"output": best[0], "classes": best[1]}
        print(json.dumps(document))
        return 0
    with np.printoptions(precision=6, suppress=True):
        for name, value in outputs.items():
            print(f"{name}: {value.dtype.name}{list(value.shape)}\n{value}")
    if best:
        print(f"top {len(best[1][0])} of {best[0]}:")
        for number, classes in enumerate(best[1]):
            print(f"  example {number}: " + ", ".join(f"{c['label']} {c['score']:.4f}" for c in classes))
    return 0


def _bench_command(args: argparse.Namespace) -> int:
    figures = bench(
        args.model,
        runs=args.runs,
        warmup=args.warmup,
        batch=args.batch,
        num_threads=args.threads,
        signature=args.signature,
    )
    if args.json:
        print(json.dumps(figures))
        return 0
    threads = figures["threads"] or "default"
    print(
        f"{figures['model']} (signature {figures['signature']!r}), batch {figures['batch']}, threads {threads}, "
        f"{figures['runs']} runs: p50 {figures['p50_ms']:.3f} ms, p90 {figures['p90_ms']:.3f} ms, "
        f"p99 {figures['p99_ms']:.3f} ms; {figures['runs_per_s']:.0f} runs/s, "
        f"{figures['examples_per_s']:.0f} examples/s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`tfdl edge predict|bench ...`: the command line (argv is what follows `edge`).

    Args:
        argv: the arguments; None reads `sys.argv[1:]`.

    Returns:
        0 on success; 2 for bad arguments, a missing file, or inputs or a
        model that do not fit (the message goes to stderr as `tfdl edge: ...`).
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit:
        # argparse has printed its usage message; hand its status back instead of exiting.
        return exit.code if isinstance(exit.code, int) else 2
    command = _predict_command if args.command == "predict" else _bench_command
    try:
        return command(args)
    except (EdgeInputError, EdgeModelError, OSError, ImportError) as error:
        print(f"tfdl edge: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
