"""Build the documentation site: the hand-written pages of `docs/`, the atlas pages and the API reference.

The atlas pages need their examples' outputs, so a site is built from a
folder of results (`tfdl atlas run all --output-dir DIR`); `build_site`
copies `docs/` into a scratch source folder, writes the generated pages and
figures there, and runs Sphinx with warnings as errors, so a broken link, a
stale API name or a bad docstring fails the build. The checkout's `docs/`
is never written to.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from tfdl.atlas.catalog import entries
from tfdl.atlas.pages import api_pages, atlas_index, entry_page, page_name
from tfdl.atlas.runner import RESULT_FILE, EntryResult, entry_folder


class SiteError(RuntimeError):
    """The site could not be built; the message carries Sphinx's warnings."""


def default_docs_dir() -> Path:
    """`docs/` of the checkout tfdl runs from (the site is built from a source checkout)."""
    for candidate in (Path.cwd() / "docs", Path(__file__).resolve().parents[2] / "docs"):
        if (candidate / "conf.py").is_file():
            return candidate
    raise SiteError("no docs/conf.py here or beside tfdl's sources: run `tfdl atlas site` in a checkout of tfdl")


def sphinx_build():
    """Sphinx's `build_main`, or a SiteError that says which extra to install."""
    try:
        from sphinx.cmd.build import build_main
    except ImportError:
        raise SiteError("the site needs Sphinx, furo and MyST: pip install 'tfdl[docs]' (the dev extra has them too)") from None
    return build_main


def write_sources(docs_dir: Path, results_dir: Path, source_dir: Path) -> list[int]:
    """Copy `docs_dir` to `source_dir` and add the atlas and API pages; returns the entries without results."""
    shutil.copytree(docs_dir, source_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("_build"))
    atlas_dir = source_dir / "atlas"
    atlas_dir.mkdir(parents=True, exist_ok=True)
    results, missing = {}, []
    all_entries = entries()
    for entry in all_entries:
        folder = entry_folder(results_dir, entry.number)
        if not (folder / RESULT_FILE).is_file():
            missing.append(entry.number)
            continue
        result = EntryResult.load(folder)
        results[entry.number] = result
        (atlas_dir / f"{page_name(entry.number)}.md").write_text(entry_page(entry, result))
        figures = atlas_dir / page_name(entry.number)
        figures.mkdir(exist_ok=True)
        for figure in result.figures:
            shutil.copy2(folder / figure.file, figures / figure.file)
    if missing:
        return missing
    (atlas_dir / "index.md").write_text(atlas_index(all_entries, results))
    api_dir = source_dir / "api"
    api_dir.mkdir(exist_ok=True)
    for name, text in api_pages().items():
        (api_dir / name).write_text(text)
    return []


def build_site(results_dir: Path, output_dir: Path, docs_dir: Path | None = None) -> Path:
    """Build the HTML site into `output_dir` from the example outputs in `results_dir`; returns its index.html.

    Raises:
        SiteError: the `docs` extra is not installed, an entry has no result
            in `results_dir` (run it first), or Sphinx warned (the message
            lists each warning).
    """
    build_main = sphinx_build()
    docs_dir = Path(docs_dir) if docs_dir is not None else default_docs_dir()
    with tempfile.TemporaryDirectory(prefix="tfdl-docs-") as scratch:
        source = Path(scratch) / "source"
        missing = write_sources(docs_dir, Path(results_dir), source)
        if missing:
            listed = " ".join(str(n) for n in missing)
            raise SiteError(
                f"no results in {results_dir} for atlas entries {listed}: run `tfdl atlas run all --output-dir {results_dir}` first"
            )
        log = io.StringIO()
        with redirect_stdout(log), redirect_stderr(log):
            status = build_main(
                ["-b", "html", "-W", "--keep-going", "-q", "-d", str(Path(scratch) / "doctrees"), str(source), str(output_dir)]
            )
        if status != 0:
            raise SiteError(f"the site build failed (warnings are errors):\n{log.getvalue().strip()}")
    return Path(output_dir) / "index.html"
