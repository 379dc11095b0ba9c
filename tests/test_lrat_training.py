"""lrat pre-training: the corpus split, the seeded corruption collators (IDAE, CDAE, Ĉ, warm-up), the IDP store
(iteration k reads iteration k-1, sharded translation, checkpoint and resume) and a learnability run on the tiny
corpus."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from datasets import Dataset
from safetensors.torch import load_file, save_file
from transformers import TrainingArguments

from audiolang import (
    CtalFeatureExtractor,
    LratConfig,
    LratForPreTraining,
    LratProcessor,
    train_ctal_tokenizer,
)
from audiolang.training import DataCollatorForAudioText
from audiolang.training.lrat import (
    PAIRED,
    UNPAIRED_AUDIO,
    UNPAIRED_TEXT,
    DataCollatorForLratPreTraining,
    IdpStore,
    KindBatchSampler,
    LratArguments,
    LratPreTrainingDataset,
    LratTrainer,
    pretrain_lrat,
    refresh_idp_store,
    split_lrat_corpus,
    translate_rows,
)

WORDS = [f"w{i}" for i in range(600)]
SAMPLING_RATE = 16_000
TEXT_LENGTH, AUDIO_LENGTH = 64, 320  # translation lengths: longer than every clip of `make_rows`


def make_rows(count: int, seed: int = 0, max_words: int = 14) -> list[dict]:
    """(noise clip of 1.5-3.5 s, sentence of random words) rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        clip = (0.1 * rng.standard_normal(int(rng.uniform(1.5, 3.5) * SAMPLING_RATE))).astype(np.float32)
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(3, max_words))))
        rows.append({"audio": {"array": clip, "sampling_rate": SAMPLING_RATE}, "text": text, "id": index})
    return rows


@pytest.fixture(scope="module")
def processor() -> LratProcessor:
    """Byte-level BPE trained until every word is one token (so that a random replacement is rarely the original)."""
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=12)) for _ in range(3000)]
    return LratProcessor(CtalFeatureExtractor(), train_ctal_tokenizer(texts, vocab_size=1200))


def tiny_config(processor: LratProcessor, **overrides) -> LratConfig:
    tokenizer = processor.tokenizer
    defaults = {
        "vocab_size": len(tokenizer),
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "text_translation_length": TEXT_LENGTH,
        "audio_translation_length": AUDIO_LENGTH,
        "mask_token_id": tokenizer.mask_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return LratConfig.from_preset("tiny", **{**defaults, **overrides})


@pytest.fixture(scope="module")
def splits() -> dict[str, Dataset]:
    return split_lrat_corpus(Dataset.from_list(make_rows(20)), num_paired=6)


def random_store(config: LratConfig, splits, seed: int = 0) -> IdpStore:
    generator = torch.Generator().manual_seed(seed)
    shapes = {
        "text": (config.text_translation_length, config.embedding_size),
        "audio": (config.audio_translation_length, config.audio_feature_size),
    }
    wanted = {PAIRED: ("text", "audio"), UNPAIRED_TEXT: ("audio",), UNPAIRED_AUDIO: ("text",)}
    return IdpStore(
        {
            f"{name}.{target}": torch.randn(len(splits[name]), *shapes[target], generator=generator)
            for name in wanted
            for target in wanted[name]
        },
        iteration=3,
    )


def items(splits, name: str) -> list[dict]:
    dataset = LratPreTrainingDataset({name: splits[name]})
    return [dataset[i] for i in range(len(dataset))]


# --- the corpus split -----------------------------------------------------------------------------------------------


def test_split_takes_text_and_audio_from_disjoint_halves() -> None:
    data = Dataset.from_list(
        [{"audio": {"array": [0.1], "sampling_rate": 1}, "text": f"t{i}", "id": i} for i in range(25)]
    )
    parts = split_lrat_corpus(data, num_paired=5, seed=3)
    assert {name: len(split) for name, split in parts.items()} == {
        PAIRED: 5,
        UNPAIRED_TEXT: 10,
        UNPAIRED_AUDIO: 10,
    }
    assert (
        "audio" not in parts[UNPAIRED_TEXT].column_names and "text" not in parts[UNPAIRED_AUDIO].column_names
    )
    ids = [set(parts[name]["id"]) for name in (PAIRED, UNPAIRED_TEXT, UNPAIRED_AUDIO)]
    assert set.union(*ids) == set(range(25)) and sum(map(len, ids)) == 25  # a partition
    assert parts[PAIRED]["id"] == split_lrat_corpus(data, num_paired=5, seed=3)[PAIRED]["id"]
    assert parts[PAIRED]["id"] != split_lrat_corpus(data, num_paired=5, seed=4)[PAIRED]["id"]
    fully = split_lrat_corpus(data, num_paired=10**6)
    assert (len(fully[PAIRED]), len(fully[UNPAIRED_TEXT]), len(fully[UNPAIRED_AUDIO])) == (25, 0, 0)
    assert len(split_lrat_corpus(data, num_paired=0)[PAIRED]) == 0
    with pytest.raises(ValueError, match="no column 'asr_text'"):
        split_lrat_corpus(data, 5, text_column="asr_text")


def test_batches_hold_one_kind_and_cover_every_item_once_per_epoch() -> None:
    kinds = [PAIRED] * 5 + [UNPAIRED_TEXT] * 7 + [UNPAIRED_AUDIO] * 6
    sampler = KindBatchSampler(kinds, batch_size=3, seed=0)
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 2 + 3 + 2
        assert all(len({kinds[i] for i in batch}) == 1 for batch in batches)
        assert sorted(i for batch in batches for i in batch) == list(range(len(kinds)))
        epochs.append(batches)
    assert epochs[0] != epochs[1]
    sampler.set_epoch(0)
    assert list(sampler) == epochs[0]


# --- corruption -----------------------------------------------------------------------------------------------------


def token_branches(original: torch.Tensor, corrupted: torch.Tensor, labels: torch.Tensor, mask_id: int):
    """Counts of (selected, eligible) tokens and of the <mask> / random / kept branches among the selected."""
    selected = labels != -100
    assert torch.equal(labels[selected], original[selected]) and torch.equal(
        corrupted[~selected], original[~selected]
    )
    masked = (corrupted == mask_id) & selected
    kept = (corrupted == original) & selected
    return int(selected.sum()), int(masked.sum()), int(kept.sum())


def test_corruption_statistics_follow_the_paper(processor) -> None:
    """IDAE corrupts 15% of the tokens / frames (80% mask), CDAE 30% (60% mask, the rest split evenly), Ĉ replaces 30%
    by the stored translation at the same positions; over many seeded draws."""
    config = tiny_config(processor)
    parts = split_lrat_corpus(Dataset.from_list(make_rows(24, seed=5, max_words=30)), num_paired=8)
    store = random_store(config, parts)
    collator = DataCollatorForLratPreTraining(
        processor, config, store=store, min_span=10, max_span=20, seed=0
    )
    special = torch.tensor(processor.tokenizer.all_special_ids)
    names = ("idae_text", "cdae_text", "idae_audio", "cdae_audio", "hat_text", "hat_audio")
    counts = {name: np.zeros(4) for name in names}
    paired = items(parts, PAIRED)  # rows 0-7 of the store, in order
    clean = DataCollatorForAudioText(processor, text_column="text")(paired)
    for _ in range(40):
        batch = collator(paired)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        eligible = (mask == 1) & ~torch.isin(ids, special)
        for key, corrupted, labels in (
            ("idae_text", batch["idae_input_ids"], batch["idae_labels"]),
            ("cdae_text", batch["decoder_input_ids"], batch["labels"]),
        ):
            selected, masked, kept = token_branches(ids, corrupted, labels, config.mask_token_id)
            counts[key] += (selected, int(eligible.sum()), masked, kept)
        for key, prefix in (("idae_audio", "idae_"), ("cdae_audio", "")):
            frames = batch[f"{prefix}audio_labels_mask"]
            source = batch["idae_input_features" if prefix else "decoder_input_features"]
            real = batch["audio_attention_mask"].bool()
            zeroed = (source == 0).all(-1) & frames
            kept = (source == batch[f"{prefix}audio_labels"]).all(-1) & frames
            counts[key] += (int(frames.sum()), int(real.sum()), int(zeroed.sum()), int(kept.sum()))
        # Ĉ(w): the chosen tokens take the stored w~ at their own position (within the translation length),
        # nothing else does.
        replaced = batch["inputs_embeds_mask"]
        assert not (replaced & ~eligible).any() and not replaced[:, TEXT_LENGTH:].any()
        shared = min(ids.shape[1], TEXT_LENGTH)
        translated = store.translations[f"{PAIRED}.text"][:, :shared]
        within = replaced[:, :shared]
        torch.testing.assert_close(batch["inputs_embeds"][:, :shared][within], translated[within])
        eligible[:, TEXT_LENGTH:] = False
        counts["hat_text"] += (int(replaced.sum()), int(eligible.sum()), 0, 0)
        # Ĉ(a): replaced frames equal the stored a~ at the same frames.
        stored = store.translations[f"{PAIRED}.audio"][:, : batch["input_features"].shape[1]]
        changed = (batch["input_features"] != clean["input_features"]).any(-1)
        torch.testing.assert_close(batch["input_features"][changed], stored[changed])
        counts["hat_audio"] += (int(changed.sum()), int(batch["audio_attention_mask"].sum()), 0, 0)
    rates = {name: value[0] / value[1] for name, value in counts.items()}
    assert rates["idae_text"] == pytest.approx(0.15, abs=0.02)
    assert rates["cdae_text"] == pytest.approx(0.30, abs=0.02)
    assert rates["idae_audio"] == pytest.approx(0.15, abs=0.02)
    assert rates["cdae_audio"] == pytest.approx(0.30, abs=0.03)
    assert rates["hat_text"] == pytest.approx(0.30, abs=0.02)
    assert rates["hat_audio"] == pytest.approx(0.30, abs=0.03)
    branches = {
        name: (counts[name][2] / counts[name][0], counts[name][3] / counts[name][0])
        for name in counts
        if counts[name][2]
    }
    assert branches["idae_text"] == pytest.approx((0.8, 0.1), abs=0.03)
    assert branches["cdae_text"] == pytest.approx((0.6, 0.2), abs=0.03)
    assert branches["idae_audio"] == pytest.approx((0.8, 0.1), abs=0.05)
    assert branches["cdae_audio"] == pytest.approx((0.6, 0.2), abs=0.05)


def test_each_kind_of_batch_feeds_its_pass(processor, splits) -> None:
    config = tiny_config(processor)
    store = random_store(config, splits)
    collator = DataCollatorForLratPreTraining(processor, config, store=store, seed=0)
    text = collator(items(splits, UNPAIRED_TEXT)[:3])
    # L_W(w | a~, C(w)): the stored a~ of exactly these rows is the audio source, with no padding mask.
    torch.testing.assert_close(text["input_features"], store.translations[f"{UNPAIRED_TEXT}.audio"][:3])
    assert "audio_attention_mask" not in text and "input_ids" not in text and "audio_labels" not in text
    audio = collator(items(splits, UNPAIRED_AUDIO)[1:4])
    torch.testing.assert_close(audio["inputs_embeds"], store.translations[f"{UNPAIRED_AUDIO}.text"][1:4])
    assert "labels" not in audio and "decoder_input_ids" not in audio
    assert audio["lrat_split"] == UNPAIRED_AUDIO
    # Seeded: the same seed draws the same corruption, another seed another one.
    again = DataCollatorForLratPreTraining(processor, config, store=store, seed=0)(
        items(splits, UNPAIRED_TEXT)[:3]
    )
    other = DataCollatorForLratPreTraining(processor, config, store=store, seed=1)(
        items(splits, UNPAIRED_TEXT)[:3]
    )
    assert torch.equal(again["decoder_input_ids"], text["decoder_input_ids"])
    assert not torch.equal(other["decoder_input_ids"], text["decoder_input_ids"])
    without_idae = DataCollatorForLratPreTraining(processor, config, store=store, idae=False, seed=0)
    assert not any(key.startswith("idae_") for key in without_idae(items(splits, PAIRED)))
    with pytest.raises(ValueError, match="one kind of item"):
        collator(items(splits, PAIRED)[:1] + items(splits, UNPAIRED_TEXT)[:1])

    warmup = DataCollatorForLratPreTraining(processor, config, warmup=True, seed=0)(items(splits, PAIRED))
    pair = DataCollatorForAudioText(processor, text_column="text")(splits[PAIRED])
    assert (warmup["decoder_input_ids"] == config.mask_token_id).all()
    assert warmup["decoder_input_ids"].shape == (6, TEXT_LENGTH)
    assert (
        warmup["decoder_input_features"].shape == (6, AUDIO_LENGTH, 160)
        and not warmup["decoder_input_features"].any()
    )
    # Targets of the fixed length: the text, then <pad>; the frames, then zeros; every position counts.
    length = pair["input_ids"].shape[1]
    assert torch.equal(warmup["labels"][:, :length], pair["input_ids"])
    assert (warmup["labels"][:, length:] == config.pad_token_id).all()
    frames = pair["input_features"].shape[1]
    torch.testing.assert_close(warmup["audio_labels"][:, :frames], pair["input_features"])
    assert not warmup["audio_labels"][:, frames:].any() and warmup["audio_labels_mask"].all()
    torch.testing.assert_close(warmup["input_features"], pair["input_features"])


# --- the IDP store --------------------------------------------------------------------------------------------------


def test_iteration_k_translates_iteration_k_minus_1(processor, splits, monkeypatch) -> None:
    torch.manual_seed(0)
    model = LratForPreTraining(tiny_config(processor))
    recorded = []
    original = LratForPreTraining.translate_audio_to_text

    def spy(self, input_features, audio_attention_mask=None, decoder_inputs_embeds=None):
        recorded.append(decoder_inputs_embeds)
        return original(self, input_features, audio_attention_mask, decoder_inputs_embeds)

    monkeypatch.setattr(LratForPreTraining, "translate_audio_to_text", spy)
    paired = {PAIRED: splits[PAIRED]}
    first = refresh_idp_store(model, processor, paired, batch_size=4)
    assert first.iteration == 0 and recorded == [None, None]  # w~_0 from the all-mask input
    recorded.clear()
    second = refresh_idp_store(model, processor, paired, first, batch_size=4)
    assert second.iteration == 1
    torch.testing.assert_close(torch.cat(recorded), first.translations[f"{PAIRED}.text"], atol=0, rtol=0)
    for key in first.translations:
        assert (second.translations[key] - first.translations[key]).abs().max() > 1e-4, key
    recorded.clear()
    # "w/o IDP": every round re-translates from the all-mask input, so the store does not move.
    again = refresh_idp_store(model, processor, paired, second, from_previous=False, batch_size=4)
    assert recorded == [None, None] and again.iteration == 2
    for key in first.translations:
        torch.testing.assert_close(again.translations[key], first.translations[key])


def test_sharded_translation_sums_to_the_single_process_one(processor, splits) -> None:
    torch.manual_seed(0)
    model = LratForPreTraining(tiny_config(processor))
    rows = splits[UNPAIRED_TEXT]
    collate = DataCollatorForAudioText(processor, audio_column=None, text_column="text")
    previous = torch.randn(len(rows), AUDIO_LENGTH, 160)
    single = translate_rows(model, rows, collate, "audio", previous, batch_size=3)
    shards = [translate_rows(model, rows, collate, "audio", previous, 3, rank, 2) for rank in range(2)]
    assert all(shard.abs().sum() > 0 for shard in shards)
    assert not (shards[0].abs().sum((1, 2)) * shards[1].abs().sum((1, 2))).any()  # disjoint rows
    torch.testing.assert_close(shards[0] + shards[1], single, atol=0, rtol=0)


def _gloo_worker(rank: int, port: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = LratForPreTraining.from_pretrained(f"{folder}/model")
        processor = LratProcessor.from_pretrained(f"{folder}/model")
        splits = {name: Dataset.load_from_disk(f"{folder}/{name}") for name in (PAIRED, UNPAIRED_TEXT)}
        store = refresh_idp_store(
            model, processor, splits, IdpStore(load_file(f"{folder}/store.safetensors")), batch_size=2
        )
        store.save(Path(folder) / f"rank{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters importing transformers: ~15 s; the sharding itself is tested above
def test_two_processes_build_the_single_process_store(processor, splits, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = tiny_config(processor)
    model = LratForPreTraining(config)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    parts = {name: splits[name] for name in (PAIRED, UNPAIRED_TEXT)}
    for name, split in parts.items():
        split.save_to_disk(str(tmp_path / name))
    previous = {
        k: v for k, v in random_store(config, splits).translations.items() if k.split(".")[0] in parts
    }
    save_file(previous, str(tmp_path / "store.safetensors"))
    for rank in range(2):
        (tmp_path / f"rank{rank}").mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_gloo_worker, args=(port, str(tmp_path)), nprocs=2, start_method="spawn")
    single = refresh_idp_store(model, processor, parts, IdpStore(previous), batch_size=2)
    for rank in range(2):
        store = IdpStore.load(tmp_path / f"rank{rank}")
        assert store.iteration == single.iteration == 1
        assert sorted(store.translations) == sorted(single.translations)
        for key, value in single.translations.items():
            torch.testing.assert_close(store.translations[key], value, atol=0, rtol=0, msg=key)


def test_checkpoints_hold_the_store_and_resuming_restores_it(
    processor, splits, tmp_path: Path, monkeypatch
) -> None:
    """Algorithm 1 end to end (warm-up, initial translation, two iterations with a refresh each), then a run resumed
    from the first iteration's checkpoint: it continues from that checkpoint's store."""
    torch.manual_seed(0)
    config = tiny_config(processor)
    data = Dataset.from_list(make_rows(14, seed=2))
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=1e-3,
        save_strategy="epoch",
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=0,
    )
    lrat_args = LratArguments(num_paired=4, warmup_epochs=1, num_iterations=2)
    validation = Dataset.from_list(make_rows(3, seed=9))
    _, history = pretrain_lrat(LratForPreTraining(config), processor, data, args, lrat_args, validation)
    logged = {key for log in history for key in log}
    parts = ("warmup", "idae", "cdae_unpaired", "cdae_paired")
    assert {f"{kind}_{modality}_loss" for kind in parts for modality in ("text", "audio")} <= logged
    assert [log["idp_iteration"] for log in history if "idp_iteration" in log] == [0, 1, 2]
    assert (tmp_path / "run" / "warmup" / "model.safetensors").is_file()
    checkpoints = sorted((tmp_path / "run").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) == 2
    stores = [IdpStore.load(folder) for folder in checkpoints]
    assert [store.iteration for store in stores] == [1, 2]
    assert set(stores[0].translations) == {
        "paired.text", "paired.audio", "unpaired_text.audio", "unpaired_audio.text", "validation.text", "validation.audio"
    }  # fmt: skip

    resumed_from = []
    original = refresh_idp_store

    def spy(*args, **kwargs):
        resumed_from.append(args[3])
        return original(*args, **kwargs)

    monkeypatch.setattr("audiolang.training.lrat.refresh_idp_store", spy)
    resumed_args = replace(args, num_train_epochs=lrat_args.num_iterations)
    trainer = LratTrainer(
        LratForPreTraining(config),
        resumed_args,
        split_lrat_corpus(data, 4),
        processor,
        validation_pairs=validation,
    )
    trainer.train(resume_from_checkpoint=str(checkpoints[0]))
    (store,) = resumed_from  # no initial translation: the checkpoint's store is the previous iteration
    assert store.iteration == 1
    for key, value in stores[0].translations.items():
        torch.testing.assert_close(store.translations[key], value, atol=0, rtol=0)
    assert trainer.store.iteration == 2


# --- learnability ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_corpus():
    from audiolang.data import build_corpus

    return build_corpus("tiny", seed=0, progress=False)


def test_warmup_on_the_tiny_corpus_pairs_learns_to_translate_audio_to_text(
    tiny_corpus, tmp_path: Path
) -> None:
    """Warm-up alone on 8 pairs of the tiny corpus: the audio -> text translation of those pairs gets most tokens
    right from each clip's own audio, and few from another pair's audio (so it is not a text prior). Measured: 0.78
    against 0.07."""
    rows = tiny_corpus["pretrain"].select(range(8))
    tokenizer = train_ctal_tokenizer(rows, vocab_size=300)
    processor = LratProcessor(CtalFeatureExtractor(), tokenizer)
    config = tiny_config(
        processor,
        hidden_size=64,
        intermediate_size=128,
        text_translation_length=16,
        audio_translation_length=160,
    )
    torch.manual_seed(0)
    model = LratForPreTraining(config)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        num_train_epochs=100,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=0,
    )
    LratTrainer(model, args, {PAIRED: rows}, processor, warmup=True).train()

    batch = DataCollatorForAudioText(processor, text_column="text")(rows)
    length = min(batch["input_ids"].shape[1], config.text_translation_length)
    target = batch["input_ids"][:, :length]
    counted = batch["attention_mask"][:, :length].bool() & ~torch.isin(
        target, torch.tensor(tokenizer.all_special_ids)
    )

    def accuracy(order: torch.Tensor) -> float:
        with torch.no_grad():
            logits = model.translate_audio_to_text(
                batch["input_features"][order], batch["audio_attention_mask"][order]
            ).text_logits
        return float((logits.argmax(-1)[:, :length] == target)[counted].float().mean())

    own, other = accuracy(torch.arange(8)), accuracy(torch.arange(8).roll(1))
    assert own > 0.5 and other < 0.2, (own, other)
