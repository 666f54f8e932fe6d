"""tfdl: from data to a served prediction with Keras 3 on TensorFlow.

Importing `tfdl` is cheap and imports no TensorFlow, so `tfdl.serving.edge`
can run on a device that has only LiteRT. The public names below load their
module (and TensorFlow) on first use.
"""

from tfdl.lazy_names import lazy_getattr

__version__ = "0.1.0"

_LAZY = {
    "RunConfig": "tfdl.config",
    "load_config": "tfdl.config",
    "run_config": "tfdl.run:run",  # not `run`: that name is the module tfdl.run
    "build_model": "tfdl.models",
    "register_model": "tfdl.models",
    "migrate": "tfdl.migration",
}

__all__ = ["__version__", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY)
