"""`python -m benchmarks.quality.containment`: how far a length-blind near-duplicate measure can go
on the real-copy set, measured exactly (every shingle of every text, no sketch).

For every pair of the set it takes the containment over the shorter copy, |A ∩ B| / min(|A|, |B|),
of word-shingle sets, and prints pair precision and recall at several thresholds, plus the highest
recall that keeps precision at 0.97. Variants: shingles of 3, 4 or 5 words; bodies cleaned by
`pipeline.clean.clean_text` or by the set's own furniture labels; quoted speech kept or left out
(independent reports of one event quote the same statement word for word, copies of one agency
story share the reporter's own sentences). A sketch (MinHash and LSH) can only approach these
figures, so they bound what a containment verifier behind the LSH candidates can reach. The last
two lines give, at the same thresholds, the pipeline's own measure (`minhash.containment`:
containment over the shorter copy estimated from the signatures, quoted speech left out, 5-word
shingles) and exact Jaccard similarity. All figures here score each pair on its own; the dedup
stage links the connected components of the pairs it finds (`python -m benchmarks.quality`).

Then the shared-passage rule beside the ratio (`minhash.near_duplicate`): a pair is called when its
containment reaches the threshold, or when it shares at least N shingles (a passage of ~N+4 words)
with a containment of at least a floor; exact on the shingle sets of the pipeline's bodies (5-word
shingles, quoted speech left out), then from the signatures, on the whole set and on each part
(`split_of`), with the most shingles any two texts outside one group share.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from itertools import combinations
from typing import Any

from benchmarks.quality.real_copy import load_real, split_of
from pipeline import minhash
from pipeline.clean import clean_text, normalize_text
from pipeline.dedup import DEFAULT_THRESHOLD

_WORD = re.compile(r"\w+")
# Quoted speech in the quotation marks of the set's languages (a run of 20+ characters for ‘…’,
# which also serves as an apostrophe).
_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"|«[^»]*»|„[^“”]*[“”]|‘[^’]{20,}’")
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)
PASSAGES = (25, 30, 35, 40, 50)  # shared shingles
FLOORS = (0.1, 0.15, 0.2, 0.3)
TARGET_PRECISION = 0.97


def shingles(text: str, size: int) -> set[tuple[str, ...]]:
    """The set of ``size``-word shingles of ``text`` (one shingle of all words when shorter)."""
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}


def without_furniture(text: dict[str, Any]) -> str:
    """The body without the lines the set labels as furniture."""
    furniture = {normalize_text(line).strip() for line in text["furniture"]}
    return "\n".join(
        line for line in text["body"].split("\n") if normalize_text(line).strip() not in furniture
    )


def containment_pairs(bodies: list[str], size: int, jaccard: bool = False) -> list[tuple[int, int, float]]:
    """(i, j, containment over the shorter copy) for every pair sharing at least one shingle; with
    ``jaccard``, their Jaccard similarity instead (what the pipeline's signatures estimate)."""
    sets = [shingles(body, size) for body in bodies]
    out = []
    for a, b in combinations(range(len(sets)), 2):
        shared = len(sets[a] & sets[b])
        if shared:
            whole = len(sets[a] | sets[b]) if jaccard else min(len(sets[a]), len(sets[b]))
            out.append((a, b, shared / whole))
    return out


def shared_pairs(bodies: list[str], size: int) -> list[tuple[int, int, float, int]]:
    """(i, j, containment over the shorter copy, shared shingles) for every pair sharing one."""
    sets = [shingles(body, size) for body in bodies]
    out = []
    for a, b in combinations(range(len(sets)), 2):
        if shared := len(sets[a] & sets[b]):
            out.append((a, b, shared / min(len(sets[a]), len(sets[b])), shared))
    return out


def passage_rule(
    pairs: Iterable[tuple[int, int, float, float]], threshold: float, passage: float, floor: float
) -> list[tuple[int, int, float]]:
    """The pairs with a score of 1 where the rule calls them (containment at least ``threshold``,
    or ``passage`` shared shingles and containment at least ``floor``), else 0, for `scores`."""
    return [(a, b, float(c >= threshold or (shared >= passage and c >= floor))) for a, b, c, shared in pairs]


def scores(
    pairs: Iterable[tuple[int, int, float]], duplicates: set[tuple[int, int]], threshold: float
) -> tuple[float, float]:
    """Pair (precision, recall) when a pair at or above ``threshold`` is called a duplicate."""
    called = {(a, b) for a, b, c in pairs if c >= threshold}
    tp = len(called & duplicates)
    precision = tp / len(called) if called else 1.0
    return precision, tp / len(duplicates) if duplicates else 1.0


def report() -> str:
    texts = load_real()
    groups = [t.get("group") for t in texts]
    duplicates = {
        (a, b) for a, b in combinations(range(len(texts)), 2) if groups[a] and groups[a] == groups[b]
    }
    cleaners: dict[str, Callable[[dict[str, Any]], str]] = {
        "clean_text": lambda t: clean_text(t.get("headline") or "", t["body"]).body,
        "labels": without_furniture,
    }
    header = "  ".join(f"c>={t:.1f} P/R " for t in THRESHOLDS)
    out = [
        f"Containment over the shorter copy, exact, on the real-copy set ({len(texts)} texts, "
        f"{len(duplicates)} duplicate pairs)",
        f"  {'body':10s} {'quotes':7s} {'words':5s}  {header}  best R at P>={TARGET_PRECISION}",
    ]
    for name, clean in cleaners.items():
        cleaned = [clean(t) for t in texts]
        for quotes in ("kept", "left"):
            bodies = cleaned if quotes == "kept" else [_QUOTED.sub(" ", body) for body in cleaned]
            for size in (3, 4, 5):
                pairs = containment_pairs(bodies, size)
                cells = []
                for threshold in THRESHOLDS:
                    p, r = scores(pairs, duplicates, threshold)
                    cells.append(f"{p:4.2f}/{r:4.2f}   ")
                best = max(
                    (
                        (r, t)
                        for t in (x / 100 for x in range(5, 100, 5))
                        for p, r in [scores(pairs, duplicates, t)]
                        if p >= TARGET_PRECISION
                    ),
                    default=(0.0, 1.0),
                )
                out.append(
                    f"  {name:10s} {quotes:7s} {size:5d}  {'  '.join(cells)}  {best[0]:.2f} (c>={best[1]:.2f})"
                )
    bodies = [cleaners["clean_text"](t) for t in texts]
    sigs = minhash.signatures(bodies)
    estimated = [
        (a, b, minhash.containment(sa, sb))
        for (a, sa), (b, sb) in combinations(enumerate(sigs), 2)
        if sa is not None and sb is not None
    ]
    cells = [f"{p:4.2f}/{r:4.2f}   " for p, r in (scores(estimated, duplicates, t) for t in THRESHOLDS)]
    out.append(
        f"  the pipeline's estimate (signatures), clean_text, quotes left, {minhash.SHINGLE} words: {'  '.join(cells)}"
    )
    pairs = containment_pairs(bodies, minhash.SHINGLE, jaccard=True)
    cells = [f"{p:4.2f}/{r:4.2f}   " for p, r in (scores(pairs, duplicates, t) for t in THRESHOLDS)]
    out.append(f"  Jaccard (exact), clean_text, quotes kept, {minhash.SHINGLE} words:     {'  '.join(cells)}")
    out.extend(_passage_lines(texts, bodies, sigs, duplicates))
    return "\n".join(out)


def _passage_lines(
    texts: list[dict[str, Any]], bodies: list[str], sigs: list[bytes | None], duplicates: set[tuple[int, int]]
) -> list[str]:
    plain = [minhash.unquoted(body.lower()) for body in bodies]
    exact = [(a, b, c, float(n)) for a, b, c, n in shared_pairs(plain, minhash.SHINGLE)]
    estimated = [
        (a, b, minhash.containment(sa, sb), minhash.shared_shingles(sa, sb))
        for (a, sa), (b, sb) in combinations(enumerate(sigs), 2)
        if sa is not None and sb is not None
    ]
    parts = {"whole": lambda a, b: True} | {
        name: (lambda a, b, name=name: split_of(texts[a]) == split_of(texts[b]) == name)
        for name in ("dev", "held-out")
    }
    most = max((n for a, b, _c, n in exact if (a, b) not in duplicates), default=0)
    out = [
        "",
        f"Shared passage beside the ratio: called when containment >= {DEFAULT_THRESHOLD} or when the"
        f" pair shares >= N shingles with containment >= floor ({minhash.SHINGLE}-word shingles, quotes left"
        f" out; the most shingles two texts outside one group share: {most:.0f})",
        f"  {'measure':9s} {'N':>3s} {'floor':>5s}  " + "  ".join(f"{name:>8s} P/R  " for name in parts),
    ]
    for measure, pairs in (("exact", exact), ("estimated", estimated)):
        for passage in PASSAGES:
            for floor in FLOORS:
                called = passage_rule(pairs, DEFAULT_THRESHOLD, passage, floor)
                cells = []
                for inside in parts.values():
                    p, r = scores(
                        [x for x in called if inside(x[0], x[1])],
                        {d for d in duplicates if inside(*d)},
                        1.0,
                    )
                    cells.append(f"  {p:4.2f}/{r:4.2f}   ")
                out.append(f"  {measure:9s} {passage:3d} {floor:5.2f}  " + "  ".join(cells))
    return out


def main() -> None:
    argparse.ArgumentParser(prog="python -m benchmarks.quality.containment", description=__doc__).parse_args()
    print(report())


if __name__ == "__main__":
    main()
