"""`tfdl env`: what this Python sees of the TensorFlow stack, and whether tfdl can run on it.

The report names the TensorFlow, Keras and tf-keras versions, what `tf.keras`
resolves to (`TF_USE_LEGACY_KERAS`), the visible GPUs and TPUs, whether
TensorFlow was built with XLA, and the LiteRT runtimes an edge model would
run on. A mixed stack (Keras 2 behind `tf.keras` while `keras` is Keras 3, a
Keras older than 3, a TensorFlow older than 2.16) is a problem: it fails
later in ways nobody can read, so `tfdl env` refuses it up front with the
command that fixes it.

tf-keras is looked up in the installed package metadata and never imported:
tfdl is Keras 3 only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

# TensorFlow's own test for the variable (tensorflow/__init__.py, lazy_loader.py).
LEGACY_KERAS_VALUES = ("true", "True", "1")

# The first TensorFlow whose `tf.keras` is Keras 3.
_FIRST_KERAS3_TENSORFLOW = (2, 16)

_NOT_CHECKED = "not checked (fix the problems first)"

# Distribution names to try for each package, in order.
_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "keras": ("keras",),
    "tf_keras": ("tf-keras", "tf_keras"),
    "ai_edge_litert": ("ai-edge-litert", "ai-edge-litert-nightly"),
    "tflite_runtime": ("tflite-runtime",),
}


@dataclass(frozen=True)
class LiteRTRuntime:
    """One LiteRT interpreter package found in this Python.

    Attributes:
        module: the import name (`ai_edge_litert`, `tflite_runtime`, `tf.lite`).
        version: its installed version, None when unknown.
        note: why it may not run a model here, empty when nothing is known.
    """

    module: str
    version: str | None
    note: str = ""


@dataclass(frozen=True)
class Environment:
    """The stack tfdl runs on, as `tfdl env` reports it.

    Attributes:
        python: the interpreter's version.
        tensorflow: TensorFlow's version, None when not installed.
        keras: Keras's version, None when not installed.
        tf_keras: tf-keras's installed version (never imported), None when absent.
        tf_use_legacy_keras: the `TF_USE_LEGACY_KERAS` variable, None when unset.
        tf_keras_resolves_to: what `tf.keras` is: `keras 3`, `tf_keras (Keras 2)`,
            `keras 2` or `missing`.
        gpus: the visible GPU devices; None when not looked up (a broken stack).
        tpus: the visible TPU devices; None when not looked up.
        xla: whether TensorFlow was built with XLA (`jit_compile=True` works);
            None when not looked up.
        litert: the LiteRT runtimes found, in the order the edge runner tries them.
        problems: what makes the stack unusable for tfdl, each with its fix.
    """

    python: str
    tensorflow: str | None
    keras: str | None
    tf_keras: str | None
    tf_use_legacy_keras: str | None
    tf_keras_resolves_to: str
    gpus: list[str] | None = None
    tpus: list[str] | None = None
    xla: bool | None = None
    litert: list[LiteRTRuntime] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def describe(self) -> str:
        """The report as aligned lines, problems last."""
        runtimes = ", ".join(
            f"{r.module} {r.version or ''}".strip() + (f" ({r.note})" if r.note else "") for r in self.litert
        )
        rows = [
            ("python", self.python),
            ("tensorflow", self.tensorflow or "not installed"),
            ("keras", self.keras or "not installed"),
            ("tf_keras", self.tf_keras or "not installed"),
            ("TF_USE_LEGACY_KERAS", "unset" if self.tf_use_legacy_keras is None else repr(self.tf_use_legacy_keras)),
            ("tf.keras is", self.tf_keras_resolves_to),
            ("GPUs", _listed(self.gpus)),
            ("TPUs", _listed(self.tpus)),
            ("XLA", _NOT_CHECKED if self.xla is None else ("yes" if self.xla else "no")),
            ("LiteRT", runtimes or "none (pip install ai-edge-litert)"),
        ]
        lines = [f"{name:<20} {value}" for name, value in rows]
        lines += [f"PROBLEM: {problem}" for problem in self.problems] or ["stack OK for tfdl"]
        return "\n".join(lines)


def _listed(devices: list[str] | None) -> str:
    return _NOT_CHECKED if devices is None else ", ".join(devices) or "none"


def _major_minor(version: str) -> tuple[int, int]:
    parts = (version.split("+")[0].split(".") + ["0"])[:2]
    digits = ["".join(ch for ch in part if ch.isdigit()) or "0" for part in parts]
    return int(digits[0]), int(digits[1])


def installed_version(package: str) -> str | None:
    """The installed version of `package` from its metadata, without importing it.

    Args:
        package: `tensorflow`, `keras`, `tf_keras`, `ai_edge_litert` or
            `tflite_runtime` (each distribution name it ships under is tried).

    Returns:
        The version string, or None when no distribution of it is installed.

    Raises:
        ValueError: `package` is not one of the names above.
    """
    if package not in _DISTRIBUTIONS:
        raise ValueError(f"no distribution names known for {package!r}; use one of {sorted(_DISTRIBUTIONS)}")
    for name in _DISTRIBUTIONS[package]:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def resolve_tf_keras(tensorflow: str | None, keras: str | None, tf_keras: str | None,
                     legacy_variable: str | None) -> str:
    """What `tf.keras` resolves to, by TensorFlow's own rule (no import of tf_keras).

    Args:
        tensorflow: TensorFlow's version, None when absent.
        keras: Keras's version, None when absent.
        tf_keras: tf-keras's version, None when absent.
        legacy_variable: the value of `TF_USE_LEGACY_KERAS`, None when unset.

    Returns:
        `keras 3`, `tf_keras (Keras 2)`, `keras 2` or `missing`.
    """
    if tensorflow is None:
        return "missing"
    if _major_minor(tensorflow) < _FIRST_KERAS3_TENSORFLOW:
        return "keras 2"  # TensorFlow bundled its own Keras 2 before 2.16
    if legacy_variable in LEGACY_KERAS_VALUES:
        return "tf_keras (Keras 2)" if tf_keras else "missing"
    if keras is None:
        return "missing"
    return "keras 3" if _major_minor(keras)[0] >= 3 else "keras 2"


def stack_problems(tensorflow: str | None, keras: str | None, tf_keras: str | None,
                   legacy_variable: str | None) -> list[str]:
    """What makes this combination of versions unusable for tfdl, each with its fix.

    Args:
        tensorflow: TensorFlow's version, None when absent.
        keras: Keras's version, None when absent.
        tf_keras: tf-keras's version, None when absent.
        legacy_variable: the value of `TF_USE_LEGACY_KERAS`, None when unset.

    Returns:
        One sentence per problem; empty for a clean Keras 3 stack.
    """
    problems = []
    if tensorflow is None:
        problems.append("TensorFlow is not installed: pip install 'tensorflow>=2.16'")
    elif _major_minor(tensorflow) < _FIRST_KERAS3_TENSORFLOW:
        problems.append(
            f"TensorFlow {tensorflow} ships Keras 2 as tf.keras; tfdl needs Keras 3: "
            "pip install 'tensorflow>=2.16' (tfdl is tested on 2.21)"
        )
    if keras is None:
        problems.append("Keras is not installed: pip install 'keras>=3'")
    elif _major_minor(keras)[0] < 3:
        problems.append(f"keras {keras} is Keras 2; tfdl needs Keras 3: pip install 'keras>=3'")
    if legacy_variable in LEGACY_KERAS_VALUES:
        behind = f"tf_keras {tf_keras} (Keras 2)" if tf_keras else "tf_keras, which is not installed"
        problems.append(
            f"TF_USE_LEGACY_KERAS={legacy_variable} makes tf.keras {behind} while keras is {keras or 'missing'}: "
            "a mixed stack whose models and layers do not mix. Unset it (`unset TF_USE_LEGACY_KERAS`, "
            "or remove it from the job's environment) so tf.keras is Keras 3"
        )
    return problems


def _litert_runtimes(tensorflow: str | None, version_of: Callable[[str], str | None]) -> list[LiteRTRuntime]:
    found = []
    for module in ("ai_edge_litert", "tflite_runtime"):
        if importlib.util.find_spec(module) is None:
            continue
        version = version_of(module)
        note = ""
        if module == "tflite_runtime" and _numpy_major() >= 2:
            # Measured (DESIGN.md): 2.14, its last release, imports but fails at Interpreter().
            note = "built for numpy 1: fails at Interpreter() under numpy 2; use ai-edge-litert"
        found.append(LiteRTRuntime(module, version, note))
    if tensorflow is not None:
        found.append(LiteRTRuntime("tf.lite", tensorflow))
    return found


def _numpy_major() -> int:
    import numpy

    return _major_minor(numpy.__version__)[0]


def _devices() -> tuple[list[str], list[str], bool]:
    import tensorflow as tf

    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    tpus = [device.name for device in tf.config.list_physical_devices("TPU")]
    return gpus, tpus, bool(tf.test.is_built_with_xla())


def collect_environment(environ: Mapping[str, str] | None = None,
                        version_of: Callable[[str], str | None] | None = None) -> Environment:
    """Look at this Python's TensorFlow stack.

    TensorFlow is imported (for the devices) only when the stack is clean, so
    a broken stack is reported without the import failing first.

    Args:
        environ: the environment variables to read (default `os.environ`).
        version_of: how to find a package's version (default: `installed_version`).

    Returns:
        The report; `problems` is empty when tfdl can run here.
    """
    environ = os.environ if environ is None else environ
    version_of = installed_version if version_of is None else version_of
    tensorflow, keras, tf_keras = (version_of(name) for name in ("tensorflow", "keras", "tf_keras"))
    legacy = environ.get("TF_USE_LEGACY_KERAS")
    problems = stack_problems(tensorflow, keras, tf_keras, legacy)
    gpus, tpus, xla = _devices() if not problems else (None, None, None)
    return Environment(
        python=sys.version.split()[0], tensorflow=tensorflow, keras=keras, tf_keras=tf_keras,
        tf_use_legacy_keras=legacy, tf_keras_resolves_to=resolve_tf_keras(tensorflow, keras, tf_keras, legacy),
        gpus=gpus, tpus=tpus, xla=xla, litert=_litert_runtimes(tensorflow, version_of), problems=problems,
    )


def main_env(args: argparse.Namespace) -> int:
    """`tfdl env [--json]`: print the report; exit 1 on a mixed or unusable stack.

    Args:
        args: parsed arguments with a boolean `json`.

    Returns:
        0 when the stack is clean, 1 when it has a problem.
    """
    environment = collect_environment()
    print(json.dumps(environment.to_dict(), indent=2) if args.json else environment.describe())
    if not environment.ok:
        print("tfdl env: the stack above cannot run tfdl; fix each PROBLEM", file=sys.stderr)
    return 0 if environment.ok else 1
