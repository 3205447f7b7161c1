"""The shared part of every classification datamodule: transforms, splits, loaders, and the
class subsets and few-shot training sets that work the same way for every dataset."""

import logging
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from cnnlab.data.augment import check_policy as augment_check
from cnnlab.data.balance import balanced_class_weights, check_balance, sample_weights
from cnnlab.data.class_counts import class_counts, log_class_counts
from cnnlab.data.in_memory import InMemoryLoader
from cnnlab.data.loaders import SplitLoaders, batches_done
from cnnlab.data.subset import dataset_labels, relabel, resolve_classes
from cnnlab.data.transforms import classification_transforms
from cnnlab.errors import UserError

log = logging.getLogger(__name__)

BATCHED_POLICIES = ("none", "basic")  # what InMemoryLoader can do a whole batch at a time


class ClassificationDataModule(SplitLoaders, pl.LightningDataModule):
    """Base class: a subclass says what its images are and builds the three split datasets.

    Subclasses set ``native_channels``, ``mean``, ``std`` and implement ``all_class_names``
    (every class of the dataset, in label order; it must work before ``setup``) and
    ``_build(train_tf, eval_tf) -> (train, val, test)``. Everything the model needs to know
    (``num_classes``, ``in_channels``) comes from here, so nobody types it twice.

    ``classes`` keeps only the named classes, relabelled 0..K-1 in the order given, in every
    split; ``samples_per_class`` then keeps that many training images per class (drawn with
    ``split_seed``). ``class_names`` and ``num_classes`` describe what the model sees.
    ``_build`` works with the dataset's own labels (``all_class_names``); the subset view is
    put on top of its splits.

    ``in_memory`` (true, false, or None: on where the trainer's device is a GPU, and on the CPU
    too for datasets that ``in_memory_on_cpu``: arrays that are small and already held whole,
    where per-sample Python costs more than the step) decodes every
    split once, unaugmented and unnormalised, into one tensor kept on the training device, and
    serves it through ``InMemoryLoader`` (batched shifts and flips there, same distribution);
    splits larger than ``in_memory_limit_mb`` fall back to the ordinary loaders.

    ``setup`` logs the images per class of each split (``train_counts`` keeps the training
    split's), with a warning when the training split is imbalanced (``class_counts``).
    ``balance`` (``data.balance``, see ``cnnlab.data.balance``): ``sampler`` makes the training
    loader draw every class about equally often; ``loss`` gives the task module balanced class
    weights for its loss (``loss_class_weights``); ``none`` does neither.
    """

    task = "classification"
    native_channels: int = 3
    native_size: int | None = 32  # None: images of many sizes (resized to image_size)
    mean: Sequence[float] = (0.5, 0.5, 0.5)
    std: Sequence[float] = (0.5, 0.5, 0.5)
    hflip_makes_sense: bool = True
    in_memory_on_cpu: bool = False  # in_memory=None holds the data in memory on a CPU run too

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        num_workers: int | None = 0,
        image_size: int | None = None,
        channels: int | None = None,
        augment: bool = True,
        shift: int = 2,
        hflip: bool | None = None,
        split_seed: int = 0,
        pin_memory: bool | None = False,
        classes: Sequence | None = None,
        samples_per_class: int | None = None,
        in_memory: bool | None = None,
        in_memory_limit_mb: float | None = 4096,
        augment_policy: str = "basic",
        random_erasing: float = 0.0,
        color_jitter: float = 0.0,
        balance: str = "none",
    ) -> None:
        super().__init__()
        augment_check(augment_policy)
        self.balance = check_balance(balance)
        if samples_per_class is not None and (
            isinstance(samples_per_class, bool)
            or not isinstance(samples_per_class, int)
            or samples_per_class < 1
        ):
            raise UserError(
                f"data.samples_per_class={samples_per_class!r} must be a whole number of "
                "training images per class, at least 1 (or null to keep them all)."
            )
        self.classes = None if classes is None else list(classes)
        self.samples_per_class = samples_per_class
        self.root = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size or self.native_size
        self.channels = channels
        self.augment = augment
        self.augment_policy = augment_policy if augment else "none"
        self.random_erasing = random_erasing
        self.color_jitter = color_jitter
        self.shift = shift
        self.hflip = self.hflip_makes_sense if hflip is None else hflip
        self.split_seed = split_seed
        self.pin_memory = pin_memory
        self.in_memory = in_memory
        self.in_memory_limit_mb = in_memory_limit_mb
        self.memory: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.train_counts: torch.Tensor | None = None

    # What the model needs to know -------------------------------------------------------
    @property
    def all_class_names(self) -> list[str]:
        """Every class of the dataset, in the order of its labels."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        """The classes the model tells apart: ``data.classes`` in its order, else all."""
        names = list(self.all_class_names)
        if self.classes is None:
            return names
        return [names[i] for i in resolve_classes(self.classes, names)]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return self.channels or self.native_channels

    # Splits ------------------------------------------------------------------------------
    def _build(self, train_tf, eval_tf) -> tuple[Dataset, Dataset, Dataset]:
        raise NotImplementedError

    def _stats(self) -> tuple[list[float], list[float]]:
        """Normalisation statistics for the channels the model sees (converted if asked)."""
        mean, std = list(self.mean), list(self.std)
        if self.in_channels == len(mean):
            return mean, std
        if self.in_channels == 1:
            return [sum(mean) / len(mean)], [sum(std) / len(std)]
        return mean * self.in_channels, std * self.in_channels

    def transforms(self, train: bool):
        mean, std = self._stats()
        return classification_transforms(
            train=train and self.augment,
            image_size=self.image_size,
            native_size=self.native_size,
            mean=mean,
            std=std,
            channels=self.channels if self.channels != self.native_channels else None,
            shift=self.shift,
            hflip=self.hflip,
            policy=self.augment_policy,
            random_erasing=self.random_erasing,
            color_jitter=self.color_jitter,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            splits = self._build(self.transforms(train=True), self.transforms(train=False))
            self.train_set, self.val_set, self.test_set = self._subset(*splits)
            self.train_counts = self._count_classes()
        if self.memory is None and self._wants_memory():
            self.memory = self._hold_in_memory()

    def _subset(self, train: Dataset, val: Dataset, test: Dataset) -> tuple[Dataset, ...]:
        """The splits cut to ``classes`` and ``samples_per_class``; untouched when both are null."""
        if self.classes is None and self.samples_per_class is None:
            return train, val, test
        names = list(self.all_class_names)
        keep = list(range(len(names)))
        if self.classes is not None:
            keep = resolve_classes(self.classes, names)
        generator = self.split_generator()
        train = relabel(train, keep, self.samples_per_class, generator, names)
        new_val = relabel(val, keep)
        test = new_val if test is val else relabel(test, keep)
        log.info(
            "%d of %d classes (%s); %d training images%s, %d validation, %d test",
            len(keep),
            len(names),
            ", ".join(names[i] for i in keep),
            len(train),
            "" if self.samples_per_class is None else f" ({self.samples_per_class} per class)",
            len(new_val),
            len(test),
        )
        return train, new_val, test

    def _count_classes(self) -> torch.Tensor:
        """Log the images per class of every split (read from the labels only) and return the
        training split's counts."""
        splits = {"train": self.train_set, "val": self.val_set, "test": self.test_set}
        if self.test_set is self.val_set:  # e.g. an image folder without test/
            splits = {"train": self.train_set, "val and test": self.val_set}
        counts = {name: class_counts(d, self.num_classes) for name, d in splits.items()}
        log_class_counts(counts, self.class_names)
        return counts["train"]

    # Balancing the classes ---------------------------------------------------------------
    def loss_class_weights(self) -> torch.Tensor | None:
        """With ``balance="loss"``, the training split's balanced class weights (the splits are
        set up first if they are not yet): what the task module weighs its loss with; else
        None."""
        if self.balance != "loss":
            return None
        self.setup("fit")
        return balanced_class_weights(self.train_counts)

    def _draw_weights(self, labels: torch.Tensor | None = None) -> torch.Tensor | None:
        """With ``balance="sampler"``, the training loader's draw weight of each training image:
        1 / images of its class (``labels``: the training split's, read from ``train_set``
        when not given); else None."""
        if self.balance != "sampler":
            return None
        if labels is None:
            labels = torch.as_tensor(dataset_labels(self.train_set))
        return sample_weights(labels.cpu(), self.train_counts)

    def split_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.split_seed)

    # The in-memory path -------------------------------------------------------------------
    def _wants_memory(self) -> bool:
        batched = self.augment_policy in BATCHED_POLICIES and not (
            self.random_erasing or self.color_jitter
        )
        if self.in_memory and not batched:
            raise UserError(
                f"data.in_memory=true shifts and flips whole batches, and cannot apply "
                f"recipe.augment={self.augment_policy}, recipe.random_erasing="
                f"{self.random_erasing} or recipe.color_jitter={self.color_jitter}, which work "
                "image by image. Set data.in_memory=false (or null), or use recipe.augment=basic "
                "with recipe.random_erasing=0 and recipe.color_jitter=0."
            )
        if self.in_memory is not None:
            return bool(self.in_memory)
        if not batched:  # the per-image pipeline is the one that has those augmentations
            return False
        if self.trainer is None:
            return False
        return self.in_memory_on_cpu or self.trainer.strategy.root_device.type != "cpu"

    def _raw_transform(self) -> v2.Compose:
        """The evaluation pipeline without its last step, the normalisation (done per batch)."""
        steps = self.transforms(train=False).transforms
        assert isinstance(steps[-1], v2.Normalize)
        return v2.Compose(steps[:-1])

    def _materialise(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of ``dataset`` (built with ``_raw_transform``) as one tensor (N, C, H, W)
        and its labels (N,): uint8 where value*255 is exact (all 8-bit sources), else float."""
        loader = DataLoader(dataset, batch_size=512, num_workers=self._workers())
        images, labels = map(torch.cat, zip(*loader, strict=True))
        as_bytes = _exact_bytes(images)
        return images if as_bytes is None else as_bytes, labels.long()

    def _hold_in_memory(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
        raw = self._raw_transform()
        built = self._subset(*self._build(raw, raw))
        splits = dict(zip(("train", "val", "test"), built, strict=True))
        first = splits["train"][0][0]
        scale = 4 if _exact_bytes(first) is None else 1  # bytes per value, float32 or uint8
        mb = sum(len(s) for s in splits.values()) * first.numel() * scale / 2**20
        if self.in_memory_limit_mb is not None and mb > self.in_memory_limit_mb:
            log.warning(
                "In-memory data off: the splits would take %.0f MB, over "
                "data.in_memory_limit_mb=%s; using the ordinary loaders.",
                mb,
                self.in_memory_limit_mb,
            )
            return None
        held: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, dataset in splits.items():
            twin = next((k for k, d in splits.items() if d is dataset and k in held), None)
            held[name] = held[twin] if twin else self._materialise(dataset)
        log.info("In-memory data: %d training images, %.0f MB", len(held["train"][1]), mb)
        return held

    def _memory_loader(self, split: str, train: bool) -> InMemoryLoader:
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        images, labels = self.memory[split]
        if images.device != device:  # moved once, on first use
            images, labels = images.to(device), labels.to(device)
            self.memory[split] = images, labels
        mean, std = self._stats()
        return InMemoryLoader(
            images,
            labels,
            batch_size=self.batch_size,
            mean=mean,
            std=std,
            shuffle=train,
            augment=train and self.augment_policy != "none",
            shift=self.shift,
            hflip=self.hflip,
            seed=torch.initial_seed(),  # the run seed after seed_everything
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else None,
            done=batches_done(trainer) if trainer is not None and train else None,
            weights=self._draw_weights(labels) if train else None,
        )

    def train_dataloader(self):
        if self.memory:
            return self._memory_loader("train", True)
        return self._loader(self.train_set, shuffle=True, weights=self._draw_weights())

    def val_dataloader(self):
        return self._memory_loader("val", False) if self.memory else super().val_dataloader()

    def test_dataloader(self):
        return self._memory_loader("test", False) if self.memory else super().test_dataloader()


def _exact_bytes(images: torch.Tensor) -> torch.Tensor | None:
    """``images`` (floats in [0, 1]) as uint8 when reading them back as value/255 gives exactly
    the same floats (images decoded from 8-bit files), else None."""
    as_bytes = (images * 255).round().to(torch.uint8)
    same = torch.equal(v2.functional.to_dtype(as_bytes, torch.float32, scale=True), images)
    return as_bytes if same else None
