"""Figures on the real-copy set (`benchmarks/quality/real/*.yaml`: published news texts as scraped).

Every text runs through the pipeline's own functions, as the development set does: `clean_text`
for cleaning, byline and dateline; `detect_language`; `tag_text` for the seeded topics; and
`minhash.signatures` + `cluster_stories` over the whole set for near-duplicates. Pairs are all
pairs of the set: two texts of one `group` (one agency story on different sites) are duplicates,
every other pair is not.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from benchmarks.quality import SEEDED, Scores
from pipeline import minhash
from pipeline.clean import clean_text, detect_language, normalize_text
from pipeline.dedup import DEFAULT_LOOKBACK, DEFAULT_THRESHOLD, CommittedIndex, cluster_stories
from pipeline.tagging import Taxonomy, load_taxonomy, tag_text

__all__ = ["REAL", "RealResults", "evaluate_real", "load_real", "report_real"]

REAL = Path(__file__).resolve().parent / "real"
LANGUAGES = ("en", "ru", "uk", "de", "fr", "tr", "az", "no")


def load_real(folder: Path = REAL) -> list[dict[str, Any]]:
    """Every text of the set, in file and then list order."""
    texts: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        texts.extend(yaml.safe_load(path.read_text("utf-8"))["texts"])
    return texts


def published_date(text: dict[str, Any]) -> date:
    """The publication date of a text: `published` is a date, or "YYYY-MM" where the source gives
    only the month (the first of that month is returned)."""
    value = text["published"]
    if isinstance(value, date):
        return value
    year, month = str(value).split("-")[:2]
    return date(int(year), int(month), 1)


@dataclass
class RealResults:
    texts: int = 0
    groups: int = 0
    pairs: Scores = field(default_factory=Scores)
    pair_errors: list[str] = field(default_factory=list)
    furniture_total: int = 0
    furniture_removed: int = 0
    furniture_kept: list[str] = field(default_factory=list)
    content_total: int = 0
    content_lost: list[str] = field(default_factory=list)
    fields: dict[str, Counter[str]] = field(default_factory=dict)
    field_errors: list[str] = field(default_factory=list)
    topics: dict[str, Scores] = field(default_factory=dict)
    topics_by_language: dict[str, Scores] = field(default_factory=dict)
    topic_errors: list[str] = field(default_factory=list)
    language: Counter[str] = field(default_factory=Counter)
    language_by_label: dict[str, Counter[str]] = field(default_factory=dict)
    language_errors: list[str] = field(default_factory=list)


def _same(found: str | None, wanted: str | None) -> bool:
    def key(value: str | None) -> str:
        return re.sub(r"\W+", " ", normalize_text(value or "")).strip().casefold()

    return key(found) == key(wanted)


def _survives(line: str, kept: list[str]) -> bool:
    # A dateline or signature may be split off the front of a content line.
    return any(p == line or (line.endswith(p) and len(p) > len(line) / 2) for p in kept)


def _cleaning(text: dict[str, Any], results: RealResults) -> str:
    cleaned = clean_text(text.get("headline") or "", text["body"])
    kept = [p for p in cleaned.body.split("\n\n") if p]
    furniture = Counter(normalize_text(f).strip() for f in text.get("furniture") or [])
    for raw in text["body"].split("\n"):
        line = normalize_text(raw).strip()
        if not line:
            continue
        if furniture[line]:
            furniture[line] -= 1
            results.furniture_total += 1
            if line in kept:
                results.furniture_kept.append(f"{text['id']}: {line}")
            else:
                results.furniture_removed += 1
        else:
            results.content_total += 1
            if not _survives(line, kept):
                results.content_lost.append(f"{text['id']}: {line}")
    for name in ("byline", "dateline"):
        found, wanted = getattr(cleaned, name), text.get(name)
        counts = results.fields.setdefault(name, Counter())
        counts["labelled"] += bool(wanted)
        if found:
            counts["given"] += 1
            if _same(found, wanted):
                counts["right"] += 1
            else:
                results.field_errors.append(f"{text['id']}: {name} {found!r} (labelled {wanted!r})")
    return cleaned.body


def _tagging(taxonomy: Taxonomy, text: dict[str, Any], body: str, results: RealResults) -> None:
    headline = text.get("headline") or ""
    predicted = {t["topic"] for t in tag_text(taxonomy, headline, body)}
    expected = set(text.get("topics") or [])
    language = text["language"]
    for topic in SEEDED:
        hit, want = topic in predicted, topic in expected
        for scores in (
            results.topics.setdefault(topic, Scores()),
            results.topics_by_language.setdefault(language, Scores()),
        ):
            scores.tp += hit and want
            scores.fp += hit and not want
            scores.fn += want and not hit
        if hit != want:
            kind = "false positive" if hit else "missed"
            results.topic_errors.append(f"{text['id']}: {kind} {topic}")
    found = detect_language(headline + "\n" + body)
    right = found == language
    results.language[str(right)] += 1
    results.language_by_label.setdefault(language, Counter())[str(right)] += 1
    if not right:
        results.language_errors.append(f"{text['id']}: {found} (labelled {language})")


def _pairs(texts: list[dict[str, Any]], bodies: list[str], results: RealResults) -> None:
    """Clusters the whole set as the dedup stage would, then scores every pair of it."""
    ids = [t["id"] for t in texts]
    signatures = minhash.signatures(bodies)
    summaries = [((n, i), i, 0, sig) for n, (i, sig) in enumerate(zip(ids, signatures, strict=True))]
    verdicts = cluster_stories(summaries, CommittedIndex(), DEFAULT_THRESHOLD, DEFAULT_LOOKBACK)
    for a, b in combinations(range(len(texts)), 2):
        same = verdicts[ids[a]].cluster_id == verdicts[ids[b]].cluster_id
        group = texts[a].get("group")
        want = group is not None and group == texts[b].get("group")
        results.pairs.tp += same and want
        results.pairs.fp += same and not want
        results.pairs.fn += want and not same
        if same != want:
            sa, sb = signatures[a], signatures[b]
            jaccard = minhash.similarity(sa, sb) if sa and sb else 0.0
            kind = "missed duplicate" if want else "false link"
            results.pair_errors.append(f"{ids[a]} ~ {ids[b]}: {kind}, estimated Jaccard {jaccard:.2f}")


def evaluate_real(taxonomy: Taxonomy | None = None, folder: Path = REAL) -> RealResults:
    """Every figure of the real-copy set, with the texts behind each miss."""
    taxonomy = taxonomy or load_taxonomy()
    texts = load_real(folder)
    results = RealResults(texts=len(texts), groups=len({t["group"] for t in texts if t.get("group")}))
    bodies = []
    for text in texts:
        body = _cleaning(text, results)
        _tagging(taxonomy, text, body, results)
        bodies.append(body)
    _pairs(texts, bodies, results)
    return results


def _precision(counts: Counter[str]) -> str:
    given = counts["given"]
    share = counts["right"] / given if given else 1.0
    return f"{share:.3f} ({counts['right']}/{given} given; {counts['labelled']} labelled)"


def report_real(results: RealResults, verbose: bool = True) -> str:
    p = results.pairs
    languages = Counter(results.language_by_label)
    out = [
        f"REAL-COPY SET (real/*.yaml: {results.texts} published texts as scraped, {results.groups} groups "
        "of one agency story on different sites; nothing was tuned on it)",
        "",
        f"Near-duplicates (all {results.texts * (results.texts - 1) // 2} pairs; same group = duplicate)",
        f"  pair precision {p.precision:.3f}  recall {p.recall:.3f}  F1 {p.f1:.3f}"
        f"  ({p.tp + p.fn} duplicate pairs; target P>=0.97 R>=0.95)",
        "",
        "Cleaning",
        f"  furniture lines removed {results.furniture_removed}/{results.furniture_total}"
        f" ({100 * results.furniture_removed / max(results.furniture_total, 1):.1f}%; target >=95%)",
        f"  content lines lost      {len(results.content_lost)}/{results.content_total}  (target 0)",
        f"  byline precision   {_precision(results.fields.get('byline', Counter()))}",
        f"  dateline precision {_precision(results.fields.get('dateline', Counter()))}  (empty is not wrong)",
        "",
        "Seeded topics (target P>=0.95 R>=0.90)",
        f"  {'topic':12s} {'P':>6s} {'R':>6s}  support",
    ]
    for topic, s in results.topics.items():
        out.append(f"  {topic:12s} {s.precision:6.3f} {s.recall:6.3f}  {s.tp + s.fn:4d}")
    out.append(f"  {'language':12s} {'P':>6s} {'R':>6s}  support  texts  language detected")
    for language in sorted(languages):
        s = results.topics_by_language[language]
        counts = results.language_by_label[language]
        out.append(
            f"  {language:12s} {s.precision:6.3f} {s.recall:6.3f}  {s.tp + s.fn:7d}  {sum(counts.values()):5d}"
            f"  {counts['True']}/{sum(counts.values())}"
        )
    right = results.language["True"]
    total = right + results.language["False"]
    out.append(f"  language accuracy {right / max(total, 1):.3f} ({right}/{total}; target >=0.95)")
    if verbose:
        misses = (
            results.pair_errors
            + results.topic_errors
            + results.language_errors
            + [f"content lost: {x}" for x in results.content_lost]
            + [f"furniture kept: {x}" for x in results.furniture_kept]
            + [f"field: {x}" for x in results.field_errors]
        )
        if misses:
            out += ["", "Misses (real-copy set)"] + [f"  {m}" for m in misses]
    return "\n".join(out)
