#!/usr/bin/env bash
# The GPU benchmark, run from the repository root on a machine with one CUDA GPU whose Python has
# torch, torchvision, lightning and torchmetrics (no install of cnnlab: it is imported from src/).
# Results: $OUT/gpu.json, $OUT/gpu.log. About 6 minutes on one H200, compile times included.
#   OUT=/some/folder bash scripts/gpu_bench.sh
set -uo pipefail
OUT=${OUT:-outputs/gpu_bench}
mkdir -p "$OUT"
# The --gpu path imports neither Hydra nor OmegaConf; wheels in .whl/ (if any) go on the path.
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
{
  nvidia-smi
  python3 -c "import torch, lightning, torchvision; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning', lightning.__version__, 'torchvision', torchvision.__version__)"
  nproc
} 2>&1 | tee "$OUT/env.txt"
PYTHONUNBUFFERED=1 timeout 420 python3 scripts/benchmark.py --gpu --out "$OUT/gpu.json" 2>&1 | tee "$OUT/gpu.log"
