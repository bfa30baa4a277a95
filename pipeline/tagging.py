"""Tag topics from a taxonomy YAML with one Aho-Corasick automaton over every phrase.

A phrase's literal prefix (up to its first ``*``) goes into the automaton; each candidate is then
confirmed by that phrase's anchored pattern, which handles inflection wildcards and word boundaries.
Each tag carries its score and the phrases, with character offsets, that fired it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
import apache_beam as beam
import yaml

__all__ = ["TagTopics", "Taxonomy", "Topic", "load_taxonomy", "tag_text", "tag_row"]

_LETTER = r"[^\W\d_]"
_FOLD = {0x130: "i"}  # 'İ'.lower() is two code points; keep offsets aligned with the original text


def _fold(text: str) -> str:
    return text.translate(_FOLD).lower()


@dataclass(frozen=True)
class Phrase:
    topic: int
    text: str
    weight: float
    pattern: re.Pattern[str]
    exclusion: bool = False


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    iptc: str | None
    threshold: float
    title_weight: float


@dataclass
class Taxonomy:
    topics: list[Topic]
    automaton: Any = field(repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # pyahocorasick automatons pickle, but rebuilding from the spec is smaller and version-proof.
        return (_rebuild, (self._spec,))

    _spec: dict[str, Any] = field(default_factory=dict, repr=False)


def _rebuild(spec: dict[str, Any]) -> Taxonomy:
    return build_taxonomy(spec)


def _phrase_pattern(phrase: str) -> tuple[str, re.Pattern[str]]:
    """The literal prefix for the automaton, and the anchored pattern that confirms a hit."""
    words = _fold(phrase).split()
    if not words:
        raise ValueError("empty phrase")
    parts = []
    for word in words:
        stem = word.rstrip("*")
        if not stem:
            raise ValueError(f"phrase {phrase!r}: '*' must follow letters")
        parts.append(re.escape(stem) + (f"{_LETTER}*" if word.endswith("*") else ""))
    prefix = " ".join(words).split("*")[0]
    return prefix, re.compile(r"\s+".join(parts) + r"(?!\w)")


def build_taxonomy(spec: dict[str, Any]) -> Taxonomy:
    if not isinstance(spec, dict) or not isinstance(spec.get("topics"), list) or not spec["topics"]:
        raise ValueError("taxonomy needs a non-empty 'topics' list")
    automaton = ahocorasick.Automaton()
    topics: list[Topic] = []
    buckets: dict[str, list[Phrase]] = {}
    seen_ids: set[str] = set()
    for index, entry in enumerate(spec["topics"]):
        topic_id = entry.get("id")
        if not topic_id or topic_id in seen_ids:
            raise ValueError(f"taxonomy topic #{index}: missing or repeated id {topic_id!r}")
        seen_ids.add(topic_id)
        topics.append(
            Topic(
                id=topic_id,
                label=str(entry.get("label") or topic_id),
                iptc=entry.get("iptc"),
                threshold=float(entry.get("threshold", 2.0)),
                title_weight=float(entry.get("title_weight", 2.0)),
            )
        )
        terms = entry.get("terms") or {}
        if not terms:
            raise ValueError(f"taxonomy topic {topic_id!r} has no terms")
        for language, phrases in terms.items():
            for item in phrases or []:
                text, weight = (
                    (item, 1.0) if isinstance(item, str) else (item["phrase"], float(item.get("weight", 1)))
                )
                try:
                    prefix, pattern = _phrase_pattern(text)
                except ValueError as exc:
                    raise ValueError(f"taxonomy topic {topic_id!r} ({language}): {exc}") from None
                buckets.setdefault(prefix, []).append(Phrase(index, text, weight, pattern))
        for phrases in (entry.get("exclude") or {}).values():
            for text in phrases or []:
                prefix, pattern = _phrase_pattern(text)
                buckets.setdefault(prefix, []).append(Phrase(index, text, 0.0, pattern, exclusion=True))
    for prefix, phrases in buckets.items():
        automaton.add_word(prefix, (len(prefix), tuple(phrases)))
    automaton.make_automaton()
    taxonomy = Taxonomy(topics=topics, automaton=automaton)
    taxonomy._spec = spec
    return taxonomy


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy at ``path``, or the bundled one; errors name the file."""
    if path is None:
        text = resources.files("pipeline").joinpath("taxonomy.yaml").read_text("utf-8")
        where = "bundled taxonomy.yaml"
    else:
        text = Path(path).read_text("utf-8")
        where = str(path)
    try:
        return build_taxonomy(yaml.safe_load(text))
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _hits(taxonomy: Taxonomy, text: str, field_name: str) -> list[tuple[Phrase, int, int]]:
    folded = _fold(text)
    hits: list[tuple[Phrase, int, int]] = []
    for end_index, (length, phrases) in taxonomy.automaton.iter(folded):
        start = end_index - length + 1
        if start > 0 and (folded[start - 1].isalnum() or folded[start - 1] == "_"):
            continue
        for phrase in phrases:
            match = phrase.pattern.match(folded, start)
            if match:
                hits.append((phrase, start, match.end()))
    return hits


def tag_text(taxonomy: Taxonomy, headline: str, body: str) -> list[dict[str, Any]]:
    """Topics whose score reaches their threshold, each with score and evidence, best first."""
    scores: dict[int, float] = {}
    evidence: dict[int, list[dict[str, Any]]] = {}
    for field_name, text in (("headline", headline), ("body", body)):
        hits = _hits(taxonomy, text, field_name)
        excluded = [(s, e) for phrase, s, e in hits if phrase.exclusion]
        taken: dict[int, list[tuple[int, int]]] = {}
        # Longest first, so "Paul Whelan" counts once rather than again as "Whelan".
        for phrase, start, end in sorted(hits, key=lambda h: (h[1] - h[2], h[1])):
            if phrase.exclusion or any(s < end and start < e for s, e in excluded):
                continue
            spans = taken.setdefault(phrase.topic, [])
            if any(s <= start and end <= e for s, e in spans):
                continue
            spans.append((start, end))
            topic = taxonomy.topics[phrase.topic]
            weight = phrase.weight * (topic.title_weight if field_name == "headline" else 1.0)
            scores[phrase.topic] = scores.get(phrase.topic, 0.0) + weight
            evidence.setdefault(phrase.topic, []).append(
                {"phrase": text[start:end], "field": field_name, "start": start, "end": end}
            )
    tags: list[dict[str, Any]] = []
    for index, score in scores.items():
        topic = taxonomy.topics[index]
        if score >= topic.threshold:
            tags.append(
                {
                    "topic": topic.id,
                    "label": topic.label,
                    "iptc": topic.iptc,
                    "score": round(score, 3),
                    "evidence": sorted(evidence[index], key=_position),
                }
            )
    tags.sort(key=lambda t: (-t["score"], t["topic"]))
    return tags


def tag_row(row: dict[str, Any], taxonomy: Taxonomy) -> dict[str, Any]:
    return {**row, "topics": tag_text(taxonomy, row.get("headline") or "", row.get("body") or "")}


class TagTopics(beam.PTransform):
    """Clean rows in, the same rows with ``topics`` filled (bounded or unbounded, one-to-one)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        super().__init__()
        if not taxonomy.topics:
            raise ValueError("taxonomy has no topics")
        self._taxonomy = taxonomy

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return rows | "MatchPhrases" >> beam.Map(tag_row, self._taxonomy)


def _position(evidence: dict[str, Any]) -> tuple[bool, int]:
    return (evidence["field"] != "headline", evidence["start"])
