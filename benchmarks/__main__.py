"""`python -m benchmarks`: every benchmark in turn, each printing its figures and baselines.

The pipeline benchmark at its default sizes (100k and 1M stories, three repeats) takes hours on a
2-core machine; pass arguments through with WIRESTREAM_BENCH_PIPELINE_ARGS to shorten it.
"""

import os
import shlex
import subprocess
import sys

SUITES = [
    ["benchmarks.stages"],
    ["benchmarks.quality"],
    ["benchmarks.connectors"],
    ["benchmarks.pipeline", *shlex.split(os.environ.get("WIRESTREAM_BENCH_PIPELINE_ARGS", ""))],
]

failed = 0
for module, *args in SUITES:
    print(f"\n######## {module} {' '.join(args)}", flush=True)
    failed += subprocess.call([sys.executable, "-m", module, *args]) != 0
sys.exit(1 if failed else 0)
