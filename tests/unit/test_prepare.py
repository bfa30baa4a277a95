"""Preparing stories (parse, clean, tag, sign) in worker processes gives exactly the rows and dead
letters of preparing them in the pipeline process, and a worker's death or its parent's costs no
story and leaves no process behind."""

import json

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipeline import minhash
from pipeline.accelerator import in_workers
from pipeline.clean import clean_story
from pipeline.dedup import sign_rows
from pipeline.parse import parse_record
from pipeline.prepare import STAGES, prepare_chunk
from pipeline.tagging import load_taxonomy, tag_row
from pipeline.transforms import PrepareChunks, PrepareStories
from schemas import story_id
from tests.conftest import chunks, raw_story
from tests.unit.test_clean import seed_parts


def _record(offset: int, value: bytes, key: str | None = None) -> dict:
    return {
        "topic": "raw",
        "partition": 0,
        "offset": offset,
        "key": key.encode() if key else None,
        "value": value,
        "timestamp_ms": 1_659_000_000_000 + offset,
    }


def _records(seed_path) -> list[dict]:
    """The seed story four times under its own ids, an HTML page, Cyrillic text, a synthetic story,
    and records that fail parsing and validation."""
    headline, body = seed_parts(seed_path)
    stories = [dict(raw_story(i), headline=headline, body=body) for i in range(4)]
    stories.append(dict(raw_story(4), body="<p>Talks <b>resumed</b>.</p>", body_format="text/html"))
    stories.append(dict(raw_story(5), headline="Говорят", body="Переговоры продолжились."))
    stories.append(raw_story(6))
    records = [_record(i, json.dumps(s).encode(), s["id"]) for i, s in enumerate(stories)]
    records.append(_record(7, b"{not json", "x"))
    records.append(
        _record(8, json.dumps(dict(raw_story(8), source=None)).encode(), story_id("synthetic", "story-8"))
    )
    return records


def test_a_chunk_is_prepared_as_its_stages_would_prepare_each_story(seed_path):
    taxonomy = load_taxonomy(None)
    records = _records(seed_path)
    rows, letters = prepare_chunk(records, "test", taxonomy)
    stories = [story for story, _letter in map(parse_record, records) if story is not None]
    assert rows == sign_rows([tag_row(clean_story(s, "test"), taxonomy) for s in stories])
    assert all(len(row["minhash"]) == minhash.SIGNATURE_BYTES for row in rows)
    assert {row["id"] for row in rows} == {s["id"] for s in stories} and len(rows) == 7
    assert [(d["stage"], d["kafka_offset"]) for d in letters["parse"]] == [("parse", 7), ("validate", 8)]
    assert letters["clean"] == letters["tag"] == []
    assert {"detainees", "grain_deal", "annexation"} <= {t["topic"] for t in rows[0]["topics"]}


def test_a_packed_chunk_holds_its_rows_as_arrow_by_file_and_their_summaries(seed_path, tmp_path):
    import pyarrow as pa

    from pipeline.dedup import summaries_of, summarise
    from pipeline.prepare import pack_chunk
    from pipeline.write import partition_of, shard_of, sorted_table, unpack_files
    from schemas import CLEAN_SCHEMA

    taxonomy = load_taxonomy(None)
    records = _records(seed_path)
    rows, letters = prepare_chunk(records, "test", taxonomy)
    spill = tmp_path / "spill"
    packed, packed_letters = pack_chunk(records, "test", taxonomy, 3, str(spill))
    assert packed is not None and packed_letters == letters
    assert list(summaries_of([packed.summaries])) == [summarise(row) for row in rows]
    by_id = {row["id"]: row for row in rows}
    # one spilled stream per file, in the spill folder and nowhere else
    assert sorted(str(p) for p in spill.iterdir()) == sorted(path for _route, path in packed.files)
    assert len({route for route, _path in packed.files}) == len(packed.files)
    for route, path in packed.files:
        table = unpack_files([path])
        assert table.schema == CLEAN_SCHEMA and table.num_rows
        # every row of a file's stream goes to that file
        assert {f"{partition_of(by_id[i])}/{shard_of(i, 3):03d}" for i in table.column("id").to_pylist()} == {
            route
        }
    whole = sorted_table(unpack_files(path for _route, path in packed.files))
    assert whole.equals(sorted_table(pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)))
    assert pack_chunk(records[7:], "test", taxonomy, 3, str(spill))[0] is None  # no story: nothing packed


def test_a_story_the_tagger_raises_on_is_a_tag_dead_letter_and_the_rest_go_on(seed_path):
    class Broken:
        """A taxonomy whose lookups raise, as a tagging bug would."""

    rows, letters = prepare_chunk(_records(seed_path)[:3], "test", Broken())  # type: ignore[arg-type]
    assert rows == []
    assert [(d["stage"], d["story_id"]) for d in letters["tag"]] == [
        ("tag", raw_story(i)["id"]) for i in range(3)
    ]
    assert all(d["reason"].startswith("tag failed: AttributeError") for d in letters["tag"])


def _row_keys(rows):
    """What identifies a prepared row and what preparing decided for it."""
    return [(r["id"], r["kafka_offset"], r["body"], r["language"], r["minhash"]) for r in rows]


def _packed_rows(packed):
    from pipeline.write import unpack_files

    return _row_keys(unpack_files(stream for _route, stream in packed.files).to_pylist())


def _prepare_in_pipeline(records, processes, expected, spill):
    """Runs PrepareStories over ``records`` in chunks of three, its Arrow spilled to ``spill``,
    and asserts its outputs are ``expected`` (rows, {stage: dead letters}), in any order."""
    rows, letters = expected
    with beam.Pipeline() as p:
        prepare = in_workers(processes) if processes else PrepareChunks
        out = (
            p
            | beam.Create(chunks(records, 3))
            | PrepareStories("test", load_taxonomy(None), 2, spill, prepare=prepare)
        )
        assert_that(out["rows"] | beam.FlatMap(_packed_rows), equal_to(_row_keys(rows)), label="rows")
        for stage in STAGES:
            assert_that(out[stage], equal_to(letters[stage]), label=stage)


def test_workers_give_the_rows_and_dead_letters_of_preparing_in_process(seed_path, tmp_path):
    records = _records(seed_path)
    expected = prepare_chunk(records, "test", load_taxonomy(None))
    _prepare_in_pipeline(records, 1, expected, tmp_path / "workers")
    _prepare_in_pipeline(records, 0, expected, tmp_path / "in-process")


def test_a_worker_that_dies_costs_time_not_stories(seed_path, tmp_path):
    import multiprocessing
    import os
    import signal

    from pipeline.workers import WORKERS

    pool = WORKERS.get(1)
    pool.submit(int).result()  # the worker is up
    for worker in multiprocessing.active_children():
        os.kill(worker.pid, signal.SIGKILL)
    records = _records(seed_path)
    _prepare_in_pipeline(records, 1, prepare_chunk(records, "test", load_taxonomy(None)), tmp_path)
    assert WORKERS.get(1) is not pool  # the broken pool was replaced


def test_warming_starts_every_worker_before_the_first_chunk():
    import time

    from pipeline.workers import _Workers

    workers = _Workers()
    workers.warm(2)
    pool = workers.get(2)
    try:
        deadline = time.monotonic() + 30
        while len(pool._processes) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pool._processes) == 2
        assert workers.submit(2, int, "7")[1].result(timeout=60) == 7
    finally:
        pool.shutdown()


def test_workers_end_when_the_pipeline_process_is_killed(tmp_path):
    """SIGKILL gives the pipeline process no chance to stop its workers: they must notice alone,
    or every crash of `run --continuous` would leave one behind."""
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import multiprocessing, time\n"
        "from pipeline.workers import WORKERS\n"
        "WORKERS.get(1).submit(int).result()\n"
        "print(*[p.pid for p in multiprocessing.active_children()], flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert workers and all(_alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its pipeline process"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_start_with_arrows_allocator_keeping_freed_pages_and_this_process_keeps_its_own():
    import os

    from pipeline.workers import WORKERS
    from wirestream.processes import ARROW_ALLOCATOR

    name, value = ARROW_ALLOCATOR
    before = os.environ.get(name)
    _pool, future = WORKERS.submit(1, os.getenv, name)
    assert future.result(timeout=60) == value
    assert os.environ.get(name) == before


def _loaded_by(imports: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that importing ``imports`` loads, in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"import {imports}\n"
        f"print(*sorted(m for m in sys.modules if m.split('.')[0] in {packages!r} or m in {packages!r}))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return found.stdout.split()


def test_the_modules_workers_import_leave_beam_out():
    """The worker server imports the stages before any worker can start, and every run's first
    reads wait for it: with Beam among its imports it took twice as long. Beam belongs to
    `pipeline.transforms` (and `run`, `runners`), never to a stage module."""
    assert _loaded_by("pipeline.prepare, pipeline.workers, pipeline.memory", ("apache_beam",)) == []


def test_the_pipeline_process_freezes_what_it_has_loaded_but_no_garbage():
    """A full collection walked every loaded module's objects each time (~50 ms, seven times in a
    100k backfill); `freeze_loaded_objects` exempts them once per process, after collecting the
    garbage there is, which stays collectable."""
    import subprocess
    import sys

    code = (
        "import gc, weakref\n"
        "import pipeline.run\n"
        "from pipeline.memory import freeze_loaded_objects\n"
        "class Node: pass\n"
        "cycle = Node(); cycle.me = cycle; alive = weakref.ref(cycle); del cycle\n"
        "freeze_loaded_objects(); frozen = gc.get_freeze_count(); freeze_loaded_objects()\n"
        "print(frozen, gc.get_freeze_count() == frozen, alive() is None)\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    frozen, once, collected = found.stdout.split()
    assert int(frozen) > 50_000 and once == "True" and collected == "True"


def test_the_beam_stages_leave_the_local_accelerator_out():
    """The graph's transforms are plain Beam: only `pipeline.accelerator` brings the worker pool
    and the memory tuning in, so a cluster's workers never load them."""
    assert _loaded_by("pipeline.transforms", ("pipeline.workers", "pipeline.memory")) == []
