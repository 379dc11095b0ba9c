"""Shared plumbing for benchmarks: JSON lines to stdout and to benchmarks/results/<name>.jsonl."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


class Recorder:
    """Collects result records; each is printed as a JSON line and appended to the results file."""

    def __init__(self, name: str) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.path = RESULTS / f"{name}.jsonl"
        self.path.write_text("")
        self.context = {
            "benchmark": name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": platform.machine(),
            "python": platform.python_version(),
        }

    def record(self, **fields: Any) -> dict[str, Any]:
        row = {**self.context, **fields}
        line = json.dumps(row, sort_keys=False)
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")
        return row
