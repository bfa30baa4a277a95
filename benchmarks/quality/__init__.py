"""Story-quality evaluation on the labelled set in this folder: `python -m benchmarks.quality`.

Prints precision, recall and F1 per topic (tagging), pair precision, recall and F1 for near-duplicate
detection, and furniture lines removed against content lines lost for cleaning, plus the fields
(byline, dateline, credit, language) the cleaning stage extracts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline import minhash
from pipeline.clean import clean_text, detect_language, normalize_text
from pipeline.dedup import DEFAULT_LOOKBACK, DEFAULT_THRESHOLD, CommittedIndex, cluster_stories
from pipeline.tagging import Taxonomy, load_taxonomy, tag_text

__all__ = ["evaluate", "report", "HERE"]

HERE = Path(__file__).resolve().parent
SEEDED = ("detainees", "grain_deal", "annexation")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((HERE / name).read_text("utf-8"))


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Results:
    topics: dict[str, Scores] = field(default_factory=dict)
    tagging_errors: list[str] = field(default_factory=list)
    language: Counter[str] = field(default_factory=Counter)
    language_errors: list[str] = field(default_factory=list)
    dedup: Scores = field(default_factory=Scores)
    dedup_by_label: dict[str, Counter[str]] = field(default_factory=dict)
    dedup_errors: list[str] = field(default_factory=list)
    furniture_total: int = 0
    furniture_removed: int = 0
    content_total: int = 0
    content_lost: list[str] = field(default_factory=list)
    furniture_kept: list[str] = field(default_factory=list)
    fields_total: int = 0
    fields_wrong: list[str] = field(default_factory=list)
    stories: int = 0
    pairs: int = 0


def _evaluate_tagging(taxonomy: Taxonomy, stories: list[dict[str, Any]], results: Results) -> None:
    for topic in taxonomy.topics:
        results.topics[topic.id] = Scores()
    for story in stories:
        cleaned = clean_text(story["headline"], story["body"])
        predicted = {t["topic"] for t in tag_text(taxonomy, story["headline"], cleaned.body)}
        expected = set(story["topics"])
        for topic_id, scores in results.topics.items():
            hit, want = topic_id in predicted, topic_id in expected
            scores.tp += hit and want
            scores.fp += hit and not want
            scores.fn += want and not hit
            if hit != want:
                kind = "false positive" if hit else "missed"
                results.tagging_errors.append(f"{story['id']}: {kind} {topic_id}")
        language = detect_language(story["headline"] + "\n" + cleaned.body)
        results.language[str(language == story["language"])] += 1
        if language != story["language"]:
            results.language_errors.append(f"{story['id']}: {language} (labelled {story['language']})")


def _copy(story: dict[str, Any], spec: dict[str, Any]) -> tuple[str, str]:
    """A republished copy of a story: (headline, raw body with the site's furniture)."""
    paragraphs = [p for p in story["body"].split("\n") if p.strip()]
    paragraphs = [p for i, p in enumerate(paragraphs) if i not in set(spec.get("drop") or [])]
    body = "\n".join(paragraphs)
    for old, new in spec.get("replace") or []:
        if old not in body:
            raise ValueError(f"pairs.yaml: {old!r} is not in {spec['from']}")
        body = body.replace(old, new)
    lines = [*(spec.get("prepend") or []), body, *(spec.get("append") or [])]
    return spec.get("headline") or story["headline"], "\n".join(lines)


def _evaluate_dedup(stories: list[dict[str, Any]], pairs: list[dict[str, Any]], results: Results) -> None:
    """Pairs scored by clustering the whole corpus, as the stage would: every story plus the copies."""
    by_id = {s["id"]: s for s in stories}
    docs: dict[str, tuple[str, str]] = {s["id"]: (s["headline"], s["body"]) for s in stories}
    names = []
    for index, pair in enumerate(pairs):
        ends = []
        for side in ("a", "b"):
            ref = pair[side]
            if isinstance(ref, str):
                ends.append(ref)
            else:
                name = f"copy-{index}-{side}"
                docs[name] = _copy(by_id[ref["from"]], ref)
                ends.append(name)
        names.append(tuple(ends))
    ids = list(docs)
    bodies = [clean_text(*docs[i]).body for i in ids]
    summaries = [
        ((n, i), i, 0, sig) for n, (i, sig) in enumerate(zip(ids, minhash.signatures(bodies), strict=True))
    ]
    verdicts = cluster_stories(summaries, CommittedIndex(), DEFAULT_THRESHOLD, DEFAULT_LOOKBACK)
    for pair, (a, b) in zip(pairs, names, strict=True):
        same = verdicts[a].cluster_id == verdicts[b].cluster_id
        want = pair["label"] == "duplicate"
        results.dedup.tp += same and want
        results.dedup.fp += same and not want
        results.dedup.fn += want and not same
        results.dedup_by_label.setdefault(pair["label"], Counter())["flagged" if same else "not flagged"] += 1
        if same != want:
            sa, sb = minhash.signature(bodies[ids.index(a)]), minhash.signature(bodies[ids.index(b)])
            contained = minhash.containment(sa, sb) if sa and sb else 0.0
            results.dedup_errors.append(f"{a} ~ {b} ({pair['label']}): estimated containment {contained:.2f}")
    results.pairs = len(pairs)


def _paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n\n") if p]


def _survives(line: str, kept: list[str]) -> bool:
    line = re.sub(r"\[([^\[\]]{1,60})\[", r"[\1]", line)
    # A wire dateline may be split off the front of a content line.
    return any(p == line or (line.endswith(p) and len(p) > len(line) / 2) for p in kept)


def _evaluate_cleaning(pages: list[dict[str, Any]], results: Results) -> None:
    for page in pages:
        fmt = page.get("format", "text/plain")
        cleaned = clean_text(page["headline"], page["body"], fmt)
        kept = _paragraphs(cleaned.body)
        if fmt == "text/html":
            body = cleaned.body
            for line in page["content"]:
                results.content_total += 1
                if normalize_text(line) not in body:
                    results.content_lost.append(f"{page['id']}: {line}")
            for text in page["furniture"]:
                results.furniture_total += 1
                if text in body:
                    results.furniture_kept.append(f"{page['id']}: {text}")
                else:
                    results.furniture_removed += 1
        else:
            furniture = Counter(
                normalize_text(f) for f in page.get("furniture", []) + page.get("signature", [])
            )
            for raw in page["body"].split("\n"):
                line = normalize_text(raw).strip()
                if not line:
                    continue
                if furniture[line]:
                    furniture[line] -= 1
                    results.furniture_total += 1
                    if line in kept:
                        results.furniture_kept.append(f"{page['id']}: {line}")
                    else:
                        results.furniture_removed += 1
                else:
                    results.content_total += 1
                    if not _survives(line, kept):
                        results.content_lost.append(f"{page['id']}: {line}")
        for name in ("byline", "dateline", "credit", "title"):
            if name in page:
                results.fields_total += 1
                if getattr(cleaned, name) != page[name]:
                    results.fields_wrong.append(f"{page['id']}: {name} {getattr(cleaned, name)!r}")


def evaluate(taxonomy: Taxonomy | None = None, held_out: bool = False) -> Results:
    """Every figure of the development set (or of the held-out set), with the items behind each miss."""
    taxonomy = taxonomy or load_taxonomy()
    stories = _load("stories.yaml")["stories"]
    if held_out:
        data = _load("heldout.yaml")
        results = Results(stories=len(data["stories"]))
        _evaluate_tagging(taxonomy, data["stories"], results)
        _evaluate_dedup(stories + data["stories"], data["pairs"], results)
        _evaluate_cleaning(data["pages"], results)
        return results
    results = Results(stories=len(stories))
    _evaluate_tagging(taxonomy, stories, results)
    _evaluate_dedup(stories, _load("pairs.yaml")["pairs"], results)
    _evaluate_cleaning(_load("scraped.yaml")["pages"], results)
    return results


def report(results: Results, verbose: bool = True, title: str = "") -> str:
    out = [title] if title else []
    out += [
        f"Topic tagging ({results.stories} stories)",
        f"  {'topic':24s} {'P':>6s} {'R':>6s} {'F1':>6s}  support",
    ]
    for topic_id, s in results.topics.items():
        mark = "  (seeded: target P>=0.95 R>=0.90)" if topic_id in SEEDED else ""
        out.append(f"  {topic_id:24s} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f}  {s.tp + s.fn:4d}{mark}")
    correct = results.language["True"]
    out.append(f"  language detected correctly: {correct}/{correct + results.language['False']}")
    d = results.dedup
    out += [
        "",
        f"Near-duplicates ({results.pairs} labelled pairs; flagged = same cluster_id)",
        f"  pair precision {d.precision:.3f}  recall {d.recall:.3f}  F1 {d.f1:.3f}  (target F1>=0.95)",
    ]
    for label, counts in sorted(results.dedup_by_label.items()):
        out.append(f"  {label:12s} flagged {counts['flagged']:3d}, not flagged {counts['not flagged']:3d}")
    out += [
        "",
        "Cleaning (scraped pages)",
        f"  furniture lines removed {results.furniture_removed}/{results.furniture_total}",
        f"  content lines lost      {len(results.content_lost)}/{results.content_total}  (target 0)",
        f"  byline/dateline/credit/title right {results.fields_total - len(results.fields_wrong)}"
        f"/{results.fields_total}",
    ]
    if verbose:
        misses = (
            results.tagging_errors
            + results.language_errors
            + results.dedup_errors
            + [f"content lost: {x}" for x in results.content_lost]
            + [f"furniture kept: {x}" for x in results.furniture_kept]
            + [f"field: {x}" for x in results.fields_wrong]
        )
        if misses:
            out += ["", "Misses"] + [f"  {m}" for m in misses]
    return "\n".join(out)
