"""`tfdl atlas`: list the hundred questions, run any entry's example, build the documentation site."""

from __future__ import annotations

import sys
from pathlib import Path

from tfdl.atlas.catalog import entries, get_entry
from tfdl.atlas.questions import QUESTIONS
from tfdl.schema import ConfigError


def parse_numbers(words: list[str]) -> list[int]:
    """`["8", "10-12"]` -> `[8, 10, 11, 12]`; `["all"]` -> every entry written."""
    if words == ["all"]:
        return [entry.number for entry in entries()]
    numbers = []
    for word in words:
        low, _, high = word.partition("-")
        try:
            span = range(int(low), int(high or low) + 1)
        except ValueError:
            raise ConfigError(f"{word!r}: give question numbers (8), ranges (1-10) or all") from None
        if not span or span[0] < 1 or span[-1] > len(QUESTIONS):
            raise ConfigError(f"{word!r}: questions are numbered 1 to {len(QUESTIONS)}")
        numbers.extend(span)
    return numbers


def main_list(args) -> int:
    written = {entry.number: entry for entry in entries()}
    for number, question in enumerate(QUESTIONS, start=1):
        mark = "" if number in written else "   (no entry yet)"
        print(f"{number:3d}. {question}{mark}")
    print(f"\n{len(written)} of {len(QUESTIONS)} questions have an entry; `tfdl atlas run N` runs one.")
    return 0


def main_run(args) -> int:
    from tfdl.atlas.runner import entry_folder, run_entry

    try:
        chosen = [get_entry(n) for n in parse_numbers(args.numbers)]
    except KeyError as error:
        raise ConfigError(error.args[0]) from None
    output = Path(args.output_dir)
    failed = []
    for entry in chosen:
        print(f"[{entry.number}] {entry.question}", flush=True)
        result = run_entry(entry, output, full=args.full, seed=args.seed)
        for check in result.checks:
            print(f"    {'ok  ' if check.passed else 'FAIL'} {check.claim}" + (f" ({check.detail})" if check.detail else ""))
        for name, value in result.numbers.items():
            print(f"    {name}: {value:.4g}")
        for figure in result.figures:
            print(f"    figure: {entry_folder(output, entry.number) / figure.file}")
        if result.error is not None:
            print(result.error.rstrip(), file=sys.stderr)
        print(f"    {result.mode} budget, {result.seconds:.1f} s", flush=True)
        if not result.ok:
            failed.append(entry.number)
    if failed:
        print(f"entries whose lesson did not show: {' '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0


def main_site(args) -> int:
    from tfdl.atlas.runner import RESULT_FILE, entry_folder, run_entry
    from tfdl.atlas.site import SiteError, build_site, default_docs_dir, sphinx_build

    try:  # before minutes of examples: what the build itself will need
        sphinx_build()
        default_docs_dir()
    except SiteError as error:
        print(error, file=sys.stderr)
        return 1
    results = Path(args.results)
    for entry in entries():
        if args.rerun or not (entry_folder(results, entry.number) / RESULT_FILE).is_file():
            print(f"running entry {entry.number} ({'full' if args.full else 'fast'} budget)", flush=True)
            run_entry(entry, results, full=args.full)
    try:
        index = build_site(results, Path(args.output_dir))
    except SiteError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"site: {index}")
    return 0


def add_atlas_commands(commands) -> None:
    """Add `tfdl atlas list|run|site` to the `tfdl` command's subparsers."""
    atlas = commands.add_parser("atlas", help="the hundred questions, each answered by an example that runs")
    parts = atlas.add_subparsers(dest="atlas_command", required=True)
    listing = parts.add_parser("list", help="every question, and which have an entry")
    listing.set_defaults(func=main_list)
    run = parts.add_parser("run", help="run entries' examples and check their lessons (exit 1 if one fails)")
    run.add_argument("numbers", nargs="+", help="question numbers (8), ranges (1-10) or all")
    run.add_argument("--full", action="store_true", help="the full budget of the site's figures (default: fast)")
    run.add_argument("--output-dir", default="runs/atlas", help="where figures and result.json go (default: runs/atlas)")
    run.add_argument("--seed", type=int, default=0)
    run.set_defaults(func=main_run)
    site = parts.add_parser("site", help="build the documentation site (runs the entries without results first)")
    site.add_argument("--results", default="runs/atlas", help="the entries' outputs (default: runs/atlas)")
    site.add_argument("--output-dir", default="site", help="where the HTML goes (default: site)")
    site.add_argument("--full", action="store_true", help="run missing entries at the full budget")
    site.add_argument("--rerun", action="store_true", help="run every entry again, not only those without results")
    site.set_defaults(func=main_site)
