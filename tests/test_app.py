"""The demo app (`audiolang.app`): its answers against the pipelines and the model computed independently, the
Space folder running on its own copy of the package, and the page itself driven in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import HfArgumentParser, pipeline

from audiolang import DsclapForSequenceClassification, DsclapModel, DsclapProcessor
from audiolang.app import DEFAULT_PROMPTS, AudioLanguageDemo, AudioSearchIndex, build_demo, load_example_clips
from audiolang.data import CorpusConfig, build_corpus
from audiolang.hub import EXAMPLES_DIR, examples_from_dataset, save_examples, write_model_card, write_space
from audiolang.pipelines import corpus_asr, save_asr_config, save_custom_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from app_screenshot import analyse_clip, browser_missing, full_page_screenshot, search_clips, serve  # noqa: E402

QUERY = "navigate home"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus of a dozen clips, built as the embedded one is (voices, cabin noise, pocketsphinx with its domain
    language model): its test clips are real corpus clips, its ASR is what the fine-tuned folders record."""
    folder = tmp_path_factory.mktemp("app") / "corpus"
    config = CorpusConfig(
        preset="tiny",
        seed=0,
        split_sizes=dict(pretrain=1, train=4, validation=1, test=4, speaker_test=1),
        num_speakers=4,
        num_test_speakers=1,
    )
    return build_corpus(config=config, output_dir=folder, progress=False), folder


@pytest.fixture(scope="module")
def clips(corpus, tmp_path_factory):
    """The corpus' test clips as audio files (what a user uploads), with their transcripts."""
    data, _ = corpus
    folder = tmp_path_factory.mktemp("clips")
    save_examples(folder, examples_from_dataset(data["test"], num_examples=4))
    return load_example_clips(folder / EXAMPLES_DIR)


@pytest.fixture(scope="module")
def models(corpus, tmp_path_factory, dsclap_config_factory, dsclap_tokenizer) -> dict[str, Path]:
    """Tiny random-weight folders as run_finetune.py / run_pretrain.py save them: intent and directedness classifiers
    (recording the corpus' recogniser, exported for the pipeline) and a DSCLAP model."""
    data, corpus_folder = corpus
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    folders = {}
    for task in ("intent", "directed"):
        names = data["test"].features[task].names
        config = dsclap_config_factory(
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)},
        )
        folders[task] = root / f"{task}-tiny"
        DsclapForSequenceClassification(config).save_pretrained(folders[task])
        DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folders[task])
        save_custom_pipeline(folders[task])
        spec, kwargs = corpus_asr(corpus_folder)
        save_asr_config(folders[task], spec, **kwargs)
    config = dsclap_config_factory()
    folders["dsclap"] = root / "dsclap-tiny"
    DsclapModel(config).save_pretrained(folders["dsclap"])
    DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folders["dsclap"])
    return folders


@pytest.fixture(scope="module")
def demo(models, clips) -> AudioLanguageDemo:
    return AudioLanguageDemo([models["intent"], models["directed"], models["dsclap"]], search_clips=clips)


def _pipeline_scores(folder: Path, clip: str, **kwargs) -> tuple[str, dict[str, float]]:
    classifier = pipeline("audio-text-classification", model=str(folder), trust_remote_code=True)
    results = classifier(clip, top_k=None, **kwargs)
    return results[0]["transcript"], {r["label"]: r["score"] for r in results}


def test_classify_shows_what_each_pipeline_returns(demo, models, clips, corpus):
    transcript, scores = demo.classify(clips[0].path)
    for task in ("intent", "directed"):
        heard, expected = _pipeline_scores(models[task], clips[0].path)
        assert scores[f"{task}-tiny"] == pytest.approx(expected, abs=1e-6)
        assert transcript == heard
    # The recogniser the folders record is the corpus' own: it hears what the corpus transcribed.
    assert transcript == corpus[0]["test"][0]["asr_text"] == clips[0].transcript

    typed, scores = demo.classify(clips[0].path, "  open the window ")
    assert typed == "open the window"
    _, expected = _pipeline_scores(models["intent"], clips[0].path, transcript="open the window")
    assert scores["intent-tiny"] == pytest.approx(expected, abs=1e-6)


def _model_and_processor(folder: Path) -> tuple[DsclapModel, DsclapProcessor]:
    return DsclapModel.from_pretrained(folder).eval(), DsclapProcessor.from_pretrained(folder)


def _unpaired_inputs(processor: DsclapProcessor, audio: list[np.ndarray], texts: list[str]) -> dict:
    """Model inputs that score every clip against every text (the processor pairs clips with texts only)."""
    clips = processor(audio=audio, sampling_rate=16_000, truncate_audio=True, return_tensors="pt")
    return {**clips, **processor(text=texts, return_tensors="pt")}


def test_zero_shot_scores_are_the_softmax_of_the_clip_prompt_similarities(demo, models, clips):
    prompts = ["navigate home", "play some music", "call mom"]
    scores = demo.zero_shot_scores(clips[1].path, [" navigate home", "play some music", "call mom", " "])
    model, processor = _model_and_processor(models["dsclap"])
    audio, _ = sf.read(clips[1].path, dtype="float32")
    with torch.no_grad():
        logits = model(**_unpaired_inputs(processor, [audio], prompts)).logits_per_audio
    expected = dict(zip(prompts, logits.softmax(-1)[0].tolist(), strict=True))
    assert scores == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="prompts is empty"):
        demo.zero_shot_scores(clips[1].path, [" ", ""])


def test_search_ranks_the_indexed_clips_by_cosine_similarity(demo, models, clips):
    hits = demo.search_index.search(QUERY, top_k=3)
    model, processor = _model_and_processor(models["dsclap"])
    audio = [sf.read(clip.path, dtype="float32")[0] for clip in clips]
    with torch.no_grad():
        out = model(**_unpaired_inputs(processor, audio, [QUERY]))
    cosine = (out.text_embeds @ out.audio_embeds.T)[0].numpy()
    order = np.argsort(-cosine, kind="stable")[:3]
    assert [clip.path for clip, _ in hits] == [clips[i].path for i in order]
    np.testing.assert_allclose([score for _, score in hits], cosine[order], atol=1e-5)
    with pytest.raises(ValueError, match="query is empty"):
        demo.search_index.search("  ")


def test_the_app_serves_classifiers_and_one_joint_embedding_model(models):
    with pytest.raises(ValueError, match="models is empty"):
        AudioLanguageDemo([])
    with pytest.raises(ValueError, match="second joint-embedding model"):
        AudioLanguageDemo([models["dsclap"], models["dsclap"]])


def test_run_app_takes_repeated_models_and_indexes_dataset_clips(corpus, models):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run_scripts"))
    from run_app import AppArguments, search_clips

    data, folder = corpus
    argv = ["--model", str(models["intent"]), "--model", str(models["directed"]), str(models["dsclap"])]
    (args,) = HfArgumentParser(AppArguments).parse_args_into_dataclasses(
        args=[*argv, "--search_dataset", str(folder), "--search_size", "3"]
    )
    assert args.model == [str(models[name]) for name in ("intent", "directed", "dsclap")]
    assert [clip.transcript for clip in search_clips(args)] == data["test"]["asr_text"][:3]
    args.search_folder = str(folder)
    with pytest.raises(ValueError, match="--search_dataset and --search_folder both"):
        search_clips(args)


def test_run_app_shows_each_example_clip_once(corpus, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run_scripts"))
    from run_app import example_clips

    data, _ = corpus
    examples = examples_from_dataset(data["test"], num_examples=3, label_column="intent")
    save_examples(tmp_path / "all", examples)
    save_examples(tmp_path / "first", examples[:2])
    save_examples(tmp_path / "last", examples[1:])  # the middle clip saved by both folders
    expected = [(c.transcript, c.title) for c in load_example_clips(tmp_path / "all" / EXAMPLES_DIR)]
    shown = example_clips([str(tmp_path / "first"), str(tmp_path / "last")])
    assert len(expected) == 3 and [(c.transcript, c.title) for c in shown] == expected
    assert [Path(c.path).parent.parent.name for c in shown] == ["first", "first", "last"]


def test_space_folder_runs_on_its_own_copy_of_the_package(demo, models, corpus, clips, tmp_path):
    write_model_card(
        models["intent"],
        "dsclap",
        examples=examples_from_dataset(corpus[0]["test"], 2, label_column="intent"),
    )
    space = tmp_path / "space"
    write_space(space, [models["intent"], models["dsclap"]])
    script = (
        "import json, sys, audiolang, app\n"
        "transcript, scores = app.models.classify(sys.argv[1])\n"
        "print(json.dumps({'package': audiolang.__file__, 'transcript': transcript, 'scores': scores, "
        "'search': [clip.path for clip, _ in app.models.search_index.search(sys.argv[2])]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run(
        [sys.executable, "-c", script, clips[0].path, QUERY],
        cwd=space,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["package"] == str(space / "audiolang" / "__init__.py")
    transcript, scores = demo.classify(clips[0].path)
    assert shown["transcript"] == transcript
    assert shown["scores"] == {"intent-tiny": pytest.approx(scores["intent-tiny"], abs=1e-6)}
    # The Space indexes the example clips of its models' cards.
    model, processor = _model_and_processor(models["dsclap"])
    index = AudioSearchIndex(model, processor, load_example_clips(space / EXAMPLES_DIR))
    assert [str(space / path) for path in shown["search"]] == [clip.path for clip, _ in index.search(QUERY)]


@pytest.mark.browser
def test_page_in_headless_chromium_shows_the_pipelines_labels(demo, models, clips, tmp_path):
    missing = browser_missing()
    if missing:
        pytest.skip(f"no headless browser: {missing}")
    from app_screenshot import headless_chromium

    blocks = build_demo(demo)
    driver = headless_chromium()
    try:
        url = serve(blocks)
        shown = analyse_clip(driver, url, clips[0].path)
        screenshot = full_page_screenshot(
            driver, os.environ.get("AUDIOLANG_APP_SCREENSHOT", tmp_path / "app.png")
        )
        hits = search_clips(driver, QUERY)
    finally:
        driver.quit()
        blocks.close()
    expected = [
        pipeline("audio-text-classification", model=str(models[task]), trust_remote_code=True)(clips[0].path)
        for task in ("intent", "directed")
    ]
    assert shown.labels == [result["label"] for result in expected]
    assert shown.transcript == expected[0]["transcript"]
    zero_shot = demo.zero_shot_scores(clips[0].path, DEFAULT_PROMPTS.split(","))
    assert shown.zero_shot == max(zero_shot, key=zero_shot.get)
    assert hits == [clip.title for clip, _ in demo.search_index.search(QUERY)]
    assert screenshot.stat().st_size > 10_000  # a rendered page, not an empty PNG
