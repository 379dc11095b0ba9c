#!/usr/bin/env python
"""Turbo's Fig. 2 and Fig. 3 from a sweep of `benchmarks/turbo_objectives.py`.

Figures are written next to the results file, named after it:

- `<results>_align_uniform_<task>.png` (Fig. 2): one point per (objective, seed): x = uniformity of the audio embeddings,
  y = alignment of audio-text pairs, both on the test split (lower is better for both).
- `<results>_audio_density_<task>.png` (Fig. 3): per objective (first seed), the test audio embeddings projected to 2-D by
  PCA, normalised onto the unit circle as in Wang & Isola's plots, drawn as a Gaussian kernel density estimate.

    python benchmarks/plot_turbo.py --sweep_dir out/turbo-objectives \
        --results benchmarks/results/turbo_objectives.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from audiolang.plots import new_figure, save_figure

OBJECTIVE_LABELS = {"vanilla": "Vanilla", "cross": "+CL_cross", "turbo": "+Turbo"}
COLOURS = {"vanilla": "tab:blue", "cross": "tab:orange", "turbo": "tab:green"}


def _runs(results: Path) -> list[dict]:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return [row for row in rows if row.get("kind") == "run"]


def circle_projection(embeddings: np.ndarray) -> np.ndarray:
    """PCA to two dimensions, then each point scaled to unit length."""
    centred = embeddings - embeddings.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    return projected / np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-12)


def plot(sweep_dir: Path, results: Path, figures_dir: Path | None = None) -> list[Path]:
    """Draw both figures for every task in `results`; returns the PNG paths."""
    from scipy.stats import gaussian_kde

    figures_dir = figures_dir or results.parent
    runs = _runs(results)
    written = []
    for task in sorted({row["task"] for row in runs}):
        task_runs = [row for row in runs if row["task"] == task]
        figure = new_figure(4.5, 4)
        axis = figure.subplots()
        for objective in OBJECTIVE_LABELS:
            points = [r for r in task_runs if r["objective"] == objective and "test_alignment" in r]
            if points:
                axis.scatter(
                    [r["test_uniformity_audio"] for r in points],
                    [r["test_alignment"] for r in points],
                    label=OBJECTIVE_LABELS[objective],
                    color=COLOURS[objective],
                    s=40,
                )
        axis.set_xlabel("uniformity (audio), lower is better")
        axis.set_ylabel("alignment (audio-text), lower is better")
        axis.set_title(f"Alignment vs uniformity: {task}")
        axis.legend()
        written.append(save_figure(figure, figures_dir / f"{results.stem}_align_uniform_{task}.png"))

        objectives = [o for o in OBJECTIVE_LABELS if any(r["objective"] == o for r in task_runs)]
        figure = new_figure(3.6 * len(objectives), 3.6)
        axes = figure.subplots(1, len(objectives), squeeze=False)
        grid = np.linspace(-1.3, 1.3, 120)
        xx, yy = np.meshgrid(grid, grid)
        for axis, objective in zip(axes[0], objectives, strict=True):
            seed = min(r["seed"] for r in task_runs if r["objective"] == objective)
            data = np.load(sweep_dir / task / objective / f"seed-{seed}" / "test_embeddings.npz")
            points = circle_projection(data["audio"])
            # A little jitter keeps the KDE defined when many points coincide on the circle.
            jitter = np.random.default_rng(0).normal(scale=0.02, size=points.shape)
            density = gaussian_kde((points + jitter).T)(np.vstack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
            axis.contourf(xx, yy, density, levels=30, cmap="viridis")
            axis.set_aspect("equal")
            axis.set_title(f"{OBJECTIVE_LABELS[objective]} (seed {seed})")
            axis.set_xticks([])
            axis.set_yticks([])
        figure.suptitle(f"Audio embeddings, 2-D Gaussian KDE: {task}")
        written.append(save_figure(figure, figures_dir / f"{results.stem}_audio_density_{task}.png"))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweep_dir", type=Path, default=Path("out/turbo-objectives"))
    parser.add_argument(
        "--results", type=Path, default=Path(__file__).resolve().parent / "results" / "turbo_objectives.jsonl"
    )
    parser.add_argument("--figures_dir", type=Path, default=None)
    args = parser.parse_args()
    for path in plot(args.sweep_dir, args.results, args.figures_dir):
        print(path)


if __name__ == "__main__":
    main()
