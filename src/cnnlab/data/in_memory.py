"""A split held whole as one tensor on the training device, served in batches augmented there.

The fast CIFAR-10 scripts (KellerJordan/cifar10-airbench) keep the dataset on the GPU as uint8
and shift/flip whole batches at once: no per-sample Python, no worker processes. ``InMemoryLoader``
does the same with the distribution of the ordinary per-sample transforms
(``cnnlab.data.transforms.classification_transforms``): ``RandomCrop(size, padding=shift)``
with zero padding (an offset drawn uniformly from 0..2*shift on each axis) and a horizontal
flip with probability 0.5, then the same normalisation. Lightning takes it as a dataloader: it
is an iterable with ``__len__``, and not a ``DataLoader``, so no sampler is swapped in; under
DDP each rank serves its own shard (``shard``).
"""

from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F


def shard(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of ``indices``, as ``DistributedSampler`` deals them: padded by repeating
    the first ones to a multiple of ``world_size`` (every rank gets as many batches, so the
    gradient all-reduce never waits for a rank that has finished), then every world_size-th."""
    if world_size == 1:
        return indices
    total = -(-len(indices) // world_size) * world_size
    repeats = -(-total // len(indices))
    padded = indices.repeat(repeats)[:total]
    return padded[rank:total:world_size]


def shift_and_flip(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, shift: int
) -> torch.Tensor:
    """Each image (B, C, H, W) zero-padded by ``shift`` on every side, cropped back to H x W at
    (``top``, ``left``) in 0..2*shift, and mirrored where ``flip``; any dtype, one pass."""
    b, c, h, w = images.shape
    padded = F.pad(images, (shift, shift, shift, shift)) if shift else images
    rows = top[:, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = torch.arange(w, device=images.device).expand(b, w)
    cols = left[:, None] + torch.where(flip[:, None], w - 1 - cols, cols)  # (B, W)
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


class InMemoryLoader:
    """Batches ``(x, y)`` of one split: x float (B, C, H, W) normalised, y int64, both on the
    device of ``images``. ``images`` is uint8 (read as value/255) or float in [0, 1].

    The order (when ``shuffle``) and the augmentation are drawn on the CPU from a generator
    seeded with ``seed`` and the epoch (``epoch()`` when given, e.g. the trainer's, else the
    number of passes so far), so a run repeats exactly and every rank agrees on the permutation.
    With ``weights`` (one per image) an epoch is instead len(labels) images drawn with
    replacement in proportion to them (``torch.multinomial``, as torch's
    ``WeightedRandomSampler`` draws; ``data.balance=sampler``).

    ``state_dict()`` / ``load_state_dict()`` say where a pass stands (its epoch and how many
    batches were done), and Lightning stores them in its checkpoints: a run resumed in the
    middle of an epoch goes on with the next batch of the same order and augmentation.
    ``done()`` tells how many batches of the running pass the consumer has finished (the
    trainer's count: Lightning fetches a batch ahead, so more have been yielded); without it,
    the batches yielded.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool = False,
        augment: bool = False,
        shift: int = 0,
        hflip: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch: Callable[[], int] | None = None,
        done: Callable[[], int] | None = None,
        weights: torch.Tensor | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.mean, self.std = list(mean), list(std)
        self.shuffle = shuffle
        self.shift = shift if augment else 0
        self.hflip = hflip and augment
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = epoch
        self.done = done
        self.weights = None if weights is None else weights.to("cpu", torch.float64)
        self.passes = 0
        # torchvision's to_dtype(scale=True) and normalize, as the same float operations (the
        # batches equal the per-sample path's bit for bit) on tensors made once
        shape = (1, len(self.mean), 1, 1)
        self._mean = torch.tensor(self.mean, device=images.device).view(shape)
        self._std = torch.tensor(self.std, device=images.device).view(shape)
        self._pass_epoch = -1  # the epoch of the running (or last) pass
        self._yielded = 0  # batches of that pass handed out
        self._resume: tuple[int, int] | None = None  # (epoch, batches done) to continue from

    @property
    def per_rank(self) -> int:
        return -(-len(self.labels) // self.world_size)

    def __len__(self) -> int:
        return -(-self.per_rank // self.batch_size)

    def _draw(self, epoch: int) -> tuple[torch.Tensor, ...]:
        """Order, crop offsets and flips for one epoch, for the whole split (then sharded)."""
        n = len(self.labels)
        # distinct (seed, epoch) pairs give distinct streams; kept inside the 64-bit seed range
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=g)
        else:
            order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        top = torch.randint(0, 2 * self.shift + 1, (n,), generator=g)
        left = torch.randint(0, 2 * self.shift + 1, (n,), generator=g)
        flip = torch.rand(n, generator=g) < 0.5 if self.hflip else torch.zeros(n, dtype=torch.bool)
        mine = shard(torch.arange(n), self.rank, self.world_size)
        device = self.images.device
        return tuple(t[mine].to(device, non_blocking=True) for t in (order, top, left, flip))

    def state_dict(self) -> dict[str, int]:
        done = self.done() if self.done is not None else self._yielded
        return {"epoch": self._pass_epoch, "batches": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the pass of ``state["epoch"]`` after its first ``state["batches"]`` batches
        (on the next ``iter``, when that is the pass of the same epoch)."""
        self._resume = int(state["epoch"]), int(state["batches"])
        if self.epoch is None:
            self.passes = self._resume[0]

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.to(torch.float32).mul_(1.0 / 255)
        elif x.dtype != torch.float32:
            x = x.to(torch.float32)  # float in [0, 1], any precision
        return x.sub_(self._mean).div_(self._std)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch() if self.epoch is not None else self.passes
        self.passes += 1
        skip = 0
        if self._resume is not None:
            resume_epoch, done = self._resume
            self._resume = None
            skip = done if resume_epoch == epoch else 0
        self._pass_epoch, self._yielded = epoch, skip
        order, top, left, flip = self._draw(epoch)
        augment = self.shift > 0 or self.hflip
        for start in range(skip * self.batch_size, len(order), self.batch_size):
            self._yielded += 1
            idx = order[start : start + self.batch_size]
            x = self.images.index_select(0, idx)  # (B, C, H, W), a copy
            if augment:
                s = slice(start, start + self.batch_size)
                x = shift_and_flip(x, top[s], left[s], flip[s], self.shift)
            yield self._normalise(x), self.labels.index_select(0, idx)
