"""The raw-story contract: what connectors publish to ``news.raw.v1``.

The JSON Schema file beside this module is the single source of truth; this module only loads it
and adds the two helpers every producer and consumer needs (stable ids, full validation).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "RAW_SCHEMA_VERSION",
    "RAW_SCHEMA_NAME",
    "raw_schema",
    "story_id",
    "validate_raw",
    "rfc3339",
    "parse_rfc3339",
    "MAX_REASON_BYTES",
    "bound_reason",
    "shorten",
    "without_deep_members",
]

RAW_SCHEMA_VERSION = 1
RAW_SCHEMA_NAME = f"wirestream.raw_story.v{RAW_SCHEMA_VERSION}"

MAX_REASON_BYTES = 1024
"""A dead letter's reason fits in this many UTF-8 bytes: the payload carries the input whole, the
reason only says what is wrong with it (a schema message would otherwise quote a 10 MB body)."""
_QUOTED_CHARS = 120


def shorten(text: str, keep: int = _QUOTED_CHARS) -> str:
    """``text`` when short, else its first ``keep`` characters and how many more were cut."""
    if len(text) <= keep:
        return text
    return f"{text[:keep]}… [{len(text) - keep} more characters cut]"


def bound_reason(reason: str, limit: int = MAX_REASON_BYTES) -> str:
    """``reason`` within ``limit`` UTF-8 bytes: a longer one keeps its start and says how much was cut."""
    data = reason.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return reason
    head = data[: limit - 48].decode("utf-8", "ignore")  # room for the note, cut on a character
    return f"{head}… [{len(reason) - len(head)} more characters cut]"


@cache
def raw_schema() -> dict[str, Any]:
    text = resources.files("schemas").joinpath(f"raw_story.v{RAW_SCHEMA_VERSION}.json").read_text("utf-8")
    return json.loads(text)


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment.astimezone(UTC)  # an offset can push year 1 or 9999 out of range in UTC, all the data keeps
    except (ValueError, OverflowError):
        return False
    return moment.tzinfo is not None and "T" in value


@cache
def _validator() -> jsonschema.protocols.Validator:
    """The full validator, for the stories fastjsonschema fails: imported only then, as every
    worker process starts with this module's imports (jsonschema's cost ~40 ms)."""
    import jsonschema

    schema = raw_schema()
    cls = jsonschema.validators.validator_for(schema)
    # jsonschema only checks date-time when an optional package is present; check it ourselves.
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_is_rfc3339)
    return cls(schema, format_checker=checker)


def story_id(source: str, guid_or_url: str) -> str:
    """Stable across re-fetches and restarts, so Kafka keys and dedup agree on identity."""
    digest = hashlib.sha256(f"{source}\x00{guid_or_url}".encode()).hexdigest()
    return digest[:32]


@cache
def _fast_validator() -> Any:
    """The same schema compiled by fastjsonschema: ~20x faster on the valid stories that dominate.

    Only a pass is trusted; a failure is re-checked by jsonschema, which lists every problem.
    """
    schema = copy.deepcopy(raw_schema())
    # The keywords the contract uses mean the same in draft 7, which fastjsonschema compiles.
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(
        schema, formats={"date-time": lambda v: not isinstance(v, str) or _is_rfc3339(v)}
    )


def _not_text(message: dict[str, Any]) -> list[str]:
    """Strings that are not Unicode text: JSON can escape half of a UTF-16 surrogate pair
    (``"\\ud83d"``, left by a producer that cut an emoji in two), which no UTF-8 writer, regex
    engine or Parquet file accepts downstream."""
    problems = []
    for name, value in message.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    code = ord(text[exc.start])
                    problems.append(
                        f"{name}: lone surrogate U+{code:04X} at character {exc.start} is not Unicode text"
                        " (half of a UTF-16 pair: the producer cut a character in two)"
                    )
                    break
    return problems


def validate_raw(message: Any, unicode_checked: bool = False) -> list[str]:
    """Every problem with a raw message, as readable strings; empty when valid. ``unicode_checked``:
    its strings are known to be Unicode text (orjson parsed it, and refuses lone surrogates), so
    only a failing message is searched for them."""
    try:
        _fast_validator()(message)
        return [] if unicode_checked else _not_text(message)
    except fastjsonschema.JsonSchemaException:
        pass
    if not isinstance(message, dict):
        return [f"message must be a JSON object, got {type(message).__name__}"]
    problems = _not_text(message)
    for error in sorted(_validator().iter_errors(message), key=lambda e: list(e.absolute_path)):
        where = shorten("/".join(str(p) for p in error.absolute_path) or "(message)")
        if error.validator == "anyOf" and not error.absolute_path:
            problems.append("(message): story has neither headline nor body")
        else:
            problems.append(f"{where}: {_quoting_shortened(error)}")
    return problems


def _quoting_shortened(error: jsonschema.ValidationError) -> str:
    """The validator's message with the offending value it quotes cut to its start."""
    message = error.message
    if len(message) <= 2 * _QUOTED_CHARS:
        return message
    quoted = repr(error.instance)
    if len(quoted) > _QUOTED_CHARS and quoted in message:
        return message.replace(quoted, shorten(quoted), 1)
    return shorten(message, 2 * _QUOTED_CHARS)


def rfc3339(moment: datetime) -> str:
    """UTC, microseconds, 'Z' suffix: the only timestamp shape on the wire."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


_MAX_DEPTH = 256
"""Members nested deeper than this are left out of a message the parsers refuse as too deep."""
# A JSON token that changes the nesting or separates members; strings are matched whole so that
# brackets inside them do not count.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[][{},:]')


def without_deep_members(text: str) -> tuple[dict[str, Any] | None, str]:
    """A message too deeply nested for a JSON parser's recursion, read without its deep members.

    The contract's fields nest two levels at most and unknown fields are allowed (an older reader
    keeps reading a newer producer), so an unknown member nested deeper than any parser follows is
    left out and the story read; a contract field nested that deeply, or a message that is not an
    object, is refused. The scan walks the text's tokens with a depth counter (no recursion), as
    neither orjson nor the standard parser reads past their depth limits. Returns (the message,
    what was left out) or (None, the reason to refuse it).
    """
    known = set(raw_schema()["properties"])
    kept: list[str] = []
    dropped: list[str] = []
    depth = 0
    start = 0  # where the current top-level member starts
    key: str | None = None
    deepest = 0
    closed_at: int | None = None
    for token in _TOKEN.finditer(text):
        symbol = token.group()
        if symbol in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if depth == 1:
                if symbol != "{":
                    return None, "not JSON: nested too deeply (and not an object)"
                start = token.end()
        elif symbol in "]}":
            depth -= 1
            if depth == 0:
                if key is not None:
                    _member(text, start, token.start(), key, deepest, known, kept, dropped)
                closed_at = token.end()
                break
        elif depth == 1:
            if symbol == ",":
                if key is not None:
                    _member(text, start, token.start(), key, deepest, known, kept, dropped)
                key, start, deepest = None, token.end(), 1
            elif symbol.startswith('"') and key is None:
                key = symbol
    if closed_at is None:
        return None, "not JSON: the text ends before the message's object closes"
    if text[closed_at:].strip():
        return None, "not JSON: text after the message's object"
    refused = [name for name in dropped if name in known]
    if refused:
        return None, f"{shorten(refused[0])}: nested deeper than {_MAX_DEPTH} levels"
    try:
        message = json.loads("{" + ",".join(kept) + "}")
    except ValueError as exc:
        return None, f"not JSON: {exc}"
    if not dropped:
        return message, ""
    names = ", ".join(shorten(name, 60) for name in dropped[:5])
    return message, f"left out unknown field(s) nested deeper than {_MAX_DEPTH} levels: {names}"


def _member(
    text: str,
    start: int,
    end: int,
    key: str,
    deepest: int,
    known: set[str],
    kept: list[str],
    dropped: list[str],
) -> None:
    try:
        name = json.loads(key)
    except ValueError:
        name = key
    if deepest > _MAX_DEPTH:
        dropped.append(name)
    else:
        kept.append(text[start:end])
