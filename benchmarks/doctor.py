"""Issue 12's doctor bar, measured: `tfdl doctor` finds each seeded problem and reports nothing on what tfdl exports.

1. Every registry model at its smallest (tests/registry_models.py) is
   exported the way tfdl's export stage does it, into the same layout
   (`export/model.keras`, `export/serving/NAME/1/` with `manifest.json`,
   `export/model.tflite`): the served form, recurrent layers unrolled when
   TFLite is asked for, and the manifest recording the TFLite modes the
   model's shipped configs ask for (`export.tflite`; none of its configs
   asking means `[]`, no config at all the default `[float32]`). The
   recurrent models get the fixed sequence lengths their TFLite configs
   use, and two extra rows show them with a length of None. Doctor runs
   on each artifact. Its TFLite verdict is checked against an actual
   builtins-only conversion of the SavedModel: a `tflite_ops` problem is
   real when the export asks for TFLite and the conversion fails; every
   other problem is a false alarm, and a model that asks for TFLite, does
   not convert and passes doctor is a miss.
2. The seeded problems of tests/test_doctor.py (Lambda layer, lambda
   activation, unregistered layer, get_config missing an argument, unbuilt
   sublayer, ops outside the builtins, unnamed SavedModel signatures, Flex
   `.tflite`), plus the same builtin-breaking model exported for TFLite
   (a problem) and exported with `export.tflite: []` (notes only), must
   each be found with the right layer and nothing else.

Figures go to a JSON file and to the `doctor` section of BENCHMARKS.md.

    python benchmarks/doctor.py [--output runs/benchmarks/doctor.json] [--benchmarks BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from spine import machine, write_section  # noqa: E402

# The shipped TFLite configs fix the sequence length (adding_lstm: 100 steps, sine_forecaster: 40).
FIXED_LENGTH = {"rnn_regressor": {"input_shape": (6, 2)}}
# Rows beside the registry's: the recurrent models over sequences of no fixed length, exported for TFLite.
EXTRA_ROWS = {
    "rnn_regressor, length None": ("rnn_regressor", {"input_shape": (None, 2)}, ["float32"]),
    "rnn, max_length 6": ("rnn", {"max_length": 6}, ["float32"]),
}


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def config_targets() -> dict[str, list[str]]:
    """Per model, the TFLite modes its shipped configs export: the union over its configs."""
    targets: dict[str, set[str]] = {}
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        tree = yaml.safe_load(path.read_text()) or {}
        model = (tree.get("model") or {}).get("name")
        if not model:
            continue
        modes = (tree.get("export") or {}).get("tflite", ["float32"])
        modes = ["float32"] if modes is True else [] if modes in (False, None) else modes
        targets.setdefault(model, set()).update(modes)
    return {model: sorted(modes) for model, modes in targets.items()}


def export_like_tfdl(label: str, model, form, tflite: list[str], work: Path) -> dict[str, Path]:
    """Write `export/` as the export stage does; returns the artifacts (no .tflite when none is asked for)."""
    from tfdl.export.recurrent_unroll import unroll_recurrent
    from tfdl.export.serving_model import export_serving_model

    export = work / label.replace(", ", "_").replace(" ", "_") / "export"
    export.mkdir(parents=True)
    model.save(export / "model.keras")
    served = unroll_recurrent(form) if tflite else form
    saved = export_serving_model(served, export / "serving" / "model" / "1", tflite=tflite)
    return {".keras": export / "model.keras", "SavedModel": saved, "export": export}


def converts(saved: Path, path: Path) -> tuple[bool, str]:
    from tfdl.export.tflite import TFLiteConversionError, convert_tflite

    try:
        convert_tflite(saved, path)
    except TFLiteConversionError as error:
        return False, str(error).split(": ", 1)[-1].splitlines()[0][:160]
    return True, ""


def doctor_row(label: str, kind: str, path: Path, tflite: list[str], convertible: bool) -> dict:
    from tfdl.doctor import diagnose

    report, seconds = timed(diagnose, path)
    real = [f for f in report.problems if f.check == "tflite_ops" and tflite and not convertible]
    return {"model": label, "artifact": kind, "tflite": tflite, "converts": convertible, "ok": report.ok,
            "problems": [f.describe() for f in report.problems],
            "real": [f.describe() for f in real],
            "false_alarms": [f.describe() for f in report.problems if f not in real],
            "notes": [f.describe() for f in report.findings if f.severity == "note"] + report.notes,
            "seconds": round(seconds, 2)}


def model_rows(label: str, name: str, params: dict, tflite: list[str], work: Path) -> list[dict]:
    from registry_models import served_forms

    from tfdl.models import build_model

    model = build_model(name, params)
    (form,) = served_forms(name, model, primary_only=True).values()  # also builds a subclassed model
    paths = export_like_tfdl(label, model, form, tflite, work)
    target = paths["export"] / "model.tflite" if tflite else work / f"{paths['export'].parent.name}_check.tflite"
    convertible, why = converts(paths["SavedModel"], target)
    rows = [doctor_row(label, kind, paths[kind], tflite, convertible) for kind in (".keras", "SavedModel")]
    if tflite and convertible:
        rows.append(doctor_row(label, ".tflite (float32)", target, tflite, convertible))
    if tflite and not convertible:
        # A miss: the export asks for TFLite, the model does not convert, and the SavedModel passed.
        rows[1]["missed"] = rows[1]["ok"]
        rows[1]["why"] = why
    return rows


def registry_rows(work: Path) -> list[dict]:
    from registry_models import TINY

    from tfdl.models import available_models

    targets = config_targets()
    rows = []
    for name in available_models():
        params = {**TINY[name], **FIXED_LENGTH.get(name, {})}
        rows += model_rows(name, name, params, targets.get(name, ["float32"]), work)
    for label, (name, extra, tflite) in EXTRA_ROWS.items():
        rows += model_rows(label, name, {**TINY[name], **extra}, tflite, work)
    return rows


def seeded_rows(work: Path) -> list[dict]:
    import keras
    import test_doctor

    from tfdl.doctor import diagnose
    from tfdl.export.serving_model import export_serving_model

    (work / "broken").mkdir()
    artifacts = test_doctor.write_broken_artifacts(work / "broken")
    flexy = keras.saving.load_model(artifacts["flex_keras"], safe_mode=True)
    artifacts["flex_saved_model_for_tflite"] = export_serving_model(flexy, work / "broken" / "for_tflite" / "1",
                                                                    tflite=["float32"])
    artifacts["flex_saved_model_no_tflite"] = export_serving_model(flexy, work / "broken" / "no_tflite" / "1",
                                                                   tflite=[])
    flex_layers = {("tflite_ops", "inverse"), ("tflite_ops", "sampler")}
    expected = {
        "lambdas": {("unsafe", "add_one"), ("unsafe", "scaled_dense")},
        "unregistered": {("unregistered", "doubler")},
        "dropped": {("config", "scale")},
        "two_step": {("unbuilt", "inner")},
        "flex_keras": flex_layers,
        "unnamed": {("signature", None), ("signature", "predict")},
        "flex_tflite": {("flex_ops", "inverse"), ("flex_ops", "sampler"), ("runtime", None)},
        "flex_saved_model_for_tflite": flex_layers,
        "flex_saved_model_no_tflite": set(),  # the same ops, as notes: the export writes no TFLite file
    }
    rows = []
    for key, path in artifacts.items():
        report, seconds = timed(diagnose, path)
        found = {(f.check, f.layer) for f in report.problems}
        notes = {(f.check, f.layer) for f in report.findings if f.severity == "note"}
        passed = found == expected[key] and (key != "flex_saved_model_no_tflite" or notes == flex_layers)
        rows.append({"seeded": key, "expected": sorted(map(str, expected[key])), "found": sorted(map(str, found)),
                     "notes": sorted(map(str, notes)), "passed": passed, "seconds": round(seconds, 2)})
    return rows


def summary(registry: list[dict], seeded: list[dict]) -> dict:
    return {
        "artifacts_checked": len(registry),
        "artifacts_with_false_alarms": sum(bool(r["false_alarms"]) for r in registry),
        "artifacts_with_real_problems": sum(bool(r["real"]) for r in registry),
        "models_missed": sum(bool(r.get("missed")) for r in registry),
        "seeded_found": f"{sum(r['passed'] for r in seeded)}/{len(seeded)}",
    }


def markdown(result: dict, minutes: float, output: Path) -> str:
    s = result["summary"]
    registry = result["registry"]
    real = sorted({r["model"] for r in registry if r["real"]})
    noted = sorted({r["model"] for r in registry if r["notes"] and not r["real"]})
    models = sorted({r["model"] for r in registry})
    found, planted = s["seeded_found"].split("/")
    lines = [
        "## tfdl doctor", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {result['machine']}. Command: `python benchmarks/doctor.py` "
        f"({minutes:.1f} min; figures also in `{output}`).", "",
        "| bar | measured | met |", "|---|---|---|",
        f"| seeded problems found, each with its layer and nothing else (Lambda, unregistered object, get_config "
        f"gap, unbuilt sublayer, ops outside the builtins in a `.keras` and in a SavedModel exported for TFLite, "
        f"unnamed SavedModel signature, Flex .tflite; the same SavedModel exported with `export.tflite: []` gives "
        f"notes only) | {s['seeded_found']} | {'yes' if found == planted else 'no'} |",
        f"| false alarms on what tfdl exports (.keras, SavedModel with manifest.json, .tflite of {len(models)} "
        f"models: every registry model, {len(EXTRA_ROWS)} recurrent variants) | {s['artifacts_with_false_alarms']} "
        f"of {s['artifacts_checked']} artifacts | {'yes' if s['artifacts_with_false_alarms'] == 0 else 'no'} |",
        f"| models that ask for TFLite, do not convert, and pass doctor | {s['models_missed']} | "
        f"{'yes' if s['models_missed'] == 0 else 'no'} |",
        "",
        f"{sum(not r['problems'] and not r['notes'] for r in registry)} of the {len(registry)} artifacts have "
        "neither problems nor notes. Those with either:", "",
        "| model | artifact | TFLite asked | converts | exit | problems, or notes | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in registry:
        if not r["problems"] and not r["notes"]:
            continue
        text = "; ".join(r["problems"]) or "notes: " + "; ".join(r["notes"])
        asked = ", ".join(r["tflite"]) or "[]"
        lines.append(f"| {r['model']} | {r['artifact']} | {asked} | {'yes' if r['converts'] else 'no'} | "
                     f"{0 if r['ok'] else 1} | {text[:240]}... | {r['seconds']} |")
    lines += [
        "",
        f"Real problems (the export asks for TFLite, a model without a config gets the default float32, and the "
        f"builtins-only conversion fails): {', '.join(real) or 'none'}. Notes only, exit 0 (the manifest says the "
        "export writes no TFLite file, or a subclassed model's TFLite check ran on its functional parts or could "
        f"not run; each note says which): {', '.join(noted) or 'none'}. Recurrent layers over a fixed sequence "
        "length are unrolled by the export and convert; over a length of None doctor names the layer and says to "
        "fix the length. "
        "The `.tflite` rows check the float32 file.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="runs/benchmarks/doctor.json", help="where the JSON figures go")
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md", help="the file its section goes to")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        registry = registry_rows(work)
        seeded = seeded_rows(work)
    result = {"machine": machine(), "command": "python benchmarks/doctor.py", "registry": registry,
              "seeded": seeded, "summary": summary(registry, seeded)}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result, (time.perf_counter() - started) / 60, output)
    write_section(args.benchmarks, "doctor", text)
    print(text)
    print("\n| seeded problem | found as expected | s |\n|---|---|---|")
    for r in seeded:
        print(f"| {r['seeded']} | {r['passed']} ({', '.join(r['found'])}) | {r['seconds']} |")


if __name__ == "__main__":
    main()
