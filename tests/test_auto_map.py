"""Every saved folder loads with each Auto class its family registers, with audiolang installed (the registrations)
and without it (the folder's `auto_map` and `trust_remote_code=True`), as the same classes; and, since the
registrations run when transformers loads each Auto class (`audiolang.registration`), whatever the order in which a
fresh process imports audiolang and transformers' pieces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


# Fresh-process import orders: audiolang before or after transformers' Auto modules and pipelines, or reached through
# one of its classes (whose module imports the Auto class that triggers the registrations: the circular case).
IMPORT_ORDERS = {
    "audiolang first": "import audiolang",
    "transformers' Auto classes and pipeline first": (
        "from transformers import (AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioXVector,\n"
        "    AutoModelForPreTraining, AutoModelForSequenceClassification, AutoProcessor, AutoTokenizer, pipeline)\n"
        "import audiolang"
    ),
    "AutoConfig first, the rest after audiolang": "from transformers import AutoConfig\nimport audiolang",
    "an audiolang model class first": "from audiolang import TurboForSequenceClassification",
}
LOAD_AFTER_IMPORTS = textwrap.dedent(
    """
    import json, sys
    import transformers
    matrix, classifier_folder = json.loads(sys.argv[1]), sys.argv[2]
    def name(obj):
        return f"{type(obj).__module__}.{type(obj).__name__}"
    loaded = {
        folder: {auto: name(getattr(transformers, auto).from_pretrained(folder)) for auto in autos}
        for folder, autos in matrix.items()
    }
    classifier = transformers.pipeline("audio-text-classification", model=classifier_folder, device="cpu")
    loaded["pipeline"] = [name(classifier), name(classifier.model)]
    print(json.dumps(loaded))
    """
)


@pytest.mark.parametrize("order", sorted(IMPORT_ORDERS))
def test_every_auto_class_and_the_pipeline_resolve_whatever_the_import_order(family_folders, order):
    """Without `trust_remote_code`: only the registrations can resolve a folder, to audiolang's own modules."""
    modules = {
        "AutoConfig": "configuration",
        "AutoFeatureExtractor": "feature_extraction",
        "AutoProcessor": "processing",
    }
    expected = {
        str(family_folders[family]): {
            auto: f"audiolang.{modules.get(auto, 'modeling')}_{family}.{name}"
            for auto, name in classes.items()
        }
        for family, classes in FAMILY_CLASSES.items()
    }
    # The feature extractors that two families share live in the first family's module.
    for family, owner in (("turbo", "dsclap"), ("lrat", "ctal")):
        extractor = FAMILY_CLASSES[family]["AutoFeatureExtractor"]
        expected[str(family_folders[family])]["AutoFeatureExtractor"] = (
            f"audiolang.feature_extraction_{owner}.{extractor}"
        )
    # AutoTokenizer gives the tokenizer class that the processor's `save_pretrained` recorded.
    for folder in family_folders.values():
        recorded = json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"]
        tokenizer_class = getattr(transformers, recorded)
        expected[str(folder)]["AutoTokenizer"] = f"{tokenizer_class.__module__}.{tokenizer_class.__name__}"
    script = IMPORT_ORDERS[order] + LOAD_AFTER_IMPORTS
    matrix = {folder: sorted(classes) for folder, classes in expected.items()}
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(matrix), str(family_folders["turbo"])],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded.pop("pipeline") == [
        "audiolang.pipelines.audio_text_classification.AudioTextClassificationPipeline",
        "audiolang.modeling_turbo.TurboForSequenceClassification",
    ]
    assert loaded == expected
