"""`python -m benchmarks.quality.extraction [--data DIR] [--worst N]`: article text from full HTML
pages, scored on the Scrapinghub article-extraction benchmark.

The benchmark is 181 real pages (many languages and site kinds) with the article body a person
marked on each. Four extractions of every page are scored in the same run:

- ``trafilatura``: ``trafilatura.extract(html)`` with its default settings, the baseline;
- ``trafilatura-nc``: the same without readers' comments (``include_comments=False``), as the
  benchmark's own run of trafilatura calls it, so its published figure compares with this one;
- ``extract_html``: the clean stage's HTML step (`pipeline.clean.extract_html`: trafilatura in its
  fast mode, without readers' comments), the text it hands to the furniture rules for a story whose
  ``body_format`` is ``text/html``;
- ``clean_text``: the body the pipeline stores for that story (`pipeline.clean.clean_text`, with no
  headline from the feed, so the page's own title stands in), furniture rules applied; the
  headings, questions and titles trafilatura selected as the article's stay, as its subheads.

The metric is the benchmark's own (its ``evaluate.py``): the words of a text are its ``\\w+``
tokens, and a text is the multiset of its 4-token shingles. Per page, true positives, false
positives and false negatives are counted over the shingles and divided by their sum, so that a long
page weighs no more than a short one; precision is averaged over the pages where something was
predicted, recall over the pages with a true body, and F1 is taken from the two means; "±" is
the standard deviation over 1,000 bootstrap resamples of the pages, as there. The data
set is not in this repository (6 MB of gzipped HTML): clone it into the cache once,

    git clone --depth 1 https://github.com/scrapinghub/article-extraction-benchmark \\
        ~/.cache/wirestream/article-extraction-benchmark

or point ``--data`` at any copy holding ``ground-truth.json`` and ``html/<id>.html.gz``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = [
    "DEFAULT_DATA",
    "EXTRACTORS",
    "Page",
    "Matches",
    "Scores",
    "evaluate",
    "load_pages",
    "match",
    "report",
    "scores",
    "spread",
    "summary",
]

DEFAULT_DATA = Path.home() / ".cache" / "wirestream" / "article-extraction-benchmark"
SHINGLE = 4  # the benchmark's ``ngram_n``

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    key: str
    url: str
    html: str
    body: str  # the benchmark's ``articleBody``


@dataclass(frozen=True)
class Scores:
    f1: float
    precision: float
    recall: float


def _shingles(text: str) -> Counter[tuple[str, ...]]:
    """The 4-token shingles of ``text``, counted; a text of fewer tokens is one shorter shingle."""
    tokens = _TOKEN.findall(text)
    return Counter(
        shingle
        for shingle in (tuple(tokens[i : i + SHINGLE]) for i in range(max(1, len(tokens) - SHINGLE + 1)))
        if shingle
    )


def match(true: str, pred: str) -> tuple[float, float, float]:
    """True positives, false positives and false negatives of ``pred`` against ``true`` over their
    shingles, divided by their sum (all zero when both texts have no words)."""
    wanted, got = _shingles(true), _shingles(pred)
    tp = float(sum((wanted & got).values()))
    fp = float(sum((got - wanted).values()))
    fn = float(sum((wanted - got).values()))
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fp) if tp + fp else 0.0


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fn) if tp + fn else 0.0


def scores(matches: Iterable[tuple[float, float, float]]) -> Scores:
    """Mean precision over the pages with a prediction, mean recall over the pages with a true
    body, and the F1 of those two means."""
    rows = list(matches)
    predicted = [_precision(*row) for row in rows if row[0] + row[1] > 0]
    expected = [_recall(*row) for row in rows if row[0] + row[2] > 0]
    precision = sum(predicted) / len(predicted) if predicted else 0.0
    recall = sum(expected) / len(expected) if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(f1, precision, recall)


def load_pages(data: Path) -> list[Page]:
    """The benchmark's pages, in key order; ValueError names what is missing."""
    truth_file = data / "ground-truth.json"
    if not truth_file.is_file():
        raise ValueError(f"{truth_file} not found: clone the benchmark there (see --help) or pass --data")
    truth = json.loads(truth_file.read_text("utf-8"))
    pages = []
    for key in sorted(truth):
        page_file = data / "html" / f"{key}.html.gz"
        if not page_file.is_file():
            raise ValueError(f"{page_file} not found: the copy of the benchmark in {data} is incomplete")
        with gzip.open(page_file, "rt", encoding="utf-8") as f:
            markup = f.read()
        pages.append(Page(key, truth[key].get("url", ""), markup, truth[key].get("articleBody") or ""))
    return pages


def _trafilatura(markup: str) -> str:
    import trafilatura

    return trafilatura.extract(markup) or ""


def _trafilatura_no_comments(markup: str) -> str:
    import trafilatura

    return trafilatura.extract(markup, include_comments=False) or ""


def _extract_html(markup: str) -> str:
    from pipeline.clean import extract_html

    return extract_html(markup).text


def _clean_text(markup: str) -> str:
    from pipeline.clean import clean_text

    return clean_text("", markup, "text/html").body


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "trafilatura": _trafilatura,
    "trafilatura-nc": _trafilatura_no_comments,
    "extract_html": _extract_html,
    "clean_text": _clean_text,
}


Matches = list[tuple[float, float, float]]  # one `match` per page, in the order of the pages


def evaluate(
    pages: list[Page], extractors: dict[str, Callable[[str], str]] = EXTRACTORS
) -> dict[str, Matches]:
    """Each extractor's per-page `match` against the true bodies."""
    return {
        name: [match(page.body, extract(page.html)) for page in pages] for name, extract in extractors.items()
    }


def spread(matches: Matches, resamples: int = 1000, seed: int = 0) -> Scores:
    """Standard deviations of the `scores` over bootstrap resamples of the pages, as the benchmark's
    evaluate.py reports them (a fixed seed: the same figures on every run)."""
    draw = random.Random(seed)
    samples = [scores(draw.choices(matches, k=len(matches))) for _ in range(resamples)]
    return Scores(
        statistics.stdev(s.f1 for s in samples),
        statistics.stdev(s.precision for s in samples),
        statistics.stdev(s.recall for s in samples),
    )


def report(pages: list[Page], runs: dict[str, Matches], worst: int = 0) -> str:
    lines = [
        f"Scrapinghub article-extraction benchmark ({len(pages)} pages; mean over pages, as its evaluate.py;"
        f" trafilatura {metadata.version('trafilatura')})",
        f"  {'':<14} {'F1':>13}  {'precision':>13}  {'recall':>13}",
    ]
    for name, matches in runs.items():
        s, sd = scores(matches), spread(matches)
        lines.append(
            f"  {name:<14} {s.f1:.3f} ± {sd.f1:.3f}  {s.precision:.3f} ± {sd.precision:.3f}"
            f"  {s.recall:.3f} ± {sd.recall:.3f}"
        )
    for name, matches in runs.items() if worst else ():
        lines.append(f"  {name}: the {worst} pages of lowest F1 (precision, recall, url)")
        by_f1 = sorted(zip(pages, matches, strict=True), key=lambda pair: scores([pair[1]]).f1)
        for page, row in by_f1[:worst]:
            lines.append(f"    {_precision(*row):.2f} {_recall(*row):.2f} {page.url}")
    return "\n".join(lines)


def summary(data: Path = DEFAULT_DATA) -> str:
    """The report for `python -m benchmarks.quality`, or one line saying where the data set goes
    when it is not there."""
    try:
        pages = load_pages(data)
    except (ValueError, OSError) as e:
        return f"Scrapinghub article-extraction benchmark: not run ({e})"
    return report(pages, evaluate(pages))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality.extraction",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"the benchmark's copy (default: {DEFAULT_DATA})"
    )
    parser.add_argument(
        "--worst", type=int, default=0, metavar="N", help="also list each extractor's N worst pages"
    )
    args = parser.parse_args(argv)
    if args.worst < 0:
        print("error: --worst must be 0 or more", file=sys.stderr)
        return 2
    try:
        pages = load_pages(args.data)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report(pages, evaluate(pages), args.worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
