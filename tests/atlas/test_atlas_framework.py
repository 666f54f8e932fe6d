"""The atlas machinery: entries, lessons, the runner, pages, the command and the site's checks."""

from __future__ import annotations

import json

import pytest

from tfdl.atlas.catalog import entries, get_entry, unanswered
from tfdl.atlas.command import parse_numbers
from tfdl.atlas.entry import Entry
from tfdl.atlas.lesson import Lesson
from tfdl.atlas.pages import entry_page
from tfdl.atlas.questions import QUESTIONS
from tfdl.atlas.runner import EntryResult, run_entry
from tfdl.cli import main
from tfdl.schema import ConfigError


def _example_that_fails_its_check(lesson: Lesson) -> None:
    """An answer."""
    value = lesson.number("two", 1.0 + 1.0)
    lesson.check("two is three", value == 3.0, f"{value}")


def _example_that_raises(lesson: Lesson) -> None:
    """An answer."""
    raise RuntimeError("boom")


def _fake(example, number=1, see=()) -> Entry:
    return Entry(number, QUESTIONS[number - 1], "An answer.", example, None, see)


def test_questions_are_the_hundred_of_the_list():
    assert len(QUESTIONS) == 100 and len(set(QUESTIONS)) == 100
    assert QUESTIONS[3] == "Define and Differentiate Between a Perceptron and a Multi-Layer Perceptron (MLP)"


def test_every_entry_answers_its_own_question_and_links_public_names():
    import importlib

    from tfdl.atlas.pages import API_PACKAGES

    documented = {f"{p}.{name}" for p in API_PACKAGES for name in importlib.import_module(p).__all__}
    for entry in entries():
        assert entry.question == QUESTIONS[entry.number - 1]
        assert len(entry.answer) > 200, f"entry {entry.number}: answer the question in a paragraph or more"
        stale = [name for name in entry.see if name not in documented]
        assert not stale, f"entry {entry.number} links {stale}, which the API reference does not document"


def test_an_entry_shows_its_code_without_the_docstring():
    entry = get_entry(4)
    assert entry.source.startswith("def perceptron_and_mlp(lesson: Lesson) -> None:")
    assert "A **perceptron**" not in entry.source and "lesson.check(" in entry.source


def test_a_failed_check_and_an_exception_are_kept_in_the_result(tmp_path):
    failed = run_entry(_fake(_example_that_fails_its_check), tmp_path)
    assert not failed.ok and failed.failures() == ["check failed: two is three (2.0)"]
    assert EntryResult.load(tmp_path / "001").numbers == {"two": 2.0}
    crashed = run_entry(_fake(_example_that_raises, number=2), tmp_path)
    assert not crashed.ok and "RuntimeError: boom" in crashed.error
    page = entry_page(_fake(_example_that_raises, number=2), crashed)
    assert "The example failed" in page and "RuntimeError: boom" in page


def test_an_example_that_checks_nothing_fails(tmp_path):
    def silent(lesson: Lesson) -> None:
        """An answer."""

    result = run_entry(_fake(silent), tmp_path)
    assert not result.ok and "recorded no check" in result.error


def test_lesson_refuses_what_a_page_cannot_show(tmp_path):
    lesson = Lesson(tmp_path)
    lesson.number("loss", 0.5)
    with pytest.raises(ValueError, match="recorded twice"):
        lesson.number("loss", 0.4)
    with pytest.raises(TypeError, match="real number"):
        lesson.number("name", "0.5")
    with pytest.raises(ValueError, match="has 1 cells, headers 2"):
        lesson.table("t", ["a", "b"], [[1]])
    assert lesson.budget(fast=1, full=2) == 1 and Lesson(tmp_path, full=True).budget(fast=1, full=2) == 2


def test_numbers_ranges_and_all_are_parsed():
    assert parse_numbers(["8", "10-12"]) == [8, 10, 11, 12]
    assert parse_numbers(["all"]) == [entry.number for entry in entries()]
    for bad in (["0"], ["99-101"], ["x"]):
        with pytest.raises(ConfigError):
            parse_numbers(bad)


def test_the_command_lists_every_entry_and_refuses_a_number_outside_the_list(capsys):
    assert main(["atlas", "list"]) == 0
    listed = capsys.readouterr().out
    assert unanswered() == []
    assert "100 of 100 questions have an entry" in listed
    assert main(["atlas", "run", "101"]) == 2
    assert "questions are numbered 1 to 100" in capsys.readouterr().err


def test_the_site_command_without_sphinx_names_the_extra_before_running_anything(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "sphinx.cmd.build", None)  # as if the docs extra were not installed
    assert main(["atlas", "site", "--results", str(tmp_path / "results"), "--output-dir", str(tmp_path / "site")]) == 1
    assert "pip install 'tfdl[docs]'" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_the_command_runs_an_entry_and_writes_its_result(tmp_path, capsys):
    assert main(["atlas", "run", "4", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ok   the perceptron cannot fit XOR" in out
    saved = json.loads((tmp_path / "004" / "result.json").read_text())
    assert saved["mode"] == "fast" and all(check["passed"] for check in saved["checks"])
    assert (tmp_path / "004" / "xor_regions.png").is_file()


def test_the_site_build_fails_on_a_stale_api_name(tmp_path, monkeypatch):
    from tfdl.atlas import site
    from tfdl.atlas.site import SiteError, build_site

    def links_a_stale_name(lesson: Lesson) -> None:
        """An answer."""
        lesson.check("true", True)

    stale = _fake(links_a_stale_name, number=3, see=("tfdl.models.build_no_such_model",))
    run_entry(stale, tmp_path / "results")
    monkeypatch.setattr(site, "entries", lambda: [stale])
    with pytest.raises(SiteError, match="tfdl.models.build_no_such_model is not in the API reference"):
        build_site(tmp_path / "results", tmp_path / "site")
