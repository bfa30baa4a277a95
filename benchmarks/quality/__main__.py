"""`python -m benchmarks.quality [--taxonomy FILE] [--quiet] [--skip-extraction]`: the story-quality
figures.

Three sets: the development set the rules were tuned on, the held-out set, and the real-copy set
(published texts as scraped, `real/`); then HTML extraction on the public Scrapinghub
article-extraction benchmark (`extraction`: ~1 min; its data set is fetched once into the cache).
"""

from __future__ import annotations

import argparse

from benchmarks.quality import evaluate, extraction, report
from benchmarks.quality.real_copy import evaluate_real, report_real
from pipeline.tagging import load_taxonomy


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__)
    parser.add_argument("--taxonomy", help="taxonomy YAML (default: the bundled one)")
    parser.add_argument("--quiet", action="store_true", help="figures only, without the list of misses")
    parser.add_argument(
        "--skip-extraction", action="store_true", help="leave out the Scrapinghub extraction benchmark"
    )
    args = parser.parse_args()
    taxonomy = load_taxonomy(args.taxonomy)
    dev = "DEVELOPMENT SET (stories/pairs/scraped.yaml: the rules and taxonomy were tuned on it)"
    print(report(evaluate(taxonomy), verbose=not args.quiet, title=dev))
    held = "HELD-OUT SET (heldout.yaml; its untuned first figures are in its header, later rules saw it)"
    print("\n" + report(evaluate(taxonomy, held_out=True), verbose=not args.quiet, title=held))
    print("\n" + report_real(evaluate_real(taxonomy), verbose=not args.quiet))
    if not args.skip_extraction:
        print("\n" + extraction.summary())


if __name__ == "__main__":
    main()
