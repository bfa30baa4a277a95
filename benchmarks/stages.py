"""Speed of the dedup and tagging stages: `python -m benchmarks.stages [--stories N] [--repeats R]`.

Synthetic 400-word stories (news vocabulary from the evaluation set plus invented words, with topic
phrases at about the rate real copy carries them). Rates are stories per CPU-second of this process
(time.process_time), so they read as stories/s/core even on a shared machine; each figure is the
median of the repeats. The baseline is measured in the same run: datasketch's MinHash (128
permutations) over the same 5-word shingles, as the stage would use it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import random
import re
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from pipeline import minhash
from pipeline.dedup import CommittedIndex, cluster_stories
from pipeline.tagging import load_taxonomy, tag_text

PHRASES = [
    "grain deal", "talks", "sanctions", "Paul Whelan", "annexation", "natural gas", "diplomats",
    "referendum", "Russia", "Ukraine", "prisoner swap", "military aid", "detained", "Lavrov",
    "price cap", "disinformation", "Black Sea", "foreign minister",
]  # fmt: skip


def synthetic_stories(n: int, words: int = 400, seed: int = 1, dense: bool = True) -> list[tuple[str, str]]:
    """(headline, body) pairs: topic phrases at 1% of words among real words of the labelled set and
    invented ones (``dense``: the labelled set is all about these topics, so its words alone hit the
    taxonomy far more often than general news), or among invented words only."""
    from benchmarks.quality import _load

    rng = random.Random(seed)
    stories = _load("stories.yaml")["stories"]
    real = sorted({w for s in stories for w in re.findall(r"[A-Za-z']+", s["body"])}) if dense else []
    vocab = real + [
        "".join(rng.choice("abcdefghiklmnoprstuvw") for _ in range(rng.randint(3, 9))) for _ in range(4000)
    ]
    out = []
    for _ in range(n):
        body = []
        for i in range(words):
            body.append(rng.choice(PHRASES) if rng.random() < 0.01 else rng.choice(vocab))
            if i % 18 == 17:
                body[-1] += "."
        out.append((" ".join(rng.choice(vocab) for _ in range(8)).capitalize(), " ".join(body)))
    return out


def rate(work: Callable[[], int], repeats: int) -> float:
    """Median stories per CPU-second over ``repeats`` runs of ``work`` (which returns its count)."""
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        count = work()
        rates.append(count / (time.process_time() - start))
    return statistics.median(rates)


def _counted(work: Callable[[], object], count: int) -> int:
    work()
    return count


def stage_costs(count: int, repeats: int) -> None:
    """CPU per story of each pipeline stage's plain functions on the pipeline benchmark's 4 KB
    stories, outside Beam: where a backfill's time goes, and the most one core could do."""
    import pyarrow as pa

    from benchmarks.pipeline import synthetic
    from pipeline.clean import clean_chunk, detect_language
    from pipeline.dedup import sign_rows, summarise
    from pipeline.parse import parse_record
    from pipeline.rows import CHUNK_SIZE
    from pipeline.tagging import tag_row
    from schemas import CLEAN_SCHEMA, story_id

    # Keyed as benchmarks.pipeline publishes them.
    records = [
        {
            "topic": "t",
            "partition": 0,
            "offset": i,
            "key": story_id("bench", str(i)).encode(),
            "value": synthetic(i),
            "timestamp_ms": 0,
        }
        for i in range(count)
    ]
    taxonomy = load_taxonomy()
    parsed = [story for story, _letter in map(parse_record, records) if story is not None]
    # Cleaned a chunk at a time, as the pipeline cleans (a chunk's languages in a second pass).
    chunks = [parsed[i : i + CHUNK_SIZE] for i in range(0, len(parsed), CHUNK_SIZE)]
    cleaned = [row for chunk in chunks for row in clean_chunk(chunk, "bench")[0]]
    signed = [row for i in range(0, len(cleaned), 256) for row in sign_rows(cleaned[i : i + 256])]
    tagged = [tag_row(r, taxonomy) for r in signed]
    steps: list[tuple[str, Callable[[], object]]] = [
        ("parse + validate", lambda: [parse_record(r) for r in records]),
        ("clean (all of it)", lambda: [clean_chunk(chunk, "bench") for chunk in chunks]),
        (
            "  of which language ID",
            lambda: [detect_language(r["headline"] + "\n" + r["body"]) for r in cleaned],
        ),
        (
            "MinHash signatures",
            lambda: [sign_rows(cleaned[i : i + 256]) for i in range(0, len(cleaned), 256)],
        ),
        ("dedup summaries", lambda: [summarise(r) for r in signed]),
        ("tag topics", lambda: [tag_row(r, taxonomy) for r in signed]),
        ("rows to Arrow", lambda: pa.Table.from_pylist(tagged, schema=CLEAN_SCHEMA)),
    ]
    print(f"\n{count} pipeline-benchmark stories (~4 KB), CPU per story by stage, median of {repeats}")
    total = 0.0
    for label, work in steps:
        micros = 1e6 / rate(functools.partial(_counted, work, count), repeats)
        if not label.startswith(" "):
            total += micros
        print(f"  {label:26s} {micros:8.0f} us")
    print(f"  {'sum':26s} {total:8.0f} us  -> at most {1e6 / total:,.0f} stories/s on one core before Beam")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__)
    parser.add_argument("--stories", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["costs"], help="only the pipeline's per-stage costs")
    args = parser.parse_args()
    if args.only == "costs":
        stage_costs(2000, args.repeats)
        return
    stories = synthetic_stories(args.stories)
    bodies = [b for _h, b in stories]
    print(f"{len(stories)} synthetic stories of 400 words, median of {args.repeats} runs, stories/s per core")

    def signing(sign: Callable[[list[str]], object]) -> Callable[[], int]:
        def work() -> int:
            for i in range(0, len(bodies), 500):  # the Sign step's chunks
                sign(bodies[i : i + 500])
            return len(bodies)

        return work

    ours_rate = rate(signing(minhash.signatures), args.repeats)
    native = "compiled" if minhash._native() is not None else "not built: NumPy"
    print(f"  MinHash (pipeline.minhash, {native}, chunks of 500)  {ours_rate:10,.0f}")
    spec_rate = rate(signing(minhash.spec_signatures), args.repeats)
    print(f"  MinHash, its NumPy specification, chunks of 500        {spec_rate:10,.0f}")
    single = bodies[:500]
    single_rate = rate(lambda: sum(1 for b in single if minhash.signature(b) is not None), args.repeats)
    print(f"  MinHash, one story per call                            {single_rate:10,.0f}")
    try:
        import datasketch
    except ImportError:
        print("  datasketch not installed (pip install -e '.[dev]'): no baseline")
    else:
        sample = bodies[:300]

        def baseline() -> int:
            for body in sample:
                words = re.findall(r"\w+", body.lower())
                m = datasketch.MinHash(num_perm=128)
                m.update_batch([" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)])
            return len(sample)

        base_rate = rate(baseline, max(3, args.repeats // 2))
        print(f"  MinHash (datasketch 128 permutations, baseline)        {base_rate:10,.0f}")
        print(f"  ratio                                                  {ours_rate / base_rate:10.1f}x")

    sigs = minhash.signatures(bodies)
    summaries = [
        ((i, s), s, 0, sig) for i, (s, sig) in enumerate(zip(map(str, range(len(sigs))), sigs, strict=True))
    ]
    cluster = rate(
        lambda: len(cluster_stories(summaries, CommittedIndex(), 0.4, timedelta(days=7))), args.repeats
    )
    print(f"  LSH candidates + verification + components (threshold 0.4) {cluster:10,.0f}")

    taxonomy = load_taxonomy()
    python = dataclasses.replace(taxonomy, native=None)  # the Python specification: the baseline
    if taxonomy.native is None:
        print("  Tagging: the compiled core is not built (no Rust at install); both rows run Python")
    for label, sample in (
        ("topic-dense words", stories),
        ("neutral words", synthetic_stories(args.stories, dense=False)),
    ):
        tagging = rate(
            lambda s=sample: sum(1 for h, b in s if tag_text(taxonomy, h, b) is not None), args.repeats
        )
        baseline = rate(
            lambda s=sample[:1000]: sum(1 for h, b in s if tag_text(python, h, b) is not None), args.repeats
        )
        tags = sum(len(tag_text(taxonomy, h, b)) for h, b in sample) / len(sample)
        print(f"  Tagging, {label:18s} ({tags:.1f} tags/story)           {tagging:10,.0f}")
        print(
            f"    same in Python (the specification), ratio {tagging / baseline:4.1f}x     {baseline:10,.0f}"
        )
    stage_costs(min(args.stories, 2000), args.repeats)


if __name__ == "__main__":
    main()
