#!/usr/bin/env python
"""Training curves of each loss part from a run's `trainer_state.json` (what `AudioTextTrainer` logs: `loss` and
every `*_loss` field of the model output, averaged over the logging interval), one line per part, as PNG.

    python benchmarks/plot_loss_parts.py --run_dir out/dsclap-whisper --output benchmarks/results/dsclap_whisper_loss_parts.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def loss_curves(trainer_state: dict) -> dict[str, tuple[list[int], list[float]]]:
    """`{part: (steps, values)}` of the training log entries of a `trainer_state.json` (evaluation entries, whose
    keys start with `eval_`, are left out)."""
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for entry in trainer_state["log_history"]:
        for key, value in entry.items():
            if key.endswith("loss") and not key.startswith(("eval_", "train_")):
                steps, values = curves.setdefault(key, ([], []))
                steps.append(entry["step"])
                values.append(value)
    return curves


def plot(run_dir: Path, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = loss_curves(json.loads((run_dir / "trainer_state.json").read_text()))
    if not curves:
        raise ValueError(
            f"{run_dir / 'trainer_state.json'} has no logged losses: train with --logging_steps N"
        )
    figure, axis = plt.subplots(figsize=(6, 3.8))
    for name, (steps, values) in sorted(curves.items()):
        axis.plot(steps, values, label=name, linewidth=2 if name == "loss" else 1)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(f"training loss parts: {run_dir.name}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run_dir", type=Path, required=True, help="a run's --output_dir (or checkpoint)")
    parser.add_argument("--output", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    print(f"wrote {plot(args.run_dir, args.output)}")


if __name__ == "__main__":
    main()
