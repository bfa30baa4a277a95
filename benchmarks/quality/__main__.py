"""`python -m benchmarks.quality [--taxonomy FILE] [--quiet]`: the story-quality figures."""

from __future__ import annotations

import argparse

from benchmarks.quality import evaluate, report
from pipeline.tagging import load_taxonomy


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__)
    parser.add_argument("--taxonomy", help="taxonomy YAML (default: the bundled one)")
    parser.add_argument("--quiet", action="store_true", help="figures only, without the list of misses")
    args = parser.parse_args()
    taxonomy = load_taxonomy(args.taxonomy)
    dev = "DEVELOPMENT SET (stories/pairs/scraped.yaml: the rules and taxonomy were tuned on it)"
    print(report(evaluate(taxonomy), verbose=not args.quiet, title=dev))
    held = "HELD-OUT SET (heldout.yaml; its untuned first figures are in its header, later rules saw it)"
    print("\n" + report(evaluate(taxonomy, held_out=True), verbose=not args.quiet, title=held))


if __name__ == "__main__":
    main()
