"""Figures on the real-copy set (`benchmarks/quality/real/*.yaml`: published news texts as scraped).

Every text runs through the pipeline's own functions, as the development set does: `clean_text`
for cleaning, byline and dateline; `detect_language`; `tag_text` for the seeded topics; and
`minhash.signatures` + `cluster_stories` over the whole set for near-duplicates. Pairs are all
pairs of the set: two texts of one `group` (one agency story on different sites) are duplicates,
every other pair is not.

The set is split by a hash of each text's URL (`split_of`): about one text in three is held out.
Cleaning rules are written from the development part's misses only; cleaning, byline, dateline and
language figures are printed for each part, so the held-out figures show what the rules do on
pages nobody looked at while writing them. The same holds for the taxonomy's terms: per-topic and
per-language topic figures are printed for each part as well.
"""

from __future__ import annotations

import hashlib
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

__all__ = ["REAL", "RealResults", "evaluate_real", "load_real", "report_real", "split_of"]

REAL = Path(__file__).resolve().parent / "real"
LANGUAGES = ("en", "ru", "uk", "de", "fr", "tr", "az", "no")
SPLITS = ("dev", "held-out")


def split_of(text: dict[str, Any]) -> str:
    """The part of the set a text is in: "held-out" where its URL's SHA-256 starts with a byte
    divisible by 3 (108 of the 296 texts, every language among them), else "dev". A hash of the
    URL, not of the list order, so a text keeps its part when texts are added."""
    return "held-out" if hashlib.sha256(text["url"].encode("utf-8")).digest()[0] % 3 == 0 else "dev"


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
    split_topics: dict[str, dict[str, Scores]] = field(default_factory=dict)
    split_languages: dict[str, dict[str, Scores]] = field(default_factory=dict)
    language: Counter[str] = field(default_factory=Counter)
    language_by_label: dict[str, Counter[str]] = field(default_factory=dict)
    language_errors: list[str] = field(default_factory=list)
    splits: dict[str, RealResults] = field(default_factory=dict)


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
    split = split_of(text)
    for topic in SEEDED:
        hit, want = topic in predicted, topic in expected
        for scores in (
            results.topics.setdefault(topic, Scores()),
            results.topics_by_language.setdefault(language, Scores()),
            results.split_topics.setdefault(split, {}).setdefault(topic, Scores()),
            results.split_languages.setdefault(split, {}).setdefault(language, Scores()),
        ):
            scores.tp += hit and want
            scores.fp += hit and not want
            scores.fn += want and not hit
        if hit != want:
            kind = "false positive" if hit else "missed"
            results.topic_errors.append(f"{text['id']} ({split}): {kind} {topic}")
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
        if split_of(texts[a]) == split_of(texts[b]):  # a pair inside one part, scored there too
            part = results.splits.setdefault(split_of(texts[a]), RealResults()).pairs
            part.tp += same and want
            part.fp += same and not want
            part.fn += want and not same
        if same != want:
            sa, sb = signatures[a], signatures[b]
            contained = minhash.containment(sa, sb) if sa and sb else 0.0
            shared = minhash.shared_shingles(sa, sb) if sa and sb else 0.0
            kind = "missed duplicate" if want else "false link"
            results.pair_errors.append(
                f"{ids[a]} ~ {ids[b]}: {kind}, estimated containment {contained:.2f},"
                f" {shared:.1f} shared shingles"
            )


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
        _split_figures(text, results.splits.setdefault(split_of(text), RealResults()))
    _pairs(texts, bodies, results)
    return results


def _split_figures(text: dict[str, Any], part: RealResults) -> None:
    """Cleaning, byline, dateline and language figures of one text, counted in its split's part."""
    part.texts += 1
    body = _cleaning(text, part)
    right = detect_language((text.get("headline") or "") + "\n" + body) == text["language"]
    part.language[str(right)] += 1


def _split_lines(results: RealResults) -> list[str]:
    out = [
        "",
        "Cleaning and language by split (split_of: URL hash; cleaning rules written from dev only)",
        f"  {'split':9s} {'texts':>5s}  {'furniture removed':>20s}  {'content lost':>12s}  "
        f"{'byline P':>9s}  {'dateline P':>10s}  language",
    ]
    for name in SPLITS:
        part = results.splits.get(name)
        if part is None:
            continue
        fields = []
        for key in ("byline", "dateline"):
            counts = part.fields.get(key, Counter())
            fields.append(f"{counts['right']}/{counts['given']}")
        right, total = part.language["True"], part.language["True"] + part.language["False"]
        removed = f"{part.furniture_removed}/{part.furniture_total}"
        share = 100 * part.furniture_removed / max(part.furniture_total, 1)
        out.append(
            f"  {name:9s} {part.texts:5d}  {removed:>11s} ({share:5.1f}%)  "
            f"{len(part.content_lost):>5d}/{part.content_total:<6d}  {fields[0]:>9s}  {fields[1]:>10s}  "
            f"{right}/{total} ({right / max(total, 1):.3f})"
        )
    return out


def _precision(counts: Counter[str]) -> str:
    given = counts["given"]
    share = counts["right"] / given if given else 1.0
    return f"{share:.3f} ({counts['right']}/{given} given; {counts['labelled']} labelled)"


def _support(scores: dict[str, Scores]) -> int:
    return sum(s.tp + s.fn for s in scores.values())


def report_real(results: RealResults, verbose: bool = True) -> str:
    p = results.pairs
    languages = Counter(results.language_by_label)
    out = [
        f"REAL-COPY SET (real/*.yaml: {results.texts} published texts as scraped, {results.groups} groups "
        "of one agency story on different sites; rules written from its dev part only)",
        "",
        f"Near-duplicates (all {results.texts * (results.texts - 1) // 2} pairs; same group = duplicate)",
        f"  pair precision {p.precision:.3f}  recall {p.recall:.3f}  F1 {p.f1:.3f}"
        f"  ({p.tp + p.fn} duplicate pairs; target P>=0.97 R>=0.95)",
        *(
            f"  {name:8s} half  P {part.pairs.precision:.3f}  R {part.pairs.recall:.3f}  F1 {part.pairs.f1:.3f}"
            f"  ({part.pairs.tp + part.pairs.fn} duplicate pairs with both texts in it)"
            for name, part in sorted(results.splits.items())
        ),
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
    for split in SPLITS:
        topics, by_language = results.split_topics.get(split, {}), results.split_languages.get(split, {})
        out.append(f"  {split} half, P/R ({_support(topics)} topic labels):")
        out.append("    " + "  ".join(f"{t} {s.precision:.3f}/{s.recall:.3f}" for t, s in topics.items()))
        out.append(
            "    "
            + "  ".join(f"{la} {s.precision:.2f}/{s.recall:.2f}" for la, s in sorted(by_language.items()))
        )
    right = results.language["True"]
    total = right + results.language["False"]
    out.append(f"  language accuracy {right / max(total, 1):.3f} ({right}/{total}; target >=0.95)")
    out += _split_lines(results)
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
