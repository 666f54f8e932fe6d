"""tfdl.serving: a TF Serving-compatible REST server, its model store, and a client.

Installed as `tfdl.serving`. Names load lazily so that a device with only
LiteRT and numpy can import the edge runner without the server's packages.
"""

_LAZY = {
    "Client": "tfdl.serving.client",
    "ServingClientError": "tfdl.serving.client",
    "ModelStore": "tfdl.serving.model_store",
    "create_app": "tfdl.serving.rest",
    "BackgroundServer": "tfdl.serving.server",
    "serve": "tfdl.serving.server",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tfdl.serving' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
