"""README.md as a user's guide: its configuration reference is the typed config's, its commands
parse, its links lead somewhere, and its sections come in the order a new user needs them."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import wirestream
from wirestream import configdoc
from wirestream.cli import build_parser
from wirestream.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

# The guide's sections, in this order (other sections may sit between them).
SECTIONS = [
    "What it does, and for whom",
    "Two commands on a fresh machine",
    "Concepts",
    "Your feeds: feeds.yaml",
    "Connecting to your Kafka and catalog",
    "Reading the data",
    "Recipes",
    "Configuration reference",
    "Operations",
    "Troubleshooting",
    "Benchmarks",
    "Where things are",
]


def readme() -> str:
    return README.read_text("utf-8")


def reference_rows(text: str) -> dict[str, list[str]]:
    """The reference table's cells by key (backticks stripped from the key)."""
    rows = {}
    for line in text.splitlines()[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_readme_holds_the_reference_generated_from_the_config():
    text = readme()
    start = text.index(configdoc.START) + len(configdoc.START)
    end = text.index(configdoc.END)
    assert text[start:end] == "\n" + configdoc.reference_markdown(), (
        "README.md's configuration reference differs from the config: "
        "run `python -m wirestream.configdoc --write README.md`"
    )


def test_the_reference_has_one_row_per_config_key_in_order():
    keys = list(reference_rows(configdoc.reference_markdown()))
    assert keys == [spec.name for spec in dataclasses.fields(Config)]


def test_the_reference_defaults_are_what_the_config_loads():
    loaded = load_config()
    literal = 0
    for key, (_environment, default, _what) in reference_rows(configdoc.reference_markdown()).items():
        value = getattr(loaded, key)
        if default == "unset":
            assert value is None, key
        elif default.startswith("`"):
            literal += 1
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            assert default == f"`{shown}`", key
        else:  # a default that depends on the machine is described, and the description names it
            assert "wirestream" in default and "$XDG_" in default, key
    assert literal > 40


def test_each_environment_variable_in_the_reference_sets_its_key(monkeypatch):
    types = {spec.name: str(spec.type) for spec in dataclasses.fields(Config)}
    defaults = Config()
    expected = {}
    for key, (environment, _default, _what) in reference_rows(configdoc.reference_markdown()).items():
        match = re.match(r"`(WIRESTREAM_[A-Z0-9_]+)`", environment)
        if match is None:
            assert environment == "config file only", key
            monkeypatch.setenv(f"WIRESTREAM_{key.upper()}", "ignored")
            expected[key] = getattr(defaults, key)
            continue
        kind = types[key]
        if kind.startswith("bool"):
            value, text = not getattr(defaults, key), str(not getattr(defaults, key)).lower()
        elif kind.startswith("int"):
            value, text = 4321, "4321"
        elif kind.startswith("float"):
            value, text = 2.5, "2.5"
        else:
            value = text = f"from-env-{key}"
        monkeypatch.setenv(match.group(1), text)
        expected[key] = value
    loaded = load_config()
    assert {key: getattr(loaded, key) for key in expected} == expected


def test_write_replaces_only_the_text_between_the_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nbefore\n{configdoc.START}\nstale\n{configdoc.END}\nafter\n", "utf-8")
    assert configdoc.main(["--write", str(page)]) == 0
    assert page.read_text("utf-8") == (
        f"# Title\n\nbefore\n{configdoc.START}\n{configdoc.reference_markdown()}{configdoc.END}\nafter\n"
    )


def test_write_into_a_file_without_markers_is_one_line_and_changes_nothing(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("# Title\n", "utf-8")
    assert configdoc.main(["--write", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "config-reference" in err
    assert page.read_text("utf-8") == "# Title\n"


def test_the_cli_prints_the_reference_and_refuses_a_file_without_markers(tmp_path):
    printed = wirestream("config", "reference")
    assert printed.stdout == configdoc.reference_markdown()
    page = tmp_path / "notes.md"
    page.write_text("no markers here\n", "utf-8")
    refused = wirestream("config", "reference", "--write", str(page), check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    assert page.read_text("utf-8") == "no markers here\n"


def test_sections_come_in_the_guide_s_order():
    headings = re.findall(r"^## (.+)$", readme(), flags=re.M)
    positions = [headings.index(section) for section in SECTIONS if section in headings]
    assert [s for s in SECTIONS if s not in headings] == []
    assert positions == sorted(positions)


def _shell_commands() -> list[str]:
    """Every `wirestream …` command in the README's ```sh blocks, one per pipeline stage."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", readme(), flags=re.M | re.S):
        for line in block.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|;&")
            lexer.whitespace_split = True
            stage: list[str] = []
            for token in [*lexer, "|"]:
                if token.strip("|;&"):
                    stage.append(token)
                    continue
                if stage and stage[0] == "wirestream":
                    commands.append(shlex.join(stage[1:]))
                stage = []
    return commands


@pytest.mark.parametrize("command", _shell_commands())
def test_every_command_in_the_readme_parses(command):
    try:
        build_parser().parse_args(shlex.split(command))
    except SystemExit as exc:
        pytest.fail(f"`wirestream {command}` in README.md does not parse (exit {exc.code})")


def test_the_readme_shows_commands():
    assert len(_shell_commands()) > 30


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_lead_to_files_and_headings_that_exist():
    text = readme()
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, target
        else:
            assert (REPO / target.split("#")[0]).exists(), target
