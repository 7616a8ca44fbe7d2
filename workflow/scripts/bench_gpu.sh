#!/usr/bin/env bash
# The GPU rows of docs/performance.md ("Training path"), in one run of a few minutes on one
# CUDA GPU: PreAct ResNet-18 (k = 64) and VGG16 on CIFAR-10-sized input, this path vs the
# textbook DataLoader loop, and 16 stacked Simple CNNs vs 16 one after another; then the
# PreAct ResNet-18 case again with torch.compile. Each appends a dated table to
# docs/performance.md. Targets (issue 12): >= 3x and >= 28,000 images/s for PreAct k = 64
# on an H100/H200; >= 8x for the stack.
#
#   bash workflow/scripts/bench_gpu.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
workers=$(( $(nproc) < 8 ? $(nproc) : 8 ))
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 360 python -m repalign.bench train --device cuda --batch 512 --steps 40 --warmup 10 \
    --workers "$workers" --stack 16 --stack-batch 256
timeout 240 python -m repalign.bench train --device cuda --cases preact_resnet18 --batch 512 \
    --steps 40 --warmup 15 --workers "$workers" --compile
