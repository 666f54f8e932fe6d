"""An atlas entry: one of the hundred questions, our answer, and the example that shows it with numbers.

An entry is a function decorated with `atlas_entry(n, ...)` in a topic
module of `tfdl.atlas.topics`. Its docstring is the answer (Markdown, in our
own words); its body is the runnable example, written against tfdl's public
API and shown on the entry's page as is; it receives a `Lesson` and records
what it measured. Example:

    @atlas_entry(4, formula=r"\\hat y = \\operatorname{step}(w^\\top x + b)", see=("tfdl.models.build_model",))
    def perceptron_and_mlp(lesson: Lesson) -> None:
        \"\"\"A perceptron is one linear unit with a threshold ...\"\"\"
        ...
        lesson.check("the perceptron does not fit XOR", accuracy <= 0.75)
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Callable

from tfdl.atlas.lesson import Lesson
from tfdl.atlas.questions import QUESTIONS

Example = Callable[[Lesson], None]

_ENTRIES: dict[int, "Entry"] = {}


@dataclass(frozen=True)
class Entry:
    """One question of the atlas and its answer.

    Attributes:
        number: the question's number, 1 to 100.
        question: its text, from `tfdl.atlas.questions.QUESTIONS`.
        answer: Markdown, our own words (the example function's docstring).
        example: the function that runs the example and records its lesson.
        formula: the defining formula in LaTeX, or None where there is none.
        see: dotted names of the tfdl objects that implement the concept;
            the page links each to its API reference.
        configs: shipped configs (`tfdl run NAME`) that run the idea at full size.
        pytorch: for the PyTorch questions, Markdown setting the PyTorch
            construct beside the Keras/TensorFlow one tfdl uses.
    """

    number: int
    question: str
    answer: str
    example: Example
    formula: str | None = None
    see: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()
    pytorch: str | None = None

    @property
    def name(self) -> str:
        return self.example.__name__

    @property
    def source(self) -> str:
        """The example's code as the page shows it: the function without its decorator and docstring."""
        lines = textwrap.dedent("".join(inspect.getsourcelines(self.example)[0])).splitlines()
        function = ast.parse("\n".join(lines)).body[0]
        first = function.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            # The page shows the docstring as prose already.
            lines = lines[function.lineno - 1 : first.lineno - 1] + lines[first.end_lineno :]
        else:
            lines = lines[function.lineno - 1 :]
        return "\n".join(lines).rstrip() + "\n"


def atlas_entry(
    number: int,
    *,
    formula: str | None = None,
    see: tuple[str, ...] = (),
    configs: tuple[str, ...] = (),
    pytorch: str | None = None,
) -> Callable[[Example], Example]:
    """Register the decorated example as the atlas entry for question `number`."""
    if not 1 <= number <= len(QUESTIONS):
        raise ValueError(f"atlas_entry({number}): questions are numbered 1 to {len(QUESTIONS)}")

    def register(example: Example) -> Example:
        answer = inspect.getdoc(example)
        if not answer:
            raise ValueError(f"atlas entry {number} ({example.__name__}): its docstring is the answer; write one")
        if number in _ENTRIES and _ENTRIES[number].example.__qualname__ != example.__qualname__:
            raise ValueError(
                f"atlas entry {number} is defined twice: {_ENTRIES[number].example.__module__}."
                f"{_ENTRIES[number].name} and {example.__module__}.{example.__name__}"
            )
        _ENTRIES[number] = Entry(
            number, QUESTIONS[number - 1], answer, example, formula, tuple(see), tuple(configs), pytorch
        )
        return example

    return register


def registered_entries() -> dict[int, Entry]:
    """The entries registered so far (import `tfdl.atlas.catalog` to register all)."""
    return dict(_ENTRIES)
