"""Issue 12's doctor bar, measured: `tfdl doctor` finds each seeded problem and nothing in what tfdl exports.

1. Every registry model that builds with Keras inputs from tiny parameters
   (the table of tests/export/test_registry_exports.py, plus the models it
   leaves out) is saved as `.keras`, exported with `export_saved_model` and
   converted to `.tflite`; doctor runs on all three. A finding other than
   `tflite_ops` (an op TFLite has no builtin for, which is true of a model
   and not a false alarm) counts against the bar.
2. The seeded problems of tests/test_doctor.py (Lambda layer, lambda
   activation, unregistered layer, get_config missing an argument, unbuilt
   sublayer, ops outside the builtins, unnamed SavedModel signatures, Flex
   `.tflite`) must each be found with the right layer.

Figures (per artifact: findings, seconds) go to a JSON file and a Markdown
table on stdout.

    python benchmarks/doctor.py [--output runs/benchmarks/doctor.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "export"))

from spine import machine  # noqa: E402

# Registry models the export tests leave out, with parameters a run would fill from data.
EXTRA_PARAMS = {
    "autoencoder": {"input_shape": (6,)},
    "perceptron": {"input_shape": (4,), "num_classes": 2},
    "rnn": {"num_classes": 3, "vocabulary_size": 20},
    "rnn_regressor": {"input_shape": (6, 2)},
}


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def doctor_row(name: str, kind: str, path: Path) -> dict:
    from tfdl.doctor import diagnose

    report, seconds = timed(diagnose, path)
    findings = [f.describe() for f in report.findings]
    false_alarms = [f.describe() for f in report.findings if f.check != "tflite_ops"]
    return {"model": name, "artifact": kind, "findings": findings, "false_alarms": false_alarms,
            "seconds": round(seconds, 2)}


def registry_rows(work: Path) -> list[dict]:
    from test_registry_exports import TINY

    from tfdl.export.saved_model import export_saved_model
    from tfdl.export.tflite import TFLiteConversionError, convert_tflite
    from tfdl.models import available_models, build_model

    rows = []
    for name in available_models():
        params = TINY.get(name, EXTRA_PARAMS.get(name))
        if params is None:
            rows.append({"model": name, "artifact": "-", "skipped": "subclassed; built only by training on data"})
            continue
        model = build_model(name, params)
        if not getattr(model, "inputs", None):
            rows.append({"model": name, "artifact": "-", "skipped": "no Keras inputs until trained"})
            continue
        keras_path = work / f"{name}.keras"
        model.save(keras_path)
        rows.append(doctor_row(name, ".keras", keras_path))
        saved = export_saved_model(model, work / f"{name}_saved_model")
        rows.append(doctor_row(name, "SavedModel", saved))
        try:
            tflite = convert_tflite(saved, work / f"{name}.tflite").path
        except TFLiteConversionError as error:
            rows.append({"model": name, "artifact": ".tflite", "skipped": f"does not convert: {str(error)[:120]}"})
            continue
        rows.append(doctor_row(name, ".tflite", tflite))
    return rows


def seeded_rows(work: Path) -> list[dict]:
    import test_doctor

    from tfdl.doctor import diagnose

    (work / "broken").mkdir()
    artifacts = test_doctor.write_broken_artifacts(work / "broken")
    expected = {
        "lambdas": {("unsafe", "add_one"), ("unsafe", "scaled_dense")},
        "unregistered": {("unregistered", "doubler")},
        "dropped": {("config", "scale")},
        "two_step": {("unbuilt", "inner")},
        "flex_keras": {("tflite_ops", "inverse"), ("tflite_ops", "sampler")},
        "unnamed": {("signature", None), ("signature", "predict")},
        "flex_tflite": {("flex_ops", "inverse"), ("flex_ops", "sampler"), ("runtime", None)},
    }
    rows = []
    for key, path in artifacts.items():
        report, seconds = timed(diagnose, path)
        found = {(f.check, f.layer) for f in report.findings}
        rows.append({"seeded": key, "expected": sorted(map(str, expected[key])), "found": sorted(map(str, found)),
                     "passed": found == expected[key], "seconds": round(seconds, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="runs/benchmarks/doctor.json", help="where the JSON figures go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        registry = registry_rows(work)
        seeded = seeded_rows(work)
    checked = [r for r in registry if "skipped" not in r]
    result = {
        "machine": machine(),
        "command": "python benchmarks/doctor.py",
        "registry": registry,
        "seeded": seeded,
        "artifacts_checked": len(checked),
        "artifacts_with_false_alarms": sum(bool(r["false_alarms"]) for r in checked),
        "seeded_found": f"{sum(r['passed'] for r in seeded)}/{len(seeded)}",
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']}")
    print("| model | artifact | findings | s |\n|---|---|---|---|")
    for r in registry:
        text = r.get("skipped") or ("; ".join(r["findings"]) or "none")
        print(f"| {r['model']} | {r['artifact']} | {text} | {r.get('seconds', '')} |")
    print("\n| seeded problem | found as expected | s |\n|---|---|---|")
    for r in seeded:
        print(f"| {r['seeded']} | {r['passed']} ({', '.join(r['found'])}) | {r['seconds']} |")
    print(f"\n{result['artifacts_checked']} artifacts checked, {result['artifacts_with_false_alarms']} with false "
          f"alarms; seeded problems found: {result['seeded_found']}; figures in {output}")


if __name__ == "__main__":
    main()
