"""`import audiolang` registers the families and loads nothing else, not even torch (each registration runs when
transformers loads its Auto class); every exported name resolves on first use.

(The import's time and memory are measured by benchmarks/bench_import.py, not here.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Loaded on first use only: the model code and what it builds on, the corpus builder, training, metrics.
DEFERRED = ("audiolang.modeling_dsclap", "audiolang.layers", "audiolang.pipelines", "torch", "transformers.modeling_utils",
            "transformers.pipelines", "accelerate", "librosa", "scipy", "audiolang.data", "audiolang.training",
            "audiolang.metrics", "audiolang.hub", "datasets", "sklearn", "evaluate")  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import audiolang
    deferred = json.loads(sys.argv[1])
    at_import = sorted(name for name in deferred if name in sys.modules)
    from transformers import AutoConfig
    registered = sorted(t for t in ("dsclap", "turbo", "ctal", "lrat") if AutoConfig.for_model(t).model_type == t)
    resolved = {name: getattr(audiolang, name).__module__.split(".")[1] if hasattr(getattr(audiolang, name), "__module__")
                else "value" for name in audiolang.__all__}
    print(json.dumps({"at_import": at_import, "registered": registered, "resolved": resolved,
                      "dir": sorted(dir(audiolang))}))
    """
)


def test_import_registers_the_families_and_defers_the_rest():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(DEFERRED)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["at_import"] == []
    assert report["registered"] == ["ctal", "dsclap", "lrat", "turbo"]
    # Names exported before the top level became lazy still import from `audiolang`, from their modules.
    for name, module in {
        "build_corpus": "data",
        "CorpusConfig": "data",
        "train_ctal_tokenizer": "tokenization_ctal",
        "DataCollatorForAudioText": "training",
        "build_dsclap": "training",
        "summarise_runs": "metrics",
        "DsclapModel": "modeling_dsclap",
    }.items():
        assert report["resolved"][name] == module, name
    assert {"build_corpus", "training", "data", "metrics"} <= set(report["dir"])
