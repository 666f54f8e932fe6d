"""Sphinx configuration of tfdl's documentation site; build it with `tfdl atlas site` (it writes the generated pages)."""

from sphinx.util import logging

import tfdl

logger = logging.getLogger(__name__)

project = "tfdl"
author = "the tfdl developers"
copyright = "2026, the tfdl developers"
release = tfdl.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

# The API reference documents what each package's __init__ exports, with
# Google-style docstrings; type hints stay in the signatures as text.
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [("Call arguments", "params_style")]

html_theme = "furo"
html_title = f"tfdl {release}"


def _stale_tfdl_name(app, env, node, contnode):
    """An atlas page's link to a tfdl name the API reference lacks is a warning, so the build fails."""
    target = node.get("reftarget", "")
    if node.get("refdomain") == "py" and target.startswith("tfdl.") and node.get("refdoc", "").startswith("atlas/"):
        logger.warning(f"{target} is not in the API reference: link a public name (see docs/api)", location=node)


def setup(app):
    app.connect("missing-reference", _stale_tfdl_name)
