"""Generated datasets by name: data a config can ask for that tfdl makes itself, offline.

Lessons and tests need data with a known structure (XOR, the adding
problem, a noisy sine): a module that makes one registers a generator here,

    @register_generator("xor")
    def make_xor(examples: int, seed: int, noise: float = 0.1) -> ArrayData: ...

and a config asks for it by name, with the generator's own parameters:

    data: {source: {type: generated, name: xor, examples: 400, params: {noise: 0.1}}}
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Callable

from tfdl.pipelines.array_data import ArrayData
from tfdl.schema import ConfigError

Generator = Callable[..., ArrayData]

_GENERATORS: dict[str, Generator] = {}

# Modules holding generators, imported when a name is first looked up, so a
# config can name a generator without importing its module first.
GENERATOR_MODULES: tuple[str, ...] = (
    "tfdl.pipelines.xor",
    "tfdl.pipelines.adding_problem", "tfdl.pipelines.sine_series", "tfdl.pipelines.sentence_corpus",
    "tfdl.pipelines.planted_corpus", "tfdl.pipelines.python_help_sentences", "tfdl.pipelines.prose_corpus",
)


def register_generator(name: str) -> Callable[[Generator], Generator]:
    """Decorator: register `generator(examples, seed, **params) -> ArrayData` under `name`."""

    def decorate(generator: Generator) -> Generator:
        if name in _GENERATORS and _GENERATORS[name] is not generator:
            raise ValueError(f"a generator named {name!r} is already registered")
        _GENERATORS[name] = generator
        return generator

    return decorate


def _load_modules() -> None:
    for module in GENERATOR_MODULES:
        import_module(module)


def available_generators() -> list[str]:
    _load_modules()
    return sorted(_GENERATORS)


def generator(name: str) -> Generator:
    """The generator registered as `name`.

    Raises:
        ConfigError: no generator has that name (the message lists them).
    """
    _load_modules()
    if name not in _GENERATORS:
        raise ConfigError(
            f"data.source.name: unknown generated dataset {name!r}; available: {', '.join(available_generators()) or 'none'}"
        )
    return _GENERATORS[name]


def check_generator_params(name: str, params: dict) -> None:
    """Fail early, naming the field, when `params` holds a parameter generator `name` does not take."""
    accepted = inspect.signature(generator(name)).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    own = [p for p in accepted if p not in ("examples", "seed")]
    for key in params:
        if key in ("examples", "seed") or (key not in accepted and not takes_any):
            raise ConfigError(
                f"data.source.params.{key}: generator {name!r} takes {', '.join(own) or 'no parameters'}"
                + ("; set examples and seed on data.source itself" if key in ("examples", "seed") else "")
            )


def generate(name: str, examples: int, seed: int, params: dict | None = None) -> ArrayData:
    """Make `examples` examples of the generated dataset `name`."""
    params = dict(params or {})
    check_generator_params(name, params)
    return generator(name)(examples=examples, seed=seed, **params)
