"""Tag topics from a taxonomy YAML with one Aho-Corasick automaton over every phrase.

The automaton (a compiled DFA) holds each phrase's literal prefix, lower-cased, up to its first
``*``; it finds every candidate in one pass over the text. A candidate then needs a word boundary
before it and, by the phrase's kind, a word boundary after it (a plain phrase), the rest of the word
(a phrase ending in ``*``), or its anchored pattern (a ``*`` inside the phrase). Names must also be
capitalised in the text. Each tag carries its score and the phrases, with character offsets, that
fired it.

A story whose body is longer than the taxonomy's ``long_story_chars`` keeps a tag only when it
leads with the topic (evidence in the headline or in the body's first ``lead_chars`` characters)
or when the score reaches the threshold times the square root of the body's length over
``long_story_chars``: one clear sentence tags a short wire, while the same sentence in passing,
deep in a long story about something else, does not. A long story about the topic repeats its
words and passes either way.

The scan, confirmation and scoring run in compiled code (``tagging_native/``, Rust) when it is
built: per candidate, Python costs several times the scan itself. The Python code below is the
specification the compiled code is tested against, and the fallback where it is not built.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick_rs
import yaml

from wirestream.errors import UserError, yaml_problem

try:
    from pipeline._tagging_native import Tagger as _NativeTagger
except ImportError:  # not built (no Rust toolchain at install): the Python path below
    _NativeTagger = None

__all__ = ["Taxonomy", "TaxonomyError", "Topic", "build_taxonomy", "load_taxonomy", "tag_text", "tag_row"]

log = logging.getLogger(__name__)

_LETTERS = re.compile(r"[^\W\d_]*")
_EXACT, _STEM, _PATTERN = 0, 1, 2


def _fold(text: str) -> str:
    """Lower case with every character kept in place, so offsets in the folded text are offsets in
    the original. Azerbaijani and Turkish dotted and dotless i fold to 'i'."""
    if "İ" in text:
        text = text.replace("İ", "i")  # 'İ'.lower() is two code points
    folded = text.lower()
    if "ı" in folded:
        folded = folded.replace("ı", "i")  # 'TAXIL' and 'taxıl' are the same word
    if len(folded) != len(text):
        folded = "".join(c if len(c.lower()) != 1 else c.lower() for c in text).replace("ı", "i")
    return folded


@dataclass(frozen=True)
class Phrase:
    topic: int
    text: str
    weight: float
    kind: int
    pattern: re.Pattern[str] | None = None
    name: bool = False
    role: str = "term"  # or "exclude" (cancels overlapping hits), "context" (lets weak terms count)


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    description: str
    iptc: str | None
    threshold: float
    title_weight: float
    needs_context: bool = False


@dataclass(frozen=True)
class _Group:
    """Phrases confirmed together (same key and kind): what each contributes once confirmed."""

    terms: tuple[Phrase, ...] = ()
    names: tuple[Phrase, ...] = ()
    context: frozenset[int] = frozenset()
    excludes: tuple[Phrase, ...] = ()


def _group(phrases: list[Phrase]) -> _Group | None:
    if not phrases:
        return None
    return _Group(
        tuple(p for p in phrases if p.role == "term" and not p.name),
        tuple(p for p in phrases if p.role == "term" and p.name),
        frozenset(p.topic for p in phrases if p.role == "context"),
        tuple(p for p in phrases if p.role == "exclude"),
    )


@dataclass(frozen=True)
class _Bucket:
    """The phrases sharing one automaton key, by how a candidate is confirmed (each check runs once)."""

    exact: _Group | None
    stem: _Group | None
    pattern: tuple[tuple[re.Pattern[str], _Group, _Words], ...]


_Words = tuple[tuple[str, bool], ...]  # a pattern's folded words, each with "more letters may follow"


def _bucket(phrases: list[Phrase]) -> _Bucket:
    patterns = []
    for p in phrases:
        if p.kind == _PATTERN:
            assert p.pattern is not None
            words = tuple((w.rstrip("*"), w.endswith("*")) for w in _fold(p.text).split())
            patterns.append((p.pattern, _group([p]), words))
    return _Bucket(
        _group([p for p in phrases if p.kind == _EXACT]),
        _group([p for p in phrases if p.kind == _STEM]),
        tuple((pattern, group, words) for pattern, group, words in patterns if group is not None),
    )


@dataclass
class Taxonomy:
    topics: list[Topic]
    automaton: Any = field(repr=False)
    byte_automaton: Any = field(repr=False)
    buckets: list[_Bucket] = field(repr=False)
    spec: dict[str, Any] = field(default_factory=dict, repr=False)
    native: Any = field(default=None, repr=False)
    long_story_chars: int | None = None  # longer stories need the topic in their lead or more score
    lead_chars: int = 0

    @functools.cached_property
    def thresholds(self) -> dict[str, float]:
        return {t.id: t.threshold for t in self.topics}

    @functools.cached_property
    def _spec_text(self) -> str:
        # Serialised once: the taxonomy goes to a worker with every chunk it prepares.
        return json.dumps(self.spec, sort_keys=True, default=str)

    def __reduce__(self) -> tuple[Any, ...]:
        # The compiled automaton does not pickle; rebuilding from the spec is small and version-proof.
        return (_from_spec_text, (self._spec_text,))


@functools.lru_cache(maxsize=8)
def _from_spec_text(text: str) -> Taxonomy:
    """Rebuild once per process: every batch of a continuous run unpickles the same taxonomy."""
    return build_taxonomy(json.loads(text))


def _compile(phrase: str) -> tuple[str, int, re.Pattern[str] | None]:
    """The literal prefix for the automaton, the phrase's kind, and its anchored pattern if any."""
    words = _fold(phrase).split()
    if not words:
        raise ValueError("empty phrase")
    for word in words:
        if not word.rstrip("*") or "*" in word.rstrip("*"):
            raise ValueError(f"phrase {phrase!r}: '*' must follow letters and end a word")
    prefix = " ".join(words).split("*")[0]
    if "*" not in phrase:
        return prefix, _EXACT, None
    if phrase.count("*") == 1 and words[-1].endswith("*"):
        return prefix, _STEM, None
    parts = [re.escape(w.rstrip("*")) + (r"[^\W\d_]*" if w.endswith("*") else "") for w in words]
    return prefix, _PATTERN, re.compile(" ".join(parts) + r"(?!\w)")


def _entries(items: Any, where: str) -> list[tuple[str, float]]:
    """(surface form, weight) for each phrase entry: a string, or {phrase, weight, forms}."""
    out = []
    for item in items or []:
        if isinstance(item, str):
            out.append((item, 1.0))
        elif isinstance(item, dict) and isinstance(item.get("phrase"), str):
            weight = float(item.get("weight", 1))
            if not 0 < weight < math.inf:
                raise ValueError(f"{where}: weight of {item['phrase']!r} must be positive")
            out.extend((form, weight) for form in [item["phrase"], *(item.get("forms") or [])])
        else:
            raise ValueError(f"{where}: a phrase is a string or a mapping with 'phrase', got {item!r}")
    return out


def build_taxonomy(spec: dict[str, Any]) -> Taxonomy:
    """Validate a taxonomy spec (see pipeline/taxonomy.yaml) and compile its automaton."""
    if not isinstance(spec, dict) or not isinstance(spec.get("topics"), list) or not spec["topics"]:
        raise ValueError("taxonomy needs a non-empty 'topics' list")
    topics: list[Topic] = []
    buckets: dict[str, list[Phrase]] = {}
    seen_ids: set[str] = set()
    for index, entry in enumerate(spec["topics"]):
        topic_id = entry.get("id") if isinstance(entry, dict) else None
        if not topic_id or topic_id in seen_ids:
            raise ValueError(f"taxonomy topic #{index}: missing or repeated id {topic_id!r}")
        seen_ids.add(topic_id)
        threshold = float(entry.get("threshold", 2.0))
        if not 0 < threshold < math.inf:
            raise ValueError(f"taxonomy topic {topic_id!r}: threshold must be positive")
        if not 0 < float(entry.get("title_weight", 2.0)) < math.inf:
            raise ValueError(f"taxonomy topic {topic_id!r}: title_weight must be positive")
        topics.append(
            Topic(
                id=topic_id,
                label=str(entry.get("label") or topic_id),
                description=str(entry.get("description") or ""),
                iptc=entry.get("iptc"),
                threshold=threshold,
                title_weight=float(entry.get("title_weight", 2.0)),
            )
        )
        groups = [
            (kind, language, items)
            for kind in ("phrases", "terms", "names")
            for language, items in (entry.get(kind) or {}).items()
        ]
        if not any(items for _kind, _language, items in groups):
            raise ValueError(f"taxonomy topic {topic_id!r} has no terms")
        for kind in ("exclude", "context"):
            groups += [(kind, language, items) for language, items in (entry.get(kind) or {}).items()]
        if any(items for kind, _language, items in groups if kind == "context"):
            topics[-1] = dataclasses.replace(topics[-1], needs_context=True)
        for kind, language, items in groups:
            where = f"taxonomy topic {topic_id!r} ({kind}, {language})"
            for text, weight in _entries(items, where):
                try:
                    prefix, match_kind, pattern = _compile(text)
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
                role = kind if kind in ("exclude", "context") else "term"
                phrase = Phrase(index, text, weight, match_kind, pattern, kind == "names", role)
                buckets.setdefault(prefix, []).append(phrase)
    # ASCII keys first: the byte automaton for ASCII text holds only them (no other key can match
    # there), and is smaller and faster than one over every script.
    prefixes = sorted(buckets, key=lambda p: not p.isascii())
    ascii_keys = [p.encode() for p in prefixes if p.isascii()]
    dfa = ahocorasick_rs.Implementation.DFA
    automaton = ahocorasick_rs.AhoCorasick(prefixes, implementation=dfa)
    byte_automaton = ahocorasick_rs.BytesAhoCorasick(ascii_keys, implementation=dfa) if ascii_keys else None
    compiled = [_bucket(buckets[p]) for p in prefixes]
    native = _native(prefixes, compiled, topics) if _NativeTagger is not None else _python_only()
    long_story = spec.get("long_story_chars")
    if long_story is not None and not (isinstance(long_story, int) and long_story > 0):
        raise ValueError("long_story_chars must be a positive whole number")
    lead = spec.get("lead_chars", 0)
    if not (isinstance(lead, int) and lead >= 0):
        raise ValueError("lead_chars must be a whole number, 0 or more")
    return Taxonomy(topics, automaton, byte_automaton, compiled, spec, native, long_story, lead)


def _native(keys: list[str], buckets: list[_Bucket], topics: list[Topic]) -> Any:
    """The compiled tagger over the same keys, buckets and topics, groups numbered as met."""
    groups: list[_Group] = []

    def number(group: _Group | None) -> int | None:
        if group is None:
            return None
        groups.append(group)
        return len(groups) - 1

    bucket_specs = [
        (number(b.exact), number(b.stem), [(list(words), number(g)) for _p, g, words in b.pattern])
        for b in buckets
    ]
    group_specs = [
        (
            [(p.topic, p.weight) for p in g.terms],
            [(p.topic, p.weight) for p in g.names],
            sorted(g.context),
            [p.topic for p in g.excludes],
        )
        for g in groups
    ]
    topic_specs = [(t.threshold, t.title_weight, t.needs_context, t.id, t.label, t.iptc) for t in topics]
    return _NativeTagger(keys, bucket_specs, group_specs, topic_specs, _character_classes())


@functools.cache
def _python_only() -> None:
    log.warning(
        "the topic tagger's compiled core is not built (install needs a Rust toolchain): tagging "
        "runs in Python, with the same tags at about a quarter of the speed"
    )


@functools.cache
def _character_classes() -> bytes:
    """Python's own character predicates over the Basic Multilingual Plane, for the compiled
    tagger's word boundaries (bits: isalnum, isdigit, isdecimal, isupper, isspace)."""
    table = bytearray(0x10000)
    for code in range(0x10000):
        c = chr(code)
        table[code] = (
            c.isalnum() | c.isdigit() << 1 | c.isdecimal() << 2 | c.isupper() << 3 | c.isspace() << 4
        )
    return bytes(table)


class TaxonomyError(UserError, ValueError):
    """A taxonomy file that cannot be used; the message names the file and, where one is at
    fault, the key's path in it (``topics.grain_deal.phrases.en[2].weight``)."""


_PHRASES = {
    "type": ["array", "null"],
    "items": {
        "if": {"type": "object"},
        "then": {
            "type": "object",
            "required": ["phrase"],
            "properties": {
                "phrase": {"type": "string", "minLength": 1},
                "weight": {"type": "number", "exclusiveMinimum": 0},
                "forms": {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}},
            },
            "additionalProperties": False,
        },
        "else": {"type": "string", "minLength": 1},
    },
}
_BY_LANGUAGE = {"type": ["object", "null"], "additionalProperties": _PHRASES}
# The shape of a taxonomy file (documented at the top of pipeline/taxonomy.yaml); build_taxonomy
# then checks what a schema cannot say (unique ids, a topic with terms, phrases that compile).
TAXONOMY_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["topics"],
    "properties": {
        "version": {"type": "integer"},
        "long_story_chars": {"type": "integer", "minimum": 1},
        "lead_chars": {"type": "integer", "minimum": 0},
        "topics": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "label": {"type": "string"},
                    "description": {"type": "string"},
                    "iptc": {"type": ["string", "null"]},
                    "threshold": {"type": "number", "exclusiveMinimum": 0},
                    "title_weight": {"type": "number", "exclusiveMinimum": 0},
                    **{kind: _BY_LANGUAGE for kind in ("phrases", "terms", "names", "exclude", "context")},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
_TYPE_NAMES = {"object": "a mapping", "array": "a list", "null": "empty", "integer": "an integer"}


def _key_path(spec: Any, path: Any) -> str:
    """``topics.<topic id>.phrases.en[2].weight``: a topic by its id where it has one."""
    text, node = "", spec
    for step in path:
        if isinstance(step, int):
            topic = node[step] if isinstance(node, list) and step < len(node) else None
            if text == "topics" and isinstance(topic, dict) and isinstance(topic.get("id"), str):
                text += f".{topic['id']}"
            else:
                text += f"[{step}]"
        else:
            text += f".{step}" if text else str(step)
        node = node[step] if isinstance(node, dict | list) else None
    return text


def _schema_problem(spec: Any) -> str | None:
    """The first way ``spec`` breaks `TAXONOMY_SCHEMA`, as "<key path>: <what is wrong>"."""
    import difflib

    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(TAXONOMY_SCHEMA).iter_errors(spec))
    if error is None:
        return None
    where = _key_path(spec, error.absolute_path)
    prefix = f"{where}: " if where else ""
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        key = sorted(str(k) for k in error.instance if k not in known)[0]
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"
        return f"{where + '.' if where else ''}{key}: unknown key{hint}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"{prefix}missing key {missing[0]!r}"
    if error.validator == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(_TYPE_NAMES.get(k, f"a {k}") for k in kinds)
        if not where:
            return "the file must hold a mapping with a 'topics' list"
        shown = repr(error.instance)
        return f"{prefix}{shown if len(shown) <= 60 else shown[:57] + '...'} is not {wanted}"
    if error.validator == "exclusiveMinimum":
        return f"{prefix}{error.instance!r} must be positive"
    if error.validator == "minItems":
        return f"{prefix}needs at least one entry"
    if error.validator == "minLength":
        return f"{prefix}must not be empty"
    return f"{prefix}{error.message}"


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy at ``path``, or the bundled one, checked against `TAXONOMY_SCHEMA`; a file that
    cannot be used raises `TaxonomyError`, one line naming the file (and the key at fault)."""
    if path is None:
        text = resources.files("pipeline").joinpath("taxonomy.yaml").read_text("utf-8")
        where = "bundled taxonomy.yaml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except FileNotFoundError:
            raise TaxonomyError(f"taxonomy file {where} does not exist") from None
        except IsADirectoryError:
            raise TaxonomyError(f"taxonomy file {where} is a folder, not a file") from None
        except UnicodeDecodeError as exc:
            raise TaxonomyError(
                f"taxonomy file {where} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        except OSError as exc:
            raise TaxonomyError(f"taxonomy file {where} cannot be read: {exc.strerror}") from None
    try:
        return _parsed(text)
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{where}: {yaml_problem(exc)}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TaxonomyError(f"{where}: {exc}") from None


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> Taxonomy:
    # libyaml's loader where PyYAML has it: the same documents, ~40 ms sooner at every run's start.
    spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    problem = _schema_problem(spec)
    if problem:
        raise ValueError(problem)
    return build_taxonomy(spec)


def _capitalised(text: str) -> bool:
    return all(word[:1].isupper() for word in text.split())


_Hit = tuple[Phrase, int, int, int]  # phrase, field (0 headline, 1 body), start, end


def _scan(taxonomy: Taxonomy, folded: str) -> list[tuple[_Bucket, int, int]]:
    """(bucket, start, end) of every automaton key found at the start of a word of ``folded``."""
    if folded.isascii() and taxonomy.byte_automaton is not None:
        # Byte offsets are character offsets, and the byte automaton skips the str round trip.
        found = taxonomy.byte_automaton.find_matches_as_indexes(folded.encode(), overlapping=True)
    else:
        found = taxonomy.automaton.find_matches_as_indexes(folded, overlapping=True)
    buckets = taxonomy.buckets
    return [
        (buckets[key], start, end) for key, start, end in found if not (start and folded[start - 1].isalnum())
    ]


_FIELDS = ("headline", "body")


def _add(
    group: _Group,
    joined: str,
    field_index: int,
    start: int,
    stop: int,
    shift: int,
    by_topic: dict[int, list[_Hit]],
    context: set[int],
    excluded: list[_Hit],
) -> None:
    """Record what a confirmed group contributes: term hits by topic, topics in context, exclusions."""
    if group.context:
        context |= group.context
    terms = group.terms
    if group.names and _capitalised(joined[start:stop]):
        terms = terms + group.names
    for phrase in terms:
        hit = (phrase, field_index, start - shift, stop - shift)
        found = by_topic.get(phrase.topic)
        if found is None:
            by_topic[phrase.topic] = [hit]
        else:
            found.append(hit)
    for phrase in group.excludes:
        excluded.append((phrase, field_index, start - shift, stop - shift))


_Found = list[tuple[int, float, list[tuple[int, int, int]]]]  # topic index, score, (field, start, end)


def tag_text(taxonomy: Taxonomy, headline: str, body: str) -> list[dict[str, Any]]:
    """Topics whose score reaches their threshold, each with score and evidence, best first.

    A hit overlapping an exclusion of its own topic does not count; overlapping hits of one topic
    count once (the strongest, then the longest); headline hits are multiplied by the topic's title
    weight; a topic with context phrases counts its weak terms only when one of them occurs. A body
    longer than the taxonomy's ``long_story_chars`` keeps a tag that leads with its topic or scores
    more (see `_standing`).
    """
    tags = _tags(taxonomy, headline, body)
    if tags and taxonomy.long_story_chars is not None:
        return _standing(taxonomy, tags, body)
    return tags


def _standing(taxonomy: Taxonomy, tags: list[dict[str, Any]], body: str) -> list[dict[str, Any]]:
    """The tags a story keeps by its length (see the module docstring): all of a body of up to
    ``long_story_chars`` characters; in a longer one, those with evidence in the headline or the
    body's first ``lead_chars`` characters, and those whose score reaches the threshold scaled by
    the square root of the body's length over ``long_story_chars``. Lengths are counted in
    characters, which costs nothing, where counting words costs as much as the tagging itself."""
    long_story = taxonomy.long_story_chars
    assert long_story is not None
    if len(body) <= long_story:
        return tags
    scale = math.sqrt(len(body) / long_story)
    lead = taxonomy.lead_chars
    kept = []
    for tag in tags:
        leads = any(e["field"] == "headline" or e["start"] < lead for e in tag["evidence"])
        if leads or tag["score"] >= taxonomy.thresholds[tag["topic"]] * scale - 1e-9:
            kept.append(tag)
    return kept


def _tags(taxonomy: Taxonomy, headline: str, body: str) -> list[dict[str, Any]]:
    """Every topic reaching its threshold, whatever the story's length."""
    native = taxonomy.native
    tags: list[dict[str, Any]] | None = native.tag_ascii(headline, body) if native is not None else None
    if tags is not None:
        return tags
    # One scan over both fields: the body's offsets start after the headline and a newline.
    joined = f"{headline}\n{body}"
    folded = _fold(joined)
    offset = len(headline) + 1
    tags = native.tag(joined, folded, offset) if native is not None else None
    if tags is not None:
        return tags
    # Not built, or a character beyond the Basic Multilingual Plane: the Python specification.
    texts = (headline, body)
    tags = []
    for index, score, evidence in _find(taxonomy, joined, folded, offset):
        topic = taxonomy.topics[index]
        tags.append(
            {
                "topic": topic.id,
                "label": topic.label,
                "iptc": topic.iptc,
                "score": round(score, 3),
                "evidence": [
                    {"phrase": texts[f][s:e], "field": _FIELDS[f], "start": s, "end": e}
                    for f, s, e in evidence
                ],
            }
        )
    tags.sort(key=lambda t: (-t["score"], t["topic"]))
    return tags


def _find(taxonomy: Taxonomy, joined: str, folded: str, offset: int) -> _Found:
    """The topics reaching their threshold, with score and counted hits in text order (field,
    start, end relative to the field). The specification of the compiled tagger."""
    by_topic: dict[int, list[_Hit]] = {}
    context: set[int] = set()
    excluded: list[_Hit] = []
    size = len(joined)
    for bucket, start, end in _scan(taxonomy, folded):
        field_index, shift = (0, 0) if start < offset else (1, offset)
        # Confirm the candidate once per kind of phrase sharing its key (inlined: this loop is hot).
        if bucket.exact and (end == size or not (folded[end].isalnum() or folded[end] == "_")):
            _add(bucket.exact, joined, field_index, start, end, shift, by_topic, context, excluded)
        if bucket.stem:
            stop = _LETTERS.match(folded, end).end()  # type: ignore[union-attr]
            if stop == size or not (folded[stop].isdigit() or folded[stop] == "_"):
                _add(bucket.stem, joined, field_index, start, stop, shift, by_topic, context, excluded)
        for pattern, group, _words in bucket.pattern:
            match = pattern.match(folded, start)
            if match:
                _add(group, joined, field_index, start, match.end(), shift, by_topic, context, excluded)
    found: _Found = []
    for index, hits in by_topic.items():
        topic = taxonomy.topics[index]
        threshold, title_weight = topic.threshold, topic.title_weight
        if topic.needs_context and index not in context:
            hits = [h for h in hits if h[0].weight >= threshold]
        bound = 0.0
        for hit in hits:
            bound += hit[0].weight * (title_weight if hit[1] == 0 else 1.0)
        if bound < threshold - 1e-9 * threshold:
            # Even every hit together falls short: skip the overlap bookkeeping. (The slack keeps
            # rounding in a sum taken in text order from deciding a tie; the score decides.)
            continue
        exclusions = [(f, s, e) for phrase, f, s, e in excluded if phrase.topic == index] if excluded else []
        counted = _count(hits, exclusions)
        counted.sort(key=_strongest_first)  # the sum in one fixed order, whatever the text's order
        score = 0.0
        for hit in counted:
            score += hit[0].weight * (title_weight if hit[1] == 0 else 1.0)
        if score >= threshold:
            counted.sort(key=_in_text_order)
            found.append((index, score, [(f, s, e) for _p, f, s, e in counted]))
    return found


def _count(hits: list[_Hit], exclusions: list[tuple[int, int, int]]) -> list[_Hit]:
    """The hits that count: of overlapping hits the strongest first, none overlapping an exclusion.

    Hits are taken in runs of mutually overlapping ones, in text order; hits of different runs never
    overlap, so choosing strongest-first inside each run is the same as across all hits, without
    comparing every pair (a long story repeating its topic's words has hundreds of hits).
    """
    counted: list[_Hit] = []
    hits.sort(key=_in_text_order)
    run: list[_Hit] = []
    run_field, run_end = -1, -1
    for hit in [*hits, None]:
        if hit is not None and hit[1] == run_field and hit[2] < run_end:
            run.append(hit)
            run_end = max(run_end, hit[3])
            continue
        if len(run) == 1 and not exclusions:
            counted.append(run[0])
        elif run:
            blocked = [e for e in exclusions if e[0] == run_field]
            for candidate in sorted(run, key=_strongest_first):
                _phrase, field_index, start, end = candidate
                if not any(s < end and start < e for _f, s, e in blocked):
                    blocked.append((field_index, start, end))
                    counted.append(candidate)
        if hit is not None:
            run, run_field, run_end = [hit], hit[1], hit[3]
    return counted


def _in_text_order(hit: _Hit) -> tuple[int, int]:
    return (hit[1], hit[2])


def _strongest_first(hit: _Hit) -> tuple[float, int, int, int]:
    # Of overlapping hits the strongest, then the longest counts: "Paul Whelan" once, not again as
    # "Whelan"; "hərbi yardım" (strong) rather than the weak "yardım paketi" it overlaps.
    return (-hit[0].weight, hit[2] - hit[3], hit[1], hit[2])


def tag_row(row: dict[str, Any], taxonomy: Taxonomy) -> dict[str, Any]:
    return {**row, "topics": tag_text(taxonomy, row.get("headline") or "", row.get("body") or "")}
