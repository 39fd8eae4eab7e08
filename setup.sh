#!/usr/bin/env bash
# One-line setup for a fresh machine: a virtual environment with pinned torch/torchvision
# and net_detr2 installed in editable mode.
#
# The environment lives outside the checkout (torch + torchvision are ~5 GB) and is reused by
# every clone; `.venv` in the checkout is a link to it. Override its place with NET_DETR2_VENV.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${NET_DETR2_VENV:-$HOME/.venvs/net_detr2}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The regular (CUDA) builds run fine on CPU and, unlike the CPU-only wheel, have a matching
# torchvision whose compiled ops (nms, roi_align) load.
"$VENV/bin/python" -m pip install --quiet -r requirements.txt
"$VENV/bin/python" -m pip install --quiet --no-deps -e ".[test]"
ln -sfn "$VENV" .venv
"$VENV/bin/python" -c "import torch, torchvision; from torchvision.ops import nms; print('net_detr2 environment ready:', '$VENV', 'torch', torch.__version__, 'torchvision', torchvision.__version__)"
