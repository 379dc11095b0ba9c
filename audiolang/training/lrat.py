"""lrat pre-training (Kang et al., AAAI 2022): the data split, the corruption collators, the pseudo-parallel store of
the iterative denoising process (IDP), and Algorithm 1 on 🤗 Trainer.

Algorithm 1, as run by `pretrain_lrat`:

1. *Warm-up* (`LratTrainer(warmup=True)`, T epochs over the paired split): L^warm, each modality translated from the
   other in one non-autoregressive pass from an all-mask input of the fixed translation length.
2. The initial translations w~_0, a~_0 of every item from the all-mask input (the store's iteration 0).
3. *Iterative denoising* (`LratTrainer()`, K epochs over all items): each epoch minimises L^idae + L^cdae with
   batches built from the store, then refreshes the store without gradients, iteration k's translation of every item
   being computed *from iteration k-1's* (`refresh_idp_store`).

Choices where the paper is silent (the facts about the authors' code are from issue 11):

- Every batch holds one kind of item (paired, unpaired text, unpaired audio): their passes differ, and one forward
  per training step keeps DistributedDataParallel's bookkeeping simple. Batches of all kinds are shuffled together.
- Warm-up targets have the fixed translation length: the text, then `<pad>` tokens; the frames, then zero frames.
  All positions count, so that the model learns to "fill the information space" with padding after the content.
  The authors' code also adds a small supervised translation term on the pairs during the iterations; the paper's
  objective (followed here) does not.
- C on audio is CTAL's span corruption (segments of 20-50 frames); C's 40% of selected positions not replaced by the
  mask are split evenly between random and unchanged. Ĉ uses the same segments for audio and single tokens for text,
  special tokens excluded, and on text it replaces the token *embeddings* by the translation's output embeddings (the
  paper translates text to embeddings precisely to keep that information).
- The store's validation chain (held-out pairs, never trained on) gives the translation quality of every IDP
  iteration: masked-token accuracy of audio -> text and L1 of text -> audio (the paper's central claim).
- Each phase has its own linear learning-rate schedule (Trainer's), over its own epochs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from datasets import Dataset, DatasetDict
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Sampler
from transformers import (
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import seed_worker

from ..configuration_lrat import LratConfig
from ..losses import distributed_rank_and_world_size
from ..modeling_lrat import LratForPreTraining, translation_start
from ..processing_lrat import LratProcessor
from .builders import build_from_tokenizer
from .collators import DataCollatorForAudioText, mask_audio_spans
from .lifecycle import check_run_record, last_complete_checkpoint, own_output_dir, resume_checkpoint

logger = logging.getLogger(__name__)

__all__ = [
    "DataCollatorForLratPreTraining",
    "IdpStore",
    "KindBatchSampler",
    "LratArguments",
    "LratPreTrainingDataset",
    "LratTrainer",
    "PAIRED",
    "UNPAIRED_AUDIO",
    "UNPAIRED_TEXT",
    "VALIDATION",
    "build_lrat",
    "idp_curve",
    "lrat_resume_point",
    "pretrain_lrat",
    "refresh_idp_store",
    "split_lrat_corpus",
    "translate_rows",
    "translation_quality",
]

PAIRED, UNPAIRED_AUDIO, UNPAIRED_TEXT, VALIDATION = "paired", "unpaired_audio", "unpaired_text", "validation"
# The translations the store keeps for the items of each split: into text (w~, from the audio) and/or into audio
# (a~, from the text). Validation items are held-out pairs whose chain measures translation quality.
TRANSLATIONS: dict[str, tuple[str, ...]] = {
    PAIRED: ("text", "audio"),
    UNPAIRED_AUDIO: ("text",),
    UNPAIRED_TEXT: ("audio",),
    VALIDATION: ("text", "audio"),
}


def build_lrat(
    tokenizer: PreTrainedTokenizerBase, preset: str = "tiny", **config_overrides: Any
) -> tuple[LratForPreTraining, LratProcessor]:
    """A randomly initialised lrat pre-training model of `preset` and its processor, sized to `tokenizer` (e.g. a
    byte-level BPE from `train_ctal_tokenizer`: the paper follows RoBERTa's text preprocessing)."""
    return build_from_tokenizer(
        LratConfig, LratForPreTraining, LratProcessor, tokenizer, preset, **config_overrides
    )


# --- data ------------------------------------------------------------------------------------------------------------


def split_lrat_corpus(
    dataset: Dataset,
    num_paired: int,
    text_column: str = "text",
    audio_column: str = "audio",
    seed: int = 0,
) -> DatasetDict:
    """Split an audio + text dataset as the paper builds its corpus: `paired` (`num_paired` rows with both columns),
    then the rest "split in half", taking the text from one half (`unpaired_text`, no audio column) and the audio from
    the other (`unpaired_audio`, no text column), so that no unpaired clip has its transcript among the unpaired
    texts.

    `text_column` is the manual transcript or an ASR column; the other columns are kept (labels are never read).
    `num_paired=0` is the "w/o paired data" ablation; `num_paired >= len(dataset)` the "fully paired" one (every row
    paired, no unpaired data). Rows are shuffled with `seed` first; an odd remainder gives its extra row to
    `unpaired_text`.
    """
    for column in (text_column, audio_column):
        if column not in dataset.column_names:
            raise ValueError(f"The dataset has no column {column!r} (it has {dataset.column_names}).")
    if num_paired < 0:
        raise ValueError(f"`num_paired` must be >= 0, got {num_paired}.")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    num_paired = min(num_paired, len(order))
    rest = order[num_paired:]
    half = math.ceil(len(rest) / 2)
    return DatasetDict(
        {
            PAIRED: dataset.select(order[:num_paired]),
            UNPAIRED_TEXT: dataset.select(rest[:half]).remove_columns(audio_column),
            UNPAIRED_AUDIO: dataset.select(rest[half:]).remove_columns(text_column),
        }
    )


class LratPreTrainingDataset(torch.utils.data.Dataset):
    """The items of several splits as one dataset: item `i` is a row of its split, with `lrat_split` (the split name,
    which says what kind of item it is) and `lrat_index` (its row in the split, which is its row in the store)."""

    def __init__(self, splits: Mapping[str, Dataset]):
        self.splits = dict(splits)
        self.items = [(name, row) for name, split in self.splits.items() for row in range(len(split))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        name, row = self.items[index]
        return {**self.splits[name][row], "lrat_split": name, "lrat_index": row}

    @property
    def kinds(self) -> list[str]:
        return [name for name, _ in self.items]


class KindBatchSampler(Sampler[list[int]]):
    """Batches of one kind of item each (`kinds[i]` is item i's), shuffled within each kind and then across kinds,
    anew for every epoch from `seed + epoch` (`set_epoch`, which Trainer calls). Under distributed training accelerate
    hands every process its share of the batches."""

    def __init__(self, kinds: Sequence[str], batch_size: int, seed: int = 0, drop_last: bool = False):
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
        self.groups: dict[str, list[int]] = {}
        for index, kind in enumerate(kinds):
            self.groups.setdefault(kind, []).append(index)
        # Not named `batch_size`: accelerate's `BatchSamplerShard` then treats the batches as variable-sized and evens
        # out the processes with whole batches, never with a mix of indices from batches of different kinds.
        self.items_per_batch, self.seed, self.drop_last, self.epoch = batch_size, seed, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches_per_group(self, size: int) -> int:
        return size // self.items_per_batch if self.drop_last else math.ceil(size / self.items_per_batch)

    def __len__(self) -> int:
        return sum(self._batches_per_group(len(items)) for items in self.groups.values())

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        batches = []
        for items in self.groups.values():
            shuffled = [items[i] for i in torch.randperm(len(items), generator=generator).tolist()]
            for b in range(self._batches_per_group(len(items))):
                batches.append(shuffled[b * self.items_per_batch : (b + 1) * self.items_per_batch])
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[b]


# --- the pseudo-parallel store ---------------------------------------------------------------------------------------


@dataclass
class IdpStore:
    """The pseudo-parallel data of IDP: for every item, its current translation(s), as `"<split>.text"` tensors of
    output embeddings w~ `(rows, text_translation_length, embedding_size)` and `"<split>.audio"` tensors of frames a~
    `(rows, audio_translation_length, audio_feature_size)`, rows in split order (see `TRANSLATIONS` for which split has
    which). `iteration` is k: 0 for the translations from the all-mask input after warm-up.

    Saved as one safetensors file in each checkpoint folder (`LratTrainer` does it), so that a resumed run continues
    with the same store. Its size is rows x length x width x 4 bytes: about 0.3 MB per unpaired text item at the
    `small` preset's 480 frames, 0.64 MB at the paper's 1000.
    """

    translations: dict[str, torch.Tensor] = field(default_factory=dict)
    iteration: int = 0
    FILE_NAME: ClassVar[str] = "idp_store.safetensors"

    def get(self, split: str, modality: str, rows: torch.Tensor | Sequence[int]) -> torch.Tensor:
        key = f"{split}.{modality}"
        if key not in self.translations:
            raise ValueError(
                f"The IDP store has no {key!r} translations (it has {sorted(self.translations)}): build it with "
                "`refresh_idp_store` over the same splits."
            )
        return self.translations[key][torch.as_tensor(rows, dtype=torch.long)]

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / self.FILE_NAME
        tensors = {key: value.contiguous() for key, value in self.translations.items()}
        save_file(tensors, str(path), metadata={"iteration": str(self.iteration)})
        return path

    @classmethod
    def load(cls, folder: str | Path) -> IdpStore:
        path = Path(folder) / cls.FILE_NAME
        if not path.is_file():
            raise ValueError(
                f"{str(folder)!r} has no {cls.FILE_NAME}: it is not an lrat checkpoint of the iterative denoising "
                "phase (those hold the IDP store next to the weights)."
            )
        with safe_open(str(path), framework="pt") as f:
            iteration = int(f.metadata()["iteration"])
        return cls(load_file(str(path)), iteration)


@torch.no_grad()
def translate_rows(
    model: LratForPreTraining,
    rows: Dataset | Sequence[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], Mapping[str, torch.Tensor]],
    target: str,
    previous: torch.Tensor | None = None,
    batch_size: int = 16,
    rank: int = 0,
    world_size: int = 1,
) -> torch.Tensor:
    """Translate `rows` into `target` (`"text"`: w~ from each row's audio; `"audio"`: a~ from its text), from the
    `previous` translations (`(rows, length, width)`, iteration k-1's) or, when it is `None`, from the all-mask input.

    Process `rank` of `world_size` translates the batches `j` (of `batch_size` consecutive rows) with
    `j % world_size == rank` and leaves zeros in the other rows, so that summing the outputs of all processes (one
    `all_reduce`) gives exactly the single-process result: every batch is computed once, on the same rows, whatever
    the number of processes. `collate` turns rows into the model's source inputs (a `DataCollatorForAudioText` of the
    source modality). The model runs in eval mode (no dropout); its mode is restored afterwards.
    """
    if target not in ("text", "audio"):
        raise ValueError(f"`target` must be 'text' or 'audio', got {target!r}.")
    config = model.config
    width = config.embedding_size if target == "text" else config.audio_feature_size
    length = config.text_translation_length if target == "text" else config.audio_translation_length
    translations = torch.zeros(len(rows), length, width)
    if previous is not None and previous.shape != translations.shape:
        raise ValueError(
            f"`previous` has shape {tuple(previous.shape)}, expected {tuple(translations.shape)}: one earlier "
            f"{target} translation per row, of the model's translation length."
        )
    device, was_training = model.device, model.training
    model.eval()
    try:
        for batch_index, start in enumerate(range(0, len(rows), batch_size)):
            if batch_index % world_size != rank:
                continue
            stop = min(start + batch_size, len(rows))
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in range(start, stop)]).items()}
            earlier = None if previous is None else previous[start:stop].to(device)
            if target == "text":
                values = model.translate_audio_to_text(
                    batch["input_features"], batch.get("audio_attention_mask"), decoder_inputs_embeds=earlier
                ).text_embeddings
            else:
                values = model.translate_text_to_audio(
                    input_ids=batch["input_ids"],
                    attention_mask=batch.get("attention_mask"),
                    decoder_input_features=earlier,
                ).audio_features
            translations[start:stop] = values.float().cpu()
    finally:
        model.train(was_training)
    return translations


def refresh_idp_store(
    model: LratForPreTraining,
    processor: Any,
    splits: Mapping[str, Dataset],
    store: IdpStore | None = None,
    *,
    from_previous: bool = True,
    batch_size: int = 16,
    text_column: str = "text",
    audio_column: str = "audio",
) -> IdpStore:
    """One IDP round over every item of `splits` (keys among `TRANSLATIONS`), without gradients: w~_k = f(w~_{k-1},
    f(a; θ_uni^A); θ_cross^W) and a~_k = f(a~_{k-1}, f(w; θ_uni^W); θ_cross^A), from `store`'s translations (k-1).

    Without a `store`, or with `from_previous=False` (the "w/o IDP" ablation: every round re-translates from the
    source alone, as back-translation does), translation starts from the all-mask input. Under `torch.distributed`
    each process translates its share of the batches (`translate_rows`) and one sum across processes assembles the
    store, identical on every process and to the single-process store. Returns the new store, iteration k.
    """
    rank, world_size = distributed_rank_and_world_size()
    collators = {
        # Translating into text reads the audio, into audio the text.
        "text": DataCollatorForAudioText(processor, audio_column=audio_column, text_column=None),
        "audio": DataCollatorForAudioText(processor, audio_column=None, text_column=text_column),
    }
    translations = {}
    for split, rows in splits.items():
        for target in TRANSLATIONS[split]:
            key = f"{split}.{target}"
            previous = store.translations.get(key) if store is not None and from_previous else None
            values = translate_rows(
                model, rows, collators[target], target, previous, batch_size, rank, world_size
            )
            if world_size > 1:
                # Exact: each row is non-zero on exactly one process. On the model's device for NCCL.
                values = values.to(model.device)
                dist.all_reduce(values)
                values = values.cpu()
            translations[key] = values
    return IdpStore(translations, 0 if store is None else store.iteration + 1)


@dataclass
class TranslationScore:
    """Running totals of `translation_quality`'s two measures, added batch by batch, so that any translation (the
    model's, or a baseline that ignores its source) is counted the same way against a collated batch of pairs."""

    correct: int = 0
    tokens: int = 0
    l1_sum: float = 0.0
    l1_count: float = 0.0

    def add(
        self,
        batch: Mapping[str, torch.Tensor],
        predicted_ids: torch.Tensor,
        translated_frames: torch.Tensor,
        special_ids: torch.Tensor,
        text_length: int,
        audio_length: int,
    ) -> None:
        """Count one batch: `predicted_ids` `(batch, >= text_length)` against its real, non-special tokens within
        `text_length`; `translated_frames` `(batch, >= audio_length, features)` against its real frames within
        `audio_length`."""
        length = min(batch["input_ids"].shape[1], text_length)
        target = batch["input_ids"][:, :length]
        counted = batch["attention_mask"][:, :length].bool() & ~torch.isin(target, special_ids)
        self.correct += int((predicted_ids[:, :length] == target)[counted].sum())
        self.tokens += int(counted.sum())
        frames = min(batch["input_features"].shape[1], audio_length)
        real = batch["audio_attention_mask"][:, :frames].bool()
        difference = translated_frames[:, :frames] - batch["input_features"][:, :frames]
        self.l1_sum += float(difference.abs()[real].sum())
        self.l1_count += float(real.sum()) * batch["input_features"].shape[-1]

    def result(self) -> dict[str, float]:
        return {
            "text_accuracy": self.correct / max(self.tokens, 1),
            "audio_l1": self.l1_sum / max(self.l1_count, 1.0),
        }


@torch.no_grad()
def translation_quality(
    model: LratForPreTraining,
    processor: Any,
    rows: Dataset,
    store: IdpStore,
    split: str = VALIDATION,
    text_column: str = "text",
    audio_column: str = "audio",
    batch_size: int = 32,
) -> dict[str, float]:
    """How close the store's translations of paired `rows` (the items of `split`) are to the truth
    (`TranslationScore`):

    - `text_accuracy`: the share of target tokens (special tokens excluded, within the translation length) that the
      audio -> text translation predicts at their position (the tied decoder's argmax of w~): every input position was
      a mask, so this is masked-token accuracy;
    - `audio_l1`: the mean absolute difference between the text -> audio translation a~ and the real frames, over the
      real frames within the translation length.
    """
    config = model.config
    collate = DataCollatorForAudioText(processor, audio_column=audio_column, text_column=text_column)
    special = torch.tensor(processor.tokenizer.all_special_ids)
    score = TranslationScore()
    for start in range(0, len(rows), batch_size):
        indices = range(start, min(start + batch_size, len(rows)))
        batch = collate([rows[i] for i in indices])
        embeddings = store.get(split, "text", indices).to(model.device)
        predicted = model.get_output_embeddings()(embeddings).argmax(-1).cpu()
        translated = store.get(split, "audio", indices)
        score.add(
            batch,
            predicted,
            translated,
            special,
            config.text_translation_length,
            config.audio_translation_length,
        )
    return score.result()


# --- corruption ------------------------------------------------------------------------------------------------------


@dataclass
class DataCollatorForLratPreTraining:
    """Batches for `LratForPreTraining`, one kind of item per batch (rows of `LratPreTrainingDataset`), with every
    corruption of the paper drawn from one seeded generator. The rates come from `config`:

    - warm-up (`warmup=True`, paired rows): the clean pair as sources, w_masked and a_masked as decoder inputs, and
      the fixed-length targets (text then `<pad>`; frames then zeros);
    - `unpaired_text` rows: IDAE on C(w) at `idae_mask_probability` (transformers' MLM masking: 80% `<mask>`, 10%
      random, 10% kept); CDAE with the stored a~ as the audio source and C(w) at `cdae_mask_probability`
      (`cdae_mask_replace_probability` `<mask>`, the rest split evenly between random and kept) as decoder input;
    - `unpaired_audio` rows: IDAE on C(a) (`mask_audio_spans`: segments of `min_span`-`max_span` frames, 80% zeroed,
      10% replaced, 10% kept); CDAE with the stored w~ as the text source (`inputs_embeds`) and C(a) at the CDAE rates;
    - `paired` rows: IDAE on both; CDAE in both directions from Ĉ(w) and Ĉ(a), `paired_replace_probability` of the
      tokens / segments replaced by the same positions of the stored w~ / a~, with C(w), C(a) as decoder inputs.

    `idae=False` leaves IDAE out (the "w/o IDAE" ablation). Each batch also carries `lrat_split`, the kind of its items,
    which `LratTrainer` removes before the forward pass and uses to name the loss parts.

    Args:
        processor: An `LratProcessor` (its tokenizer gives the mask token and the special tokens).
        config: The model's `LratConfig` (rates, translation lengths, special-token ids).
        store: The IDP store (needed by every batch but warm-up ones); `LratTrainer` replaces it after each refresh.
        seed: Seeds the collator's own generator (worker `i` of a `DataLoader` uses `seed + i`); `None` draws from
            torch's global generator.
    """

    processor: Any
    config: LratConfig
    store: IdpStore | None = None
    warmup: bool = False
    idae: bool = True
    text_column: str = "text"
    audio_column: str = "audio"
    min_span: int = 20
    max_span: int = 50
    seed: int | None = None

    def __post_init__(self) -> None:
        tokenizer = self.processor.tokenizer
        if (
            tokenizer.mask_token_id != self.config.mask_token_id
            or tokenizer.pad_token_id != self.config.pad_token_id
        ):
            raise ValueError(
                f"The tokenizer's <mask>/<pad> ids ({tokenizer.mask_token_id}, {tokenizer.pad_token_id}) differ from "
                f"the config's ({self.config.mask_token_id}, {self.config.pad_token_id}): build the config from the "
                "tokenizer (`build_lrat`)."
            )
        views = {
            "both": (self.audio_column, self.text_column),
            "audio": (self.audio_column, None),
            "text": (None, self.text_column),
        }
        self._collate = {
            name: DataCollatorForAudioText(self.processor, audio_column=audio, text_column=text)
            for name, (audio, text) in views.items()
        }
        cdae_rest = (1 - self.config.cdae_mask_replace_probability) / 2
        self._idae_tokens = DataCollatorForLanguageModeling(
            tokenizer, mlm_probability=self.config.idae_mask_probability, seed=self.seed
        )
        self._cdae_tokens = DataCollatorForLanguageModeling(
            tokenizer,
            mlm_probability=self.config.cdae_mask_probability,
            mask_replace_prob=self.config.cdae_mask_replace_probability,
            random_replace_prob=cdae_rest,
            seed=self.seed,
        )
        self._special_ids = torch.tensor(tokenizer.all_special_ids)

    def _generator(self) -> torch.Generator | None:
        if self.seed is not None and self._idae_tokens.generator is None:
            # Created on first use, inside the process (or DataLoader worker) that draws; both maskers share it.
            self._idae_tokens.create_rng()
        self._cdae_tokens.generator = self._idae_tokens.generator
        return self._idae_tokens.generator

    def _special(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.isin(input_ids, self._special_ids) | (attention_mask == 0)

    def _mask_text(self, masker: DataCollatorForLanguageModeling, batch: Mapping[str, torch.Tensor]):
        special = self._special(batch["input_ids"], batch["attention_mask"])
        return masker.torch_mask_tokens(batch["input_ids"].clone(), special)

    def _mask_audio(
        self,
        batch: Mapping[str, torch.Tensor],
        probability: float,
        zero: float,
        generator: torch.Generator | None,
    ):
        return mask_audio_spans(
            batch["input_features"],
            batch["audio_attention_mask"],
            mask_probability=probability,
            min_span=self.min_span,
            max_span=self.max_span,
            zero_probability=zero,
            replace_probability=(1 - zero) / 2,
            generator=generator,
        )

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        kinds = {row["lrat_split"] for row in features}
        if len(kinds) != 1:
            raise ValueError(
                f"A batch mixes items of {sorted(kinds)}: lrat batches hold one kind of item (`KindBatchSampler`)."
            )
        (kind,) = kinds
        generator = self._generator()
        rows = torch.tensor([row["lrat_index"] for row in features])
        if self.warmup:
            if kind != PAIRED:
                raise ValueError(f"Warm-up trains on paired items only, got a batch of {kind!r}.")
            batch = self._warmup(self._collate["both"](features))
        else:
            if self.store is None:
                raise ValueError("Denoising batches need the IDP store: set `store` (LratTrainer does).")
            build = {
                PAIRED: self._paired,
                UNPAIRED_TEXT: self._unpaired_text,
                UNPAIRED_AUDIO: self._unpaired_audio,
            }
            if kind not in build:
                raise ValueError(f"Unknown item kind {kind!r}: expected one of {sorted(build)}.")
            batch = build[kind](features, rows, generator)
        batch["lrat_split"] = "warmup" if self.warmup else kind
        return batch

    def _warmup(self, pair: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        config = self.config
        size = pair["input_ids"].shape[0]
        # Targets of the fixed translation length: the content, then <pad> tokens / zero frames (both are what
        # padding already holds), cut at the length.
        labels = torch.full((size, config.text_translation_length), config.pad_token_id)
        text = min(pair["input_ids"].shape[1], config.text_translation_length)
        labels[:, :text] = pair["input_ids"][:, :text]
        audio_labels = torch.zeros(size, config.audio_translation_length, config.audio_feature_size)
        frames = min(pair["input_features"].shape[1], config.audio_translation_length)
        audio_labels[:, :frames] = pair["input_features"][:, :frames]
        return {
            **pair,
            **translation_start(config, size),
            "labels": labels,
            "audio_labels": audio_labels,
            "audio_labels_mask": torch.ones(size, config.audio_translation_length, dtype=torch.bool),
        }

    def _idae_text(self, text: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.idae:
            return {}
        input_ids, labels = self._mask_text(self._idae_tokens, text)
        return {
            "idae_input_ids": input_ids,
            "idae_attention_mask": text["attention_mask"],
            "idae_labels": labels,
        }

    def _idae_audio(self, audio: Mapping[str, torch.Tensor], generator: torch.Generator | None) -> dict:
        if not self.idae:
            return {}
        masked = self._mask_audio(audio, self.config.idae_mask_probability, 0.8, generator)
        return {
            "idae_input_features": masked.input_features,
            "idae_audio_attention_mask": audio["audio_attention_mask"],
            "idae_audio_labels": masked.targets,
            "idae_audio_labels_mask": masked.mask,
        }

    def _cdae_text(self, text: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        input_ids, labels = self._mask_text(self._cdae_tokens, text)
        return {
            "decoder_input_ids": input_ids,
            "decoder_attention_mask": text["attention_mask"],
            "labels": labels,
        }

    def _cdae_audio(self, audio: Mapping[str, torch.Tensor], generator: torch.Generator | None) -> dict:
        config = self.config
        masked = self._mask_audio(
            audio, config.cdae_mask_probability, config.cdae_mask_replace_probability, generator
        )
        return {
            "decoder_input_features": masked.input_features,
            "decoder_audio_attention_mask": audio["audio_attention_mask"],
            "audio_labels": masked.targets,
            "audio_labels_mask": masked.mask,
        }

    def _unpaired_text(
        self, features, rows: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, Any]:
        text = self._collate["text"](features)
        # L_W(w | a~, C(w)): the translation a~ is the audio source; every one of its frames is real.
        return {
            **self._idae_text(text),
            "input_features": self.store.get(UNPAIRED_TEXT, "audio", rows),
            **self._cdae_text(text),
        }

    def _unpaired_audio(
        self, features, rows: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, Any]:
        audio = self._collate["audio"](features)
        # L_A(a | w~, C(a)): the translation w~ (output embeddings) is the text source.
        return {
            **self._idae_audio(audio, generator),
            "inputs_embeds": self.store.get(UNPAIRED_AUDIO, "text", rows),
            **self._cdae_audio(audio, generator),
        }

    def _paired(self, features, rows: torch.Tensor, generator: torch.Generator | None) -> dict[str, Any]:
        config = self.config
        pair = self._collate["both"](features)
        # Ĉ(w): tokens replaced, at their own positions, by the translation's output embeddings (special tokens
        # and positions beyond the translation length never).
        translated = self.store.get(PAIRED, "text", rows)
        size, length = pair["input_ids"].shape
        inputs_embeds = torch.zeros(size, length, config.embedding_size)
        shared = min(length, config.text_translation_length)
        inputs_embeds[:, :shared] = translated[:, :shared]
        eligible = ~self._special(pair["input_ids"], pair["attention_mask"])
        eligible[:, shared:] = False
        chosen = torch.full((size, length), float(config.paired_replace_probability))
        replaced = torch.bernoulli(chosen, generator=generator).bool() & eligible
        # Ĉ(a): segments replaced by the same segments of a~.
        audio_source = mask_audio_spans(
            pair["input_features"],
            pair["audio_attention_mask"],
            mask_probability=config.paired_replace_probability,
            min_span=self.min_span,
            max_span=self.max_span,
            zero_probability=0.0,
            replace_probability=1.0,
            replacement=self.store.get(PAIRED, "audio", rows),
            generator=generator,
        )
        return {
            **self._idae_text(pair),
            **self._idae_audio(pair, generator),
            "input_ids": pair["input_ids"],
            "attention_mask": pair["attention_mask"],
            "inputs_embeds": inputs_embeds,
            "inputs_embeds_mask": replaced,
            "input_features": audio_source.input_features,
            "audio_attention_mask": pair["audio_attention_mask"],
            **self._cdae_text(pair),
            **self._cdae_audio(pair, generator),
        }


# --- Algorithm 1 on Trainer ------------------------------------------------------------------------------------------

# The loss parts logged by `LratTrainer`: `<kind>_<part>`; the kind says which paper loss a part is.
_LOSS_PARTS = tuple(
    f"{kind}_{part}"
    for kind, parts in (
        ("warmup", ("text_loss", "audio_loss")),
        ("idae", ("text_loss", "audio_loss")),
        ("cdae_unpaired", ("text_loss", "audio_loss")),
        ("cdae_paired", ("text_loss", "audio_loss")),
    )
    for part in parts
)


class _IdpCallback(TrainerCallback):
    """Runs the trainer's IDP steps at the points of Algorithm 1 and saves the store into every checkpoint."""

    def __init__(self, trainer: LratTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer.store is None:
            self.trainer.refresh_store()  # w~_0, a~_0 (Algorithm 1, lines 4-5)

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer.refresh_store()  # lines 9-11, before the epoch's checkpoint is saved

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.trainer.store.save(folder)


class LratTrainer(Trainer):
    """A `Trainer` for one phase of lrat's Algorithm 1 (`pretrain_lrat` runs both).

    - `warmup=True`: L^warm on the `paired` split, one epoch per warm-up epoch.
    - `warmup=False`: iterative denoising over every split of `train_dataset`: each epoch minimises L^idae + L^cdae
      (batches from `DataCollatorForLratPreTraining` and the IDP store), then refreshes the store without gradients.
      The store starts with the translations from the all-mask input unless one is given (`store`); with `idp=False`
      every refresh re-translates from the all-mask input (the "w/o IDP" ablation). The store is saved in every
      checkpoint folder and `train(resume_from_checkpoint=...)` restores it. With `validation_pairs`, each refresh
      also advances a held-out chain and logs `idp_text_accuracy` / `idp_audio_l1` (`translation_quality`).

    Training logs carry each loss part as `<kind>_<part>`: `warmup_text_loss`, `idae_audio_loss`,
    `cdae_unpaired_text_loss`, `cdae_paired_audio_loss`, ... (means over the logging interval and the processes).

    Args:
        model: An `LratForPreTraining`.
        args: `TrainingArguments`; `num_train_epochs` is T (warm-up) or K (iterations). Persistent data-loader
            workers are refused (they would keep a stale store).
        train_dataset: The `split_lrat_corpus` splits (`paired`, `unpaired_text`, `unpaired_audio`).
        processing_class: The `LratProcessor`; saved with the model.
        warmup, idae, idp: The phase and the ablation switches.
        validation_pairs: Held-out (audio, text) rows for the translation-quality curve.
        store: An IDP store to start from instead of translating from the all-mask input.
        translation_batch_size: Batch size of IDP translation (default: `per_device_eval_batch_size`).
        text_column, audio_column, min_span, max_span: As in `DataCollatorForLratPreTraining`.
    """

    def __init__(
        self,
        model: LratForPreTraining,
        args: TrainingArguments,
        train_dataset: Mapping[str, Dataset],
        processing_class: Any,
        *,
        warmup: bool = False,
        idae: bool = True,
        idp: bool = True,
        validation_pairs: Dataset | None = None,
        store: IdpStore | None = None,
        translation_batch_size: int | None = None,
        text_column: str = "text",
        audio_column: str = "audio",
        min_span: int = 20,
        max_span: int = 50,
        **kwargs: Any,
    ):
        if args.dataloader_persistent_workers and args.dataloader_num_workers > 0:
            raise ValueError(
                "--dataloader_persistent_workers keeps each worker's copy of the collator, and so of the IDP store, "
                "from the first epoch: turn it off for lrat."
            )
        names = (PAIRED,) if warmup else (PAIRED, UNPAIRED_TEXT, UNPAIRED_AUDIO)
        self.lrat_splits = {name: train_dataset[name] for name in names if name in train_dataset}
        self.lrat_splits = {name: split for name, split in self.lrat_splits.items() if len(split)}
        if not self.lrat_splits:
            raise ValueError(
                f"No items to train on: `train_dataset` must hold non-empty {', '.join(names)} splits "
                "(`split_lrat_corpus` builds them)."
            )
        # The collator reads the audio and text columns, which are not forward() parameters.
        args.remove_unused_columns = False
        if args.ddp_find_unused_parameters is None:
            # Each kind of batch uses a different part of the model (e.g. unpaired text never reaches the
            # text-referred audio encoder).
            args.ddp_find_unused_parameters = True
        collator = DataCollatorForLratPreTraining(
            processing_class,
            model.config,
            store=store,
            warmup=warmup,
            idae=idae,
            text_column=text_column,
            audio_column=audio_column,
            min_span=min_span,
            max_span=max_span,
            # Torch's global generator: set_seed seeds it and every checkpoint saves it, so a resumed run draws the
            # corruption of an uninterrupted one.
            seed=None,
        )
        super().__init__(
            model=model,
            args=args,
            train_dataset=LratPreTrainingDataset(self.lrat_splits),
            data_collator=collator,
            processing_class=processing_class,
            **kwargs,
        )
        self.warmup, self.idp = warmup, idp
        self.validation_pairs = (
            validation_pairs if validation_pairs is not None and len(validation_pairs) else None
        )
        self.translation_batch_size = translation_batch_size or args.per_device_eval_batch_size
        self._loss_sums = torch.zeros(len(_LOSS_PARTS))
        self._loss_counts = torch.zeros(len(_LOSS_PARTS))
        if not warmup:
            self.add_callback(_IdpCallback(self))

    @property
    def store(self) -> IdpStore | None:
        return self.data_collator.store

    def refresh_store(self) -> IdpStore:
        """One IDP round over every item (and the validation chain), installed in the collator; logs the round's
        translation quality when there are validation pairs."""
        splits = dict(self.lrat_splits)
        if self.validation_pairs is not None:
            splits[VALIDATION] = self.validation_pairs
        collator = self.data_collator
        store = refresh_idp_store(
            self.model,
            self.processing_class,
            splits,
            self.store,
            from_previous=self.idp,
            batch_size=self.translation_batch_size,
            text_column=collator.text_column,
            audio_column=collator.audio_column,
        )
        collator.store = store
        if self.validation_pairs is not None:
            quality = translation_quality(
                self.model,
                self.processing_class,
                self.validation_pairs,
                store,
                text_column=collator.text_column,
                audio_column=collator.audio_column,
                batch_size=self.translation_batch_size,
            )
            self.log({"idp_iteration": store.iteration, **{f"idp_{k}": v for k, v in quality.items()}})
        return store

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """`Trainer.train`, restoring the IDP store of the checkpoint it resumes from."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No checkpoint to resume from in {self.args.output_dir!r}.")
        if resume_from_checkpoint and not self.warmup:
            self.data_collator.store = IdpStore.load(resume_from_checkpoint)
        return super().train(resume_from_checkpoint=resume_from_checkpoint or None, **kwargs)

    def get_train_dataloader(self) -> DataLoader:
        sampler = KindBatchSampler(
            self.train_dataset.kinds,
            self._train_batch_size,
            seed=self.args.seed,
            drop_last=self.args.dataloader_drop_last,
        )
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            worker_init_fn=partial(
                seed_worker, num_workers=self.args.dataloader_num_workers, rank=self.args.process_index
            ),
        )
        return self.accelerator.prepare(loader)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        kind = inputs.pop("lrat_split")
        outputs = model(**inputs)
        prefix = {PAIRED: "cdae_paired", UNPAIRED_TEXT: "cdae_unpaired", UNPAIRED_AUDIO: "cdae_unpaired"}.get(
            kind, kind
        )
        for name in ("text_loss", "audio_loss", "idae_text_loss", "idae_audio_loss"):
            value = outputs.get(name)
            if value is not None:
                part = name if name.startswith("idae_") else f"{prefix}_{name}"
                index = _LOSS_PARTS.index(part)
                self._loss_sums[index] += float(value.detach())
                self._loss_counts[index] += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            # Every process logs at the same steps; the sums and counts are summed across processes (each process
            # may have seen other kinds of batches).
            totals = torch.stack([self._loss_sums, self._loss_counts])
            if self.args.world_size > 1 and dist.is_initialized():
                totals = totals.to(self.args.device)
                dist.all_reduce(totals)
                totals = totals.cpu()
            for name, total, count in zip(_LOSS_PARTS, totals[0], totals[1], strict=True):
                if count > 0:
                    logs[name] = round(float(total / count), 4)
            self._loss_sums.zero_()
            self._loss_counts.zero_()
        super().log(logs, start_time)


@dataclass
class LratArguments:
    """Algorithm 1's settings and the paper's ablation switches (command-line arguments of
    `run_pretrain.py --model_type lrat`)."""

    num_paired: int = field(
        default=500,
        metadata={
            "help": "paired items (the paper: 500); 0 is the 'w/o paired data' ablation; the rest of the corpus is "
            "split into unpaired text and unpaired audio"
        },
    )
    fully_paired: bool = field(
        default=False, metadata={"help": "the 'w/ fully paired data' ablation: every row paired"}
    )
    warmup_epochs: int = field(
        default=10, metadata={"help": "T, warm-up epochs on the pairs (the paper's code: 10)"}
    )
    num_iterations: int = field(
        default=10, metadata={"help": "K, epochs of IDAE + CDAE, each followed by an IDP refresh"}
    )
    idae: bool = field(
        default=True, metadata={"help": "intra-modal denoising (--no_idae: the 'w/o IDAE' ablation)"}
    )
    idp: bool = field(
        default=True,
        metadata={
            "help": "translate each round from the previous translation (--no_idp: from the all-mask input each "
            "round, as back-translation does: the 'w/o IDP' ablation)"
        },
    )
    num_validation_pairs: int = field(
        default=64,
        metadata={"help": "held-out pairs whose translation quality is logged after every IDP round"},
    )
    translation_batch_size: int | None = field(
        default=None, metadata={"help": "batch size of IDP translation (default: per_device_eval_batch_size)"}
    )
    split_seed: int = field(default=0, metadata={"help": "seed of the paired/unpaired split"})


def lrat_resume_point(
    output_dir: str | Path,
    overwrite_output_dir: bool = False,
    resume_from_checkpoint: str | None = None,
    record: dict[str, Any] | None = None,
) -> str | bool | None:
    """Where `pretrain_lrat` resumes a run of `output_dir` from (see `resume_checkpoint`, whose rules it follows, the
    run's `record` and output-folder lock included): the given checkpoint; the last iteration checkpoint; `True` when
    only the warm-up phase has written (its `warmup` folder); `None` to start afresh."""
    warmup = Path(output_dir) / "warmup"
    own_output_dir(output_dir, overwrite_output_dir, subfolders=(warmup.name,))
    if resume_from_checkpoint is None and not overwrite_output_dir and warmup.is_dir():
        last = last_complete_checkpoint(str(output_dir))
        check_run_record(last or warmup, record)
        return last or True
    return resume_checkpoint(
        output_dir, overwrite_output_dir, resume_from_checkpoint, record=record, subfolders=(warmup.name,)
    )


def pretrain_lrat(
    model: LratForPreTraining,
    processor: Any,
    dataset: Dataset,
    args: TrainingArguments,
    lrat_args: LratArguments,
    validation_pairs: Dataset | None = None,
    text_column: str = "text",
    audio_column: str = "audio",
    resume_from_checkpoint: str | bool | None = None,
    **trainer_kwargs: Any,
) -> tuple[LratTrainer, list[dict[str, float]]]:
    """Algorithm 1 on `dataset` (audio + text rows): split it (`split_lrat_corpus`), warm up on the pairs for
    `warmup_epochs` (skipped without pairs: the initial translation then comes from the untrained model), then run
    `num_iterations` epochs of IDAE + CDAE with an IDP refresh after each.

    The warm-up phase writes its checkpoints and its final model under `<output_dir>/warmup`, the iterations theirs
    under `<output_dir>` (with the IDP store). `resume_from_checkpoint=True` continues where a run stopped: from the
    last iteration checkpoint (store included), else after a finished warm-up, else from the last warm-up checkpoint.
    Returns the iteration phase's trainer (`trainer.model` is the trained model; save it with
    `trainer.save_model()`, which writes on the main process only) and the log history of both phases (losses per
    `<kind>_<part>`, and `idp_text_accuracy` / `idp_audio_l1` per iteration with `validation_pairs`).
    """
    num_paired = len(dataset) if lrat_args.fully_paired else lrat_args.num_paired
    splits = split_lrat_corpus(dataset, num_paired, text_column, audio_column, seed=lrat_args.split_seed)
    logger.info("lrat splits: %s", {name: len(split) for name, split in splits.items()})
    output_dir = Path(args.output_dir)
    warmup_dir = output_dir / "warmup"
    resume = resume_from_checkpoint is not None and resume_from_checkpoint is not False
    iteration_checkpoint = (
        last_complete_checkpoint(str(output_dir)) if resume and output_dir.is_dir() else None
    )
    if isinstance(resume_from_checkpoint, str):
        iteration_checkpoint = resume_from_checkpoint
    common = {
        "processing_class": processor,
        "text_column": text_column,
        "audio_column": audio_column,
        "translation_batch_size": lrat_args.translation_batch_size,
        **trainer_kwargs,
    }
    history: list[dict[str, float]] = []
    if iteration_checkpoint is None and lrat_args.warmup_epochs > 0 and len(splits[PAIRED]):
        if (warmup_dir / "model.safetensors").is_file() and resume:
            logger.info("warm-up already done: loading %s", warmup_dir)
            model = type(model).from_pretrained(warmup_dir)
        else:
            warmup_args = replace(
                args, output_dir=str(warmup_dir), num_train_epochs=lrat_args.warmup_epochs, max_steps=-1
            )
            warmup = LratTrainer(model, warmup_args, splits, warmup=True, **common)
            last = last_complete_checkpoint(str(warmup_dir)) if resume and warmup_dir.is_dir() else None
            warmup.train(resume_from_checkpoint=last)
            warmup.save_model(str(warmup_dir))
            history += warmup.state.log_history
            model = warmup.model
    iteration_args = replace(args, num_train_epochs=lrat_args.num_iterations, max_steps=-1)
    trainer = LratTrainer(
        model,
        iteration_args,
        splits,
        idae=lrat_args.idae,
        idp=lrat_args.idp,
        validation_pairs=validation_pairs,
        **common,
    )
    trainer.train(resume_from_checkpoint=iteration_checkpoint)
    return trainer, history + trainer.state.log_history


def idp_curve(log_history: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """The translation quality after each IDP round from a (`pretrain_lrat` / Trainer) log history:
    `[{"iteration": k, "text_accuracy": ..., "audio_l1": ...}, ...]`, in order of k."""
    return [
        {
            "iteration": log["idp_iteration"],
            "text_accuracy": log["idp_text_accuracy"],
            "audio_l1": log["idp_audio_l1"],
        }
        for log in log_history
        if "idp_iteration" in log
    ]
