"""Pipeline benchmarks: backfill throughput and memory, continuous latency, the runners, and the
scale-out of the Flink session cluster (parallelism 2 against 1, `wirestream flink up`).

    python -m benchmarks.pipeline [--sizes 100000,1000000] [--runners direct,prism,flink]
        [--cluster-size 100000] [--skip backfill,latency,runners,cluster]

Starts (or reuses) the local broker unless --bootstrap-servers is given, publishes synthetic ~4 KB stories to fresh topics
(each its own Zipf-distributed text; 1 in 20 a republished copy, so dedup does real work; 5,000
published a day, in order),
and prints medians with the floor measured in the same run: a plain kafka-python consume of the
same records plus a pyarrow write of them, no processing. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from connectors.publisher import ensure_topics
from pipeline.dataset import Dataset
from schemas import RAW_SCHEMA_VERSION, story_id
from wirestream.broker import LocalBroker
from wirestream.config import Config, load_config

# Ordinary words first (they take most of the text, as in real copy), then the coverage's
# vocabulary, then invented words standing for the long tail of names and rarer words.
_COMMON = (
    "the of and to in a said on for that with was as by at from is it he his were which be this has "
    "have but not are an had they their its after also been more one two new would who will year "
    "people government officials week told city country state president minister talks ceasefire "
    "grain corridor exports port shipment sanctions energy pipeline delegation agreement parliament"
)
_VOCABULARY = _COMMON.split()
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
_TAIL = [
    _SYLLABLES[i % 70] + _SYLLABLES[(i // 70) % 70] + _SYLLABLES[(i * 7) % 70][: 1 + i % 2]
    for i in range(5000)
]
WORDS = np.array(_VOCABULARY + _TAIL)
# Word frequencies fall with rank as in natural text (Zipf); syndication: every 20th story is a
# republished copy (new id, new headline, a changed first paragraph) of a story published earlier.
_ZIPF = np.cumsum(1.0 / np.arange(1, len(WORDS) + 1))
_ZIPF /= _ZIPF[-1]
COPY_EVERY = 20
# Stories come in publication order, STORIES_PER_DAY a day (a large agency's output), as a topic
# holds them; the dedup look-back then spans the same number of stories at 100k and at 1M.
STORIES_PER_DAY = 5000
_START = datetime(2022, 7, 1, tzinfo=UTC)
_EVERY = timedelta(days=1) / STORIES_PER_DAY


def _body(index: int, size: int) -> str:
    rng = np.random.default_rng(index)
    words = WORDS[np.searchsorted(_ZIPF, rng.random(size // 5))].tolist()
    paragraphs = [" ".join(words[i : i + 40]) + "." for i in range(0, len(words), 40)]
    return "\n\n".join(paragraphs)


def synthetic(index: int, size: int = 4096) -> bytes:
    """A ~4 KB story shaped like wire copy: paragraphs of about forty words, each story its own
    text except the 1 in `COPY_EVERY` that republishes an earlier one."""
    published = _START + index * _EVERY
    if index % COPY_EVERY == COPY_EVERY - 1:
        original = _body(index - 7, size)
        body = f"Republished {index}: as reported earlier.\n\n" + original.split("\n\n", 1)[-1]
    else:
        body = f"Story {index}.\n\n" + _body(index, size)
    message = {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": story_id("bench", str(index)),
        "source": "bench",
        "uri": str(index),
        "headline": f"Benchmark story {index}",
        "body": body[:size],
        "body_format": "text/plain",
        "firstcreated": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fetched_at": (published + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return json.dumps(message).encode()


def publish(config: Config, count: int) -> float:
    ensure_topics(config, [config.raw_topic, config.dlq_topic])
    producer = KafkaProducer(
        **config.kafka_client_options(),
        acks="all",
        linger_ms=50,
        batch_size=256 * 1024,
        compression_type="gzip",
    )
    started = time.perf_counter()
    for index in range(count):
        value = synthetic(index)
        producer.send(config.raw_topic, key=story_id("bench", str(index)).encode(), value=value)
        if index % 50_000 == 49_999:
            # Bounded in flight: with 1 MiB batches and no flush, kafka-python stalled at ~765k records.
            producer.flush()
    producer.flush()
    producer.close()
    return time.perf_counter() - started


def floor(config: Config, count: int, folder: Path) -> float:
    """Consume every record with kafka-python and write them with pyarrow: the work any chain must do."""
    started = time.perf_counter()
    consumer = KafkaConsumer(
        **config.kafka_client_options(), enable_auto_commit=False, max_partition_fetch_bytes=8 << 20
    )
    tps = [
        TopicPartition(config.raw_topic, p) for p in sorted(consumer.partitions_for_topic(config.raw_topic))
    ]
    ends = consumer.end_offsets(tps)
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    keys, values, offsets = [], [], []
    writer = None
    seen = 0
    while seen < count:
        for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
            for record in records:
                keys.append(record.key.decode())
                values.append(record.value)
                offsets.append(record.offset)
                seen += 1
        if len(keys) >= 50_000 or seen >= count:
            table = pa.table({"id": keys, "value": values, "offset": offsets})
            if writer is None:
                writer = pq.ParquetWriter(folder / "floor.parquet", table.schema, compression="zstd")
            writer.write_table(table)
            keys, values, offsets = [], [], []
        if all(consumer.position(tp) >= ends[tp] for tp in tps):
            break
    if writer is not None:
        writer.close()
    consumer.close()
    return time.perf_counter() - started


def peak_rss_with_children() -> int:
    """Peak RSS in KiB of this process plus that of each process it started, directly or not,
    that is still running (the workers and the server they fork from): a sum of peaks, so never
    less than the chain held at any one time."""
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue  # ended meanwhile
    mine = {str(os.getpid())}
    while True:
        more = {pid for pid, parent in parents.items() if parent in mine} - mine
        if not more:
            break
        mine |= more
    total = 0
    for pid in mine:
        try:
            total += int(Path(f"/proc/{pid}/status").read_text().split("VmHWM:")[1].split()[0])
        except (OSError, IndexError):
            continue
    return total


def chain_in_child(
    config: Config, output: Path, runner: str, extra_env: dict[str, str] | None = None
) -> tuple[float, int]:
    """The full chain in a child process: (seconds, peak RSS in KiB of the child and its cleaning
    workers)."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "WIRESTREAM_BOOTSTRAP_SERVERS": config.bootstrap_servers,
        "WIRESTREAM_RAW_TOPIC": config.raw_topic,
        "WIRESTREAM_DLQ_TOPIC": config.dlq_topic,
    }
    code = (
        "import time\n"
        "from benchmarks.pipeline import peak_rss_with_children\n"
        "from pipeline.run import run_until_caught_up\n"
        "from wirestream.config import load_config\n"
        "t = time.perf_counter()\n"
        f"run_until_caught_up(load_config(), {str(output)!r}, {runner!r})\n"
        "print(time.perf_counter() - t, peak_rss_with_children())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    seconds, rss = result.stdout.split()[-2:]
    return float(seconds), int(rss)


def bench_backfill(
    base: Config, sizes: list[int], repeats: int, runner: str, large_repeats: int | None = None
) -> None:
    large = f"; {large_repeats} at 1M and up" if large_repeats not in (None, repeats) else ""
    print(f"\n== backfill throughput, runner={runner} (median of {repeats}{large}) ==")
    print(f"{'stories':>9} {'floor/s':>9} {'chain/s':>9} {'ratio':>6} {'peak RSS MiB':>13}")
    rss_by_size = {}
    for size in sizes:
        config = replace(
            base, raw_topic=f"bench-{uuid.uuid4().hex[:8]}.raw", dlq_topic=f"bench-{uuid.uuid4().hex[:8]}.dlq"
        )
        publish(config, size)
        floors, chains, rss = [], [], []
        for _ in range(large_repeats if large_repeats and size >= 1_000_000 else repeats):
            with tempfile.TemporaryDirectory() as scratch:
                floors.append(size / floor(config, size, Path(scratch)))
                seconds, peak = chain_in_child(config, Path(scratch) / "out", runner)
                chains.append(size / seconds)
                rss.append(peak / 1024)
                assert sum(m["stats"]["rows"] for m in Dataset(Path(scratch) / "out").commits()) == size
        f, c, r = statistics.median(floors), statistics.median(chains), statistics.median(rss)
        rss_by_size[size] = r
        print(f"{size:>9} {f:>9.0f} {c:>9.0f} {c / f:>6.2f} {r:>13.0f}")
    if len(rss_by_size) > 1:
        smallest, largest = min(rss_by_size), max(rss_by_size)
        print(f"peak RSS {largest} vs {smallest}: {rss_by_size[largest] / rss_by_size[smallest]:.2f}x")


def _story_ids(output: Path) -> list[str]:
    """The ids of the table's current snapshot, read from its data files with pyarrow."""
    dataset = Dataset(output)
    return sorted(
        i
        for uri in dataset.committed_uris()
        for i in pq.read_table(uri, columns=["id"]).column("id").to_pylist()
    )


def bench_cluster(base: Config, size: int, repeats: int) -> None:
    """The Flink session cluster (`wirestream flink up`, two TaskManagers of one slot) over a
    4-partition topic at parallelism 1 and 2, each run checked against the DirectRunner's rows."""
    from wirestream.flink import FlinkCluster

    cluster = FlinkCluster(replace(base, flink_taskmanagers=2, flink_slots=1))
    cluster.up(2)  # idempotent
    config = replace(
        base,
        raw_topic=f"bench-{uuid.uuid4().hex[:8]}.raw",
        dlq_topic=f"bench-{uuid.uuid4().hex[:8]}.dlq",
        topic_partitions=4,
    )
    publish(config, size)
    with tempfile.TemporaryDirectory() as scratch:
        chain_in_child(config, Path(scratch) / "out", "direct")
        expected = _story_ids(Path(scratch) / "out")
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for parallelism in rates:
            with tempfile.TemporaryDirectory() as scratch:
                env = {"WIRESTREAM_FLINK_PARALLELISM": str(parallelism)}
                seconds, _ = chain_in_child(config, Path(scratch) / "out", "flink-cluster", env)
                assert _story_ids(Path(scratch) / "out") == expected, (
                    "the cluster's rows differ from direct's"
                )
                rates[parallelism].append(size / seconds)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(
        f"\n== Flink session cluster, 2 TaskManagers, {size} stories on 4 partitions (median of {repeats}) =="
    )
    print(f"parallelism 1: {one:.0f}/s  parallelism 2: {two:.0f}/s  scale-out {two / one:.2f}x")
    print(f"rows: {len(expected)}, the same ids as the DirectRunner's on every run")


def bench_latency(base: Config, rate: int, seconds: int) -> None:
    """Kafka append -> row visible in committed Parquet, at a steady publish rate, default settings."""
    config = replace(
        base, raw_topic=f"lat-{uuid.uuid4().hex[:8]}.raw", dlq_topic=f"lat-{uuid.uuid4().hex[:8]}.dlq"
    )
    ensure_topics(config, [config.raw_topic, config.dlq_topic])
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "out"
        env = {
            **os.environ,
            "WIRESTREAM_BOOTSTRAP_SERVERS": config.bootstrap_servers,
            "WIRESTREAM_RAW_TOPIC": config.raw_topic,
            "WIRESTREAM_DLQ_TOPIC": config.dlq_topic,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(output)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        seen: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            # Visibility as a reader sees it: a row counts once a committed snapshot lists its file.
            # The catalog is asked only when its database changed (every commit writes it), so that
            # the watching does not take the CPU the run being measured needs.
            known: set[str] = set()
            seen_state: tuple[int, int] | None = None
            while not stop.is_set():
                try:
                    stat = (output / "catalog.db").stat()
                except FileNotFoundError:
                    time.sleep(0.05)
                    continue
                if (stat.st_mtime_ns, stat.st_size) == seen_state:
                    time.sleep(0.05)
                    continue
                seen_state = (stat.st_mtime_ns, stat.st_size)
                for path in Dataset(output).committed_files():
                    if str(path) in known:
                        continue
                    known.add(str(path))
                    now = time.time()
                    for story in (
                        pq.read_table(path, columns=["id"], partitioning=None).column("id").to_pylist()
                    ):
                        seen.setdefault(story, now)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(8)  # let the continuous run start before the clock starts
        producer = KafkaProducer(**config.kafka_client_options(), acks="all", linger_ms=0)
        sent: dict[str, float] = {}
        started = time.time()
        for index in range(rate * seconds):
            target = started + index / rate
            time.sleep(max(0.0, target - time.time()))
            key = story_id("bench", str(index))
            producer.send(config.raw_topic, key=key.encode(), value=synthetic(index)).get(timeout=30)
            sent[key] = time.time()
        producer.close()
        deadline = time.time() + 60
        while len(seen.keys() & sent.keys()) < len(sent) and time.time() < deadline:
            time.sleep(0.2)
        stop.set()
        process.terminate()
        printed, _ = process.communicate(timeout=120)
        latencies = sorted(seen[k] - sent[k] for k in sent if k in seen)
        commits = sorted(float(c) for c in re.findall(r"\(commit ([0-9.]+)s\)", printed))
    missing = len(sent) - len(latencies)
    p50 = latencies[len(latencies) // 2]
    p95 = latencies[int(len(latencies) * 0.95)]
    print(f"\n== continuous latency at {rate} stories/s for {seconds}s (append -> committed) ==")
    print(f"p50 {p50:.2f}s  p95 {p95:.2f}s  max {latencies[-1]:.2f}s  not visible after 60s: {missing}")
    if commits:
        print(
            f"commit (place files + Iceberg snapshot) per batch over {len(commits)} batches: "
            f"median {commits[len(commits) // 2]:.3f}s  p95 {commits[int(len(commits) * 0.95)]:.3f}s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", default=None)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--large-repeats", type=int, default=1, help="repeats for sizes of 1M and up (~20 min each here)"
    )
    parser.add_argument("--runners", default="direct,prism,flink")
    parser.add_argument("--runner-size", type=int, default=20000)
    parser.add_argument("--latency-rate", type=int, default=100)
    parser.add_argument("--latency-seconds", type=int, default=60)
    parser.add_argument("--cluster-size", type=int, default=100000)
    parser.add_argument("--skip", default="", help="comma-separated: backfill,latency,runners,cluster")
    args = parser.parse_args()
    config = load_config(overrides={"bootstrap_servers": args.bootstrap_servers})
    if args.bootstrap_servers is None:
        LocalBroker(config).up()  # idempotent: reuses a running local broker
    skip = set(filter(None, args.skip.split(",")))
    print(f"machine: {os.cpu_count()} cores; bootstrap {config.bootstrap_servers}")
    if "backfill" not in skip:
        sizes = [int(s) for s in args.sizes.split(",")]
        bench_backfill(config, sizes, args.repeats, "direct", args.large_repeats)
    if "latency" not in skip:
        bench_latency(config, args.latency_rate, args.latency_seconds)
    if "runners" not in skip:
        for runner in args.runners.split(","):
            bench_backfill(config, [args.runner_size], args.repeats, runner)
    if "cluster" not in skip:
        bench_cluster(config, args.cluster_size, args.repeats)


if __name__ == "__main__":
    main()
