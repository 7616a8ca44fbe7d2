"""maennel2020 Fig 3: first-layer filters, the leading eigenvectors v_w of their covariance and the
matching patch eigenvectors v_x (|<v_x, v_w>| > 0.4) with their weighted sum v̄_x, drawn as 5×5 RGB."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.plots import plotter

PAPER = "maennel2020"
THRESHOLD = 0.4  # as in the experiment (filter_alignment.MATCH_THRESHOLD); plots read results only
MAX_SHOWN_X = 3  # matching v_x drawn per row


def as_rgb(vector: np.ndarray, channels: int = 3) -> np.ndarray:
    """A filter or eigenvector in the (C, kh, kw) order as an [kh, kw, C] image, 0 mapped to grey."""
    side = int(round(np.sqrt(vector.size / channels)))
    image = vector.reshape(channels, side, side).transpose(1, 2, 0)
    return 0.5 + image / (2 * np.abs(image).max() + 1e-12)


def _show(ax, vector, title=None):
    ax.imshow(as_rgb(vector), interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=6)


@plotter(PAPER, "fig3")
def fig3(record, arrays):
    filters, overlaps = arrays["filters_sample"], arrays["overlaps"]
    v_w, v_x = arrays["weight_eigvecs"], arrays["data_eigvecs"]
    n_rows = v_w.shape[1]
    cols = 4 + MAX_SHOWN_X + 1  # filters (4) | v_w | matching v_x ... | v̄_x
    fig, axes = plt.subplots(n_rows, cols, figsize=(cols * 0.9, n_rows * 0.95))
    for ax in axes.ravel():
        ax.axis("off")
    for k, f in enumerate(filters[:4 * n_rows]):
        ax = axes[k // 4, k % 4]
        ax.axis("on")
        _show(ax, f)
    for i in range(n_rows):
        ax = axes[i, 4]
        ax.axis("on")
        _show(ax, v_w[:, i], f"v_w #{i + 1}")
        row = overlaps[i]
        matched = [j for j in np.argsort(-np.abs(row)) if abs(row[j]) > THRESHOLD]
        combined = sum(row[j] * v_x[:, j] for j in matched) if matched else None
        for c, j in enumerate(matched[:MAX_SHOWN_X]):
            ax = axes[i, 5 + c]
            ax.axis("on")
            _show(ax, np.sign(row[j]) * v_x[:, j], f"v_x #{j + 1}: {abs(row[j]):.2f}")
        if len(matched) > 1:
            ax = axes[i, cols - 1]
            ax.axis("on")
            cosine = np.sqrt(sum(row[j] ** 2 for j in matched))
            _show(ax, combined, f"v̄_x: {cosine:.2f}")
        elif not matched:
            axes[i, 5].text(0.0, 0.5, f"no v_x > {THRESHOLD} (max {np.abs(row).max():.2f})", fontsize=6,
                            va="center")
    m = record["metrics"]
    fig.text(0.5, 0.005, f"left: random filters; right: leading v_w of Σ_w, the v_x of Σ_x with |<v_x, v_w>| > "
             f"{THRESHOLD}, and v̄_x\n{int(m['n_filters'])} filters; min over the top 10 of max |<v_x, v_w>|: "
             f"trained {m['weight_eigvec_match.min_top10']:.2f}, at init {m['weight_eigvec_match_init.min_top10']:.2f}",
             ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig
