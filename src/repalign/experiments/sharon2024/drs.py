"""Decision-region similarity of per-layer linear probes across epochs (sharon2024 §4.2, Eq. 5, App. F.3).

At every DRS epoch (weights kept by the run only there): a linear probe per layer is trained on
the training-set representations (Adam lr 1e-4, App. F.3; the labels the network was trained
on), its test error recorded (Fig 6), and its predicted class stored at every grid point of the
fixed triplet planes (``repalign.metrics.triplet_planes``; one plane is one batched forward
pass through the network, all layers at once). DRS(a, b) = the share of grid points where the
probes of epochs a and b agree — :func:`repalign.metrics.drs`, computed from the stored
predictions so each epoch's network runs over the planes once, not once per epoch pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from repalign.experiments.sharon2024.analysis import dd_bump, named_epochs, nearest
from repalign.experiments.sharon2024.architectures import make_network, model_layer
from repalign.experiments.sharon2024.runs import DATA_SEED
from repalign.metrics import triplet_planes
from repalign.models import measure
from repalign.results import Result
from repalign.train.images import prepare
from repalign.train.precision import precision_policy


@dataclass(frozen=True)
class DrsSettings:
    planes: int            # 500 in the paper
    resolution: int        # grid points per side of a plane
    probe_epochs: int      # 10 in the paper
    probe_n_train: int | None  # training representations per probe (None: all)
    probe_lr: float = 1e-4
    probe_batch: int = 128
    chunk: int = 512       # images per forward pass when extracting representations


def _features(net, x_uint8: torch.Tensor, layers, normalization, chunk: int) -> dict[str, torch.Tensor]:
    policy = precision_policy(next(net.parameters()).device, "fp32")
    parts: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for i in range(0, x_uint8.shape[0], chunk):
            out = measure(net, prepare(x_uint8[i:i + chunk], normalization, policy),
                          [model_layer(layer) for layer in layers])
            for layer in layers:
                parts[layer].append(out[model_layer(layer)].flatten(1).float())
    return {layer: torch.cat(p) for layer, p in parts.items()}


def train_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, s: DrsSettings, seed: int) -> torch.nn.Linear:
    """A linear probe (with bias) trained with Adam on representations ``x`` [n, d]."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = torch.nn.Linear(x.shape[1], n_classes).to(x.device)
    opt = torch.optim.Adam(probe.parameters(), lr=s.probe_lr)
    for _ in range(s.probe_epochs):
        for idx in torch.randperm(x.shape[0], generator=g).split(s.probe_batch):
            idx = idx.to(x.device)
            loss = F.cross_entropy(probe(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return probe


def plane_predictions(net, probes: dict, planes: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """Predicted class of every layer's probe at every grid point: {layer: int64 [P, G]}; one plane per batch."""
    preds: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for plane in planes:
            out = measure(net, plane, [model_layer(layer) for layer in layers])
            for layer in layers:
                preds[layer].append(probes[layer](out[model_layer(layer)].flatten(1)).argmax(-1).cpu())
    return {layer: torch.stack(p) for layer, p in preds.items()}


def drs_matrix(preds: torch.Tensor) -> np.ndarray:
    """E×E agreement shares from predictions [E, P, G] (Eq. 5 averaged over planes of equal size)."""
    flat = preds.reshape(preds.shape[0], -1)
    return (flat[:, None, :] == flat[None, :, :]).double().mean(-1).numpy()


def run_drs(payload: dict, s: DrsSettings, device: torch.device, seed: int) -> dict:
    """Probe test errors [E, layers] and DRS matrices per layer over the run's DRS epochs."""
    data, spec = payload["drs_data"], payload["spec"]
    if data is None or not payload["drs_states"]:
        raise ValueError(f"run {payload['prefix']} kept no DRS weights (RunSpec.drs is False)")
    layers, run_settings = payload["layers"], payload["settings"]
    norm = data["normalization"]
    train_x, train_y = data["train_x"].to(device), data["train_y"].to(device)
    g = torch.Generator().manual_seed(DATA_SEED)
    if s.probe_n_train is not None and s.probe_n_train < train_x.shape[0]:
        keep = torch.randperm(train_x.shape[0], generator=g)[:s.probe_n_train].to(device)
        probe_x, probe_y = train_x[keep], train_y[keep]
    else:
        probe_x, probe_y = train_x, train_y
    test_x, test_y = data["test_x"].to(device), data["test_y"].to(device)
    picks = torch.randperm(train_x.shape[0], generator=g)[:3 * s.planes].reshape(s.planes, 3).to(device)
    inputs = prepare(train_x[picks.reshape(-1)], norm, precision_policy(device, "fp32"))
    planes = triplet_planes(inputs.reshape(s.planes, 3, *inputs.shape[1:]), resolution=s.resolution)
    net = make_network(spec.arch, data["n_classes"], seed=seed, width=payload["width"],
                       resnet50_blocks=run_settings.resnet50_blocks,
                       resnet50_width=run_settings.resnet50_width, vit_shape=run_settings.vit_shape).to(device)
    epochs = sorted(payload["drs_states"])
    errors, preds = [], {layer: [] for layer in layers}
    for i, epoch in enumerate(epochs):
        net.load_state_dict(payload["drs_states"][epoch])
        net.eval()
        feats = _features(net, probe_x, layers, norm, s.chunk)
        test_feats = _features(net, test_x, layers, norm, s.chunk)
        probes, row = {}, []
        for j, layer in enumerate(layers):
            probes[layer] = train_probe(feats[layer], probe_y, data["n_classes"], s, seed=DATA_SEED + 97 * i + j)
            with torch.no_grad():
                wrong = (probes[layer](test_feats[layer]).argmax(-1) != test_y).double().mean()
            row.append(100.0 * float(wrong))
        errors.append(row)
        for layer, p in plane_predictions(net, probes, planes, layers).items():
            preds[layer].append(p)
        del feats, test_feats
    return {"epochs": np.array(epochs), "probe_error": np.array(errors), "layers": layers,
            "drs": {layer: drs_matrix(torch.stack(p)) for layer, p in preds.items()},
            "n_points": int(planes.shape[0] * planes.shape[1])}


def drs_metrics(payload: dict, out: dict, result: Result) -> None:
    """``<prefix>.drs.<layer>.<a>_vs_<b>``, ``mean_local_drs``, ``drs.min/max``, ``probe_dd_bump`` and arrays."""
    p, grid, m = payload["prefix"], payload["error_grid"], result.metrics
    named = named_epochs(payload["train_error"], payload["test_error"])
    epochs = out["epochs"]
    at = {name: nearest(epochs, int(grid[i])) for name, i in named.items() if i is not None}
    values = []
    for j, layer in enumerate(out["layers"]):
        d = out["drs"][layer]
        values.append(d)
        key = f"{p}.drs.{layer}"
        m[f"{key}.final_vs_init"] = float(d[at["final"], 0])
        m[f"{key}.early_stop_vs_init"] = float(d[at["early_stop"], 0])
        if "perfect_fit" in at:
            m[f"{key}.perfect_fit_vs_init"] = float(d[at["perfect_fit"], 0])
            m[f"{key}.perfect_fit_vs_early_stop"] = float(d[at["perfect_fit"], at["early_stop"]])
        else:
            reason = f"{p} never fit its training set perfectly in {payload['epochs']} epochs"
            result.not_run[f"{key}.perfect_fit_vs_init"] = result.not_run[f"{key}.perfect_fit_vs_early_stop"] = reason
        if len(d) < 3:
            result.not_run[f"{p}.mean_local_drs.{layer}"] = f"{p}: needs at least 3 DRS epochs, has {len(d)}"
        else:
            m[f"{p}.mean_local_drs.{layer}"] = float(np.mean([d[i, i + 1] for i in range(1, len(d) - 1)]))
        err = out["probe_error"][:, j]
        stop = (at.get("perfect_fit", len(err) - 1)) + 1
        early = 1 + int(np.argmin(err[1:stop])) if stop > 1 else 0
        m[f"{p}.probe_dd_bump.{layer}"] = dd_bump(err, early)[0]
        result.arrays[f"{key}"] = d.astype(np.float32)
    stacked = np.stack(values)
    m[f"{p}.drs.min"], m[f"{p}.drs.max"] = float(stacked.min()), float(stacked.max())
    result.arrays.update({f"{p}.drs_epochs": epochs, f"{p}.probe_error": out["probe_error"],
                          f"{p}.drs_layers": np.array(out["layers"])})
    result.notes.append(f"{p}: DRS over {len(epochs)} epochs {epochs.tolist()}, {out['n_points']} grid points; "
                        f"named epochs mapped to the nearest DRS epoch")
