"""Every atlas entry's example runs at the fast budget and shows its lesson; the site builds with no warning.

The examples run once per session (`atlas_results`), each in the test named
after its entry, and the site test builds from those same outputs.
"""

from __future__ import annotations

import pytest

from tfdl.atlas.catalog import entries
from tfdl.atlas.runner import EntryResult, run_entry

ENTRIES = entries()


@pytest.fixture(scope="session")
def atlas_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("atlas")
    results: dict[int, EntryResult] = {}

    def result(entry) -> EntryResult:
        if entry.number not in results:
            results[entry.number] = run_entry(entry, root, full=False)
        return results[entry.number]

    return root, result


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.number:03d}-{e.name}" for e in ENTRIES])
def test_entry_shows_its_lesson(entry, atlas_outputs):
    _, result = atlas_outputs
    outcome = result(entry)
    assert outcome.ok, "\n".join(outcome.failures())
    assert outcome.checks, "an entry must check its lesson"
    root, _ = atlas_outputs
    for figure in outcome.figures:
        assert (root / f"{entry.number:03d}" / figure.file).stat().st_size > 1000, figure


def test_the_site_builds_without_warnings(atlas_outputs, tmp_path):
    from tfdl.atlas.site import build_site

    root, result = atlas_outputs
    for entry in ENTRIES:
        result(entry)
    index = build_site(root, tmp_path / "site")
    assert index.is_file()
    for entry in ENTRIES:
        page = (tmp_path / "site" / "atlas" / f"{entry.number:03d}.html").read_text()
        assert entry.question.split()[0] in page
        for check in result(entry).checks:
            assert check.claim.split()[0] in page
