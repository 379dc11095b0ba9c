"""Linear probes of frozen representations: how much of each task a model's pooled states carry, without fine-tuning.

Fine-tuning measures a representation through an optimiser, a schedule and a few epochs of noise; a linear probe
reads it directly. For every *stream* of a model (its pooled text states, pooled audio states and their fusion),
`probe_representations` embeds the rows of a corpus with the model frozen (eval mode, no gradient), fits a linear
model on the `train` split and scores it on the `test` split:

- classification tasks (`emotion`, `intent`, `directed`, `speaker` identity of the seen speakers): standardised
  features, L2-regularised `LogisticRegression`, its `C` chosen by stratified k-fold cross-validation on the
  training rows only; reported as `accuracy` and `ua` (unweighted accuracy, the mean per-class recall);
- `valence` (regression): standardised features, `RidgeCV` (its `alpha` by efficient leave-one-out on the training
  rows); reported as `r2`, `pearson` and `mae`;
- `speaker_verification`: no fitting at all: the equal error rate of cosine scoring over every trial pair of the
  `speaker_test` split, whose speakers are never in `train` (CTAL Sec. 4.2.3's protocol, on pooled states);
- `text_dependence`: no fitting either: how far each stream moves on the `test` split when every clip is paired with
  another clip's transcript (`text_dependence`), e.g. how much a text-referred audio stream leans on the text;
- `spread`: no fitting: whether the `test` clips' representations still differ at all (`representation_spread`:
  effective rank and mean cosine similarity), the first thing a collapsing pre-training loses.

A fixed train/test split (rather than cross-validation over the pooled corpus) keeps the probe on exactly the rows
that fine-tuning trains and tests on, so that the two measurements can be compared row for row.

Each family reads its streams with its own pooling code (`PROBE_FAMILIES`): CTAL's fusion heads (Sec. 3.3:
attention + max pooling of each stream, with a seeded, untrained attention pooling for a pre-training checkpoint:
the representation fine-tuning starts from), lrat's mean-pooled cross encoders and h_fuse, and the dual encoders'
(DSCLAP, Turbo) pooled towers and joint-space embeddings. `log_mel_statistics` is the baseline that needs no
model: the mean and standard deviation over time of the 160 log-mel + delta features of `CtalFeatureExtractor`.

With `audio_layers=True`, the dual encoders also yield one stream per hidden state of the audio tower
(`audio_layer_0`, the input of the first transformer layer, ... `audio_layer_N`, the last layer's output, which is
the `audio` stream unless the model pools a learned weighted sum of the layers, `use_weighted_layer_sum`), each
masked-mean pooled as the model pools its own audio states (`DualEncoderMixin.pool_audio_states`): which depth of a
pretrained speech encoder carries a task (layer-wise analyses of wav2vec2-style and Whisper encoders place speaker
and paralinguistic information in the middle layers, and the content that intent needs nearer the top).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from scipy.spatial.distance import pdist
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm
from transformers import AutoModel, AutoProcessor, PreTrainedConfig, PreTrainedModel

from .audio_utils import validate_sampling_rate
from .data.asr import audio_to_array
from .feature_extraction_ctal import CtalFeatureExtractor
from .metrics import accuracy, mae, pearson, speaker_verification_eer, unweighted_accuracy
from .modeling_ctal import CtalForSequenceClassification
from .modeling_lrat import LratForSequenceClassification
from .pooling import masked_mean_pool
from .training.data import ROW_INDEX_COLUMN, TASKS, add_row_index, task_dataset
from .training.evaluation import collect_outputs

__all__ = [
    "AUDIO_LAYER_STREAM",
    "LOG_MEL_STREAM",
    "PROBE_ALPHAS",
    "PROBE_CS",
    "PROBE_FAMILIES",
    "PROBE_TASKS",
    "ProbeFamily",
    "SWAPPED_TEXT",
    "audio_layer_streams",
    "extract_representations",
    "fit_probe",
    "load_probe_model",
    "log_mel_statistics",
    "probe_features",
    "probe_representations",
    "representation_spread",
    "swap_transcripts",
    "text_dependence",
]

# Fitted tasks (`audiolang.training.TASKS`) plus the unseen-speaker EER, which fits nothing.
# `spread` fits nothing either: how widely the test clips' representations spread (`representation_spread`).
PROBE_TASKS: tuple[str, ...] = (*TASKS, "speaker_verification", "text_dependence", "spread")
# The grid of inverse L2 strengths that cross-validation chooses from, for every classification probe.
PROBE_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
# The ridge strengths of the valence probe.
PROBE_ALPHAS: tuple[float, ...] = tuple(np.logspace(-2, 4, 13))
# The name of the baseline representation in results.
LOG_MEL_STREAM = "log-mel statistics"
# The key of `probe_features`' input holding the test split's representations with swapped transcripts.
SWAPPED_TEXT = "swapped text"
# The name of the stream of the audio tower's `hidden_states[k]` (`audio_layers=True`).
AUDIO_LAYER_STREAM = "audio_layer_{}"

Streams = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class ProbeFamily:
    """How the probe reads one model family.

    Attributes:
        model_class: What a checkpoint is loaded as (`from_pretrained`); parameters the checkpoint lacks, such as
            CTAL's attention pooling in a pre-training checkpoint, start from the seeded initialisation.
        streams: The names of the pooled representations, in the order `select` returns them.
        runner: The module that runs on a collated batch (`model(**batch)`), given the loaded model.
        select: `(loaded model, runner output, batch) -> tensors`, one `(batch, dim)` tensor per stream.
        model_kwargs: Extra keyword arguments of the runner's forward.
        select_audio_layers: Like `select`, for a forward with `output_hidden_states=True`: one pooled `(batch, dim)`
            tensor per hidden state of the audio tower, lowest first; `None` where the family has no such streams.
    """

    model_class: Any
    streams: tuple[str, ...]
    runner: Callable[[PreTrainedModel], torch.nn.Module]
    select: Callable[[PreTrainedModel, Any, Any], Streams]
    model_kwargs: tuple[tuple[str, Any], ...] = ()
    select_audio_layers: Callable[[PreTrainedModel, Any, Any], Streams] | None = None


def _ctal_streams(model: CtalForSequenceClassification, outputs: Any, batch: Any) -> Streams:
    # The fusion head's own pooling (Sec. 3.3): each stream is its attention-pooled ⊕ max-pooled vector, the fusion
    # h_fuse = (h_a^attn + h_w^attn) ⊕ (h_a^max + h_w^max).
    fusion = model._fuse(outputs, batch.get("attention_mask"), batch.get("audio_attention_mask"))
    return (
        torch.cat([fusion.text_attention, fusion.text_max], dim=-1),
        torch.cat([fusion.audio_attention, fusion.audio_max], dim=-1),
        fusion.fused,
    )


def _lrat_streams(model: LratForSequenceClassification, outputs: Any, batch: Any) -> Streams:
    # h_fuse = [mean-pool(audio-referred text encoder); mean-pool(text-referred audio encoder)], both `hidden_size`.
    width = model.config.hidden_size
    return outputs.embeddings[:, :width], outputs.embeddings[:, width:], outputs.embeddings


def _dual_encoder_streams(model: PreTrainedModel, outputs: Any, batch: Any) -> Streams:
    # The towers' masked-mean `pooler_output`s and the pair of L2-normalised joint-space embeddings.
    return (
        outputs.text_model_output.pooler_output,
        outputs.audio_model_output.pooler_output,
        torch.cat([outputs.audio_embeds, outputs.text_embeds], dim=-1),
    )


def _dual_encoder_audio_layers(model: PreTrainedModel, outputs: Any, batch: Any) -> Streams:
    # Every hidden state of the audio tower, pooled over the real frames as the model pools its own audio embedding.
    mask = batch.get("audio_attention_mask")
    return tuple(model.pool_audio_states(states, mask) for states in outputs.audio_model_output.hidden_states)


def _itself(model: PreTrainedModel) -> torch.nn.Module:
    return model


PROBE_FAMILIES: dict[str, ProbeFamily] = {
    "ctal": ProbeFamily(
        CtalForSequenceClassification, ("text", "audio", "fusion"), lambda model: model.ctal, _ctal_streams
    ),
    "lrat": ProbeFamily(LratForSequenceClassification, ("text", "audio", "fusion"), _itself, _lrat_streams),
    **{
        family: ProbeFamily(
            AutoModel,
            ("text", "audio", "joint"),
            _itself,
            _dual_encoder_streams,
            (("return_loss", False),),
            _dual_encoder_audio_layers,
        )
        for family in ("dsclap", "turbo")
    },
}


def _family(model_type: str) -> ProbeFamily:
    if model_type not in PROBE_FAMILIES:
        raise ValueError(
            f"No probe for model_type {model_type!r}: add an entry to `audiolang.probing.PROBE_FAMILIES` "
            f"(known: {sorted(PROBE_FAMILIES)})."
        )
    return PROBE_FAMILIES[model_type]


def audio_layer_streams(model: PreTrainedModel) -> tuple[str, ...]:
    """The names of the per-layer audio streams of a dual encoder (`audio_layers=True`): `audio_layer_0` (the
    embedding output, the first transformer layer's input) to `audio_layer_N` (the output of the audio tower's last
    layer N)."""
    if _family(model.config.model_type).select_audio_layers is None:
        raise ValueError(
            f"`audio_layers` probes the audio tower of a dual encoder, not a {model.config.model_type!r} model: "
            f"probe one of {sorted(k for k, family in PROBE_FAMILIES.items() if family.select_audio_layers)}, or "
            "unset `audio_layers`."
        )
    return tuple(AUDIO_LAYER_STREAM.format(k) for k in range(model.config.audio_config.num_hidden_layers + 1))


def load_probe_model(model_name_or_path: str, seed: int = 0) -> tuple[PreTrainedModel, Any]:
    """The model (frozen, in eval mode) and processor of a saved folder, as `PROBE_FAMILIES` reads its family.

    `seed` seeds the initialisation of what the checkpoint lacks (CTAL's attention pooling in a pre-training
    checkpoint), so that one seed always probes the same representation.
    """
    config, _ = PreTrainedConfig.get_config_dict(model_name_or_path)
    family = _family(config.get("model_type"))
    torch.manual_seed(seed)
    model = family.model_class.from_pretrained(model_name_or_path).eval().requires_grad_(False)
    return model, AutoProcessor.from_pretrained(model_name_or_path)


def extract_representations(
    model: PreTrainedModel,
    processor: Any,
    dataset: Dataset,
    text_column: str = "asr_text",
    audio_column: str = "audio",
    batch_size: int = 32,
    progress: str | None = None,
    audio_layers: bool = False,
) -> dict[str, np.ndarray]:
    """`{stream: (rows, dim) float32 array}`: the pooled representations of every row of `dataset` (in order) that
    `PROBE_FAMILIES[model.config.model_type]` names, from the model in eval mode without gradients; with
    `audio_layers`, also every hidden state of a dual encoder's audio tower (`audio_layer_streams`)."""
    family = _family(model.config.model_type)
    streams, model_kwargs = family.streams, dict(family.model_kwargs)
    if audio_layers:
        streams = (*streams, *audio_layer_streams(model))
        model_kwargs["output_hidden_states"] = True

    def select(outputs: Any, batch: Any) -> Streams:
        selected = family.select(model, outputs, batch)
        return (*selected, *family.select_audio_layers(model, outputs, batch)) if audio_layers else selected

    model.eval()
    arrays = collect_outputs(
        family.runner(model),
        processor,
        dataset,
        text_column,
        select,
        batch_size=batch_size,
        audio_column=audio_column,
        progress=progress,
        **model_kwargs,
    )
    return {name: array.numpy() for name, array in zip(streams, arrays, strict=True)}


@torch.no_grad()
def log_mel_statistics(
    dataset: Dataset,
    audio_column: str = "audio",
    feature_extractor: CtalFeatureExtractor | None = None,
    batch_size: int = 32,
    progress: str | None = None,
) -> np.ndarray:
    """`(rows, 2 * feature_size)`: each clip's mean and standard deviation over its frames of the log-mel + delta
    features, `[mean ⊕ std]`, the baseline that a learnt representation should beat.

    The default extractor is `CtalFeatureExtractor(do_normalize=False)`, CTAL's 160 features *before* per-utterance
    normalisation: after it, every clip's mean is 0 and its standard deviation 1 by construction, and the baseline
    would carry nothing. Pass another extractor to probe other features.
    """
    extractor = feature_extractor or CtalFeatureExtractor(do_normalize=False)
    audio = dataset.select_columns([audio_column])
    parts = []
    for start in tqdm(range(0, dataset.num_rows, batch_size), desc=progress, disable=progress is None):
        rows = audio[start : start + batch_size][audio_column]
        clips = []
        for value in rows:
            array, rate = audio_to_array(value)
            # The rows' rates may differ: each clip is checked.
            validate_sampling_rate(rate, extractor.sampling_rate)
            clips.append(array)
        inputs = extractor(clips, sampling_rate=extractor.sampling_rate, truncation=True, return_tensors="pt")
        features, mask = inputs["input_features"].double(), inputs["audio_attention_mask"]
        mean = masked_mean_pool(features, mask)
        variance = (masked_mean_pool(features.square(), mask) - mean.square()).clamp(min=0.0)
        parts.append(torch.cat([mean, variance.sqrt()], dim=-1).float())
    return torch.cat(parts).numpy()


def swap_transcripts(dataset: Dataset, text_column: str = "asr_text", seed: int = 0) -> Dataset:
    """`dataset` with every row's transcript replaced by another row's (a seeded derangement: no row keeps its own)."""
    if dataset.num_rows < 2:
        raise ValueError("Swapping transcripts needs at least two rows.")
    order = np.random.default_rng(seed).permutation(dataset.num_rows)
    texts = dataset[text_column]
    swapped = [""] * dataset.num_rows
    for position, row in enumerate(order):
        swapped[row] = texts[order[(position + 1) % len(order)]]
    return dataset.remove_columns(text_column).add_column(text_column, swapped)


def text_dependence(original: np.ndarray, swapped: np.ndarray) -> float:
    """How far a representation moves when each row reads another row's transcript: the mean distance between a
    row's representation with its own and with the swapped transcript, over the mean distance between the
    representations of two different rows. 0: the representation ignores the text; near 1: swapping the transcript
    moves it as far as another utterance is."""
    moved = np.linalg.norm(np.asarray(original, np.float64) - swapped, axis=1).mean()
    return float(moved / pdist(np.asarray(original, np.float64)).mean())


def representation_spread(features: np.ndarray) -> dict[str, float]:
    """Whether the rows' representations still differ, the first thing a collapsing pre-training loses:

    - `effective_rank`: exp of the entropy of the normalised singular values of the centred rows (Roy & Vetterli,
      EUSIPCO 2007): about the number of directions the rows spread over, from 1 (all on one line) to the width
      (0 when every row is the same);
    - `mean_cosine`: the mean cosine similarity of two different rows (uncentred): near 1 when every row points the
      same way, whatever its small differences.
    """
    x = np.asarray(features, np.float64)
    singular = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    total = singular.sum()
    p = singular[singular > 0] / total if total > 0 else np.ones(0)  # identical rows: rank 0
    unit = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    n = len(x)
    cosine = (np.square(unit.sum(axis=0)).sum() - n) / (n * (n - 1))  # off-diagonal mean of unit @ unit.T
    rank = float(np.exp(-(p * np.log(p)).sum())) if len(p) else 0.0
    return {"effective_rank": rank, "mean_cosine": float(cosine)}


def _classifier(labels: np.ndarray, seed: int) -> GridSearchCV:
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
    if smallest < 2:
        raise ValueError(
            "A classification probe needs at least 2 training rows of every class (its C is cross-validated): "
            "drop rare classes or probe a larger training split."
        )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=min(3, smallest), shuffle=True, random_state=seed)
    return GridSearchCV(pipeline, {"logisticregression__C": list(PROBE_CS)}, cv=folds, scoring="accuracy")


def _regressor() -> Pipeline:
    return make_pipeline(StandardScaler(), RidgeCV(alphas=PROBE_ALPHAS))


def fit_probe(
    task: str,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    seed: int = 0,
) -> dict[str, float]:
    """Fit the linear probe of `task` on the training rows and score it on the test rows (see the module docstring).

    Returns `accuracy`, `ua` and the chosen `c` for classification tasks; `r2`, `pearson`, `mae` and the chosen
    `alpha` for `valence`.
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {sorted(TASKS)} to fit a probe, got {task!r}.")
    if task == "valence":
        probe = _regressor().fit(train_features, train_labels)
        predicted = probe.predict(test_features)
        return {
            "r2": float(r2_score(test_labels, predicted)),
            "pearson": pearson(predicted, test_labels),
            "mae": mae(predicted, test_labels),
            "alpha": float(probe[-1].alpha_),
        }
    probe = _classifier(np.asarray(train_labels), seed).fit(train_features, train_labels)
    predicted = probe.predict(test_features)
    return {
        "accuracy": accuracy(predicted, test_labels),
        "ua": unweighted_accuracy(predicted, test_labels),
        "c": float(probe.best_params_["logisticregression__C"]),
    }


def _task_rows(splits: DatasetDict, task: str) -> DatasetDict:
    """Each split's `labels` and the index of every row that the task keeps (intent: directed rows only)."""
    label = TASKS[task]
    columns = DatasetDict(
        {name: add_row_index(split.select_columns([label])) for name, split in splits.items()}
    )
    rows, _ = task_dataset(columns, task)
    return rows


def probe_features(
    features: dict[str, dict[str, np.ndarray]],
    splits: DatasetDict,
    tasks: Sequence[str] = PROBE_TASKS,
    seed: int = 0,
    train_split: str = "train",
    test_split: str = "test",
    speaker_test_split: str = "speaker_test",
    speaker_column: str = "speaker_id",
) -> list[dict[str, Any]]:
    """Probe precomputed representations: `features[split][stream]` holds one row per row of `splits[split]`.

    Returns one record per (stream, task): `{"stream", "task", "train_rows", "test_rows", **metrics}` (see
    `fit_probe`), for `speaker_verification` the `eer` over the trial pairs of `speaker_test_split`, and for
    `text_dependence` the `ratio` of `text_dependence` between `features[test_split]` and `features[SWAPPED_TEXT]`
    (no record without the latter: log-mel statistics read no text), and for `spread` the `representation_spread`
    of `features[test_split]`.
    """
    unknown = sorted(set(tasks) - set(PROBE_TASKS))
    if unknown:
        raise ValueError(f"Unknown probe task(s) {unknown}; choose from {list(PROBE_TASKS)}.")
    streams = list(next(iter(features.values())))
    records = []
    for task in tasks:
        if task == "text_dependence":
            if SWAPPED_TEXT in features:
                records += [
                    {
                        "stream": stream,
                        "task": task,
                        "test_rows": len(features[test_split][stream]),
                        "ratio": text_dependence(
                            features[test_split][stream], features[SWAPPED_TEXT][stream]
                        ),
                    }
                    for stream in streams
                ]
            continue
        if task == "spread":
            records += [
                {
                    "stream": stream,
                    "task": task,
                    "test_rows": len(features[test_split][stream]),
                    **representation_spread(features[test_split][stream]),
                }
                for stream in streams
            ]
            continue
        if task == "speaker_verification":
            speakers = splits[speaker_test_split][speaker_column]
            for stream in streams:
                result = speaker_verification_eer(features[speaker_test_split][stream], speakers)
                records.append(
                    {"stream": stream, "task": task, "test_rows": len(speakers), "eer": result.eer}
                )
            continue
        rows = _task_rows(DatasetDict({name: splits[name] for name in (train_split, test_split)}), task)
        train, test = rows[train_split], rows[test_split]
        train_index, test_index = np.array(train[ROW_INDEX_COLUMN]), np.array(test[ROW_INDEX_COLUMN])
        for stream in streams:
            metrics = fit_probe(
                task,
                features[train_split][stream][train_index],
                np.array(train["labels"]),
                features[test_split][stream][test_index],
                np.array(test["labels"]),
                seed,
            )
            records.append(
                {
                    "stream": stream,
                    "task": task,
                    "train_rows": train.num_rows,
                    "test_rows": test.num_rows,
                    **metrics,
                }
            )
    return records


def _needed_splits(
    tasks: Sequence[str], train_split: str, test_split: str, speaker_test_split: str
) -> tuple[str, ...]:
    fitted = any(task not in ("speaker_verification", "text_dependence", "spread") for task in tasks)
    return (
        *((train_split,) if fitted else ()),
        *((test_split,) if fitted or {"text_dependence", "spread"} & set(tasks) else ()),
        *((speaker_test_split,) if "speaker_verification" in tasks else ()),
    )


def probe_representations(
    model: PreTrainedModel | None,
    processor: Any,
    splits: DatasetDict,
    tasks: Sequence[str] = PROBE_TASKS,
    seed: int = 0,
    text_column: str = "asr_text",
    audio_column: str = "audio",
    batch_size: int = 32,
    train_split: str = "train",
    test_split: str = "test",
    speaker_test_split: str = "speaker_test",
    progress: bool = True,
    audio_layers: bool = False,
) -> list[dict[str, Any]]:
    """Linear probes of a frozen `model`'s streams (or, with `model=None`, of `log_mel_statistics`) on `tasks`.

    Args:
        model, processor: A model of a `PROBE_FAMILIES` family and its processor (e.g. from `load_probe_model`), or
            `None` and `None` for the log-mel baseline.
        splits: The corpus: `train_split` and `test_split` with the task label columns, `speaker_test_split` with
            `speaker_id` (utterances of speakers absent from `train_split`) for `speaker_verification`.
        tasks: Any of `PROBE_TASKS`.
        seed: Seeds the cross-validation folds that choose each classifier's regularisation.
        text_column: The transcripts the model reads (`asr_text` or the manual `text`).
        audio_layers: Also probe every hidden state of a dual encoder's audio tower (`audio_layer_streams`).

    Returns one record per (stream, task), as `probe_features`.
    """
    features: dict[str, dict[str, np.ndarray]] = {}
    for name in _needed_splits(tasks, train_split, test_split, speaker_test_split):
        label = f"embedding {name}" if progress else None
        if model is None:
            features[name] = {
                LOG_MEL_STREAM: log_mel_statistics(
                    splits[name], audio_column, batch_size=batch_size, progress=label
                )
            }
        else:
            features[name] = extract_representations(
                model, processor, splits[name], text_column, audio_column, batch_size, label, audio_layers
            )
    if model is not None and "text_dependence" in tasks:
        swapped = swap_transcripts(splits[test_split], text_column, seed)
        label = f"embedding {test_split} with swapped transcripts" if progress else None
        features[SWAPPED_TEXT] = extract_representations(
            model, processor, swapped, text_column, audio_column, batch_size, label, audio_layers
        )
    return probe_features(features, splits, tasks, seed, train_split, test_split, speaker_test_split)
