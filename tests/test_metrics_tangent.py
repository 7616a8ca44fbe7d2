"""lou2022 layer tangent alignment and canatar2022 traced NTK: fast route vs brute force."""

import numpy as np
import pytest
import torch
from torch import nn

from repalign.metrics import layer_tangent_alignment, traced_ntk

D = torch.float64


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 7), nn.ReLU(inplace=True), nn.Linear(7, 6, bias=False), nn.Tanh(), nn.Linear(6, 3)
    ).to(D)


def _cnn():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, stride=2, bias=False),
        nn.ReLU(),
        nn.Conv2d(4, 4, 2, dilation=2, padding=1),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3),
    ).to(D)


def _data(shape, n, o=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, dtype=D, generator=g)
    y = torch.eye(o, dtype=D)[torch.randint(0, o, (n,), generator=g)]
    return x, y


def _loop_jacobians(model, x):
    """{layer: J [n·o, P_l]} from one autograd.grad call per (example, output) pair."""
    layers = [(k, m) for k, m in model.named_modules() if list(m.parameters(recurse=False))]
    rows = {k: [] for k, _ in layers}
    for i in range(x.shape[0]):
        out = model(x[i : i + 1])[0]
        for c in range(out.shape[0]):
            for name, module in layers:
                params = list(module.parameters(recurse=False))
                grads = torch.autograd.grad(out[c], params, retain_graph=True)
                rows[name].append(torch.cat([g.reshape(-1) for g in grads]))
    return {k: torch.stack(v) for k, v in rows.items()}


def _naive_alignment(j, y):
    k = (j @ j.T).numpy()
    size = k.shape[0]
    c = np.eye(size) - np.ones((size, size)) / size
    yt = c @ y.reshape(-1).numpy()
    return yt @ k @ yt / (np.linalg.norm(c @ k @ c) * (yt @ yt))


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_fast_equals_jacobian_and_naive_loop(which):
    model = _mlp() if which == "mlp" else _cnn()
    x, y = _data((5,) if which == "mlp" else (2, 7, 7), n=6)
    fast = layer_tangent_alignment(model, x, y)
    jac = layer_tangent_alignment(model, x, y, method="jacobian")
    naive = {k: _naive_alignment(j, y) for k, j in _loop_jacobians(model, x).items()}
    assert list(fast) == list(jac) == list(naive)
    for name in fast:
        assert float(fast[name]) == pytest.approx(float(jac[name]), rel=1e-5)
        assert float(jac[name]) == pytest.approx(naive[name], rel=1e-10)
        assert 0 < float(fast[name]) <= 1


def test_fast_equals_jacobian_on_larger_mlp():
    torch.manual_seed(3)
    sizes = [12, 32, 32, 32]
    hidden = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
    model = nn.Sequential(*hidden, nn.Linear(32, 10)).to(D)
    x, y = _data((12,), n=20, o=10, seed=4)
    fast = layer_tangent_alignment(model, x, y)
    jac = layer_tangent_alignment(model, x, y, method="jacobian")
    for name in fast:
        assert float(fast[name]) == pytest.approx(float(jac[name]), rel=1e-10)


def test_traced_ntk_matches_bruteforce():
    model = _cnn()
    x, _ = _data((2, 7, 7), n=5)
    j = torch.cat(list(_loop_jacobians(model, x).values()), 1)  # [n·o, P]
    j = j.reshape(5, 3, -1)
    expected = torch.einsum("icp,jcp->ij", j, j) / 3
    got = traced_ntk(model, x)
    np.testing.assert_allclose(got.detach().numpy(), expected.numpy(), rtol=1e-10)


def test_fast_route_rejects_unsupported_layers_and_methods():
    model = nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.Linear(5, 2)).to(D)
    x, y = _data((4,), n=4, o=2)
    with pytest.raises(ValueError, match="LayerNorm"):
        layer_tangent_alignment(model, x, y)
    assert set(layer_tangent_alignment(model, x, y, method="jacobian")) == {"0", "1", "2"}
    with pytest.raises(ValueError, match="method"):
        layer_tangent_alignment(model, x, y, method="exact")
    with pytest.raises(ValueError, match="not called"):
        layer_tangent_alignment(_WithSpareLayer().to(D), x, y)


class _WithSpareLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.used, self.spare = nn.Linear(4, 2), nn.Linear(4, 2)  # spare is never called

    def forward(self, x):
        return self.used(x)


@pytest.mark.parametrize("block_rows", [1, 7, 10_000])
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_blockwise_fast_route_equals_the_formed_and_centred_kernel(which, block_rows):
    """``method="fast"`` sums ‖K‖² over upper-triangle blocks and never centres K: it must equal
    ``method="kernel"`` (K_l formed from the same factors, then centred), whatever the block size."""
    from repalign.metrics import tangent

    model = _mlp() if which == "mlp" else _cnn()
    x, y = _data((5,) if which == "mlp" else (2, 7, 7), n=9)
    kernel = layer_tangent_alignment(model, x, y, method="kernel")
    blocks = {k: tangent._factor_alignment(f, y, block_rows) for k, f in tangent._layer_factors(model, x).items()}
    assert list(blocks) == list(kernel)
    for name in kernel:
        assert float(blocks[name]) == pytest.approx(float(kernel[name]), rel=1e-12)


def test_fast_route_in_float32_on_a_kernel_with_a_large_mean():
    """ReLU features with a large common offset make ‖K‖² ≫ ‖CKC‖²; the float64 accumulation of
    the fast route keeps it as close to the float64 reference as the float32 kernel path."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    x = torch.randn(60, 12) + 3.0
    y = torch.eye(10)[torch.randint(0, 10, (60,))]
    reference = layer_tangent_alignment(model.to(D), x.to(D), y.to(D), method="kernel")
    model = model.float()
    fast = layer_tangent_alignment(model, x, y)
    kernel = layer_tangent_alignment(model, x, y, method="kernel")
    for name in reference:
        ref = float(reference[name])
        assert fast[name].dtype == torch.float32
        assert abs(float(fast[name]) - ref) <= max(2 * abs(float(kernel[name]) - ref), 1e-5 * abs(ref))
