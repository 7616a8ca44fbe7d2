"""sharon2024's CKA route: minibatch CKA against a naive loop, and the stored-vector map against the exact map."""

from __future__ import annotations

import itertools

import pytest
import torch

from repalign.experiments.sharon2024.cka_store import batch_triangle, cka_map, epoch_vector, u_centre
from repalign.metrics import minibatch_cka


def naive_unbiased_hsic(k: torch.Tensor, l: torch.Tensor) -> float:
    """Song et al. (2012) Eq. 5 written out with explicit index loops (no matrix algebra)."""
    n = k.shape[0]
    kt = [[0.0 if i == j else float(k[i, j]) for j in range(n)] for i in range(n)]
    lt = [[0.0 if i == j else float(l[i, j]) for j in range(n)] for i in range(n)]
    trace = sum(kt[i][j] * lt[j][i] for i in range(n) for j in range(n))
    sum_k = sum(map(sum, kt))
    sum_l = sum(map(sum, lt))
    cross = sum(sum(kt[i][a] for a in range(n)) * sum(lt[i][b] for b in range(n)) for i in range(n))
    return (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross) / (n * (n - 3))


def naive_minibatch_cka(x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """The paper's protocol as a loop: per batch, flatten each example, HSICs averaged, then the ratio."""
    kl = kk = ll = 0.0
    n_batches = x.shape[0] // batch
    for b in range(n_batches):
        xb = x[b * batch:(b + 1) * batch].reshape(batch, -1).double()
        yb = y[b * batch:(b + 1) * batch].reshape(batch, -1).double()
        k, l = xb @ xb.T, yb @ yb.T
        kl += naive_unbiased_hsic(k, l)
        kk += naive_unbiased_hsic(k, k)
        ll += naive_unbiased_hsic(l, l)
    return kl / (kk * ll) ** 0.5


def conv_epochs(n: int, seed: int = 0) -> list[torch.Tensor]:
    """One 'layer' (a conv feature map [n, C, H, W]) at three 'epochs' that drift apart."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 3, 4, 4, generator=g, dtype=torch.float64)
    return [base + s * torch.randn(n, 3, 4, 4, generator=g, dtype=torch.float64) for s in (0.0, 0.7, 2.0)]


@pytest.mark.parametrize("batch", [4, 5, 8])
def test_minibatch_cka_matches_a_naive_loop_for_small_batches_and_conv_maps(batch):
    epochs = conv_epochs(3 * batch)
    for a, b in itertools.combinations_with_replacement(range(3), 2):
        ours = float(minibatch_cka(epochs[a], epochs[b], batch_size=batch, unbiased=True))
        assert ours == pytest.approx(naive_minibatch_cka(epochs[a], epochs[b], batch), abs=1e-10)


def test_a_layer_against_itself_across_epochs_is_per_image_not_per_pixel():
    """A conv map must be one vector per image: reshaping H·W into the sample axis is a different number."""
    x, y = conv_epochs(16)[0], conv_epochs(16)[1]
    per_image = float(minibatch_cka(x, y, batch_size=8))
    per_pixel = float(minibatch_cka(x.permute(0, 2, 3, 1).reshape(-1, 3), y.permute(0, 2, 3, 1).reshape(-1, 3),
                                    batch_size=8 * 16))
    assert per_image == pytest.approx(naive_minibatch_cka(x, y, 8), abs=1e-10)
    assert abs(per_image - per_pixel) > 0.01
    assert float(minibatch_cka(x, x, batch_size=8)) == pytest.approx(1.0, abs=1e-12)


def test_unbiased_hsic_is_the_inner_product_of_u_centred_grams():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64)
    k, l = x @ x.T, y @ y.T
    inner = float((u_centre(k) * u_centre(l)).sum()) / (7 * 4)
    assert inner == pytest.approx(naive_unbiased_hsic(k, l), abs=1e-10)
    assert torch.all(torch.diagonal(u_centre(k)) == 0)


@pytest.mark.parametrize("batch", [4, 6, 16])
def test_stored_vectors_give_the_exact_minibatch_map(batch):
    """The E×E map from stored vectors (one matrix product) equals minibatch_cka on the raw features."""
    epochs = conv_epochs(2 * batch, seed=batch)
    stored = torch.stack([epoch_vector(e, 2, batch) for e in epochs])
    assert stored.dtype == torch.float32 and stored.shape == (3, 2 * batch * (batch - 1) // 2)
    fast = cka_map(stored)
    exact = torch.tensor([[float(minibatch_cka(a, b, batch_size=batch)) for b in epochs] for a in epochs])
    assert (fast - exact).abs().max() <= 1e-6  # float32 storage; the protocol bound is 0.005
    assert torch.allclose(torch.diagonal(fast), torch.ones(3, dtype=torch.float64), atol=1e-6)


def test_batch_triangle_flattens_conv_maps_per_example():
    x = conv_epochs(6)[1]
    assert torch.equal(batch_triangle(x), batch_triangle(x.reshape(6, -1)))


def test_bad_probe_sizes_are_named():
    with pytest.raises(ValueError, match="need 12 probe examples"):
        epoch_vector(torch.randn(10, 3), 3, 4)
    with pytest.raises(ValueError, match="at least 4 examples"):
        u_centre(torch.eye(3))
    with pytest.raises(ValueError, match="constant"):
        epoch_vector(torch.ones(8, 3), 2, 4)
