"""Every saved folder loads with each Auto class its family registers, with audiolang installed (the registrations)
and without it (the folder's `auto_map` and `trust_remote_code=True`), as the same classes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import transformers

import audiolang
from audiolang import (
    CtalConfig,
    CtalForPreTraining,
    CtalProcessor,
    DsclapModel,
    DsclapProcessor,
    LratConfig,
    LratForPreTraining,
    LratProcessor,
    TurboConfig,
    TurboForSequenceClassification,
    TurboProcessor,
    train_ctal_tokenizer,
)

# The Auto classes each family registers (audiolang/__init__.py), and the class each gives.
FAMILY_CLASSES = {
    "dsclap": {
        "AutoConfig": "DsclapConfig",
        "AutoModel": "DsclapModel",
        "AutoModelForSequenceClassification": "DsclapForSequenceClassification",
        "AutoFeatureExtractor": "DsclapFeatureExtractor",
        "AutoProcessor": "DsclapProcessor",
    },
    "turbo": {
        "AutoConfig": "TurboConfig",
        "AutoModel": "TurboModel",
        "AutoModelForSequenceClassification": "TurboForSequenceClassification",
        "AutoFeatureExtractor": "DsclapFeatureExtractor",
        "AutoProcessor": "TurboProcessor",
    },
    "ctal": {
        "AutoConfig": "CtalConfig",
        "AutoModel": "CtalModel",
        "AutoModelForPreTraining": "CtalForPreTraining",
        "AutoModelForSequenceClassification": "CtalForSequenceClassification",
        "AutoModelForAudioXVector": "CtalForXVector",
        "AutoFeatureExtractor": "CtalFeatureExtractor",
        "AutoProcessor": "CtalProcessor",
    },
    "lrat": {
        "AutoConfig": "LratConfig",
        "AutoModel": "LratModel",
        "AutoModelForPreTraining": "LratForPreTraining",
        "AutoModelForSequenceClassification": "LratForSequenceClassification",
        "AutoModelForAudioXVector": "LratForXVector",
        "AutoFeatureExtractor": "CtalFeatureExtractor",
        "AutoProcessor": "LratProcessor",
    },
}

# One subprocess loads the whole matrix: `{folder: {Auto class: class name}}`.
LOAD_MATRIX = textwrap.dedent(
    """
    import json, sys
    import transformers
    matrix = json.loads(sys.argv[1])
    loaded = {
        folder: {
            auto: type(getattr(transformers, auto).from_pretrained(folder, trust_remote_code=True)).__name__
            for auto in classes
        }
        for folder, classes in matrix.items()
    }
    print(json.dumps(loaded))
    """
)


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory, dsclap_tokenizer, dsclap_config_factory) -> dict[str, Path]:
    """A folder per family, saved from the model class whose folder used to list too few Auto classes."""
    root = tmp_path_factory.mktemp("auto_map")
    torch.manual_seed(0)
    dsclap_config = dsclap_config_factory()
    DsclapModel(dsclap_config).save_pretrained(root / "dsclap")
    DsclapProcessor.from_config(dsclap_config, dsclap_tokenizer).save_pretrained(root / "dsclap")
    turbo_config = TurboConfig(audio_config=dsclap_config.audio_config, text_config=dsclap_config.text_config)
    TurboForSequenceClassification(turbo_config).save_pretrained(root / "turbo")
    TurboProcessor.from_config(turbo_config, dsclap_tokenizer).save_pretrained(root / "turbo")
    tokenizer = train_ctal_tokenizer(
        ["open the window", "turn on the radio"] * 4, vocab_size=300, min_frequency=1
    )
    # LRAT shares CTAL's front end: the same tokenizer and feature extractor.
    for family, config_class, model_class, processor_class in (
        ("ctal", CtalConfig, CtalForPreTraining, CtalProcessor),
        ("lrat", LratConfig, LratForPreTraining, LratProcessor),
    ):
        config = config_class.from_preset(
            "tiny",
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            mask_token_id=tokenizer.mask_token_id,
        )
        model_class(config).save_pretrained(root / family)
        processor_class.from_config(config, tokenizer).save_pretrained(root / family)
    return {family: root / family for family in FAMILY_CLASSES}


def test_auto_map_lists_every_model_class_of_the_family(family_folders):
    for family, classes in FAMILY_CLASSES.items():
        auto_map = json.loads((family_folders[family] / "config.json").read_text())["auto_map"]
        models = {auto for auto in classes if auto.startswith("AutoModel")}
        assert set(auto_map) == {"AutoConfig", *models}, family
        assert auto_map["AutoModel"] == f"modeling_{family}.{classes['AutoModel']}"


def test_each_folder_loads_with_each_auto_class_with_and_without_audiolang(
    family_folders, run_without_audiolang, tmp_path
):
    expected = {str(family_folders[family]): classes for family, classes in FAMILY_CLASSES.items()}
    with_audiolang = {
        folder: {auto: type(getattr(transformers, auto).from_pretrained(folder)).__name__ for auto in classes}
        for folder, classes in expected.items()
    }
    assert with_audiolang == expected
    assert run_without_audiolang(LOAD_MATRIX, json.dumps(expected), workdir=tmp_path) == expected


def test_registrations_match_the_auto_map():
    """What `import audiolang` registers is what the modules declare for `trust_remote_code` (one source)."""
    for family, classes in FAMILY_CLASSES.items():
        config_class = transformers.AutoConfig.for_model(family).__class__
        assert config_class.__module__ == f"audiolang.configuration_{family}"
        for auto, name in classes.items():
            if auto.startswith("AutoModel"):
                assert getattr(transformers, auto)._model_mapping[config_class].__name__ == name
    assert {"DsclapModel", "CtalForXVector"} <= set(audiolang.__all__)
