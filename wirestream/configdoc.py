"""The configuration reference, written from the typed config itself so that it cannot drift.

Each row comes from one field of `wirestream.config.Config`: its key, the environment variable
that overrides it, its default and its one-line doc. ``python -m wirestream.configdoc`` prints the
Markdown table that README.md holds between its ``config-reference`` markers (so does
``wirestream config reference``), and ``--write README.md`` puts it there; a unit test holds the
README to exactly this text.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
from pathlib import Path
from typing import Any

from wirestream.config import ENV_PREFIX, SECRET_KEYS, Config
from wirestream.errors import UserError

__all__ = [
    "START",
    "END",
    "reference_markdown",
    "replace_reference",
    "write_reference",
    "add_parser",
    "command",
]

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"

# Keys read from the config file only: the environment holds one value a key, and a feed list is
# not one.
_FILE_ONLY = frozenset({"feeds"})


def _cell(text: str) -> str:
    """``text`` safe in a table cell: pipes escaped, and ``<state_dir>`` outside code spans written
    as entities, as Markdown renderers drop what looks like an HTML tag."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _literal(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == []:
        return "`[]`"
    return f"`{value}`"


def _default(spec: dataclasses.Field[Any]) -> str:
    if spec.default is not dataclasses.MISSING:
        return _literal(spec.default)
    factory = spec.default_factory
    if factory is dataclasses.MISSING:
        return "required"
    # A factory that depends on the machine (the user's home, XDG_*) says so in its docstring;
    # calling it would write this machine's paths into the reference.
    if inspect.isfunction(factory) and factory.__doc__:
        return _cell(factory.__doc__)
    return _literal(factory())


def _environment(name: str) -> str:
    if name in _FILE_ONLY:
        return "config file only"
    variable = f"`{ENV_PREFIX}{name.upper()}`"
    if name in SECRET_KEYS:
        return f"{variable} only (a secret)"
    return variable


def reference_markdown() -> str:
    """The reference as a Markdown table: key, environment variable, default, what it does."""
    lines = ["| key | environment | default | what |", "|---|---|---|---|"]
    for spec in dataclasses.fields(Config):
        what = _cell(str(spec.metadata.get("doc", "")))
        lines.append(f"| `{spec.name}` | {_environment(spec.name)} | {_default(spec)} | {what} |")
    return "\n".join(lines) + "\n"


def replace_reference(text: str) -> str:
    """``text`` with what lies between the reference markers replaced by `reference_markdown`."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the text lacks the markers {START} … {END}, in that order")
    return text[: start + len(START)] + "\n" + reference_markdown() + text[end:]


def write_reference(path: Path) -> None:
    """Put `reference_markdown` between the markers of the file ``path`` (unchanged if it is there)."""
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        updated = replace_reference(text)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    if updated != text:
        path.write_text(updated, "utf-8")


def add_parser(commands: Any) -> None:
    """`wirestream config reference [--write FILE]`, under the CLI's subcommands."""
    config = commands.add_parser(
        "config", help="the configuration's keys, environment variables and defaults"
    )
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    reference = actions.add_parser("reference", help="print the configuration reference (Markdown)")
    _reference_options(reference)
    reference.set_defaults(verbose=False)  # nothing here logs


def _reference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write", metavar="FILE", help=f"replace the text between {START} and {END} in FILE")


def command(args: argparse.Namespace) -> int:
    """`wirestream config reference`: print the reference, or write it into ``--write FILE``."""
    if args.write is None:
        sys.stdout.write(reference_markdown())
    else:
        write_reference(Path(args.write))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wirestream.configdoc",
        description="Print the configuration reference (Markdown), or write it into a file's markers.",
    )
    _reference_options(parser)
    try:
        return command(parser.parse_args(argv))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
