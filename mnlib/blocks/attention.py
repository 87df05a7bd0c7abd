"""Mobile MQA: the multi-query attention block of the MobileNetV4 hybrids (Qin et al., 2024).

Multi-head attention gives every head its own queries, keys and values. Multi-*query*
attention (Shazeer, 2019) keeps one query projection per head but a **single key head and a
single value head shared by all query heads**. That cuts the memory traffic of K and V by the
number of heads, which is what limits attention on mobile accelerators. Mobile MQA adds an
optional "spatial reduction" SR: a stride-2 3×3 depthwise conv + BN shrinks the map before the
key and value projections, so each query attends to 4× fewer positions:

    Mobile_MQA(X) = Concat(head_1, ..., head_h) · W_O
    head_j        = softmax( (X W_Qj) (SR(X) W_K)ᵀ / √d ) · (SR(X) W_V)

The block wraps it as ``x + γ ⊙ Mobile_MQA(BN(x))``: BatchNorm as the pre-norm, a per-channel
:class:`~mnlib.blocks.layer_scale.LayerScale` γ and a residual connection. It matches timm's
``MobileAttention(use_multi_query=True)`` (with ``MultiQueryAttention2d`` inside).
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct
from mnlib.blocks.layer_scale import LayerScale


class MobileMQA(nn.Module):
    """Pre-norm multi-query attention over the pixels of a feature map, with a residual.

    Args:
        channels: input and output width ``C``.
        num_heads: number of query heads ``h``.
        head_dim: key = value dimension ``d`` (one key head and one value head for all ``h``).
        kv_stride: stride of the depthwise conv that downsamples the keys/values (1: none).
        kv_kernel: kernel of that depthwise conv.
        layer_scale_init: initial γ of the :class:`LayerScale` (``None``: no layer scale).

    Shapes: ``[N, C, H, W] → [N, C, H, W]``. With ``kv_stride = s`` each of the ``N_q = H·W``
    queries attends to ``M = ceil(H/s)·ceil(W/s)`` key/value positions; any map size works.
    Channel ``j·d + i`` of the query projection (and of the attention output) is coordinate
    ``i`` of head ``j``.
    """

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int,
        head_dim: int,
        kv_stride: int = 1,
        kv_kernel: int = 3,
        layer_scale_init: float | None = None,
    ) -> None:
        super().__init__()
        if kv_stride < 1:
            raise ValueError(f"kv_stride must be at least 1, got {kv_stride}")
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5  # the 1/√d of scaled dot-product attention

        self.norm = nn.BatchNorm2d(channels)  # pre-norm, no activation
        self.query = nn.Conv2d(channels, num_heads * head_dim, 1, bias=False)  # h query heads
        # Keys and values each get their own (separately weighted) downsampling conv.
        self.key_down = self._downsample(channels, kv_kernel, kv_stride)
        self.key = nn.Conv2d(channels, head_dim, 1, bias=False)  # ONE key head
        self.value_down = self._downsample(channels, kv_kernel, kv_stride)
        self.value = nn.Conv2d(channels, head_dim, 1, bias=False)  # ONE value head
        self.output = nn.Conv2d(num_heads * head_dim, channels, 1, bias=False)  # W_O
        self.layer_scale = (
            LayerScale(channels, layer_scale_init)
            if layer_scale_init is not None
            else nn.Identity()
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform init of every conv in the block (timm found it more stable here)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)

    @staticmethod
    def _downsample(channels: int, kernel_size: int, stride: int) -> nn.Module:
        """SR(X): a strided depthwise conv + BN (no activation), or nothing when stride is 1."""
        if stride == 1:
            return nn.Identity()
        return ConvBNAct(channels, channels, kernel_size, stride, groups=channels, activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only reshapes with known sizes (heads, head_dim) or -1: torch.fx can trace them.
        heads, dim = self.num_heads, self.head_dim
        normed = self.norm(x)

        # Queries [N, h·d, H, W] → [N, h, d, H·W] → [N, h, H·W, d] → [N, h·H·W, d]:
        # all heads stacked as rows, because they all meet the same keys.
        q = self.query(normed).flatten(2).unflatten(1, (heads, dim)).transpose(2, 3)
        q = q.flatten(1, 2)
        k = self.key(self.key_down(normed)).flatten(2)  # [N, d, M]
        v = self.value(self.value_down(normed)).flatten(2).transpose(1, 2)  # [N, M, d]

        weights = torch.softmax((q * self.scale) @ k, dim=-1)  # [N, h·H·W, M], rows sum to 1
        out = weights @ v  # [N, h·H·W, d]

        # Back to a feature map with channel j·d + i = coordinate i of head j: [N, h·d, H, W].
        out = out.unflatten(1, (heads, -1)).transpose(2, 3).flatten(1, 2)  # [N, h·d, H·W]
        out = out.unflatten(2, x.shape[-2:])
        return x + self.layer_scale(self.output(out))
