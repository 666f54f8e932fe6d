"""tfdl.serving: a TF Serving-compatible REST server, its model store, and a client.

Installed as `tfdl.serving`. Names load lazily so that a device with only
LiteRT and numpy can import the edge runner without the server's packages.
"""

from tfdl.lazy_names import lazy_getattr

_LAZY = {
    "Client": "tfdl.serving.client",
    "ServingClientError": "tfdl.serving.client",
    "ModelStore": "tfdl.serving.model_store",
    "create_app": "tfdl.serving.rest",
    "BackgroundServer": "tfdl.serving.server",
    "serve": "tfdl.serving.server",
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
