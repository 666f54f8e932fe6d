"""The base of every typed config in tfdl, and the error a bad config raises.

Configs are pydantic models that forbid unknown fields, so a misspelt key is
an error that names it instead of a default silently used.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """A frozen config whose unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """A config (file, override or model parameters) that cannot be used.

    The message lists each bad field by its dotted path, what was wrong with
    it and the value given.
    """


# Fields holding a union picked by a tag (`data.source.type`, `rl.agent.name`):
# pydantic puts the tag in an error's path (`rl.agent.ppo.gamma`), but the
# user wrote `rl.agent.gamma`.
TAGGED_UNION_FIELDS = ("source", "agent")


def _without_union_tags(loc: tuple) -> list:
    return [part for i, part in enumerate(loc) if not (i and loc[i - 1] in TAGGED_UNION_FIELDS and isinstance(part, str))]


def describe_validation_error(error: ValidationError, prefix: str = "", ignore_missing=()) -> str:
    """Render a pydantic error as one line per bad field, named by dotted path.

    Missing required fields named in `ignore_missing` are left out (fields
    filled in later, e.g. from the data); the result is empty if nothing else
    was wrong.
    """
    lines = []
    for item in error.errors():
        if item["type"] == "missing" and item["loc"] and item["loc"][0] in ignore_missing:
            continue
        path = ".".join(str(part) for part in (prefix, *_without_union_tags(item["loc"])) if part != "")
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown field (check the spelling)")
            continue
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        message = item["msg"].removeprefix("Value error, ")
        if path and message.startswith(path):  # a validator that already named the field, deeper
            lines.append(message)
            continue
        lines.append(f"{path or '<config>'}: {message}{shown}")
    return "\n".join(lines)
