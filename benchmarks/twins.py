"""Timing twins of two published low-light enhancers, for speed comparisons only (random weights, no training).

Each twin rebuilds the published network's layers, shapes and operator sequence from its paper and reference code,
so its exported graph costs what the original's would; the weights are random, so its output means nothing.

- :class:`IATTwin`: IAT, Illumination Adaptive Transformer (Cui et al., BMVC 2022; reference code
  ``cuiziteng/Illumination-Adaptive-Transformer``, ``IAT_enhance/model/IAT_main.py``), LOL configuration
  (``IAT(type='lol')``: ``Local_pred_S`` + ``Global_pred``, learnable gamma base), 91,154 parameters.
- :class:`ZeroDCEppTwin`: Zero-DCE++ (Li et al., TPAMI 2021; ``Li-Chongyi/Zero-DCE_extension``,
  ``Zero-DCE++/model.py``, ``enhance_net_nopool(scale_factor=12)``), 10,561 parameters.

Deviations from the reference code, none of which changes the work done:

- IAT's colour step loops over the batch (``torch.stack`` of per-image ``tensordot``); the twin uses one batched
  matmul, the same ops for batch 1. Dropout and drop-path (identity at inference) are left out.
- Zero-DCE++ upsamples the curve map by ``scale_factor`` 12, so the original only runs on inputs whose sides are
  multiples of 12 (1280 is not); the twin resizes to the input's own size (same bilinear kernel, align_corners=True
  as ``nn.UpsamplingBilinear2d``), so it takes any size.

Both twins take (N, 3, H, W) float32 in [0, 1], any H, W >= 12 for Zero-DCE++ (the 1/12 downscale must leave a
pixel) and any H, W >= 1 for IAT, and return the same shape; they export to ONNX (opset 17, dynamic N/H/W).

    python benchmarks/twins.py     # prints parameter counts
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["IATTwin", "ZeroDCEppTwin", "count_params"]


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model`` (trainable or not; buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------------------------- IAT
class _AffChannel(nn.Module):
    """IAT's ``Aff_channel`` 'norm' on (B, N, C) tokens: a learnable C x C channel mix, then a per-channel affine."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))
        self.color = nn.Parameter(torch.eye(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensordot(x, self.color, dims=[[-1], [-1]]) * self.alpha + self.beta


class _CMlp(nn.Module):
    """1x1 conv -> GELU -> 1x1 conv (IAT's ``CMlp``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _CBlockLN(nn.Module):
    """IAT's ``CBlock_ln`` at full resolution.

    Depthwise 3x3 position embedding; token-layout channel norm; 1x1 -> depthwise 5x5 -> 1x1 'attention' scaled by
    ``gamma_1``; second norm; conv-MLP (ratio 4, GELU) scaled by ``gamma_2``. The (B, C, H, W) <-> (B, HW, C)
    round trips of the reference code are kept, as they are part of what the exported graph runs.
    """

    def __init__(self, dim: int, mlp_ratio: float = 4.0, init_values: float = 1e-4) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = _AffChannel(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.norm2 = _AffChannel(dim)
        self.gamma_1 = nn.Parameter(init_values * torch.ones(1, dim, 1, 1))
        self.gamma_2 = nn.Parameter(init_values * torch.ones(1, dim, 1, 1))
        self.mlp = _CMlp(dim, int(dim * mlp_ratio))

    @staticmethod
    def _norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = norm(x.flatten(2).transpose(1, 2))
        return t.view(b, h, w, c).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x + self.gamma_1 * self.conv2(self.attn(self.conv1(self._norm(self.norm1, x))))
        return x + self.gamma_2 * self.mlp(self._norm(self.norm2, x))


class _LocalPred(nn.Module):
    """IAT's ``Local_pred_S``: 3x3 embedding to ``dim``, two stacks of 3 ``CBlock_ln`` with shortcuts, mul/add heads."""

    def __init__(self, in_dim: int = 3, dim: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, dim, 3, padding=1)
        self.relu = nn.LeakyReLU(0.2)
        self.mul_blocks = nn.Sequential(*[_CBlockLN(dim) for _ in range(blocks)])
        self.add_blocks = nn.Sequential(*[_CBlockLN(dim) for _ in range(blocks)])
        self.mul_end = nn.Sequential(nn.Conv2d(dim, 3, 3, padding=1), nn.ReLU())
        self.add_end = nn.Sequential(nn.Conv2d(dim, 3, 3, padding=1), nn.Tanh())

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.relu(self.conv1(img))
        mul = self.mul_end(self.mul_blocks(f) + f)
        add = self.add_end(self.add_blocks(f) + f)
        return mul, add


class _QueryAttention(nn.Module):
    """IAT's ``query_Attention``: ``queries`` learned queries attend over all tokens (multi-head, no qkv bias)."""

    def __init__(self, dim: int, num_heads: int, queries: int = 10) -> None:
        super().__init__()
        self.num_heads, self.queries = num_heads, queries
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Parameter(torch.ones(1, queries, dim))
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        hd = c // self.num_heads
        k = self.k(x).reshape(b, n, self.num_heads, hd).permute(0, 2, 1, 3)
        v = self.v(x).reshape(b, n, self.num_heads, hd).permute(0, 2, 1, 3)
        q = self.q.expand(b, -1, -1).reshape(b, self.queries, self.num_heads, hd).permute(0, 2, 1, 3)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, self.queries, c))


class _QuerySABlock(nn.Module):
    """IAT's ``query_SABlock``: depthwise 3x3 position embedding, LayerNorm, query attention, LayerNorm + MLP (GELU).

    As in the reference code the attention output has no residual (the queries replace the tokens).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _QueryAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = self.attn(self.norm1(x.flatten(2).transpose(1, 2)))
        return x + self.mlp(self.norm2(x))


class _GlobalPred(nn.Module):
    """IAT's ``Global_pred``: two stride-2 3x3 convs (BN, GELU) to 64 channels at 1/4 size, one query block.

    Query 0 gives the gamma (added to a learnable base of 1), queries 1-9 the 3x3 colour matrix (added to identity).
    """

    def __init__(self, in_channels: int = 3, dim: int = 64, num_heads: int = 4) -> None:
        super().__init__()
        self.gamma_base = nn.Parameter(torch.ones(1))
        self.color_base = nn.Parameter(torch.eye(3))
        self.conv_large = nn.Sequential(
            nn.Conv2d(in_channels, dim // 2, 3, stride=2, padding=1),
            nn.BatchNorm2d(dim // 2),
            nn.GELU(),
            nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1),
            nn.BatchNorm2d(dim),
        )
        self.generator = _QuerySABlock(dim, num_heads)
        self.gamma_linear = nn.Linear(dim, 1)
        self.color_linear = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.generator(self.conv_large(x))
        gamma = self.gamma_linear(q[:, 0].unsqueeze(1)).squeeze(-1) + self.gamma_base  # (B, 1)
        color = self.color_linear(q[:, 1:]).squeeze(-1).view(-1, 3, 3) + self.color_base  # (B, 3, 3)
        return gamma, color


class IATTwin(nn.Module):
    """Timing twin of IAT (LOL configuration), random weights.

    ``mul, add = local(x)`` at full resolution; ``gamma, ccm = global(x)``;
    output ``clamp((x * mul + add) @ ccm^T, 1e-8, 1) ** gamma``. (N, 3, H, W) -> (N, 3, H, W), any H, W.
    """

    size_multiple = 1

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.local_net = _LocalPred(3, dim)
        self.global_net = _GlobalPred(3)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # The reference initialisation (trunc-normal Linear, He-style conv); only keeps activations in range.
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mul, add = self.local_net(x)
        y = x.mul(mul).add(add)
        gamma, color = self.global_net(x)
        b, c, h, w = y.shape
        y = y.permute(0, 2, 3, 1).reshape(b, h * w, c)
        y = torch.clamp(y @ color.transpose(1, 2), 1e-8, 1.0) ** gamma.view(b, 1, 1)
        return y.view(b, h, w, c).permute(0, 3, 1, 2)


# -------------------------------------------------------------------------------------------------------- Zero-DCE++
class _CSDN(nn.Module):
    """Depthwise 3x3 conv followed by a pointwise 1x1 conv (Zero-DCE++'s ``CSDN_Tem``)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch)
        self.point_conv = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class ZeroDCEppTwin(nn.Module):
    """Timing twin of Zero-DCE++ (``enhance_net_nopool``), random weights.

    Bilinear downscale by ``scale_factor``; 7 depthwise-separable convs of 32 channels with the skip concatenations
    (3,4) -> 5, (2,5) -> 6, (1,6) -> 7; tanh curve map of 3 channels shared by all iterations; bilinear upscale to
    the input size; ``iterations`` times ``x = x + r * (x^2 - x)`` at full resolution.
    (N, 3, H, W) -> (N, 3, H, W), H, W >= ``scale_factor``.
    """

    size_multiple = 1

    def __init__(self, scale_factor: int = 12, width: int = 32, iterations: int = 8) -> None:
        super().__init__()
        self.scale_factor, self.iterations = scale_factor, iterations
        self.relu = nn.ReLU()
        self.e_conv1 = _CSDN(3, width)
        self.e_conv2 = _CSDN(width, width)
        self.e_conv3 = _CSDN(width, width)
        self.e_conv4 = _CSDN(width, width)
        self.e_conv5 = _CSDN(width * 2, width)
        self.e_conv6 = _CSDN(width * 2, width)
        self.e_conv7 = _CSDN(width * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xd = x if self.scale_factor == 1 else F.interpolate(x, scale_factor=1 / self.scale_factor, mode="bilinear")
        x1 = self.relu(self.e_conv1(xd))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if self.scale_factor != 1:
            r = F.interpolate(r, size=x.shape[-2:], mode="bilinear", align_corners=True)
        for _ in range(self.iterations):
            x = x + r * (torch.pow(x, 2) - x)
        return x


if __name__ == "__main__":
    for cls in (IATTwin, ZeroDCEppTwin):
        print(f"{cls.__name__}: {count_params(cls()):,} parameters")
