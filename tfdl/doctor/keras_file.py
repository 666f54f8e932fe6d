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
        if not layer.built:
            findings.append(Finding(
                "unbuilt", layer.name, "this sublayer is not built after loading: its saved weights, if any, were "
                "skipped, and its first call creates fresh random weights",
                "build it in the parent layer's build() (e.g. self.inner.build(input_shape)), or drop it if unused"))
    return findings, model


def tflite_findings(model, names: list[str]) -> list[Finding]:
    """Export `model` to a temporary SavedModel and name each op TFLite builtins cannot run, with its layer.

    Args:
        model: the loaded Keras model.
        names: its layer names (to attribute ops to).

    Returns:
        One finding per op and layer; one finding if the export or the
        conversion fails for another reason.
    """
    from tfdl.export.op_attribution import builtin_attributions

    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "saved_model"
        try:
            model.export(str(saved), format="tf_saved_model", verbose=False)
            attributions = builtin_attributions(saved, names)
        except (ValueError, TypeError) as error:
            return [Finding("tflite_ops", None, f"the model does not convert to TFLite: {str(error).splitlines()[0]}",
                            "export it with tfdl.export.export_saved_model and convert with convert_tflite to see why")]
    return [tflite_op_finding(a) for a in attributions]


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
    if convert and model is not None and not getattr(model, "inputs", None):
        # A subclassed model has no input signature until called, so it cannot be exported as loaded.
        report.notes.append("tflite_ops skipped: a subclassed model without Keras inputs; check its SavedModel")
    elif convert and model is not None:
        report.checks.append("tflite_ops")
        report.findings += tflite_findings(model, layer_names(config))
    return report
