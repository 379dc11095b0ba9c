"""Hub tooling: model cards with metadata and measured results, and pushing a saved model folder.

Model cards are rendered from the family templates in ``audiolang/model_cards/`` with
``huggingface_hub.ModelCard.from_template``; the metadata (library, pipeline tag, tags, base models,
datasets, a ``model-index`` of the measured metrics) is what the Hub indexes and displays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

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


@dataclass(frozen=True)
class Result:
    """One measured number for the model-index: e.g. Result("directed", "accuracy", 0.93, "test")."""

    task: str
    metric: str
    value: float
    split: str = "test"
    dataset: str = "audiolang embedded in-car corpus"
    dataset_id: str = "audiolang/incar"


def _template(family: str) -> str:
    path = resources.files("audiolang") / "model_cards" / f"{family}.md"
    if not path.is_file():
        raise ValueError(f"no model-card template for family {family!r} (looked for {path})")
    return path.read_text()


def _hub_ids(names: Sequence[str]) -> list[str]:
    """The entries that are Hub repo ids ("org/name"): local folders mean nothing to the Hub's metadata."""
    return [n for n in names if n.count("/") == 1 and not Path(n).exists() and not n.startswith((".", "/"))]


def _results_table(results: Sequence[Result]) -> str:
    if not results:
        return "No downstream evaluation was run for this checkpoint."
    lines = ["| task | split | metric | value |", "|---|---|---|---|"]
    lines += [f"| {r.task} | {r.split} | {r.metric} | {r.value:.4f} |" for r in results]
    return "\n".join(lines)


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
) -> ModelCard:
    """Render ``folder/README.md`` for a saved model of ``family`` and return the card.

    The folder must hold a ``config.json`` (the card reads the architecture from it; templates see it as
    ``config``).
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
    )
    provenance = [f"- started from: {', '.join(base_models)}"] if base_models else []
    training = (
        "\n".join(provenance + [f"- {k}: {v}" for k, v in (pretraining or {}).items()])
        or "See the audiolang run scripts."
    )
    card = ModelCard.from_template(
        data,
        template_str=_template(family),
        model_name=name,
        repo_id=repo_id or "path/to/this/folder",
        audio_encoder=config.get("audio_config", {}).get("model_type", "an audio encoder"),
        text_encoder=config.get("text_config", {}).get("model_type", "a text encoder"),
        projection_dim=config.get("projection_dim", "?"),
        config=config,
        model_description=description,
        training_details=training,
        results_table=_results_table(results),
        limitations=limitations,
    )
    card.save(folder / "README.md")
    return card


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload audiolang model",
) -> str:
    """Create ``repo_id`` (if needed) and upload a saved model folder (weights, config, processor, card).

    Returns the commit URL. Uses the standard ``huggingface_hub`` API, so the usual token discovery
    (``HF_TOKEN``, ``hf auth login``) applies.
    """
    folder = Path(folder)
    for required in ("config.json", "README.md"):
        if not (folder / required).is_file():
            raise ValueError(f"{str(folder)!r} has no {required}: save the model and write its card first")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message=commit_message
    )
    return str(getattr(info, "commit_url", info))
