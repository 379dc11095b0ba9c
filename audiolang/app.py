"""A Gradio demo of audiolang models: record or upload a clip and see what they make of it.

- every fine-tuned classifier folder (e.g. intent, device-directedness) gives its labels with scores, through the
  ``audio-text-classification`` pipeline, which transcribes the clip with the ASR the folder names (or reads the
  transcript typed in the app); the transcript it used is shown;
- a joint-embedding folder (DSCLAP, Turbo) scores the clip against label prompts typed by the user, through
  transformers' ``zero-shot-audio-classification`` pipeline;
- a DSCLAP folder also searches a small set of clips indexed at start-up by text (text-to-audio retrieval with the
  model's ``get_audio_features`` / ``get_text_features``).

    python run_scripts/run_app.py --model out/finetune/intent-pretrained --model out/dsclap

Models load through transformers' ``pipeline`` and Auto classes (a checkpoint's own code with
``trust_remote_code=True``); from audiolang the module takes only ``audiolang.pipelines``: the classification
pipeline and its audio file reader, so that the app reads a file exactly as the pipeline does. A Space made by
``audiolang.hub.write_space`` carries a copy of the package.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from transformers import AutoConfig, AutoProcessor, pipeline

from .pipelines import AudioTextClassificationPipeline, load_audio_file

AUDIO_TEXT_CLASSIFICATION = "audio-text-classification"
# Models whose forward scores clips against texts (`logits_per_audio`): what the zero-shot pipeline needs.
JOINT_EMBEDDING_ARCHITECTURES = ("DsclapModel", "TurboModel")
DEFAULT_PROMPTS = "navigate to the airport, play some music, turn the heating up, what a lovely day"


@dataclass(frozen=True)
class Clip:
    """An audio file that the demo offers as an example input or indexes for search."""

    path: str
    transcript: str = ""
    title: str = ""


def load_example_clips(directory: str | Path) -> list[Clip]:
    """The clips of an ``examples/`` folder that ``audiolang.hub.save_examples`` wrote (named by its
    ``metadata.jsonl``, datasets' ``audiofolder`` layout); none when the folder has no metadata."""
    metadata = Path(directory) / "metadata.jsonl"
    if not metadata.is_file():
        return []
    rows = [json.loads(line) for line in metadata.read_text().splitlines() if line.strip()]
    return [
        Clip(str(Path(directory) / row["file_name"]), row.get("transcript", ""), row.get("example_title", ""))
        for row in rows
    ]


def _architecture(model: str, trust_remote_code: bool) -> str:
    if Path(model).is_dir() and not (Path(model) / "config.json").is_file():
        raise ValueError(
            f"{model!r} has no config.json: pass a saved model folder (run_finetune.py saves one unless "
            "--save_model false) or a Hub id"
        )
    config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    return (config.architectures or [type(config).__name__])[0]


class AudioSearchIndex:
    """Text-to-audio search over a fixed set of clips with a dual encoder that has ``get_audio_features`` and
    ``get_text_features`` (DSCLAP): the clips are embedded once, a query is one text forward pass, and the ranking is
    the cosine similarity of the L2-normalised joint embeddings (DSCLAP's retrieval score, Eq. 1 without the
    temperature, which does not change the order)."""

    def __init__(self, model: Any, processor: Any, clips: Sequence[Clip], batch_size: int = 8):
        if not clips:
            raise ValueError("clips is empty: index at least one clip")
        self.model, self.processor, self.clips = model.eval(), processor, list(clips)
        rate = processor.feature_extractor.sampling_rate
        embeddings = []
        with torch.no_grad():
            for start in range(0, len(self.clips), batch_size):
                audio = [load_audio_file(clip.path, rate) for clip in self.clips[start : start + batch_size]]
                # Longer clips are cut to the model's limit, as the classification pipeline does.
                inputs = processor(audio=audio, sampling_rate=rate, truncate_audio=True, return_tensors="pt")
                inputs = inputs.to(model.device)
                embeddings.append(model.get_audio_features(**inputs).pooler_output.float().cpu())
        self.embeddings = torch.cat(embeddings)

    def search(self, query: str, top_k: int = 5) -> list[tuple[Clip, float]]:
        """The ``top_k`` clips most similar to ``query``, best first, with their cosine similarity."""
        if not query.strip():
            raise ValueError("query is empty: type what the clip should say")
        with torch.no_grad():
            inputs = self.processor(text=[query], return_tensors="pt").to(self.model.device)
            text = self.model.get_text_features(**inputs).pooler_output.float().cpu()
        scores = (self.embeddings @ text.T).squeeze(1)
        best = scores.topk(min(top_k, len(self.clips)))
        return [
            (self.clips[i], float(s))
            for s, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)
        ]


class AudioLanguageDemo:
    """The models behind the app, loaded once: an ``audio-text-classification`` pipeline per classifier folder, the
    zero-shot pipeline of a joint-embedding folder, and the search index of a DSCLAP folder.

    Args:
        models: Saved folders or Hub ids: sequence classifiers of any audiolang family, and at most one
            joint-embedding model (``DsclapModel`` / ``TurboModel``).
        search_clips: Clips to index for text-to-audio search (used when a model has ``get_audio_features``).
        trust_remote_code: Load the checkpoints' own code (where audiolang is not installed, e.g. in a Space).
        device: Passed to ``transformers.pipeline`` (e.g. ``"cpu"``, ``0``).
    """

    def __init__(
        self,
        models: Sequence[str | Path],
        search_clips: Sequence[Clip] = (),
        trust_remote_code: bool = False,
        device: str | int | None = None,
    ):
        if not models:
            raise ValueError(
                "models is empty: pass at least one fine-tuned classifier or DSCLAP/Turbo folder"
            )
        self.classifiers: dict[str, Any] = {}
        self.zero_shot: Any = None
        self.search_index: AudioSearchIndex | None = None
        options = {"trust_remote_code": trust_remote_code, "device": device}
        for model in map(str, models):
            architecture = _architecture(model, trust_remote_code)
            if architecture.endswith("ForSequenceClassification"):
                self.classifiers[_unique_name(model, self.classifiers)] = pipeline(
                    AUDIO_TEXT_CLASSIFICATION,
                    model=model,
                    pipeline_class=AudioTextClassificationPipeline,  # not a folder's copy of it where installed
                    **options,
                )
            elif architecture in JOINT_EMBEDDING_ARCHITECTURES:
                if self.zero_shot is not None:
                    raise ValueError(
                        f"{model!r} is a second joint-embedding model ({architecture}); the app serves one"
                    )
                self.zero_shot = pipeline("zero-shot-audio-classification", model=model, **options)
                if search_clips and hasattr(self.zero_shot.model, "get_audio_features"):
                    processor = AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
                    self.search_index = AudioSearchIndex(self.zero_shot.model, processor, search_clips)
            else:
                raise ValueError(
                    f"{model!r} is a {architecture}: the app serves sequence classifiers (fine-tuned folders) and "
                    f"joint-embedding models ({', '.join(JOINT_EMBEDDING_ARCHITECTURES)})"
                )

    def classify(self, audio: str, transcript: str | None = None) -> tuple[str, dict[str, dict[str, float]]]:
        """Every classifier's scores for the audio file ``audio``, and the transcript they read: ``transcript`` when
        given, else each classifier's own ASR output (DSCLAP's deployment: a classifier reads transcripts of the
        recogniser that made its training transcripts). Differing transcripts are shown one per classifier."""
        scores: dict[str, dict[str, float]] = {}
        heard: dict[str, str] = {}
        given = {"transcript": transcript.strip()} if transcript and transcript.strip() else {}
        for name, classifier in self.classifiers.items():
            results = classifier(audio, top_k=None, **given)
            # A regression head returns its one score as a dict, a classifier every label, best first.
            results = results if isinstance(results, list) else [results]
            heard[name] = results[0]["transcript"]
            scores[name] = {result["label"]: float(result["score"]) for result in results}
        if len(set(heard.values())) > 1:
            return "\n".join(f"{name}: {text}" for name, text in heard.items()), scores
        return next(iter(heard.values()), given.get("transcript", "")), scores

    def zero_shot_scores(self, audio: str, prompts: Sequence[str]) -> dict[str, float]:
        """Softmax over the joint-embedding model's similarity of the clip to each prompt, used as typed (no
        hypothesis template: the text tower was trained on transcripts, not on captions)."""
        if self.zero_shot is None:
            raise ValueError("no joint-embedding model (DSCLAP/Turbo) was loaded: zero-shot scores need one")
        prompts = [p.strip() for p in prompts if p.strip()]
        if not prompts:
            raise ValueError("prompts is empty: type at least one label")
        extractor = self.zero_shot.feature_extractor
        # transformers' pipeline does not truncate: cut longer clips to the model's limit, as the classification
        # pipeline does.
        clip = load_audio_file(audio, extractor.sampling_rate)[
            : getattr(extractor, "max_audio_samples", None)
        ]
        results = self.zero_shot(clip, candidate_labels=prompts, hypothesis_template="{}")
        return {result["label"]: float(result["score"]) for result in results}


def _unique_name(model: str, taken: dict[str, Any]) -> str:
    """The folder's (or Hub repo's) last path part, numbered when two models share it."""
    name = Path(model.rstrip("/")).name or model
    candidate, index = name, 2
    while candidate in taken:
        candidate, index = f"{name} ({index})", index + 1
    return candidate


def _labels(scores: dict[str, float]) -> dict[str, float] | str:
    """What `gr.Label` shows: the classes with their probabilities, or a regression head's single score."""
    return scores if len(scores) > 1 else next(f"{label}: {score:.3f}" for label, score in scores.items())


@contextmanager
def _shown_to_the_user() -> Iterator[None]:
    """Show a `ValueError` (bad audio, an empty prompt list, ...) in the page: Gradio hides other exceptions'
    messages behind a generic "Error"."""
    try:
        yield
    except ValueError as error:
        raise gr.Error(str(error)) from error


def build_demo(
    models: Sequence[str | Path] | AudioLanguageDemo,
    examples: Sequence[Clip] = (),
    search_clips: Sequence[Clip] = (),
    title: str = "audiolang demo",
    trust_remote_code: bool = False,
    device: str | int | None = None,
) -> gr.Blocks:
    """The Gradio app over ``models`` (or an already loaded ``AudioLanguageDemo``): a tab that classifies a recorded
    or uploaded clip (and scores it against typed prompts), and, with a DSCLAP model and ``search_clips``, a tab
    that searches the clips by text. ``examples`` are offered as inputs."""
    demo = (
        models
        if isinstance(models, AudioLanguageDemo)
        else AudioLanguageDemo(models, search_clips, trust_remote_code, device)
    )
    names = list(demo.classifiers)
    with gr.Blocks(title=title) as blocks:
        gr.Markdown(
            f"# {title}\nRecord or upload a few seconds of speech. Leave the transcript empty to let each model's "
            "own ASR transcribe it."
        )
        with gr.Tab("Classify"), gr.Row():
            with gr.Column():
                audio = gr.Audio(
                    sources=["upload", "microphone"], type="filepath", label="Clip", elem_id="clip"
                )
                transcript_in = gr.Textbox(label="Transcript (optional)", elem_id="transcript-in")
                prompts = gr.Textbox(
                    label="Zero-shot labels (comma-separated)",
                    value=DEFAULT_PROMPTS,
                    visible=demo.zero_shot is not None,
                    elem_id="prompts",
                )
                run = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples(
                        [[clip.path] for clip in examples],
                        inputs=[audio],
                        example_labels=[c.title for c in examples],
                    )
            with gr.Column():
                transcript_out = gr.Textbox(label="Transcript used", interactive=False, elem_id="transcript")
                outputs = [
                    gr.Label(label=name, num_top_classes=5, elem_id=f"classifier-{index}")
                    for index, name in enumerate(names)
                ]
                zero_shot = gr.Label(
                    label="Zero-shot",
                    num_top_classes=5,
                    visible=demo.zero_shot is not None,
                    elem_id="zero-shot",
                )

        def analyse(path: str | None, transcript: str, typed_prompts: str) -> list[Any]:
            if not path:
                raise gr.Error("Record or upload a clip first.")
            with _shown_to_the_user():
                used, scores = demo.classify(path, transcript) if names else (transcript, {})
                zero = (
                    demo.zero_shot_scores(path, typed_prompts.split(","))
                    if demo.zero_shot and typed_prompts.strip()
                    else None
                )
            return [used, *(_labels(scores[name]) for name in names), zero]

        run.click(analyse, [audio, transcript_in, prompts], [transcript_out, *outputs, zero_shot])

        if demo.search_index is not None:
            with gr.Tab("Search"):
                query = gr.Textbox(label="Find clips that say...", elem_id="query")
                search = gr.Button("Search", elem_id="search")
                table = gr.Dataframe(
                    headers=["rank", "similarity", "clip"],
                    datatype=["number", "number", "str"],
                    elem_id="hits",
                )
                best = gr.Audio(label="Best match", type="filepath", interactive=False, elem_id="best-match")

            def find(text: str) -> tuple[list[list[Any]], str]:
                with _shown_to_the_user():
                    hits = demo.search_index.search(text)
                rows = [
                    [rank, round(score, 4), clip.title or Path(clip.path).name]
                    for rank, (clip, score) in enumerate(hits, 1)
                ]
                return rows, hits[0][0].path

            search.click(find, [query], [table, best])
    return blocks
