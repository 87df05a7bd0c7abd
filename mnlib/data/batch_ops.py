"""Whole-batch operations on uint8 image tensors: normalization and augmentation.

These are the batched counterparts of torchvision's per-image transforms:

* :func:`normalize` = ``ToTensor()`` then ``Normalize(MEAN, STD)``, with the same arithmetic, so
  both paths give identical numbers.
* :class:`ShiftFlip` = ``RandomCrop(size, padding=max_shift)`` (+ ``RandomHorizontalFlip()``),
  for a whole batch at once with no Python loop over images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mnlib.data.sources import MEAN, STD, check_name


def normalize(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 images ``[N, C, H, W]`` → float32 ``(images / 255 - MEAN[name]) / STD[name]``."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images (0..255); got {images.dtype}")
    mean, std = _channel_stats(check_name(name), images.device)
    return images.float().div(255).sub_(mean).div_(std)


@functools.lru_cache
def _channel_stats(name: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """MEAN and STD as ``[C, 1, 1]`` tensors on ``device``, made once per device, not per batch."""
    mean = torch.tensor(MEAN[name], device=device).view(-1, 1, 1)
    std = torch.tensor(STD[name], device=device).view(-1, 1, 1)
    return mean, std


@dataclass(frozen=True)
class ShiftFlip:
    """Random translation by up to ``max_shift`` pixels, optionally a random horizontal flip.

    Each image is zero-padded by ``max_shift`` on every side and an ``H × W`` window is cut out
    at a random offset, exactly what ``RandomCrop(H, padding=max_shift)`` does for one image;
    with ``flip`` the window is mirrored left-right with probability 1/2. The standard CIFAR-10
    augmentation (He et al., "Deep Residual Learning for Image Recognition", 2016) is
    ``ShiftFlip(max_shift=4, flip=True)``.

    The random numbers are drawn apart from the images (:meth:`sample`), so a loader can draw
    a whole epoch's worth from its own seeded generator.
    """

    max_shift: int
    flip: bool

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random ``offsets`` int64 ``[n, 2]`` (row, column: 0..2·max_shift), ``flips`` ``[n]``."""
        offsets = torch.randint(0, 2 * self.max_shift + 1, (n, 2), generator=generator)
        if self.flip:
            flips = torch.rand(n, generator=generator) < 0.5
        else:
            flips = torch.zeros(n, dtype=torch.bool)
        return offsets, flips

    def __call__(
        self, images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor
    ) -> torch.Tensor:
        """Shift (and flip) ``images`` ``[N, C, H, W]`` → ``[N, C, H, W]`` (same dtype, device)."""
        n, _, height, width = images.shape
        padded = F.pad(images, (self.max_shift,) * 4)  # zeros, like RandomCrop's padding
        # Every H×W window of every padded image, as a view (no copy):
        # [N, C, 2·max_shift + 1, 2·max_shift + 1, H, W].
        windows = padded.unfold(2, height, 1).unfold(3, width, 1)
        # One index per image picks its window: a single gather kernel, whatever the offsets.
        # No Python loop over the (2·max_shift + 1)² possible offsets, and no device-to-host
        # sync (a boolean mask per offset would need one each), so the GPU never waits.
        image_index = torch.arange(n, device=images.device)
        shifted = windows[image_index, :, offsets[:, 0], offsets[:, 1]]  # [N, C, H, W]
        if not self.flip:
            return shifted
        return torch.where(flips.view(n, 1, 1, 1), shifted.flip(3), shifted)


# The augmentation each data set gets with augment=True. Digits are not mirror-symmetric,
# so MNIST is only shifted, and by less than CIFAR's objects.
AUGMENTATIONS: dict[str, ShiftFlip] = {
    "mnist": ShiftFlip(max_shift=2, flip=False),
    "cifar10": ShiftFlip(max_shift=4, flip=True),
}
