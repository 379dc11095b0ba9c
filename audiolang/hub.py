"""Hub tooling: model cards with metadata, widget examples and measured results; pushing a saved folder; Spaces.

Model cards are rendered from the family templates in ``audiolang/model_cards/`` with
``huggingface_hub.ModelCard.from_template``; the metadata (library, pipeline tag, tags, base models,
datasets, widget examples, a ``model-index`` of the measured metrics) is what the Hub indexes and displays.
A model folder can also be turned into a Gradio Space folder (``write_space``) that serves the demo app of
``audiolang.app`` without audiolang installed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, SpaceCard, SpaceCardData

# The Hub has no task for "audio + transcript -> label". A fine-tuned folder is used as an audio classifier: the
# `audio-text-classification` pipeline derives the transcript from the clip with the ASR the folder names, so to a
# user the contract is audio in, labels with scores out, which is the Hub's `audio-classification` task (it lists
# the model among audio classifiers and gives it the audio widget). Joint-embedding models score a clip against
# free-text labels, which is `zero-shot-audio-classification`, and transformers' own pipeline of that name serves
# them unchanged. The rest are encoders for fine-tuning, hence `feature-extraction`.
PIPELINE_TAGS = {
    "DsclapModel": "zero-shot-audio-classification",
    "DsclapForSequenceClassification": "audio-classification",
    "TurboModel": "zero-shot-audio-classification",
    "TurboForSequenceClassification": "audio-classification",
    "CtalModel": "feature-extraction",
    "CtalForPreTraining": "feature-extraction",
    "CtalForSequenceClassification": "audio-classification",
    "CtalForXVector": "audio-classification",
    "LratModel": "feature-extraction",
    "LratForPreTraining": "feature-extraction",
    "LratForSequenceClassification": "audio-classification",
    "LratForXVector": "audio-classification",
}
DEFAULT_LIMITATIONS = (
    "Trained on the data named above only. The embedded corpus is synthetic (espeak-ng, flite and festival voices "
    "with generated cabin noise): figures on it show that the method works end to end, not how it transfers to real "
    "in-car speech. The audio encoder starts from random initialisation where no pretrained speech encoder was "
    "available offline."
)
OUT_OF_SCOPE = (
    "Out of scope: decisions about people (identification, surveillance), vehicle control without a confirmation "
    "step, and languages other than English."
)
# Rendered into the card's usage code while no repo id is known; `push_to_hub` replaces it with the repo id.
LOCAL_REPO_PLACEHOLDER = "path/to/this/folder"
# The widget clips and their transcripts, in datasets' `audiofolder` layout (`metadata.jsonl` names each file), so
# that `load_dataset("audiofolder", data_dir="examples")` reads them too.
EXAMPLES_DIR = "examples"
EXAMPLES_METADATA = "metadata.jsonl"
# Trainer's own `push_to_hub` skips these too: checkpoints are resumable training state, not the model. The
# training arguments are a pickle that nothing in a model folder needs.
IGNORE_PATTERNS = ("checkpoint-*", "_*", "training_args.bin")
# The Space's own requirement beside audiolang's dependencies.
SPACE_APP_REQUIREMENTS = ("gradio",)


@dataclass(frozen=True)
class Result:
    """One measured number for the model-index: e.g. Result("directed", "accuracy", 0.93, "test")."""

    task: str
    metric: str
    value: float
    split: str = "test"
    dataset: str = "audiolang embedded in-car corpus"
    dataset_id: str = "audiolang/incar"


@dataclass(frozen=True)
class AudioExample:
    """A short clip for the card's widget and the demo app, saved with its transcript (and label) in the folder."""

    array: np.ndarray
    sampling_rate: int
    transcript: str
    label: str | None = None

    @property
    def title(self) -> str:
        text = self.transcript if len(self.transcript) <= 48 else self.transcript[:45].rstrip() + "..."
        quoted = f'"{text}"' if text else "(empty transcript)"
        return f"{quoted} ({self.label})" if self.label else quoted


def examples_from_dataset(
    dataset: Any,
    num_examples: int = 3,
    audio_column: str = "audio",
    text_column: str = "asr_text",
    label_column: str | None = None,
    max_seconds: float = 6.0,
) -> list[AudioExample]:
    """The first ``num_examples`` clips of ``dataset`` (a ``datasets.Dataset``, in row order) that last at most
    ``max_seconds``, one per label while ``label_column`` has unseen labels: deterministic, short, and varied.

    Integer labels of a ``ClassLabel`` column are shown by name; its -1 (no label, e.g. the intent of passenger talk)
    counts as one more label, shown as none.
    """
    from .data.asr import audio_to_array

    if num_examples < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    for column in (audio_column, text_column, label_column):
        if column is not None and column not in dataset.column_names:
            raise ValueError(f"column {column!r} is not in the dataset, which has {dataset.column_names}")
    feature = dataset.features[label_column] if label_column else None
    names = getattr(feature, "names", None)
    labels = list(dataset[label_column]) if label_column else [None] * dataset.num_rows
    # A stored duration (the corpus has one) skips long clips without decoding them.
    durations = list(dataset["duration"]) if "duration" in dataset.column_names else None
    examples: list[AudioExample] = []
    seen: set = set()
    for index, label in enumerate(labels):
        if len(examples) == num_examples:
            break
        if (durations is not None and durations[index] > max_seconds) or (label_column and label in seen):
            continue
        row = dataset[index]
        array, sampling_rate = audio_to_array(row[audio_column])
        if len(array) > max_seconds * sampling_rate:
            continue
        seen.add(label)
        examples.append(
            AudioExample(
                np.asarray(array, np.float32), sampling_rate, row[text_column], _label_name(label, names)
            )
        )
    return examples


def _label_name(label: Any, names: Sequence[str] | None) -> str | None:
    """How an example's label is shown: a class name (none for a ClassLabel's -1, "no label"), or the value."""
    if label is None or (names is not None and label < 0):
        return None
    if names is not None:
        return names[label]
    return f"{label:.2f}" if isinstance(label, float) else str(label)


def save_examples(folder: str | Path, examples: Sequence[AudioExample]) -> list[str]:
    """Write ``examples`` as 16-bit FLAC files with a ``metadata.jsonl`` to ``folder/examples/`` (replacing the
    clips a previous call wrote) and return their paths relative to ``folder``."""
    import soundfile as sf

    directory = Path(folder) / EXAMPLES_DIR
    if directory.is_dir():
        for stale in [*directory.glob("*.flac"), directory / EXAMPLES_METADATA]:
            stale.unlink(missing_ok=True)
    if not examples:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, example in enumerate(examples):
        name = f"{index:02d}.flac"
        # Clip rather than let PCM conversion wrap samples past full scale around.
        sf.write(directory / name, np.clip(example.array, -1.0, 1.0), example.sampling_rate, subtype="PCM_16")
        rows.append(
            {
                "file_name": name,
                "transcript": example.transcript,
                "label": example.label,
                "example_title": example.title,
            }
        )
    (directory / EXAMPLES_METADATA).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return [f"{EXAMPLES_DIR}/{row['file_name']}" for row in rows]


def _template(family: str) -> str:
    path = resources.files("audiolang") / "model_cards" / f"{family}.md"
    if not path.is_file():
        raise ValueError(f"no model-card template for family {family!r} (looked for {path})")
    return path.read_text()


def _hub_ids(names: Sequence[str]) -> list[str]:
    """The entries that are Hub repo ids ("org/name"): local folders mean nothing to the Hub's metadata."""
    return [n for n in names if n.count("/") == 1 and not Path(n).exists() and not n.startswith((".", "/"))]


def _file_url(repo_id: str | None, path: str) -> str:
    """A file of the repo as the Hub serves it (the widget fetches its clips by URL); relative while no repo id is
    known (``push_to_hub`` resolves it)."""
    return f"https://huggingface.co/{repo_id}/resolve/main/{path}" if repo_id else path


def _results_table(results: Sequence[Result]) -> str:
    if not results:
        return "No downstream evaluation was run for this checkpoint."
    lines = ["| task | split | metric | value |", "|---|---|---|---|"]
    lines += [f"| {r.task} | {r.split} | {r.metric} | {r.value:.4f} |" for r in results]
    return "\n".join(lines)


def measured_limitations(corpus_statistics: Mapping[str, Any], results: Sequence[Result] = ()) -> str:
    """What corpus statistics (``audiolang.data.corpus_statistics`` of the evaluated rows, or ``corpus_info(path)
    ["statistics"]``) say about the data behind ``results``: per split the results were measured on (every split
    when none was), its size and voices and the word error rate of its ASR transcripts, which are what the model
    reads at inference."""
    splits = corpus_statistics["splits"]
    measured = [split for split in dict.fromkeys(r.split for r in results) if split in splits] or list(splits)
    lines = [
        f"- `{name}` split: {s['utterances']} clips, {s['speakers']} speakers ({', '.join(s['engines'])}), "
        f"{60 * s['hours']:.1f} min, {s['directed_share']:.0%} device-directed; its ASR transcripts have a word error rate "
        f"of {s['asr_wer']:.1%}."
        for name, s in ((name, splits[name]) for name in measured)
    ]
    return (
        "Measured on the evaluation data:\n\n"
        + "\n".join(lines)
        + "\n\nThe model reads transcripts of the same "
        "kind of ASR at inference, so the figures above include the cost of these recognition errors; real speech "
        "that the ASR recognises worse lowers them."
    )


def _label_names(config: Mapping[str, Any]) -> list[str]:
    id2label = config.get("id2label") or {}
    return [id2label[key] for key in sorted(id2label, key=int)]


def _intended_use(config: Mapping[str, Any], architecture: str) -> str:
    if architecture.endswith("ForXVector"):
        use = (
            "Speaker verification: the embeddings before the classifier are compared by cosine similarity; the "
            "classifier itself only knows the training speakers."
        )
    elif architecture.endswith("ForSequenceClassification"):
        if config.get("problem_type") == "regression" or config.get("num_labels", 2) == 1:
            target = "a continuous score (e.g. sentiment valence)"
        else:
            target = f"one of {len(_label_names(config))} classes ({', '.join(_label_names(config))})"
        use = (
            f"Predicting, for a short spoken request to an in-car voice assistant (16 kHz mono, a few seconds), "
            f"{target} from the clip and its transcript. The `audio-text-classification` pipeline transcribes the "
            "clip itself with the ASR the folder names, or takes a transcript you have."
        )
    elif PIPELINE_TAGS.get(architecture) == "zero-shot-audio-classification":
        use = (
            "A pre-trained starting point for spoken-language understanding on in-car audio: fine-tune it on a few "
            "labelled clips (device-directed speech, intents, emotion, sentiment), score clips against text prompts "
            "(zero-shot classification), or search clips by text."
        )
    else:
        use = (
            "A pre-trained encoder of audio and its transcript: fine-tune it on a few labelled clips for "
            "spoken-language understanding (device-directed speech, intents, emotion, sentiment, speakers)."
        )
    return f"{use}\n\n{OUT_OF_SCOPE}"


def _task_usage(architecture: str, repo: str, has_examples: bool) -> str:
    """The pipeline snippet of the folder's task, and where its example clips are."""
    if architecture.endswith("ForSequenceClassification"):
        usage = (
            "Raw audio in, label out: the `audio-text-classification` pipeline transcribes the clip with the ASR "
            "the folder names (`asr/inference/asr_config.json` when recorded, else the recogniser of the training "
            "transcripts in `asr/asr_config.json`; `asr=` per call picks another, `transcript=` uses your own) and "
            "classifies clip and transcript together. The recogniser is the trade-off between accuracy and speed on "
            "raw audio: see the audiolang README's table of raw-audio accuracy and clips/s per recogniser.\n\n"
            "```python\nfrom transformers import pipeline\n\n"
            f'classifier = pipeline("audio-text-classification", model="{repo}", trust_remote_code=True)\n'
            'classifier("clip.wav")  # {"label": ..., "score": ..., "transcript": ...}\n```'
        )
    elif PIPELINE_TAGS.get(architecture) == "zero-shot-audio-classification":
        usage = (
            "Zero-shot classification with transformers' own pipeline:\n\n"
            "```python\nfrom transformers import pipeline\n\n"
            f'classifier = pipeline("zero-shot-audio-classification", model="{repo}", trust_remote_code=True)\n'
            'classifier("clip.wav", candidate_labels=["navigate to the airport", "play some jazz"])\n```'
        )
    else:
        usage = ""
    if has_examples:
        usage += (
            f"\n\nThe widget's example clips are in `{EXAMPLES_DIR}/`, with their transcripts and labels in "
            f"`{EXAMPLES_DIR}/{EXAMPLES_METADATA}`."
        )
    return usage.strip()


def write_model_card(
    folder: str | Path,
    family: str,
    base_models: Sequence[str] = (),
    datasets: Sequence[str] = (),
    results: Sequence[Result] = (),
    pretraining: dict[str, Any] | None = None,
    repo_id: str | None = None,
    description: str = "",
    limitations: str = DEFAULT_LIMITATIONS,
    license: str = "apache-2.0",
    examples: Sequence[AudioExample] = (),
    corpus_statistics: Mapping[str, Any] | None = None,
    intended_use: str | None = None,
) -> ModelCard:
    """Render ``folder/README.md`` for a saved model of ``family`` and return the card.

    The folder must hold a ``config.json`` (the card reads the architecture from it; templates see it as
    ``config``). ``examples`` are saved to ``folder/examples/`` and become the card's widget entries;
    ``corpus_statistics`` (``audiolang.data.corpus_info(path)["statistics"]``) adds the measured limits of the
    data behind ``results`` to ``limitations``; ``intended_use`` defaults to a description of the architecture's
    task (with the label names of a classifier).
    """
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    architecture = (config.get("architectures") or ["DsclapModel"])[0]
    name = repo_id or folder.name
    eval_results = [
        EvalResult(
            task_type="audio-classification",
            task_name=r.task,
            dataset_type=r.dataset_id,
            dataset_name=r.dataset,
            # The Hub groups model-index results by task type and dataset, not by task name: naming the
            # dataset configuration after the task keeps each task's metrics apart.
            dataset_config=r.task,
            dataset_split=r.split,
            metric_type=r.metric,
            metric_name=r.metric,
            metric_value=float(r.value),
        )
        for r in results
    ]
    clips = save_examples(folder, examples)
    widget = [
        {"src": _file_url(repo_id, path), "example_title": example.title}
        for path, example in zip(clips, examples, strict=True)
    ]
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAGS.get(architecture),
        license=license,
        language="en",
        tags=["audiolang", family, "audio-text", "contrastive-learning", "spoken-language-understanding"],
        base_model=_hub_ids(base_models) or None,
        datasets=list(datasets) or None,
        model_name=name,
        eval_results=eval_results or None,
        widget=widget or None,
    )
    provenance = [f"- started from: {', '.join(base_models)}"] if base_models else []
    training = (
        "\n".join(provenance + [f"- {k}: {v}" for k, v in (pretraining or {}).items()])
        or "See the audiolang run scripts."
    )
    if corpus_statistics:
        limitations = f"{limitations}\n\n{measured_limitations(corpus_statistics, results)}"
    repo = repo_id or LOCAL_REPO_PLACEHOLDER
    card = ModelCard.from_template(
        data,
        template_str=_template(family),
        model_name=name,
        repo_id=repo,
        audio_encoder=config.get("audio_config", {}).get("model_type", "an audio encoder"),
        text_encoder=config.get("text_config", {}).get("model_type", "a text encoder"),
        projection_dim=config.get("projection_dim", "?"),
        config=config,
        model_description=description,
        task_usage=_task_usage(architecture, repo, has_examples=bool(clips)),
        intended_use=intended_use or _intended_use(config, architecture),
        training_details=training,
        results_table=_results_table(results),
        limitations=limitations,
    )
    card.save(folder / "README.md")
    return card


def _card_for_repo(folder: Path, repo_id: str) -> None:
    """Point a card written before its repo was known at ``repo_id``: the widget's clip URLs and the usage code."""
    card = ModelCard.load(folder / "README.md")
    widget = getattr(card.data, "widget", None) or []
    for entry in widget:
        if "src" in entry and not entry["src"].startswith(("http://", "https://")):
            entry["src"] = _file_url(repo_id, entry["src"])
    card.text = card.text.replace(f'"{LOCAL_REPO_PLACEHOLDER}"', f'"{repo_id}"')
    card.save(folder / "README.md")


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload audiolang model",
    repo_type: str = "model",
) -> str:
    """Create ``repo_id`` (if needed) and upload a saved model folder (weights, config, processor, card, example
    clips) or, with ``repo_type="space"``, a folder written by ``write_space``.

    A model card written before the repo id was known is pointed at ``repo_id`` first (in place): its widget clips
    become the repo's file URLs and its usage code names the repo. Training checkpoints (``checkpoint-*``) and
    ``training_args.bin`` are not uploaded. Returns the commit URL. Uses the standard ``huggingface_hub`` API, so
    the usual token discovery (``HF_TOKEN``, ``hf auth login``) applies.
    """
    folder = Path(folder)
    required = {"model": ("config.json", "README.md"), "space": ("app.py", "README.md")}
    if repo_type not in required:
        raise ValueError(f"repo_type must be one of {sorted(required)}, got {repo_type!r}")
    for name in required[repo_type]:
        if not (folder / name).is_file():
            fix = "save the model and write its card" if repo_type == "model" else "write it with write_space"
            raise ValueError(f"{str(folder)!r} has no {name}: {fix} first")
    if repo_type == "model":
        _card_for_repo(folder, repo_id)
    api = HfApi(token=token)
    api.create_repo(
        repo_id,
        private=private,
        exist_ok=True,
        repo_type=repo_type,
        **({"space_sdk": "gradio"} if repo_type == "space" else {}),
    )
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type=repo_type,
        commit_message=commit_message,
        ignore_patterns=list(IGNORE_PATTERNS),
    )
    return str(getattr(info, "commit_url", info))


def _installed_version(package: str) -> str | None:
    """The installed version's public part (a local label such as torch's ``+cpu`` is not on the package index)."""
    from packaging.version import Version

    try:
        return Version(metadata.version(package)).public
    except metadata.PackageNotFoundError:
        return None


def _pinned_requirements() -> list[str]:
    """audiolang's dependencies (extras left out) and the app's, pinned to the installed versions."""
    from packaging.requirements import Requirement

    requirements = [Requirement(line) for line in metadata.requires("audiolang") or []]
    names = [r.name for r in requirements if r.marker is None or "extra" not in str(r.marker)]
    return [
        f"{name}=={version}" if (version := _installed_version(name)) else name
        for name in [*names, *SPACE_APP_REQUIREMENTS]
    ]


def write_space(
    output_dir: str | Path,
    models: Sequence[str | Path],
    title: str = "audiolang demo",
    license: str = "apache-2.0",
    search_examples: bool = True,
) -> SpaceCard:
    """Write a Gradio Space folder that serves ``models`` with ``audiolang.app`` and return its card.

    ``models`` are Hub ids, loaded by the Space at start-up, or saved folders, copied into the Space (``models/``,
    without training checkpoints). The folder holds ``app.py`` (the entry point), a copy of the audiolang package
    (``audiolang/``: it is not on the package index, and the classifiers' speech recognisers come from it),
    ``requirements.txt`` (audiolang's dependencies and Gradio, pinned to the versions installed here), the models'
    example clips (``examples/``, offered as inputs and, with ``search_examples``, indexed for text-to-audio search),
    and a ``README.md`` whose front matter configures the Space (``sdk: gradio``).
    """
    if not models:
        raise ValueError("models is empty: name at least one model folder or Hub id for the Space to serve")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    served, hub_ids, example_rows = [], [], []
    (output / EXAMPLES_DIR).mkdir(exist_ok=True)
    for model in models:
        local = Path(model)
        if not local.is_dir():
            served.append(str(model))
            hub_ids.append(str(model))
            continue
        target = output / "models" / local.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(local, target, ignore=shutil.ignore_patterns(*IGNORE_PATTERNS))
        served.append(target.relative_to(output).as_posix())
        metadata_file = local / EXAMPLES_DIR / EXAMPLES_METADATA
        for line in metadata_file.read_text().splitlines() if metadata_file.is_file() else []:
            row = json.loads(line)
            # One examples folder for all models: the file names carry the model's.
            source, row["file_name"] = row["file_name"], f"{local.name}-{row['file_name']}"
            shutil.copyfile(local / EXAMPLES_DIR / source, output / EXAMPLES_DIR / row["file_name"])
            example_rows.append(row)
    (output / EXAMPLES_DIR / EXAMPLES_METADATA).write_text(
        "".join(json.dumps(r) + "\n" for r in example_rows)
    )
    package = output / "audiolang"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(Path(__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (output / "app.py").write_text(
        f'"""{title}: a Gradio Space written by audiolang.hub.write_space (audiolang/ is a copy of the package)."""\n\n'
        "import audiolang.pipelines  # noqa: F401  (registers the audio-text-classification pipeline)\n"
        "from audiolang.app import AudioLanguageDemo, build_demo, load_example_clips\n\n"
        f'clips = load_example_clips("{EXAMPLES_DIR}")\n'
        f"models = AudioLanguageDemo({served!r}, search_clips={'clips' if search_examples else '()'})\n"
        f"demo = build_demo(models, examples=clips, title={title!r})\n\n"
        'if __name__ == "__main__":\n    demo.launch()\n'
    )
    (output / "requirements.txt").write_text("\n".join(_pinned_requirements()) + "\n")
    data = SpaceCardData(
        title=title,
        sdk="gradio",
        sdk_version=_installed_version("gradio"),
        app_file="app.py",
        license=license,
        models=hub_ids or None,
        tags=["audiolang", "audio-text", "spoken-language-understanding"],
    )
    card = SpaceCard.from_template(
        data,
        template_str=(
            "---\n{{ card_data }}\n---\n\n# {{ title }}\n\nRecord or upload a clip: the app transcribes it and shows "
            "what the models predict, zero-shot scores against labels you type, and (for a DSCLAP model) the "
            "example clips that best match a text query. Models: {{ models }}.\n\nWritten by "
            "`audiolang.hub.write_space`; the app is `audiolang/app.py`.\n"
        ),
        title=title,
        models=", ".join(f"`{m}`" for m in served),
    )
    card.save(output / "README.md")
    return card
