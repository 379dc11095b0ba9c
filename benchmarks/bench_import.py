"""What `import audiolang` costs, as a ratio to importing torch + transformers alone, in one run.

Each statement runs in a fresh interpreter, which reports the seconds the statement took (interpreter start-up
excluded, the same for every statement), its peak resident memory (Linux: `VmHWM`) and which heavy modules it loaded.
The statements alternate (forward, then reversed) over `--repeats` rounds, and each ratio is the median of per-round
ratios (`_common.median_ratio`): the two sides of a ratio ran under the same load, so it holds on a shared machine.

- `import audiolang` / `import torch, transformers`: the issue's goal (<= 1.3x). audiolang's top level is lazy like
  transformers' own: it imports no torch, and registers each family when transformers loads the Auto class
  (`audiolang.registration`);
- `import torch, transformers, audiolang` / `import torch, transformers`: what audiolang adds on top of the two;
- `audiolang, then the Auto classes` / `the Auto classes`: what the registrations cost the first use of
  `AutoModel`/`AutoProcessor` (they import audiolang's model code, which builds on transformers' `modeling_utils`);
- `from audiolang import DsclapModel` / `the Auto classes`: one model class against transformers' own model classes.

    python -m benchmarks.bench_import --repeats 5
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

AUTO = "from transformers import AutoModel, AutoProcessor, PreTrainedModel"
STATEMENTS = {
    "torch + transformers": "import torch, transformers",
    "audiolang": "import audiolang",
    "torch + transformers + audiolang": "import torch, transformers, audiolang",
    "the Auto classes": f"import torch, transformers\n{AUTO}",
    "audiolang, then the Auto classes": f"import torch, transformers, audiolang\n{AUTO}",
    "from audiolang import DsclapModel": "from audiolang import DsclapModel",
}
# (numerator, denominator, goal): goals where the issue sets one.
RATIOS = (
    ("audiolang", "torch + transformers", 1.3),
    ("torch + transformers + audiolang", "torch + transformers", None),
    ("audiolang, then the Auto classes", "the Auto classes", None),
    ("from audiolang import DsclapModel", "the Auto classes", None),
)
# Which of these each statement loads: the model code and what it builds on, and what training and evaluation need.
WATCHED = ("torch", "transformers.modeling_utils", "audiolang.modeling_dsclap", "accelerate", "librosa", "scipy",
           "audiolang.data", "audiolang.training", "audiolang.metrics", "datasets", "sklearn", "evaluate")  # fmt: skip

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
        [sys.executable, "-c", CHILD, statement, json.dumps(WATCHED)],
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
    parser.add_argument("--repeats", type=int, default=5, help="paired rounds (at least 5)")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be at least 5: the ratios are medians of paired rounds")

    recorder = Recorder("bench_import")
    runs: dict[str, list[dict]] = {name: [] for name in STATEMENTS}
    measure(
        STATEMENTS["from audiolang import DsclapModel"]
    )  # warm-up: the first import reads every file from disk
    for round_index in range(args.repeats):
        names = list(STATEMENTS) if round_index % 2 == 0 else list(reversed(STATEMENTS))
        for name in names:
            runs[name].append(measure(STATEMENTS[name]))
    for name, results in runs.items():
        recorder.record(
            kind="import",
            statement=name,
            code=STATEMENTS[name],
            repeats=args.repeats,
            median_s=statistics.median(r["seconds"] for r in results),
            median_max_rss_mb=statistics.median(r["max_rss_mb"] for r in results),
            loaded=sorted({m for r in results for m in r["loaded"]}),
        )
    for numerator, denominator, goal in RATIOS:
        time_ratio = median_ratio(
            [r["seconds"] for r in runs[numerator]], [r["seconds"] for r in runs[denominator]]
        )
        recorder.record(
            kind="ratio",
            statement=numerator,
            baseline=denominator,
            time_ratio=time_ratio,
            memory_ratio=median_ratio(
                [r["max_rss_mb"] for r in runs[numerator]], [r["max_rss_mb"] for r in runs[denominator]]
            ),
            goal=goal,
            met=None if goal is None else time_ratio <= goal,
            load_average=os.getloadavg(),
        )


if __name__ == "__main__":
    main()
