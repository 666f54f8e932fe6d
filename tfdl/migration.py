"""`tfdl migrate`: bring a Keras 2 model (an `.h5` file or a SavedModel) into Keras 3, or name what stops it.

Two legacy artifacts, two results:

- A Keras 2 `.h5` file (`model.save("m.h5")`: the architecture as JSON in
  the `model_config` attribute, weights under `model_weights/`) is rebuilt
  as a Keras 3 model and saved as a `.keras` file that loads with
  `safe_mode=True`. Keras 2 config that Keras 3 refuses but that has a
  Keras 3 equivalent is mended first, and each mend is reported:
  `batch_input_shape` on layers after the input (the `InputLayer` carries
  the shape), `mixed_precision.Policy` dtypes (a policy name in Keras 3),
  and Keras 2-only arguments at their no-op values (`time_major=False`,
  `fused`, `virtual_batch_size=None`, ...). What has no equivalent is named
  with its layer and the fix, and nothing is written: `Lambda` layers
  (marshalled Python bytecode), `TFOpLambda` (a TensorFlow op called on a
  Keras 2 tensor), layer classes Keras 3 dropped, custom classes this
  process cannot find. The rebuilt model's weights are compared, layer by
  layer, with the arrays in the file, and the saved `.keras` is reloaded and
  must give the same outputs.
- A Keras 2 SavedModel (`model.save("dir")` in TensorFlow <= 2.15, or any
  SavedModel with a serving signature) is wrapped, not rebuilt: a Keras 3
  functional model calls its signature through `SavedModelSignature`, with
  inputs and outputs named after the signature's keys (`input_1`,
  `dense_2`, so existing clients keep working) or renamed on request, dtypes
  kept. It is written with `tfdl.export.export_serving_model`: a
  `serving_default` signature keyed by those names and a `manifest.json`, so
  `tfdl serve` serves it. The result is inference-only: the wrapped graph
  has no Keras layers to train (DESIGN.md: a SavedModel backbone does not
  fine-tune under Keras 3); to train, migrate the `.h5` instead or rebuild
  the model in Keras 3 code. The written SavedModel must answer like the
  original on the same inputs.

tfdl never imports `tf_keras`: the `.h5` is read with h5py and Keras 3's own
legacy loader, the SavedModel with `tf.saved_model.load`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

__all__ = ["MigrationError", "MigrationReport", "SavedModelSignature", "Unmigratable", "main_migrate", "migrate"]

SERVING_SIGNATURE = "serving_default"
# Model classes whose config holds a `layers` list.
_MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Config keys of layer wrappers and RNNs that hold one nested layer config.
_NESTED_LAYER_KEYS = ("layer", "backward_layer", "cell")
# Keras 2-only constructor arguments, by layer class, and the value at which
# dropping them changes nothing. `None` as the class means every layer.
_KERAS2_ONLY_ARGUMENTS = {
    ("BatchNormalization", "fused"): "any",  # a kernel choice, not a result
    ("BatchNormalization", "virtual_batch_size"): None,
    ("BatchNormalization", "adjustment"): None,
    ("LSTM", "time_major"): False,
    ("GRU", "time_major"): False,
    ("SimpleRNN", "time_major"): False,
    ("RNN", "time_major"): False,
}
# Layer classes Keras 2 wrote that Keras 3 does not have, with what to do instead.
_KERAS2_ONLY_CLASSES = {
    "TFOpLambda": "a TensorFlow op (tf.math.*, tf.nn.*, ...) was called on a Keras 2 tensor; replace it in the "
                  "Keras 2 code with a Keras layer (keras.layers.Add, Multiply, Activation, ...) or a registered "
                  "layer whose call() uses keras.ops, and save again; or migrate the model's SavedModel instead "
                  "(inference only)",
    "SlicingOpLambda": "a tensor was sliced (x[:, 0]) on a Keras 2 tensor; replace the slice with a registered "
                       "layer whose call() uses keras.ops, and save again; or migrate the model's SavedModel "
                       "instead (inference only)",
    "ThresholdedReLU": "use keras.layers.ReLU(threshold=theta) in the Keras 2 code and save again",
    "LocallyConnected1D": "Keras 3 has no locally connected layers; rebuild the model in Keras 3 code",
    "LocallyConnected2D": "Keras 3 has no locally connected layers; rebuild the model in Keras 3 code",
    "DenseFeatures": "feature columns are gone in Keras 3; preprocess with keras.layers (Normalization, "
                     "StringLookup, ...) or tf.data and rebuild the model in Keras 3 code",
    "CuDNNLSTM": "use keras.layers.LSTM (it runs on cuDNN by itself) in the Keras 2 code and save again",
    "CuDNNGRU": "use keras.layers.GRU(reset_after=True) in the Keras 2 code and save again",
}
# Names a Keras layer, and so a served input or output, may take.
_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# Sizes given to dimensions of unknown size in the probe batch that checks outputs.
_PROBE_BATCH = 3
_PROBE_FREE_DIM = 2
_PROBE_SEED = 0


class MigrationError(ValueError):
    """The path is not something `tfdl migrate` can read; the message says what it got and what to pass."""


@dataclass(frozen=True)
class Unmigratable:
    """One thing in a legacy model that Keras 3 cannot take over.

    Attributes:
        layer: the layer (or signature input/output) it concerns; None for the whole model.
        problem: what it is and why it cannot be migrated.
        fix: what to do about it.
    """

    layer: str | None
    problem: str
    fix: str

    def describe(self) -> str:
        where = f"[{self.layer}] " if self.layer else ""
        return f"{where}{self.problem}. Fix: {self.fix}"


@dataclass
class MigrationReport:
    """What `migrate` read, changed, checked and wrote.

    Attributes:
        source: the legacy file or folder.
        kind: `keras2_h5`, `keras2_saved_model` or `saved_model` (a SavedModel
            without Keras 2 metadata, e.g. a `tf.Module` export).
        output: what was written; None when nothing was (see `problems`).
        inference_only: the output serves predictions but cannot be trained.
        inputs: served or Keras input names, each with the legacy name it came from.
        outputs: the same for outputs.
        mended: Keras 2 config changed to its Keras 3 equivalent, one line each.
        problems: what could not be migrated; empty on success.
        checks: the checks that passed, with their figures.
        notes: what a user should know (dropped optimizer state, generated names).
    """

    source: str
    kind: str
    output: str | None = None
    inference_only: bool = False
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    mended: list[str] = field(default_factory=list)
    problems: list[Unmigratable] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def describe(self) -> str:
        lines = [f"{self.source} ({self.kind})"]
        lines += [f"mended: {line}" for line in self.mended]
        lines += [f"check: {line}" for line in self.checks]
        lines += [f"note: {line}" for line in self.notes]
        if not self.ok:
            lines.append(f"not migrated, {len(self.problems)} problem(s):")
            lines += [f"- {problem.describe()}" for problem in self.problems]
            return "\n".join(lines)
        renamed = [f"{old} -> {new}" for new, old in {**self.inputs, **self.outputs}.items() if old != new]
        if renamed:
            lines.append(f"renamed: {', '.join(renamed)}")
        what = "inference-only SavedModel" if self.inference_only else "Keras 3 model"
        lines.append(f"migrated: {self.output} ({what})")
        return "\n".join(lines)


def migrate(
    path: Path | str,
    output: Path | str,
    *,
    custom_objects: Mapping[str, type] | None = None,
    input_names: Mapping[str, str] | None = None,
    output_names: Mapping[str, str] | None = None,
    signature: str = SERVING_SIGNATURE,
) -> MigrationReport:
    """Migrate a Keras 2 `.h5` file or SavedModel folder at `path` to `output`.

    Args:
        path: a Keras 2 `.h5`/`.hdf5` file (a whole model, not weights only)
            or a SavedModel folder (holding `saved_model.pb`).
        output: for an `.h5`, the `.keras` file to write; for a SavedModel,
            the SavedModel folder to write (empty or new), e.g.
            `serving/NAME/1` so that `tfdl serve --model_base_path serving/NAME`
            serves it.
        custom_objects: classes of custom layers in an `.h5`, by the class
            name Keras 2 saved (or register them with
            `keras.saving.register_keras_serializable` before calling).
        input_names: SavedModel only: new names for signature inputs,
            `{legacy_key: new_name}`; inputs not listed keep their key.
        output_names: the same for outputs.
        signature: SavedModel only: the signature to wrap.

    Returns:
        The report; `report.ok` is false, and nothing is written, when
        something could not be migrated (each named in `report.problems`).

    Raises:
        FileNotFoundError: nothing exists at `path`.
        MigrationError: `path` is not a legacy model tfdl can read (a
            `.keras` file, a weights-only or corrupt `.h5`, a folder without
            `saved_model.pb`, a SavedModel without signatures), `output` is
            the wrong kind or already holds files, or a name mapping is bad.
    """
    path, output = Path(path), Path(output)
    if not path.exists():
        raise FileNotFoundError(f"nothing at {path}: pass a Keras 2 .h5 file or a SavedModel folder")
    if path.is_dir():
        return _migrate_saved_model(path, output, signature, dict(input_names or {}), dict(output_names or {}))
    if input_names or output_names or signature != SERVING_SIGNATURE:
        raise MigrationError(
            f"{path} is an .h5 file: input/output names and signatures apply to SavedModels only; "
            "the .keras file keeps the Keras 2 layer names"
        )
    return _migrate_h5(path, output, dict(custom_objects or {}))


# --- .h5 -----------------------------------------------------------------------------------------------------


def _migrate_h5(path: Path, output: Path, custom_objects: dict) -> MigrationReport:
    model_config, has_training_config = _read_h5(path)
    _check_output_file(path, output)
    report = MigrationReport(str(path), "keras2_h5")
    config = _mend_model_config(model_config, report)
    custom_objects = _with_saved_names(config, custom_objects)
    report.problems += _unmigratable_layers(config, custom_objects)
    if not report.ok:
        return report
    model = _load_mended(path, config, custom_objects, report)
    if model is None:
        return report
    report.checks.append(_check_weights(path, model, report))
    if not report.ok:
        return report
    model.save(output)
    reloaded = keras.models.load_model(output, custom_objects=custom_objects, safe_mode=True)
    report.checks.append(_check_same_outputs(model, reloaded, output, report))
    if not report.ok:
        output.unlink()
        return report
    report.output = str(output)
    report.inputs = {t.name: t.name for t in model.inputs}
    report.outputs = {name: name for name in _output_names(model)}
    unregistered = sorted({cls.__name__ for cls in custom_objects.values()
                           if keras.saving.get_registered_object(keras.saving.get_registered_name(cls)) is not cls})
    if unregistered:
        report.notes.append(f"{output.name} loads only with custom_objects for {unregistered}: register them with "
                            "keras.saving.register_keras_serializable so that a fresh process finds them")
    if has_training_config:
        report.notes.append("the compile settings and optimizer state in the .h5 are not migrated: "
                            "compile the model again before training it")
    return report


def _read_h5(path: Path) -> tuple[dict, bool]:
    """The Keras 2 model config of an `.h5` file, and whether it holds a training config."""
    import h5py

    if path.suffix == ".keras":
        raise MigrationError(f"{path} is a Keras 3 .keras file already: load it with keras.models.load_model; "
                             "`tfdl doctor` checks it")
    if not h5py.is_hdf5(path):
        raise MigrationError(
            f"{path} is not an HDF5 file (nor a folder): migrate takes a Keras 2 .h5 file saved with "
            "model.save('NAME.h5') or a SavedModel folder; if it should be an .h5, it is corrupt or truncated"
        )
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            has_weights = "model_weights" in f
    except OSError as error:
        raise MigrationError(f"{path} could not be read as HDF5 ({error}); the file is corrupt or truncated") from None
    raw = attrs.get("model_config")
    if raw is None:
        what = "weights only (model.save_weights)" if "layer_names" in attrs else "no Keras model"
        raise MigrationError(
            f"{path} holds {what}: it has no model_config; build the model in Keras 3 code and call "
            f"model.load_weights('{path}', by_name=True), or migrate the file model.save('NAME.h5') wrote"
        )
    if not has_weights:
        raise MigrationError(f"{path} has a model_config but no model_weights group; the file is incomplete")
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MigrationError(f"{path}: its model_config is not JSON ({error}); the file is corrupt") from None
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise MigrationError(f"{path}: its model_config is not a Keras model config (no class_name/config)")
    return config, "training_config" in attrs


def _check_output_file(path: Path, output: Path) -> None:
    if output.suffix != ".keras":
        raise MigrationError(f"{path} is an .h5 model, which migrates to a .keras file: OUTPUT {output} should "
                             "end in .keras")
    if output.exists():
        raise MigrationError(f"{output} exists; remove it or pick another OUTPUT")


def _layer_entries(entry: dict, parent: str | None = None) -> Iterator[tuple[dict, str | None]]:
    """Every layer config in a Keras 2 model config (nested models and wrapped layers included).

    Each comes with the class name of what holds it (None for the model itself).
    """
    yield entry, parent
    config = entry.get("config")
    if not isinstance(config, dict):
        return
    holder = entry.get("class_name")
    if holder in _MODEL_CLASSES:
        for layer in config.get("layers", []):
            yield from _layer_entries(layer, holder)
    nested = [config.get(key) for key in _NESTED_LAYER_KEYS]
    nested += config.get("cells", []) if isinstance(config.get("cells"), list) else []
    for layer in nested:
        if isinstance(layer, dict) and "class_name" in layer:
            yield from _layer_entries(layer, holder)


def _mend_model_config(model_config: dict, report: MigrationReport) -> dict:
    """A copy of `model_config` with Keras 2 forms Keras 3 refuses turned into their Keras 3 equivalents."""
    config = json.loads(json.dumps(model_config))
    for entry, _ in _layer_entries(config):
        if entry.get("class_name") == "Sequential":
            _mend_sequential(entry, report)
        elif entry.get("class_name") in _MODEL_CLASSES:
            _mend_functional(entry["config"], report)
        layer_config = entry.get("config")
        if isinstance(layer_config, dict):
            _mend_layer(entry["class_name"], layer_config, report)
    return config


def _mend_sequential(entry: dict, report: MigrationReport) -> None:
    """Keras 2 Sequential configs: a bare layer list (Keras <= 2.2), shapes on layers rather than an InputLayer."""
    if isinstance(entry["config"], list):
        entry["config"] = {"name": "sequential", "layers": entry["config"]}
        report.mended.append("Sequential config: the bare layer list of Keras <= 2.2 put under 'layers'")
    layers = entry["config"].get("layers", [])
    if not layers or layers[0].get("class_name") == "InputLayer":
        return
    first = layers[0].get("config", {})
    shape = first.get("batch_input_shape")
    if shape is None:
        return
    name = f"{first.get('name', 'layer')}_input"
    dtype = first.get("dtype") if isinstance(first.get("dtype"), str) else "float32"
    layers.insert(0, {"class_name": "InputLayer", "config": {"batch_shape": shape, "dtype": dtype, "name": name}})
    report.mended.append(f"layer {first.get('name')!r}: its batch_input_shape {shape} became an InputLayer "
                         f"{name!r} in front of it")


def _mend_functional(config: dict, report: MigrationReport) -> None:
    """Keras 2 lists a single input or output as a list of one; Keras 3 would then take and return lists."""
    for key, what in (("input_layers", "input"), ("output_layers", "output")):
        value = config.get(key)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list) and len(value[0]) == 3:
            config[key] = value[0]
            report.mended.append(f"model {config.get('name')!r}: its one {what} is a tensor, not a list of one "
                                 "(Keras 2 called and answered it so)")


def _mend_layer(class_name: str, config: dict, report: MigrationReport) -> None:
    name = config.get("name")
    if class_name == "InputLayer":
        if "batch_input_shape" in config:
            config["batch_shape"] = config.pop("batch_input_shape")
            report.mended.append(f"layer {name!r}: batch_input_shape {config['batch_shape']} -> batch_shape")
        if "input_dtype" in config:
            config["dtype"] = config.pop("input_dtype")
            report.mended.append(f"layer {name!r}: input_dtype -> dtype {config['dtype']!r}")
        return
    for key in ("batch_input_shape", "input_dtype"):
        if key in config:
            value = config.pop(key)
            report.mended.append(f"layer {name!r}: dropped {key} {value} (the model's InputLayer carries it)")
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") == "Policy":
        config["dtype"] = dtype.get("config", {}).get("name", "float32")
        report.mended.append(f"layer {name!r}: mixed_precision.Policy dtype -> dtype policy {config['dtype']!r}")
    axis = config.get("axis")
    if class_name == "BatchNormalization" and isinstance(axis, list) and len(axis) == 1:
        config["axis"] = int(axis[0])
        report.mended.append(f"layer {name!r}: axis {axis} -> {config['axis']} (a built Keras 2 BatchNormalization "
                             "saves its axis as a list; Keras 3 takes one int)")
    for (layer_class, key), no_op in _KERAS2_ONLY_ARGUMENTS.items():
        if layer_class == class_name and key in config and (no_op == "any" or config[key] == no_op):
            value = config.pop(key)
            report.mended.append(f"layer {name!r}: dropped {key}={value!r}, a Keras 2-only argument at a value "
                                 "that changes nothing")


def _unmigratable_layers(config: dict, custom_objects: dict) -> list[Unmigratable]:
    """Lambda layers, classes Keras 3 dropped, unknown custom classes, and configs Keras 3 refuses, by layer."""
    problems = []
    for entry, _ in _layer_entries(config):
        class_name = entry.get("class_name")
        layer_config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = layer_config.get("name") or entry.get("name")
        problem = _unmigratable_layer(entry, class_name, name, custom_objects)
        if problem is not None:
            problems.append(problem)
    if problems:
        return problems
    # Every class is known: build each layer of a model alone (a wrapper
    # builds what it wraps), so a refused argument is named with its layer
    # rather than deep in the model's build.
    for entry, holder in _layer_entries(config):
        if holder not in _MODEL_CLASSES or entry.get("class_name") in (*_MODEL_CLASSES, "InputLayer"):
            continue
        problem = _refused_config(entry, custom_objects)
        if problem is not None:
            problems.append(problem)
    return problems


def _unmigratable_layer(entry: dict, class_name: str, name: str, custom_objects: dict) -> Unmigratable | None:
    if class_name == "Lambda":
        return Unmigratable(
            name, "a Lambda layer: its function is marshalled Python bytecode, which Keras 3 loads only with "
                  "safe_mode=False and tfdl never loads",
            "rewrite it as a Layer subclass whose call() does the same with keras.ops, registered with "
            "keras.saving.register_keras_serializable; build the model in Keras 3 code with that layer under the "
            "same name, load this file's weights with model.load_weights(PATH, by_name=True), and save as .keras")
    if class_name in _KERAS2_ONLY_CLASSES:
        return Unmigratable(name, f"a {class_name} layer, which Keras 3 does not have",
                            _KERAS2_ONLY_CLASSES[class_name])
    if _resolve_class(entry, custom_objects) is not None:
        return None
    registered = entry.get("registered_name") or class_name
    module = entry.get("module")
    if module and str(module).startswith("keras"):
        return Unmigratable(name, f"class {class_name!r} ({module}) is a Keras 2 class that Keras 3 does not have",
                            "replace it in the Keras 2 code with a Keras 3 layer (or a registered custom layer) "
                            "and save again")
    return Unmigratable(
        name, f"custom class {class_name!r} (saved as {registered!r}) is unknown to this process",
        "import the module that defines it, registered with keras.saving.register_keras_serializable, before "
        f"migrating (tfdl migrate --import MODULE), or pass custom_objects={{'{class_name}': {class_name}}}; "
        "the class must be a Keras 3 layer")


def _with_saved_names(config: dict, custom_objects: dict) -> dict:
    """`custom_objects` plus each given class under the name Keras 2 registered it by (`Package>Name`)."""
    extended = dict(custom_objects)
    for entry, _ in _layer_entries(config):
        registered = entry.get("registered_name")
        if registered and registered not in extended and entry.get("class_name") in custom_objects:
            extended[registered] = custom_objects[entry["class_name"]]
    return extended


def _resolve_class(entry: dict, custom_objects: dict):
    """The Keras 3 class a Keras 2 layer entry names, or None when this process has none."""
    class_name, registered = entry.get("class_name"), entry.get("registered_name")
    for key in (registered, class_name):
        if key and key in custom_objects:
            return custom_objects[key]
    for key in (registered, class_name):
        if key and keras.saving.get_registered_object(key) is not None:
            return keras.saving.get_registered_object(key)
    if class_name in _MODEL_CLASSES:
        return keras.Sequential if class_name == "Sequential" else keras.Model
    module = entry.get("module")
    if module is None or str(module).startswith("keras"):
        return getattr(keras.layers, class_name, None)
    return None


def _refused_config(entry: dict, custom_objects: dict) -> Unmigratable | None:
    """Build one layer from its (mended) config; the error Keras 3 gives, named with the layer."""
    layer_entry = {key: entry[key] for key in ("module", "class_name", "config", "registered_name") if key in entry}
    layer_entry.setdefault("module", "keras.layers")
    layer_entry.setdefault("registered_name", None)
    name = entry["config"].get("name")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keras.saving.deserialize_keras_object(layer_entry, custom_objects=custom_objects, safe_mode=True)
    except (TypeError, ValueError) as error:
        return Unmigratable(
            name, f"Keras 3 refuses its {entry['class_name']} config: {_last_line(error)}",
            "the arguments named are Keras 2 only: set them to their defaults in the Keras 2 code and save again, "
            "or rebuild this layer in Keras 3 code and load the weights with model.load_weights(PATH, by_name=True)")
    return None


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _load_mended(path: Path, config: dict, custom_objects: dict, report: MigrationReport):
    """Keras 3's legacy loader on the mended config and the file's weights, copied to a scratch file.

    (Keras 3 refuses an .h5 whose weights are an HDF5 external link to the
    original, so they are copied.)
    """
    import h5py

    with tempfile.TemporaryDirectory(prefix="tfdl_migrate_") as scratch:
        mended = Path(scratch) / "mended.h5"
        with h5py.File(path, "r") as source, h5py.File(mended, "w") as f:
            for key, value in source.attrs.items():
                f.attrs[key] = value
            f.attrs["model_config"] = json.dumps(config).encode("utf-8")
            source.copy(source["model_weights"], f, name="model_weights")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return keras.models.load_model(mended, custom_objects=custom_objects, compile=False, safe_mode=True)
        except (TypeError, ValueError, KeyError) as error:
            report.problems.append(Unmigratable(
                None, f"Keras 3 could not rebuild the model or load its weights: {_last_line(error)}",
                "the layers above were each accepted alone, so the model's structure or weight layout differs "
                "from what Keras 3 builds: rebuild the model in Keras 3 code and load the weights with "
                "model.load_weights(PATH, by_name=True)"))
            return None


def _check_weights(path: Path, model, report: MigrationReport) -> str:
    """Each layer's weights in the rebuilt model equal the arrays the file stores for the layer of that name."""
    import h5py

    layers = {layer.name: layer for layer in _all_layers(model)}
    compared = 0
    with h5py.File(path, "r") as f:
        group = f["model_weights"]
        for layer_name in _h5_names(group.attrs.get("layer_names", [])):
            weight_names = _h5_names(group[layer_name].attrs.get("weight_names", []))
            if not weight_names:
                continue
            saved = [np.asarray(group[layer_name][w]) for w in weight_names]
            layer = layers.get(layer_name)
            variables = [] if layer is None else layer.trainable_weights + layer.non_trainable_weights
            loaded = [np.asarray(w) for w in variables]
            if len(loaded) != len(saved) or any(a.shape != b.shape or not np.array_equal(a, b)
                                                for a, b in zip(saved, loaded)):
                report.problems.append(Unmigratable(
                    layer_name, f"the rebuilt layer's weights differ from the {len(saved)} array(s) the file "
                                f"stores for it ({', '.join(weight_names)})",
                    "Keras 3 assigns .h5 weights by layer order; rebuild the model in Keras 3 code and load the "
                    "weights with model.load_weights(PATH, by_name=True)"))
            compared += len(saved)
    return f"weights: {compared} arrays in {path.name} equal the rebuilt layers' weights, layer by layer"


def _output_names(model) -> list[str]:
    """A functional model's output names; a Sequential's is its last layer's."""
    return list(getattr(model, "output_names", None) or [model.layers[-1].name])


def _all_layers(model) -> list:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if isinstance(layer, keras.Model):
            layers += _all_layers(layer)
    return layers


def _h5_names(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _probe_inputs(specs: Mapping[str, tuple[tuple, str]]) -> dict[str, np.ndarray] | None:
    """A deterministic batch for inputs `{name: (shape without batch, dtype)}`; None when one is a string."""
    rng = np.random.default_rng(_PROBE_SEED)
    batch = {}
    for name, (shape, dtype) in specs.items():
        shape = (_PROBE_BATCH, *(_PROBE_FREE_DIM if d is None else int(d) for d in shape))
        kind = np.dtype(dtype).kind if dtype != "string" else "S"
        if kind == "f":
            batch[name] = rng.normal(size=shape).astype(dtype)
        elif kind in "iu":
            batch[name] = rng.integers(0, 2, size=shape).astype(dtype)
        elif kind == "b":
            batch[name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            return None
    return batch


def _check_same_outputs(model, reloaded, output: Path, report: MigrationReport) -> str:
    specs = {t.name: (tuple(t.shape[1:]), str(t.dtype)) for t in model.inputs}
    batch = _probe_inputs(specs)
    if batch is None:
        return f"reload: {output.name} loads with safe_mode=True (outputs not compared: a string input)"
    feed = batch if len(batch) > 1 else next(iter(batch.values()))  # several inputs: matched by name
    expected, actual = (keras.tree.flatten(m(feed, training=False)) for m in (model, reloaded))
    worst = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
                for a, b in zip(expected, actual))
    if worst != 0.0:
        report.problems.append(Unmigratable(None, f"the saved {output.name} answers differently from the rebuilt "
                                                  f"model (max |difference| {worst:.3g})",
                                            "report this as a tfdl bug, with the .h5"))
    return f"reload: {output.name} loads with safe_mode=True and gives the rebuilt model's outputs exactly " \
           f"(max |difference| {worst:.3g} on a batch of {_PROBE_BATCH})"


# --- SavedModel ----------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tfdl")
class SavedModelSignature(keras.layers.Layer):
    """Calls one signature of a loaded SavedModel: a dict of tensors in, the signature's dict of tensors out.

    `keras.layers.TFSMLayer` passes its input positionally, which a
    signature with several keyword inputs refuses, and copies the loaded
    variables into Keras weights, which an export then stores twice. This
    layer calls the signature by keyword and owns no Keras weights; an export
    of a model holding it stores the SavedModel's variables once. It is
    inference-only (no trainable weights) and is meant for SavedModel
    exports, not `.keras` files: its config is a path on this machine.

    Args:
        filepath: the SavedModel folder.
        signature: the signature to call (default `serving_default`).
        **kwargs: `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    layer = SavedModelSignature("legacy_saved_model")
    outputs = layer({"input_1": keras.Input((4,), name="input_1")})  # {"dense_1": ...}
    ```
    """

    def __init__(self, filepath: str, signature: str = SERVING_SIGNATURE, **kwargs):
        import tensorflow as tf

        super().__init__(trainable=False, **kwargs)
        self.filepath = str(filepath)
        self.signature = signature
        self._loaded = tf.saved_model.load(self.filepath)
        self._function = self._loaded.signatures[signature]

    def call(self, inputs):
        return self._function(**inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "filepath": self.filepath, "signature": self.signature}


def _migrate_saved_model(path: Path, output: Path, signature: str, input_names: dict,
                         output_names: dict) -> MigrationReport:
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file():
        raise MigrationError(
            f"{path} is a folder without saved_model.pb: pass a SavedModel folder (Keras 2's model.save('DIR') "
            "writes one) or a Keras 2 .h5 file")
    if (path / "manifest.json").is_file():
        raise MigrationError(f"{path} is already a tfdl export (it has manifest.json): serve it as is "
                             "(tfdl serve), nothing to migrate")
    if output.suffix == ".keras":
        raise MigrationError(
            f"{path} is a SavedModel, which migrates to a SavedModel folder, not {output}: a .keras file around a "
            "SavedModel loads only with safe_mode=False; pass a folder such as serving/NAME/1")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise MigrationError(f"{output} already holds files; pass a new or empty folder, e.g. serving/NAME/1")
    kind = "keras2_saved_model" if (path / "keras_metadata.pb").is_file() else "saved_model"
    report = MigrationReport(str(path), kind, inference_only=True)
    try:
        loaded = tf.saved_model.load(str(path))
    except (ValueError, OSError, tf.errors.OpError) as error:
        raise MigrationError(f"{path} could not be loaded as a SavedModel ({_last_line(error)}); "
                             "it is corrupt or written by an unsupported TensorFlow") from None
    signatures = dict(loaded.signatures)
    if not signatures:
        raise MigrationError(
            f"{path} has no serving signatures (a TF1 SavedModel, or a tf.Module saved without signatures=): "
            "save it again with signatures={'serving_default': fn} (TF2) or a signature_def_map (TF1)")
    if signature not in signatures:
        raise MigrationError(f"{path} has no signature {signature!r}; it has {sorted(signatures)}: pick one with "
                             "--signature")
    function = signatures[signature]
    input_specs = dict(function.structured_input_signature[1])
    output_specs = dict(function.structured_outputs)
    report.inputs = _renamed(input_specs, input_names, "input")
    report.outputs = _renamed(output_specs, output_names, "output")
    report.problems += _unservable(input_specs, report.inputs, output_specs, report.outputs)
    if not report.ok:
        return report
    try:
        model = _wrapper_model(path, signature, input_specs, report.inputs, output_specs, report.outputs)
        _export_and_check(model, function, output, report)
    except (TypeError, ValueError, tf.errors.OpError) as error:
        report.problems.append(Unmigratable(
            signature, f"the signature could not be wrapped and exported again: {_last_line(error)}",
            "export the model again from its Keras 2 code with a plain serving signature (dense tensors in and "
            "out, batch dimension None), or migrate its .h5"))
    return report


def _renamed(specs: Mapping, names: Mapping[str, str], what: str) -> dict[str, str]:
    """`{new name: signature key}` for each key; a key not in `names` keeps its name."""
    unknown = sorted(set(names) - set(specs))
    if unknown:
        raise MigrationError(f"--{what}-names renames {unknown}, which the signature's {what}s do not include; "
                             f"they are {sorted(specs)}")
    mapping = {names.get(key, key): key for key in sorted(specs)}
    if len(mapping) != len(specs):
        raise MigrationError(f"--{what}-names gives two {what}s the same name: {dict(names)}")
    return mapping


def _unservable(input_specs, inputs: dict, output_specs, outputs: dict) -> list[Unmigratable]:
    problems = []
    clash = sorted(set(inputs) & set(outputs))
    if clash:
        problems.append(Unmigratable(None, f"names {clash} are both an input and an output",
                                     "give one of them another name with --input-names or --output-names"))
    for names, what in ((inputs, "input"), (outputs, "output")):
        for name, key in names.items():
            if not _VALID_NAME.match(name):
                problems.append(Unmigratable(name, f"{what} name {name!r} is not a valid Keras layer name",
                                             f"rename it: --{what}-names {key}=NAME (letters, digits, _ . -)"))
    for key, spec in input_specs.items():
        if spec.shape.rank is None or spec.shape.rank == 0:
            problems.append(Unmigratable(key, f"input {key!r} has shape {spec.shape}, with no batch dimension",
                                         "export the model with a [batch, ...] input signature"))
        elif spec.shape[0] is not None:
            problems.append(Unmigratable(key, f"input {key!r} has a fixed batch size {spec.shape[0]}; served models "
                                              "take batches of any size",
                                         "export the model again with the batch dimension None"))
    return problems


def _wrapper_model(path: Path, signature: str, input_specs, inputs: dict, output_specs, outputs: dict):
    """A functional Keras 3 model: named inputs -> the signature -> one named Identity per output."""
    taken = set(inputs) | set(outputs)
    layer_name = next(n for n in (f"legacy_{signature}", f"legacy_{signature}_call") if n not in taken)
    call = SavedModelSignature(str(path), signature, name=layer_name)
    tensors = {name: keras.Input(shape=tuple(input_specs[key].shape[1:]), dtype=input_specs[key].dtype.name,
                                 name=name) for name, key in inputs.items()}
    results = call({key: tensors[name] for name, key in inputs.items()})
    named = [keras.layers.Identity(name=name)(results[key]) for name, key in outputs.items()]
    model_inputs = tensors if len(tensors) > 1 else next(iter(tensors.values()))
    return keras.Model(model_inputs, named if len(named) > 1 else named[0], name=f"{path.name}_migrated")


def _export_and_check(model, function, output: Path, report: MigrationReport) -> None:
    """Write `model` with tfdl's serving export, then compare what it serves with the original signature."""
    import shutil

    import tensorflow as tf

    from tfdl.doctor.saved_model import signature_findings
    from tfdl.export.serving_model import export_serving_model

    export_serving_model(model, output, tflite=[])  # migrate writes no .tflite from it
    served = tf.saved_model.load(str(output)).signatures[SERVING_SIGNATURE]
    specs = {name: (tuple(spec.shape[1:]), spec.dtype.name)
             for name, spec in served.structured_input_signature[1].items()}
    batch = _probe_inputs(specs)
    if batch is None:
        report.checks.append("outputs not compared: a string input")
    else:
        new = served(**{name: tf.constant(value) for name, value in batch.items()})
        old = function(**{report.inputs[name]: tf.constant(value) for name, value in batch.items()})
        worst = max(float(np.max(np.abs(new[name].numpy().astype(np.float64) - old[key].numpy().astype(np.float64))))
                    if new[name].dtype.is_floating or new[name].dtype.is_integer
                    else float(not np.array_equal(new[name].numpy(), old[key].numpy()))
                    for name, key in report.outputs.items())
        if worst != 0.0:
            shutil.rmtree(output)
            report.problems.append(Unmigratable(
                None, f"the written SavedModel answers differently from {report.source} (max |difference| {worst:.3g})",
                "report this as a tfdl bug, with the SavedModel"))
            return
        report.checks.append(f"outputs: the written SavedModel's {SERVING_SIGNATURE} gives the original signature's "
                             f"outputs exactly on a batch of {_PROBE_BATCH}, under the served names")
    report.output = str(output)
    report.notes.append("inference-only: the SavedModel's graph is wrapped, not rebuilt as Keras layers, so it "
                        "cannot be trained; to fine-tune, migrate the .h5 or rebuild the model in Keras 3 code")
    for finding in signature_findings(tf.saved_model.load(str(output)).signatures):
        report.notes.append(f"tfdl doctor will report: {finding.problem}; rename with --input-names/--output-names "
                            "OLD=NEW (kept so that existing clients keep working)")
    if not output.name.isdigit():
        report.notes.append(f"tfdl serve reads numbered versions: move it to MODEL/1 (e.g. {output}/../NAME/1) "
                            "and serve with --model_base_path MODEL")


# --- command line --------------------------------------------------------------------------------------------


def _parse_names(values: list[str], option: str) -> dict[str, str]:
    """`["input_1=pixels,dense_1=probabilities", ...]` -> `{"input_1": "pixels", "dense_1": "probabilities"}`."""
    names = {}
    for value in values:
        for pair in filter(None, (part.strip() for part in value.split(","))):
            old, sep, new = pair.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise MigrationError(f"{option} takes OLD=NEW pairs, e.g. {option} input_1=pixels; got {pair!r}")
            names[old.strip()] = new.strip()
    return names


def main_migrate(args: argparse.Namespace) -> int:
    """`tfdl migrate PATH OUTPUT [--json]`: print the report; exit 1 when something could not be migrated.

    Args:
        args: parsed arguments: `path`, `output`, `json`, `input_names`,
            `output_names` (lists of OLD=NEW), `signature`, `imports`
            (modules to import first, which register custom layers).

    Returns:
        0 when migrated, 1 when something could not be migrated, 2 when
        PATH or OUTPUT is not something migrate takes.
    """
    import importlib

    try:
        for module in args.imports:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as error:
                raise MigrationError(f"--import {module}: {error}; put its folder on PYTHONPATH") from None
        report = migrate(
            args.path, args.output,
            input_names=_parse_names(args.input_names, "--input-names"),
            output_names=_parse_names(args.output_names, "--output-names"),
            signature=args.signature,
        )
    except (FileNotFoundError, MigrationError) as error:
        print(f"tfdl migrate: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.describe())
    if not report.ok:
        names = ", ".join(p.layer or "the model" for p in report.problems)
        print(f"tfdl migrate: not migrated: {names}", file=sys.stderr)
    return 0 if report.ok else 1
