"""The benchmark and sweep helpers: timing, aggregation, sweep arguments and the paper-figure plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from _common import mean_and_std, median_ratio, paired_timings, sweep_arguments  # noqa: E402
from plot_turbo import circle_projection, plot  # noqa: E402


def test_paired_timings_alternate_and_skip_warmup():
    calls = []
    timings = paired_timings(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, repeats=3
    )
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # ABBA order
    assert all(len(timings[kind][name]) == 3 for kind in ("wall", "cpu") for name in "ab")
    assert median_ratio([2.0, 4.0, 9.0], [1.0, 1.0, 3.0]) == 3.0


def test_mean_and_std_over_seeds():
    rows = [{"test_wa": 0.5}, {"test_wa": 0.7}, {"test_wa": 0.6, "other": 1.0}]
    summary = mean_and_std(rows, ("test_wa", "missing"))
    assert summary["test_wa"] == pytest.approx(0.6)
    assert summary["test_wa_std"] == pytest.approx(0.1)
    assert "missing" not in summary
    assert mean_and_std([{"x": 2.0}], ("x",)) == {"x": 2.0, "x_std": 0.0}


def test_sweep_arguments_parse_as_finetune_arguments(tmp_path: Path):
    """run_finetune.py accepts every sweep argument: it parses them all and stops only at the missing model."""
    script = Path(__file__).resolve().parent.parent / "run_scripts" / "run_finetune.py"
    argv = sweep_arguments("emotion", 3, 2.0, 16, 1e-3, "tiny", "some/corpus")
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--model_name_or_path",
            str(tmp_path / "none"),
            "--output_dir",
            "o",
            *argv,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert proc.returncode != 0 and "is not a saved model" in proc.stderr, proc.stderr[-2000:]


def test_circle_projection_puts_points_on_the_unit_circle():
    points = circle_projection(np.random.default_rng(0).normal(size=(50, 8)))
    assert points.shape == (50, 2)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0)


def test_turbo_plots_are_drawn_from_a_sweep(tmp_path: Path):
    rng = np.random.default_rng(0)
    results = tmp_path / "sweep.jsonl"
    lines = []
    for objective in ("vanilla", "turbo"):
        for seed in (0, 1):
            run_dir = tmp_path / "sweep" / "emotion" / objective / f"seed-{seed}"
            run_dir.mkdir(parents=True)
            np.savez(
                run_dir / "test_embeddings.npz", audio=rng.normal(size=(30, 4)), text=rng.normal(size=(30, 4))
            )
            lines.append(
                json.dumps(
                    {"kind": "run", "task": "emotion", "objective": objective, "seed": seed,
                     "test_alignment": 1.9, "test_uniformity_audio": -1.0}
                )
            )  # fmt: skip
    results.write_text("\n".join(lines) + "\n")
    written = plot(tmp_path / "sweep", results, tmp_path / "figures")
    assert sorted(p.name for p in written) == [
        "sweep_align_uniform_emotion.png",
        "sweep_audio_density_emotion.png",
    ]
    assert all(p.stat().st_size > 1000 for p in written)
