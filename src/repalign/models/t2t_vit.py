"""Tokens-to-Token Vision Transformer (Yuan et al. 2021, "Tokens-to-Token ViT"), for imani2022 §7.3.

``timm`` has no T2T-ViT, so it is written here after the paper (§3): a T2T module of
two "soft split + re-structurization" steps, each an overlapping unfold followed by a
small transformer layer on the tokens, then a third soft split and a linear projection
to the embedding; a ViT backbone (class token, fixed sinusoidal position embedding,
pre-norm blocks) and a linear head on the class token. The T2T layers are transformer
layers (the paper's T2T-ViTₜ variant; its default T2T-ViT-14 uses Performer layers
there). Defaults are T2T-ViTₜ-14: embedding 384, depth 14, 6 heads, MLP ratio 3, token
dimension 64, soft splits of (7, 4, 2), (3, 2, 1), (3, 2, 1) (kernel, stride, padding),
so a 224-pixel image gives 14×14 tokens.

``hidden(x)`` returns the class token after every block and after the final norm, the
representations imani2022 Fig 14 reads from the last layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SOFT_SPLITS = ((7, 4, 2), (3, 2, 1), (3, 2, 1))


class Attention(nn.Module):
    """Multi-head self-attention from width ``dim`` to ``out_dim`` (T2T layers change the width)."""

    def __init__(self, dim: int, heads: int, out_dim: int | None = None):
        super().__init__()
        self.heads, self.out_dim = heads, out_dim or dim
        self.qkv = nn.Linear(dim, 3 * self.out_dim, bias=False)
        self.proj = nn.Linear(self.out_dim, self.out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(attention output, values)``; T2T layers use the values as their residual."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        merge = lambda t: t.transpose(1, 2).reshape(b, n, self.out_dim)  # noqa: E731
        return self.proj(merge(out)), merge(v)


def mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm transformer block; with ``out_dim`` set, the attention residual is its values (T2T layer)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, out_dim: int | None = None):
        super().__init__()
        width = out_dim or dim
        self.t2t = out_dim is not None
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, out_dim)
        self.norm2, self.mlp = nn.LayerNorm(width), mlp(width, int(width * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, values = self.attn(self.norm1(x))
        x = (values if self.t2t else x) + attended
        return x + self.mlp(self.norm2(x))


def sinusoid_table(n: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal position embedding ``[1, n, dim]`` (Vaswani et al. 2017)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    freq = torch.pow(10000.0, -2.0 * (torch.arange(dim) // 2) / dim)[None]
    angle = pos * freq
    table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()[None]


class T2TViT(nn.Module):
    def __init__(self, num_classes: int, image_size: int = 224, embed_dim: int = 384, depth: int = 14,
                 heads: int = 6, mlp_ratio: float = 3.0, token_dim: int = 64, in_chans: int = 3):
        super().__init__()
        (k0, s0, p0), (k1, s1, p1), (k2, s2, p2) = SOFT_SPLITS
        self.splits = nn.ModuleList(nn.Unfold(k, stride=s, padding=p) for k, s, p in SOFT_SPLITS)
        self.t2t = nn.ModuleList([Block(in_chans * k0 * k0, 1, 1.0, out_dim=token_dim),
                                  Block(token_dim * k1 * k1, 1, 1.0, out_dim=token_dim)])
        self.project = nn.Linear(token_dim * k2 * k2, embed_dim)
        side = image_size
        for k, s, p in SOFT_SPLITS:
            side = (side + 2 * p - k) // s + 1
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for the soft splits {SOFT_SPLITS}")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer("pos_embed", sinusoid_table(side * side + 1, embed_dim), persistent=False)
        self.blocks = nn.ModuleList(Block(embed_dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The T2T module: image ``[B, C, H, W]`` -> tokens ``[B, N, embed_dim]``."""
        x = self.splits[0](x).transpose(1, 2)
        for layer, split in zip(self.t2t, self.splits[1:]):
            x = layer(x)
            b, n, c = x.shape
            side = math.isqrt(n)
            x = split(x.transpose(1, 2).reshape(b, c, side, side)).transpose(1, 2)
        return self.project(x)

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Class token after each block, then after the final norm: ``depth + 1`` tensors ``[B, embed_dim]``."""
        x = self.tokens(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x[:, 0])
        out.append(self.norm(x)[:, 0])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x)[-1])
