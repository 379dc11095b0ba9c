"""What `import audiolang` costs, as a ratio to importing torch + transformers alone.

Each import runs in a fresh interpreter, which reports the seconds the import statement took (interpreter start-up
excluded, the same for every statement) and its peak resident memory (Linux: `VmHWM`). The statements alternate (ABBA) over
`--repeats` rounds and the ratio is the median of per-round ratios (`_common.median_ratio`), which resists the load of
a shared machine. Two baselines:

- `torch + transformers`: `import torch, transformers` (transformers' top level is lazy, so this loads little of it);
- `+ model classes`: also `PreTrainedModel`, `AutoModel` and `AutoProcessor`, what loading any model pays, and the
  floor for a package that registers model classes with the Auto classes at import.

    python benchmarks/bench_import.py --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder, median_ratio  # noqa: E402

STATEMENTS = {
    "torch + transformers": "import torch, transformers",
    "+ model classes": "import torch, transformers\nfrom transformers import AutoModel, AutoProcessor, PreTrainedModel",
    "audiolang": "import audiolang",
}
# What `import audiolang` must leave unloaded (loaded on first use of the corpus builder, training or metrics).
DEFERRED = ("audiolang.data", "audiolang.training", "audiolang.metrics", "datasets", "sklearn", "evaluate")

# The child reports VmHWM, the peak resident memory of its own address space: `ru_maxrss` would include the parent's,
# which Linux carries over into a forked child.
CHILD = """
import json, sys, time
start = time.perf_counter()
exec(sys.argv[1])
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({
    "seconds": seconds,
    "max_rss_mb": peak_kb / 1024,
    "loaded": [name for name in json.loads(sys.argv[2]) if name in sys.modules],
}))
"""


def measure(statement: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, statement, json.dumps(DEFERRED)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    recorder = Recorder("bench_import")
    runs: dict[str, list[dict]] = {name: [] for name in STATEMENTS}
    measure(STATEMENTS["audiolang"])  # warm-up: the first import of a session reads every file from disk
    for round_index in range(args.repeats):
        names = list(STATEMENTS) if round_index % 2 == 0 else list(reversed(STATEMENTS))
        for name in names:
            runs[name].append(measure(STATEMENTS[name]))
    for name, results in runs.items():
        recorder.record(
            kind="import",
            statement=name,
            repeats=args.repeats,
            median_s=statistics.median(r["seconds"] for r in results),
            median_max_rss_mb=statistics.median(r["max_rss_mb"] for r in results),
            deferred_modules_loaded=sorted({m for r in results for m in r["loaded"]}),
        )
    for baseline in ("torch + transformers", "+ model classes"):
        recorder.record(
            kind="ratio",
            baseline=baseline,
            time_ratio=median_ratio(
                [r["seconds"] for r in runs["audiolang"]], [r["seconds"] for r in runs[baseline]]
            ),
            memory_ratio=median_ratio(
                [r["max_rss_mb"] for r in runs["audiolang"]], [r["max_rss_mb"] for r in runs[baseline]]
            ),
            goal=1.2,
        )


if __name__ == "__main__":
    main()
