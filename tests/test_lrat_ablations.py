"""The helpers of lrat's ablation sweep (`benchmarks/lrat_ablations.py`): row arguments and the report's tables."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import lrat_ablations as sweep  # noqa: E402
from _common import Results  # noqa: E402

from audiolang.probing import LOG_MEL_STREAM  # noqa: E402


def test_row_arguments_come_last_and_fully_paired_warms_up_for_as_many_steps() -> None:
    args = sweep.parse_args(["--num_paired", "50", "--warmup_epochs", "10", "--max_train_samples", "300"])
    argv = sweep.pretrain_argv(args, "fully paired", seed=1, rows=300)
    # argparse keeps the last value: the row's warm-up (10 epochs x 50 pairs ~ 2 epochs x 300 rows) wins
    assert argv[argv.index("--fully_paired") :][:3] == ["--fully_paired", "--warmup_epochs", "2"]
    assert argv.index("--fully_paired") > argv.index("--warmup_epochs")
    assert argv[argv.index("--seed") + 1] == "1"
    assert "--save_initial_model" not in argv
    ours = sweep.pretrain_argv(args, "ours", seed=1, rows=300)
    assert ours[-1] == str(Path(args.output_dir) / "initial" / "seed-1")
    assert "--no_idp" in sweep.pretrain_argv(args, "w/o IDP", seed=0, rows=300)
    assert "--no_idp" not in ours


def test_report_orders_rows_and_averages_probes_and_finetuning_over_seeds(tmp_path: Path) -> None:
    args = sweep.parse_args(["--rows", "w/o pre-training", "ours", "--tasks", "emotion", "--seeds", "0", "1"])
    results = Results(tmp_path / "r.jsonl")
    for seed, (ours, initial) in enumerate(((0.6, 0.4), (0.8, 0.5))):
        for row, accuracy in (("ours", ours), ("w/o pre-training", initial), (LOG_MEL_STREAM, 0.55)):
            record = {"stream": "audio", "task": "emotion", "accuracy": accuracy, "c": 1.0}
            results.add(kind="probe", row=row, seed=seed, seconds=1.0, records=[record])
        results.add(
            kind="finetune", row="ours", task="emotion", seed=seed, train_size=8, test_wa=ours, test_ua=0.1
        )
    table = sweep.report(args, results).splitlines()
    probes = [line for line in table if line.startswith("| ") and "audio" in line]
    assert probes == [
        "| w/o pre-training | audio | 0.450 ± 0.071 |",
        "| ours | audio | 0.700 ± 0.141 |",
        f"| {LOG_MEL_STREAM} | audio | 0.550 ± 0.000 |",
    ]
    assert "| ours | 0.7000 ± 0.1414 | 0.1000 ± 0.0000 |" in table
    assert "| w/o pre-training | - | - |" in table  # not fine-tuned: no number made up


def test_without_probe_tasks_or_finetuning_tasks_the_report_has_no_such_table(tmp_path: Path) -> None:
    args = sweep.parse_args(["--probe_tasks", "--tasks"])
    assert args.probe_tasks == [] and args.tasks == []
    assert sweep.report(args, Results(tmp_path / "r.jsonl")) == ""
