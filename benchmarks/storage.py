"""Bytes per story where stories are kept: the wire, a Kafka broker's log and the table's Parquet files.

    python -m benchmarks.storage [--stories 20000] [--small-batches 20] [--port 49092]

The inputs of docs/scaling.md's storage figures. Starts a Kafka broker of its own (its state in a
temporary folder, on --port), publishes synthetic ~4 KB stories (benchmarks.pipeline's) through the
connectors' producer (gzip batches, as `wirestream connect` sends them), reads the size of the
topic's log segments, then runs `wirestream run` into a temporary dataset twice: once over all the
stories (backfill-sized files) and once over a few thousand in batches of about what one
`commit_interval_s` of continuous mode gathers at peak (small files, before compaction). Prints bytes
per story of each and of the table's columns. Sizes of the real texts (the seed story and the
real-copy quality set) are printed beside the synthetic ones, with how well each compresses, so the
synthetic figures can be scaled to real copy; and the size of a feed connector's memory of one
seen entry (its SQLite state, the connectors' own schema). Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from benchmarks.pipeline import synthetic
from connectors.feedstate import SCHEMA
from connectors.files import items_from_file
from connectors.publisher import Publisher
from pipeline.dataset import Dataset
from schemas import story_id
from wirestream.broker import LocalBroker
from wirestream.config import load_config

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "seeds" / "turan-blinken-lavrov.txt"
REAL_SET = REPO / "benchmarks" / "quality" / "real"


def wire_json(message: dict[str, object]) -> bytes:
    """A raw story as the publisher encodes it."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def seed_message() -> dict[str, object] | None:
    """The seed story as `wirestream connect files` makes it, or None when the seed is not there."""
    if not SEED.is_file():
        return None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stories = [item.story for item in items_from_file(SEED, "turan", now) if item.story]
    return stories[0] if stories else None


def real_bodies() -> list[bytes]:
    bodies = []
    for path in sorted(REAL_SET.glob("*.yaml")):
        for text in yaml.safe_load(path.read_text("utf-8"))["texts"]:
            bodies.append(str(text["body"]).encode("utf-8"))
    return bodies


def gzip_ratio(chunks: list[bytes]) -> float:
    """Raw over gzip size of the chunks compressed together, as a producer batch compresses them."""
    joined = b"".join(chunks)
    return len(joined) / len(gzip.compress(joined, 6))


def log_bytes(data_dir: Path, topic: str) -> int:
    """The topic's log segments (index files are preallocated, so they are not counted)."""
    return sum(p.stat().st_size for p in data_dir.glob(f"{topic}-*/*.log"))


def run_pipeline(env: dict[str, str], output: Path, max_records: int | None) -> None:
    run_env = dict(env)
    if max_records is not None:
        run_env["WIRESTREAM_MAX_RECORDS_PER_BATCH"] = str(max_records)
    subprocess.run(
        [sys.executable, "-m", "wirestream", "run", "--output", str(output)],
        env=run_env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def parquet_figures(output: Path) -> tuple[int, int, int, Counter[str]]:
    """(rows, files, bytes, compressed bytes per top-level column) of the table's live data files."""
    rows = size = 0
    columns: Counter[str] = Counter()
    files = Dataset(output).committed_files()
    for path in files:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        size += path.stat().st_size
        for group in range(meta.num_row_groups):
            for index in range(meta.num_columns):
                column = meta.row_group(group).column(index)
                columns[column.path_in_schema.split(".")[0]] += column.total_compressed_size
    return rows, len(files), size, columns


def seen_entry_bytes(entries: int, feeds: int = 2500) -> tuple[float, float]:
    """Bytes per remembered entry of a feed connector's state file, as written (entries arriving
    in no particular key order) and after VACUUM."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feeds.sqlite"
        db = sqlite3.connect(path)
        db.executescript(SCHEMA)
        now = time.time()
        rows = [
            (
                f"publisher-{i % feeds:04d}/section",
                "news.raw.v1",
                story_id(f"feed-{i % feeds}", f"entry-{i}"),
                now,
                now,
            )
            for i in range(entries)
        ]
        for start in range(0, entries, 50):  # one transaction per poll's new entries
            with db:
                db.executemany("INSERT INTO seen VALUES (?, ?, ?, ?, ?)", rows[start : start + 50])
        written = path.stat().st_size
        db.execute("VACUUM")
        db.close()
        return written / entries, path.stat().st_size / entries


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stories", type=int, default=20_000)
    parser.add_argument("--small-batches", type=int, default=20, help="batches of the small-file run")
    parser.add_argument("--small-batch-size", type=int, default=120, help="stories per small batch")
    parser.add_argument("--port", type=int, default=49092, help="port of the broker this starts")
    args = parser.parse_args()

    print("== sizes of a story (bytes) ==")
    seed = seed_message()
    if seed is not None:
        raw = wire_json(seed)
        print(
            f"seed story: text file {SEED.stat().st_size}, raw JSON {len(raw)}, "
            f"body {len(str(seed.get('body', '')).encode())}, gzip alone {len(gzip.compress(raw, 6))}"
        )
    bodies = real_bodies()
    if bodies:
        sizes = [len(b) for b in bodies]
        print(
            f"real-copy set: {len(bodies)} bodies, median {statistics.median(sizes):.0f}, "
            f"mean {statistics.mean(sizes):.0f}, gzip ratio together {gzip_ratio(bodies):.2f}"
        )
    sample = [json.loads(synthetic(i))["body"].encode() for i in range(len(bodies) or 100)]
    synthetic_raw = [len(synthetic(i)) for i in range(1000)]
    print(
        f"synthetic: raw JSON mean {statistics.mean(synthetic_raw):.0f}, "
        f"gzip ratio of bodies together {gzip_ratio(sample):.2f}"
    )
    written, vacuumed = seen_entry_bytes(200_000)
    print(f"feed connector state: {written:.0f} bytes per seen entry as written, {vacuumed:.0f} after VACUUM")

    with tempfile.TemporaryDirectory(prefix="wirestream-storage-") as scratch:
        base = load_config(
            overrides={
                "state_dir": str(Path(scratch) / "state"),
                "broker_port": args.port,
                "broker_sasl_port": 0,
                "bootstrap_servers": f"127.0.0.1:{args.port}",
                "broker_heap": "512m",
            }
        )
        broker = LocalBroker(base)
        broker.up()
        try:
            config = replace(base, raw_topic=f"storage-{uuid.uuid4().hex[:8]}.raw", dlq_topic="storage.dlq")
            with Publisher(config) as publisher:
                for index in range(args.stories):
                    publisher.publish(json.loads(synthetic(index)))
            on_disk = log_bytes(broker.data_dir, config.raw_topic)
            print(f"\n== Kafka, {args.stories} synthetic stories through the connectors' producer (gzip) ==")
            print(f"log segments {on_disk} bytes: {on_disk / args.stories:.0f} bytes per story per replica")

            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", scratch),
                "WIRESTREAM_BOOTSTRAP_SERVERS": config.bootstrap_servers,
                "WIRESTREAM_RAW_TOPIC": config.raw_topic,
                "WIRESTREAM_DLQ_TOPIC": config.dlq_topic,
                "WIRESTREAM_STATE_DIR": str(Path(scratch) / "state"),
            }
            large = Path(scratch) / "large"
            run_pipeline(env, large, None)
            rows, files, size, columns = parquet_figures(large)
            print(f"\n== Parquet, backfill-sized files: {rows} rows in {files} files ==")
            print(f"{size} bytes: {size / rows:.0f} bytes per story")
            for name, value in columns.most_common(8):
                print(f"  {name:<16}{value / rows:>7.0f} bytes per story")

            small_count = args.small_batches * args.small_batch_size
            small_topic = replace(config, raw_topic=f"storage-{uuid.uuid4().hex[:8]}.raw")
            with Publisher(small_topic) as publisher:
                for index in range(small_count):
                    publisher.publish(json.loads(synthetic(index)))
            small = Path(scratch) / "small"
            run_pipeline({**env, "WIRESTREAM_RAW_TOPIC": small_topic.raw_topic}, small, args.small_batch_size)
            rows, files, size, _ = parquet_figures(small)
            print(
                f"\n== Parquet, batches of {args.small_batch_size} stories: {rows} rows in {files} files =="
            )
            print(f"{size} bytes: {size / rows:.0f} bytes per story, {size / files:.0f} bytes per file")
        finally:
            broker.down()


if __name__ == "__main__":
    main()
