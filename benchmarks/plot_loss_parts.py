#!/usr/bin/env python
"""Training and validation curves of each loss part from a run's `trainer_state.json` (what `AudioTextTrainer` logs:
`loss` and every `*_loss` field of the model output, averaged over the logging interval, and their `eval_`
counterparts), one panel per part, as PNG: `audiolang.plots.plot_training_curves`.

    python benchmarks/plot_loss_parts.py --run_dir out/dsclap-whisper --output benchmarks/results/dsclap_whisper_loss_parts.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audiolang.plots import plot_training_curves


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run_dir", type=Path, required=True, help="a run's --output_dir (or checkpoint)")
    parser.add_argument("--output", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    plot_training_curves(args.run_dir, args.output, title=f"loss parts: {args.run_dir.name}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
