"""Each user mistake ends in exactly one line on stderr and exit code 2, with nothing written or
created: the real CLI in a subprocess, as a user would run it."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import clean_environ, free_port, wirestream

GRAIN_DEAL = "topics:\n  - id: grain_deal\n    threshold: 2.0\n"


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a command that must be refused; return its one stderr line, checking that it exited 2,
    printed no traceback and changed nothing under ``tmp_path``."""
    before = files_under(tmp_path)
    folders = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    result = wirestream(*args, "--state-dir", str(tmp_path / "state"), env=env, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert files_under(tmp_path) == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == folders
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def refused_table_command(tmp_path: Path, *args: str) -> str:
    """`refused` for the table commands, which take no --state-dir."""
    before = files_under(tmp_path)
    folders = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    result = wirestream(*args, check=False)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert files_under(tmp_path) == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == folders
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a dataset\n")
    return path


def nowhere() -> str:
    """Bootstrap servers where no Kafka listens."""
    return f"127.0.0.1:{free_port()}"


def test_run_output_that_is_a_file(tmp_path, a_file):
    line = refused(tmp_path, "run", "--output", str(a_file), "--bootstrap-servers", nowhere())
    assert line == f"error: {a_file} is a file, not a dataset folder"


def test_demo_output_that_is_a_file_is_refused_before_a_broker_starts(tmp_path, a_file):
    line = refused(tmp_path, "demo", "--output", str(a_file), "--port", str(free_port()))
    assert line == f"error: {a_file} is a file, not a dataset folder"
    assert not (tmp_path / "state").exists()


def test_compact_output_that_is_a_file(tmp_path, a_file):
    assert refused_table_command(tmp_path, "compact", str(a_file)) == (
        f"error: {a_file} is a file, not a dataset folder"
    )


@pytest.mark.parametrize("command", ["compact", "maintain", "inspect", "changes"])
def test_a_missing_dataset_folder_is_not_created(tmp_path, command):
    missing = tmp_path / "no-such-dataset"
    assert refused_table_command(tmp_path, command, str(missing)) == (
        f"error: {missing} does not exist: no wirestream dataset there"
    )
    assert not missing.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compact"], "has no wirestream table wirestream.stories: nothing committed yet"),
        (["maintain"], "has no wirestream table wirestream.stories: nothing committed yet"),
        (["changes"], "has no wirestream table wirestream.stories: nothing committed yet"),
        (["inspect"], "holds no wirestream table: nothing committed yet"),
        (
            ["load", "duckdb", "--db", "WAREHOUSE", "--output"],
            "has no wirestream table wirestream.stories: nothing committed yet",
        ),
    ],
    ids=["compact", "maintain", "changes", "inspect", "load"],
)
def test_a_folder_with_no_table_is_left_as_it_was(tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(tmp_path / "w.duckdb") if a == "WAREHOUSE" else a for a in args]
    assert refused_table_command(tmp_path, *args, str(empty)) == f"error: {empty} {message}"
    assert list(tmp_path.iterdir()) == [empty] and list(empty.iterdir()) == []


def test_inspect_of_a_file(tmp_path, a_file):
    assert refused_table_command(tmp_path, "inspect", str(a_file)) == (
        f"error: {a_file} is a file, not a dataset folder"
    )


def test_config_path_that_is_a_folder(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    line = refused(tmp_path, "run", "--config", str(folder), "--output", str(tmp_path / "out"))
    assert line == f"error: config file {folder} is a folder, not a file"


def test_config_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("raw_topic: actualités\n".encode("latin-1"))
    line = refused(tmp_path, "run", "--config", str(path), "--output", str(tmp_path / "out"))
    assert line == f"error: config file {path} is not UTF-8 text (invalid continuation byte at byte 19)"


def test_config_file_that_is_not_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("bootstrap_servers: [unclosed\n")
    line = refused(tmp_path, "run", "--config", str(path), "--output", str(tmp_path / "out"))
    assert line == (
        f"error: config file {path} is not valid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"
    )


def test_load_onto_a_file_that_is_not_a_duckdb_database(tmp_path, a_file):
    dataset = tmp_path / "out"
    dataset.mkdir()
    line = refused_table_command(tmp_path, "load", "duckdb", "--db", str(a_file), "--output", str(dataset))
    assert line == f"error: --db {a_file} is not a DuckDB database file"


def run_with_taxonomy(tmp_path: Path, text: str | None) -> str:
    """`run` with a taxonomy file holding ``text`` (None: no such file), Kafka nowhere."""
    path = tmp_path / "taxonomy.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    env = {"WIRESTREAM_TAXONOMY": str(path)}
    line = refused(
        tmp_path, "run", "--output", str(tmp_path / "out"), "--bootstrap-servers", nowhere(), env=env
    )
    return line.replace(str(path), "TAXONOMY")


def test_taxonomy_file_missing(tmp_path):
    assert run_with_taxonomy(tmp_path, None) == "error: taxonomy file TAXONOMY does not exist"


def test_taxonomy_negative_weight(tmp_path):
    text = GRAIN_DEAL + "    phrases:\n      en:\n        - {phrase: grain corridor, weight: -2}\n"
    assert run_with_taxonomy(tmp_path, text) == (
        "error: TAXONOMY: topics.grain_deal.phrases.en[0].weight: -2 must be positive"
    )


def test_taxonomy_misspelled_weight(tmp_path):
    text = GRAIN_DEAL + "    phrases:\n      en:\n        - {phrase: grain corridor, weigth: 2}\n"
    assert run_with_taxonomy(tmp_path, text) == (
        "error: TAXONOMY: topics.grain_deal.phrases.en[0].weigth: unknown key (did you mean 'weight'?)"
    )


def test_taxonomy_misspelled_exclude(tmp_path):
    text = GRAIN_DEAL + "    phrases: {en: [grain corridor]}\n    exlude: {en: [grain elevator]}\n"
    assert run_with_taxonomy(tmp_path, text) == (
        "error: TAXONOMY: topics.grain_deal.exlude: unknown key (did you mean 'exclude'?)"
    )


def test_demo_with_a_bad_taxonomy_is_refused_before_a_broker_starts(tmp_path):
    path = tmp_path / "taxonomy.yaml"
    path.write_text(GRAIN_DEAL + "    phrases: {en: [grain]}\n    exlude: {en: [x]}\n", encoding="utf-8")
    line = refused(
        tmp_path,
        "demo",
        "--output",
        str(tmp_path / "out"),
        "--port",
        str(free_port()),
        env={"WIRESTREAM_TAXONOMY": str(path)},
    )
    assert line == f"error: {path}: topics.grain_deal.exlude: unknown key (did you mean 'exclude'?)"
    assert not (tmp_path / "state").exists()


def test_a_broker_that_is_down_is_one_line_after_the_timeout(tmp_path):
    servers = nowhere()
    line = refused(tmp_path, "run", "--output", str(tmp_path / "out"), "--bootstrap-servers", servers)
    assert line == (
        f"error: cannot reach Kafka at {servers} (KafkaTimeoutError). Start the local broker with "
        "`wirestream kafka up`, or pass --bootstrap-servers / set WIRESTREAM_BOOTSTRAP_SERVERS."
    )
    assert not (tmp_path / "out").exists()


def committed_dataset(folder: Path, batches: int) -> None:
    """A dataset of ``batches`` committed snapshots, written without Kafka."""
    from pipeline.dataset import Dataset
    from pipeline.write import data_file_name, write_rows
    from schemas import CLEAN_SCHEMA

    dataset = Dataset(folder)
    for batch in range(1, batches + 1):
        staging = dataset.staging_dir(batch)
        row = {
            "id": f"{batch:032x}",
            "source": "s",
            "kafka_partition": 0,
            "kafka_offset": batch - 1,
            "kafka_timestamp": datetime(2026, 12, 1, tzinfo=UTC),
        }
        path = staging / "data" / "ingest_day=2026-12-01" / data_file_name(batch, 0)
        write_rows(path, [row], CLEAN_SCHEMA, "id")
        offsets = [{"topic": "t", "partition": 0, "start": batch - 1, "stop": batch}]
        dataset.commit(batch, staging, offsets, {})


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`wirestream changes DIR | head -1`: head has gone when the rest is written."""
    committed_dataset(tmp_path / "out", 3)
    read, write = os.pipe()
    os.close(read)  # the reader went away
    try:
        result = subprocess.run(
            [sys.executable, "-m", "wirestream", "changes", str(tmp_path / "out")],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_environ(),
            timeout=120,
        )
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, "")


def test_a_reader_of_the_first_line_gets_it(tmp_path):
    committed_dataset(tmp_path / "out", 3)
    pipeline = f"{sys.executable} -m wirestream changes {tmp_path / 'out'} | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, env=clean_environ()
    )
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1 and '"batch": 1' in result.stdout
