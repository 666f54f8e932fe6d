"""`tfdl doctor` on a `.keras` file: what would stop it loading in a fresh process, or serving on TFLite.

The archive's `config.json` is read as JSON, without deserializing anything,
for content `safe_mode=True` refuses (Lambda layers, Python lambdas,
TFSMLayer, vocabulary files outside the archive), for custom classes this
process cannot find by their registered name, and for `get_config` results
that miss constructor arguments. Only a file clean of those is loaded (with
`safe_mode=True`), to find sublayers left unbuilt, whose saved weights are
skipped and which get fresh random weights on their first call. Last, the
model is exported to a SavedModel in a temporary folder and converted with
TFLite builtins only; each op that stops it is named with its layer.

The conversion checks what tfdl's export would convert: recurrent layers
with a fixed sequence length unrolled (`tfdl.export.recurrent_unroll`), so
only those of no fixed length are found, with the fix to fix it. A
subclassed model has no Keras inputs, so it is exported with the input
shape its file records (`build_config`, from its first call) at the
model's input dtype; one that records none (a model that was never called
as a whole, like a GAN, or that takes a dict) is checked through its
functional parts (a GAN's generator and discriminator); where there are
none either, a note says the check was skipped and why.

A `.keras` file holds no record of what it was exported for, but a tfdl
export folder does: `export/model.keras` sits beside
`export/serving/NAME/VERSION/manifest.json`. When that manifest says the
export writes no TFLite file (`export.tflite: []`), the TFLite findings of
the `.keras` file are notes, as for the SavedModel; anywhere else they are
problems.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

from tfdl.doctor.findings import DoctorReport, Finding, tflite_op_finding

# The Keras file tfdl's export stage writes, beside its serving/NAME/VERSION/ folders.
_EXPORTED_KERAS = "model.keras"

# Lookup layers that read a vocabulary file when it is given as a path.
_VOCABULARY_LAYERS = ("StringLookup", "IntegerLookup", "TextVectorization")
# Modules from which classes are resolved without a registered name.
_NOT_IMPORTABLE = (None, "__main__", "builtins")
# Keras warnings during loading that mean saved state was dropped.
_DROPPED_STATE = re.compile(r"could not be loaded|never built|expected \d+ variables", re.IGNORECASE)
_NAMED_LAYER = re.compile(r"[Ll]ayer '([^']+)'")


def read_keras_config(path: Path | str) -> dict:
    """The model config stored in a `.keras` archive, read as plain JSON.

    Args:
        path: the `.keras` file.

    Returns:
        The parsed `config.json`.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not a zip archive holding `config.json`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .keras file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} is not a Keras 3 .keras archive with a config.json ({error}); "
            "save the model with model.save('NAME.keras')"
        ) from error


def _objects(node, layer: str | None = None) -> Iterator[tuple[str | None, dict]]:
    """Every dict in a config, with the name of the innermost layer holding it."""
    if isinstance(node, dict):
        config = node.get("config")
        if "class_name" in node and isinstance(config, dict):
            layer = node.get("name") or config.get("name") or layer
        yield layer, node
        for value in node.values():
            yield from _objects(value, layer)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value, layer)


def layer_names(config: dict) -> list[str]:
    """The names of every layer (and nested model) in a `.keras` config.

    Args:
        config: from `read_keras_config`.

    Returns:
        The names, in config order, each once.
    """
    return list(dict.fromkeys(layer for layer, _ in _objects(config) if layer))


def _is_keras(module: str | None) -> bool:
    return module is not None and (module == "keras" or module.startswith("keras."))


def unsafe_findings(config: dict) -> list[Finding]:
    """Content that `keras.saving.load_model(..., safe_mode=True)` refuses.

    Args:
        config: from `read_keras_config`.

    Returns:
        One finding per Lambda layer, stored Python lambda, TFSMLayer and
        vocabulary file outside the archive.
    """
    findings, lambda_layers = [], set()
    for layer, obj in _objects(config):
        kind = obj.get("class_name")
        if kind == "Lambda" and _is_keras(obj.get("module")):
            lambda_layers.add(layer)
            findings.append(Finding(
                "unsafe", layer, "a Lambda layer stores Python bytecode, which load_model refuses with "
                "safe_mode=True (the default)",
                "replace it with a small custom layer registered with "
                "@keras.saving.register_keras_serializable(package=...) whose call() does the same"))
        elif (kind == "__lambda__" or _is_dumped_function(obj)) and layer not in lambda_layers:
            findings.append(Finding(
                "unsafe", layer, "a Python lambda (e.g. an activation) is stored as bytecode, which load_model "
                "refuses with safe_mode=True", "use a built-in name ('relu') or a named function "
                "registered with @keras.saving.register_keras_serializable"))
        elif kind == "TFSMLayer":
            findings.append(Finding(
                "unsafe", layer, "a TFSMLayer loads an external SavedModel, which load_model refuses with "
                "safe_mode=True", "rebuild the backbone as Keras 3 layers and copy its weights in, or "
                "serve the SavedModel itself"))
        elif kind in _VOCABULARY_LAYERS and isinstance(obj["config"].get("vocabulary"), str):
            findings.append(Finding(
                "unsafe", layer, f"the vocabulary is a file outside the archive "
                f"({obj['config']['vocabulary']}), which load_model refuses with safe_mode=True",
                "adapt() the layer or pass the vocabulary as a list, so it is stored in the .keras file"))
    return findings


def _is_dumped_function(obj: dict) -> bool:
    # keras.activations.serialize stores a lambda as {"value": [bytecode, defaults, closure]}.
    value = obj.get("value")
    return set(obj) == {"value"} and isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)


def _custom_objects(config: dict) -> Iterator[tuple[str | None, dict]]:
    for layer, obj in _objects(config):
        if obj.get("registered_name") and "class_name" in obj and not _is_keras(obj.get("module")):
            yield layer, obj


def _resolve(registered_name: str, module: str | None):
    """The registered class (or function), importing its module first when it names one."""
    import keras

    found = keras.saving.get_registered_object(registered_name)
    if found is None and module not in _NOT_IMPORTABLE:
        try:
            importlib.import_module(module)
        except ImportError:
            return None
        found = keras.saving.get_registered_object(registered_name)
    return found


def registration_findings(config: dict) -> list[Finding]:
    """Custom objects a fresh process cannot find, and `get_config`s that miss constructor arguments.

    A custom object's module is imported (as loading it would need) and its
    registered name looked up. The constructor of a registered class that
    keeps Keras's `from_config` is compared with its stored config: an
    argument left out of the config makes `from_config` fail (no default) or
    silently reset it (a default).

    Args:
        config: from `read_keras_config`.

    Returns:
        One finding per unregistered object and per missing or unexpected argument.
    """
    findings = []
    for layer, obj in _custom_objects(config):
        name, module = obj["registered_name"], obj.get("module")
        found = _resolve(name, module)
        if found is None:
            where = "defined in a script (no importable module)" if module in _NOT_IMPORTABLE else f"module {module}"
            findings.append(Finding(
                "unregistered", layer, f"custom class {obj['class_name']} (registered name {name!r}, {where}) is "
                "not registered, so load_model in a fresh process cannot find it",
                "move the class into an importable module, decorate it with "
                "@keras.saving.register_keras_serializable(package=...), and import that module before loading"))
        elif inspect.isclass(found) and isinstance(obj.get("config"), dict):
            findings += _argument_findings(layer, found, obj["config"])
    return findings


def _custom_from_config(cls: type) -> bool:
    owner = next((klass for klass in cls.__mro__ if "from_config" in vars(klass)), None)
    return owner is not None and not _is_keras(owner.__module__)


def _argument_findings(layer: str | None, cls: type, config: dict) -> list[Finding]:
    if _custom_from_config(cls):
        return []  # its own from_config may map stored keys to arguments any way it likes
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters)
    named = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    findings = []
    for parameter in named:
        if parameter.name in config:
            continue
        if parameter.default is parameter.empty:
            effect = "from_config fails: the argument is required"
        else:
            effect = f"a reloaded layer silently uses the default {parameter.default!r} instead of the trained value"
        findings.append(Finding(
            "config", layer, f"{cls.__name__}.get_config() does not return constructor argument "
            f"'{parameter.name}': {effect}",
            f"add '{parameter.name}': self.{parameter.name} to the dict {cls.__name__}.get_config() returns"))
    if not takes_kwargs:
        accepted = {p.name for p in named}
        for key in sorted(set(config) - accepted):
            findings.append(Finding(
                "config", layer, f"{cls.__name__}.get_config() returns '{key}', which __init__ does not accept: "
                "from_config fails", f"accept **kwargs in {cls.__name__}.__init__ and pass them to super().__init__"))
    return findings


def load_findings(path: Path | str) -> tuple[list[Finding], object | None]:
    """Load the file with `safe_mode=True` and find what did not come back.

    Args:
        path: the `.keras` file.

    Returns:
        The findings (a failed load, dropped weights, sublayers left unbuilt)
        and the loaded model (None when loading failed).
    """
    import keras

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as error:  # any failure is the finding: it is what a user's load would raise
            # Keras wraps the cause of a nested failure after this marker.
            text = str(error).rsplit("Exception encountered:", 1)[-1].strip()
            text = text.splitlines()[0] if text else type(error).__name__
            named = _NAMED_LAYER.search(str(error))
            return [Finding("load", named.group(1) if named else None, f"load_model(safe_mode=True) fails: {text}",
                            "load it in a fresh Python process to see the whole error, and fix the layer named")], None
    findings = [
        Finding("load", (_NAMED_LAYER.search(str(w.message)) or [None, None])[1],
                f"loading drops saved state: {str(w.message).splitlines()[0]}",
                "make each layer create all its weights in build(), so they exist when the file is loaded")
        for w in caught if _DROPPED_STATE.search(str(w.message)) and "optimizer" not in str(w.message)
    ]
    # `_flatten_layers` is Keras 3's own walk over nested layers (public `.layers` stops at one level).
    for layer in model._flatten_layers(include_self=False):
        # A lookup layer keeps its vocabulary in a table restored on load, and is never built, even when new.
        if not layer.built and type(layer).__name__ not in _VOCABULARY_LAYERS:
            findings.append(Finding(
                "unbuilt", layer.name, "this sublayer is not built after loading: its saved weights, if any, were "
                "skipped, and its first call creates fresh random weights",
                "build it in the parent layer's build() (e.g. self.inner.build(input_shape)), or drop it if unused"))
    return findings, model


def tflite_findings(model, names: list[str], input_signature: list | None = None) -> list[Finding]:
    """Export `model` to a temporary SavedModel and name each op TFLite builtins cannot run, with its layer.

    Args:
        model: the loaded Keras model.
        names: its layer names (to attribute ops to).
        input_signature: the inputs to export a subclassed model with;
            None for a model with Keras inputs.

    Returns:
        One finding per op and layer; one finding if the export or the
        conversion fails for another reason.

    Raises:
        ValueError, TypeError: the export of a model with `input_signature` fails.
    """
    from tfdl.export.op_attribution import builtin_attributions
    from tfdl.export.recurrent_unroll import unroll_recurrent

    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "saved_model"
        if input_signature is not None:
            # A subclassed model whose export fails is the caller's note, not a finding.
            model.export(str(saved), format="tf_saved_model", verbose=False, input_signature=input_signature)
        try:
            if input_signature is None:
                unroll_recurrent(model).export(str(saved), format="tf_saved_model", verbose=False)
            attributions = builtin_attributions(saved, names)
        except (ValueError, TypeError) as error:
            return [Finding("tflite_ops", None, f"the model does not convert to TFLite: {str(error).splitlines()[0]}",
                            "export it with tfdl.export.export_saved_model and convert with convert_tflite to see why")]
    return [tflite_op_finding(a) for a in attributions]


def recorded_input_signature(config: dict, model) -> list | None:
    """The inputs a subclassed model was first called with, as its `.keras` file records them.

    Args:
        config: from `read_keras_config`.
        model: the loaded model (for its input dtype).

    Returns:
        One `keras.InputSpec` per recorded input shape, batch left free, in
        the structure `model.export(input_signature=...)` takes; None when
        the file records no input shape (never called as a whole, or a dict).
    """
    import keras

    shape = (config.get("build_config") or {}).get("input_shape")

    def spec(dims):
        return keras.InputSpec(shape=(None, *dims[1:]), dtype=model.input_dtype)

    if _is_shape(shape):
        return [spec(shape)]
    if isinstance(shape, list) and shape and all(_is_shape(item) for item in shape):
        return [[spec(item) for item in shape]]  # one positional argument: the list of inputs
    return None


def _is_shape(value) -> bool:
    return isinstance(value, list) and bool(value) and all(d is None or isinstance(d, int) for d in value)


def _functional_parts(model) -> list:
    """The outermost functional models inside `model` (a GAN's generator and discriminator)."""
    parts = []
    for layer in model._flatten_layers(include_self=False, recursive=False):
        if getattr(layer, "inputs", None):
            parts.append(layer)
        elif hasattr(layer, "_flatten_layers"):
            parts += _functional_parts(layer)
    return parts


def subclassed_tflite_findings(model, config: dict, report: DoctorReport) -> list[Finding] | None:
    """The TFLite check of a subclassed model: exported with its recorded inputs, else through its functional parts.

    Args:
        model: the loaded subclassed model.
        config: from `read_keras_config`.
        report: the report, to which a note is added where the check cannot cover the whole model.

    Returns:
        The findings of `tflite_findings`, over the model or its parts;
        None when nothing could be checked (the note says why).
    """
    # A subclassed model's config does not list its sublayers; the loaded model has them.
    names = list(dict.fromkeys(layer_names(config) + [layer.name for layer in model._flatten_layers()]))
    signature = recorded_input_signature(config, model)
    if signature is not None:
        try:
            return tflite_findings(model, names, signature)
        except (ValueError, TypeError) as error:
            cause = f"exporting it with its recorded input shape fails ({str(error).splitlines()[0]})"
    else:
        cause = "its file records no input shape (it was never called as a whole, or takes a dict)"
    parts = _functional_parts(model)
    if not parts:
        report.notes.append(f"tflite_ops skipped: subclassed model '{model.name}': {cause}, and it holds no "
                            "functional model to check instead; check the SavedModel it is served from")
        return None
    report.notes.append(f"tflite_ops checked on the functional parts of subclassed model '{model.name}' "
                        f"({', '.join(part.name for part in parts)}): {cause}")
    return [finding for part in parts for finding in tflite_findings(part, names)]


def export_tflite_targets(path: Path | str) -> list[str] | None:
    """The TFLite modes of the tfdl export a `.keras` file belongs to, from the manifest beside it.

    Args:
        path: the `.keras` file.

    Returns:
        The `tflite` list of the newest version's manifest when `path` is
        the `model.keras` of a tfdl export folder serving one model; None
        otherwise (no export folder, several models, no record).
    """
    from tfdl.doctor.saved_model import tflite_targets

    path = Path(path)
    models = [d for d in (path.parent / "serving").glob("*") if d.is_dir()] if path.name == _EXPORTED_KERAS else []
    if len(models) != 1:
        return None
    versions = sorted((d for d in models[0].iterdir() if d.name.isdigit()), key=lambda d: int(d.name))
    return tflite_targets(versions[-1])[0] if versions else None


def _blocks_loading(finding: Finding) -> bool:
    return finding.check in ("unsafe", "unregistered") or "from_config fails" in finding.problem


def diagnose_keras(path: Path | str, *, convert: bool = True) -> DoctorReport:
    """Every `.keras` check, in the order a user would hit the failures.

    Args:
        path: the `.keras` file.
        convert: also try a builtins-only TFLite conversion (a few seconds).

    Returns:
        The report.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not a `.keras` archive.
    """
    config = read_keras_config(path)
    report = DoctorReport(str(path), "keras", checks=["unsafe", "unregistered", "config"])
    report.findings += unsafe_findings(config) + registration_findings(config)
    if any(_blocks_loading(f) for f in report.findings):
        return report  # loading would fail for the reasons already named
    report.checks += ["load", "unbuilt"]
    found, model = load_findings(path)
    report.findings += found
    if convert and model is not None:
        if getattr(model, "inputs", None):
            found = tflite_findings(model, layer_names(config))
        else:
            found = subclassed_tflite_findings(model, config, report)
        if found is not None:
            report.checks.append("tflite_ops")
            if found and export_tflite_targets(path) == []:
                found = [f.as_note("a note, not a problem: the manifest.json of the export beside this file says "
                                   "it writes no TFLite file, export.tflite is []") for f in found]
            report.findings += found
    return report
