"""Package names that import their module on first use, so importing a package stays cheap.

`import tfdl`, `tfdl.pipelines`, `tfdl.serving` and `tfdl.training` import no
TensorFlow until a name that needs it is used: the CLI starts fast, configs
validate without it, and the edge runner works on a device that lacks it.
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package` that loads `names[name]` (a module path) on first use.

    A value `"module:attribute"` exports the module's `attribute` under
    another name (needed where the name is also a submodule's).

    Example:
    >>> __getattr__ = lazy_getattr("tfdl", {"load_config": "tfdl.config"})
    >>> __getattr__("load_config").__name__
    'load_config'
    """

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = names[name].partition(":")
        return getattr(importlib.import_module(module), attribute or name)

    return __getattr__
