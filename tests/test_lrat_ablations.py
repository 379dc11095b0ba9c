"""The helpers of lrat's ablation sweep (`benchmarks/lrat_ablations.py`): row arguments and the report's tables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


def test_audio_blind_baselines_against_hand_counts(tmp_path: Path) -> None:
    """Pairs and held-out pairs of one and the same (clip, text): the usual token at every position is the text's own
    and the mean frame is the clip's own, so the blind baseline is perfect (accuracy 1, L1 0), and its zeros L1 is
    the mean |feature|; held-out texts of words no pair has score 0."""
    import json

    import numpy as np
    from datasets import Dataset, DatasetDict

    from audiolang import CtalFeatureExtractor, LratConfig, LratProcessor, train_ctal_tokenizer

    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(16_000)).astype(np.float32)
    row = {"audio": {"array": clip, "sampling_rate": 16_000}, "text": "open the window please"}
    other = {"audio": {"array": clip, "sampling_rate": 16_000}, "text": "zz qq"}
    tokenizer = train_ctal_tokenizer(["open the window please", "zz qq"] * 50, vocab_size=300)
    processor = LratProcessor(CtalFeatureExtractor(), tokenizer)
    folder = tmp_path / "ours"
    LratConfig.from_preset("tiny", vocab_size=len(tokenizer)).save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "pretrain_results.json").write_text(json.dumps({"train_rows": 6, "num_validation_pairs": 2}))
    args = sweep.parse_args(["--num_paired", "4"])

    same = DatasetDict(pretrain=Dataset.from_list([row] * 6), validation=Dataset.from_list([row] * 3))
    baseline = sweep.audio_blind_baselines(args, same, folder)
    assert baseline["text_accuracy"] == 1.0 and baseline["audio_l1"] == pytest.approx(0.0, abs=1e-6)
    features = processor.feature_extractor(clip, sampling_rate=16_000, return_tensors="np")["input_features"][
        0
    ]
    assert baseline["audio_l1_zeros"] == pytest.approx(float(np.abs(features[:160]).mean()), rel=1e-5)

    unseen = DatasetDict(pretrain=Dataset.from_list([row] * 6), validation=Dataset.from_list([other] * 2))
    assert sweep.audio_blind_baselines(args, unseen, folder)["text_accuracy"] == 0.0
