"""The atlas: the hundred questions of `tfdl.atlas.questions`, each answered by an example that runs.

    tfdl atlas list                 every question, and which have an entry
    tfdl atlas run 8                run entry 8's example and check its lesson
    tfdl atlas site                 build the documentation site (docs/)

Write an entry with `atlas_entry` in a topic module of `tfdl.atlas.topics`.
"""

from tfdl.lazy_names import lazy_getattr

_LAZY = {
    "QUESTIONS": "tfdl.atlas.questions",
    "Entry": "tfdl.atlas.entry",
    "atlas_entry": "tfdl.atlas.entry",
    "Lesson": "tfdl.atlas.lesson",
    "entries": "tfdl.atlas.catalog",
    "get_entry": "tfdl.atlas.catalog",
    "unanswered": "tfdl.atlas.catalog",
    "EntryResult": "tfdl.atlas.runner",
    "run_entry": "tfdl.atlas.runner",
    "build_site": "tfdl.atlas.site",
}

__all__ = list(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
