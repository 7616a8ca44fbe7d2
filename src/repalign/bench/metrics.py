"""``python -m repalign.bench metrics``: the fast metric paths against their naive references.

    python -m repalign.bench metrics            # the sizes recorded in docs/performance.md
    python -m repalign.bench metrics --n 64 --epochs 10 --cka-n 256   # a quick run

Prints, in one run, the wall-clock ratio naive / fast for

1. lou2022 layer tangent alignment: ``method="fast"`` (forward ⊙ backward
   Grams, summed block by block over the kernel's upper triangle, never
   formed) vs ``method="kernel"`` (the same factors, the [n·o, n·o] kernel
   formed and centred: the fast path before 2026-12-07) and vs
   ``method="jacobian"`` (per-example Jacobians, K_l = J_l J_lᵀ), on a ReLU
   MLP of the given depth (number of nn.Linear layers) and width;
2. the sharon2024 epoch×epoch CKA matrix: per-epoch centred Grams plus one
   ``cka_matrix`` product vs the E×E loop of ``linear_cka`` over per-epoch
   features. The ratio for a loop over the E(E+1)/2 upper-triangle pairs only
   is derived from the same per-pair time and printed as well;
3. the eigendecomposition of a symmetric kernel (canatar2022 Figs 3-5, 8): the CPU route of
   ``symmetric_eigh`` (SciPy's LAPACK ``syevd``) vs ``torch.linalg.eigh``, at ``--eigh-n``.

Fast paths are timed as the best of ``--repeats`` runs after one warm-up; the
naive references run once. Wall-clock and process CPU time are both reported:
on a shared machine the CPU-time ratio is the steadier of the two. Nothing is
asserted: this is not a test.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from repalign.bench.timing import Timing, best_time, cpu_model, once

from repalign.metrics import (
    centered_normalized_gram,
    cka_matrix,
    layer_tangent_alignment,
    linear_cka,
    symmetric_eigh,
)


def bench_tangent(args: argparse.Namespace, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    widths = [args.in_features] + [args.width] * (args.depth - 1)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths, widths[1:] + [args.outputs]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).to(dtype)
    x = torch.randn(args.n, args.in_features, dtype=dtype, generator=gen)
    y = torch.eye(args.outputs, dtype=dtype)[torch.randint(0, args.outputs, (args.n,), generator=gen)]
    print(
        f"tangent alignment: MLP depth {args.depth} (nn.Linear layers), width {args.width}, "
        f"input {args.in_features}, n = {args.n}, outputs = {args.outputs}, {dtype}"
    )
    fast_s, fast = best_time(lambda: layer_tangent_alignment(model, x, y, "fast"), args.repeats)
    print(f"  fast      {fast_s}")
    if args.skip_naive:
        return
    kernel_s, kernel = best_time(lambda: layer_tangent_alignment(model, x, y, "kernel"), args.repeats)
    err = max(abs(float(fast[k] - kernel[k])) / abs(float(kernel[k])) for k in fast)
    print(f"  kernel    {kernel_s}")
    print(f"  ratio kernel/fast = {kernel_s / fast_s}   (max relative difference {err:.1e})")
    if dtype != torch.float64:  # which of the two is off: both against the kernel path in float64
        exact = layer_tangent_alignment(model.double(), x.double(), y.double(), "kernel")
        model.to(dtype)
        for name, got in (("fast", fast), ("kernel", kernel)):
            worst = max(abs(float(got[k]) - float(exact[k])) / abs(float(exact[k])) for k in got)
            print(f"  {name:9s} max relative difference from the float64 kernel path {worst:.1e}")
    if args.skip_jacobian:
        return
    naive_s, naive = once(lambda: layer_tangent_alignment(model, x, y, "jacobian"))
    err = max(abs(float(fast[k] - naive[k])) / abs(float(naive[k])) for k in fast)
    print(f"  jacobian  {naive_s}")
    print(f"  ratio jacobian/fast = {naive_s / fast_s}   (max relative difference {err:.1e})")


def bench_cka(args: argparse.Namespace, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    drift = torch.randn(args.cka_n, args.features, dtype=dtype, generator=gen)
    feats = [
        torch.randn(args.cka_n, args.features, dtype=dtype, generator=gen) + 0.1 * e * drift
        for e in range(args.epochs)
    ]
    print(f"CKA matrix: {args.epochs} epochs, n = {args.cka_n}, {args.features} features, {dtype}")

    def fast() -> torch.Tensor:
        return cka_matrix(centered_normalized_gram(f) for f in feats)

    fast_s, matrix = best_time(fast, args.repeats)
    print(f"  grams + cka_matrix      {fast_s}")
    if args.skip_naive:
        return

    def loop() -> torch.Tensor:
        out = torch.empty(args.epochs, args.epochs, dtype=dtype)
        for a in range(args.epochs):
            for b in range(args.epochs):
                out[a, b] = linear_cka(feats[a], feats[b])
        return out

    naive_s, reference = once(loop)
    err = float((matrix - reference).abs().max())
    pairs, half = args.epochs**2, args.epochs * (args.epochs + 1) // 2
    print(f"  E x E linear_cka loop   {naive_s}   ({pairs} pairs)")
    print(f"  ratio loop/fast = {naive_s / fast_s}   (max abs difference {err:.1e})")
    triangle = Timing(naive_s.wall * half / pairs, naive_s.cpu * half / pairs)
    print(f"  ratio for an upper-triangle loop ({half} pairs, derived) = {triangle / fast_s}")


def bench_eigh(args: argparse.Namespace, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(args.eigh_n, args.eigh_n // 10, dtype=dtype, generator=gen)
    kernel = feats @ feats.T + torch.eye(args.eigh_n, dtype=dtype)
    print(f"symmetric eigh: n = {args.eigh_n}, {dtype}, CPU")
    fast_s, (evals, _) = best_time(lambda: symmetric_eigh(kernel), args.repeats)
    print(f"  symmetric_eigh (scipy syevd)  {fast_s}")
    if args.skip_naive:
        return
    naive_s, (reference, _) = once(lambda: torch.linalg.eigh(kernel))
    err = float(((evals - reference).abs() / reference.abs().max()).max())
    print(f"  torch.linalg.eigh             {naive_s}")
    print(f"  ratio torch/scipy = {naive_s / fast_s}   (max eigenvalue difference / max eigenvalue {err:.1e})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--depth", type=int, default=10, help="nn.Linear layers in the MLP")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--in-features", type=int, default=256, help="MLP input size")
    parser.add_argument("--n", type=int, default=256, help="examples for tangent alignment")
    parser.add_argument("--outputs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=50, help="epochs in the CKA matrix")
    parser.add_argument("--cka-n", type=int, default=1024, help="examples per epoch for CKA")
    parser.add_argument("--features", type=int, default=512, help="features per epoch for CKA")
    parser.add_argument("--eigh-n", type=int, default=4000, help="kernel size for the eigh comparison")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each fast path")
    parser.add_argument("--only", choices=["tangent", "cka", "eigh"], default=None)
    parser.add_argument("--skip-naive", action="store_true", help="time the fast paths only")
    parser.add_argument("--skip-jacobian", action="store_true",
                        help="tangent: compare the fast path with the formed kernel only")


def run(args: argparse.Namespace) -> None:
    dtype = getattr(torch, args.dtype)
    print(f"CPU: {cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.only in (None, "tangent"):
        bench_tangent(args, dtype)
    if args.only in (None, "cka"):
        bench_cka(args, dtype)
    if args.only in (None, "eigh"):
        bench_eigh(args, dtype)
