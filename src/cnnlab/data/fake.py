"""Random-noise images with random labels (torchvision ``FakeData``) for smoke tests.

Nothing is read or downloaded and every image is generated from its index, so a run is quick
and repeatable. A model cannot learn anything here: use it to check that the wiring runs.
"""

from torchvision.datasets import FakeData

from cnnlab.data.classification import ClassificationDataModule


class FakeDataModule(ClassificationDataModule):
    """Three splits of ``FakeData`` whose images never coincide."""

    native_channels = 3
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    in_memory_on_cpu = True  # small synthetic sets: generated once, not image by image per epoch

    def __init__(
        self,
        num_classes: int = 10,
        image_size: int = 32,
        train_size: int = 256,
        val_size: int = 64,
        test_size: int = 64,
        **kwargs,
    ) -> None:
        self.native_size = image_size  # generated at the size asked for: no resizing needed
        super().__init__(image_size=image_size, **kwargs)
        self._num_classes = num_classes
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}

    @property
    def all_class_names(self) -> list[str]:
        return [f"class_{i}" for i in range(self._num_classes)]

    def _build(self, train_tf, eval_tf):
        # FakeData seeds image i with i + random_offset: offsets one split-length apart give
        # every image of every split its own seed, so no split repeats another's images.
        offsets = {"train": 0, "val": self.sizes["train"]}
        offsets["test"] = offsets["val"] + self.sizes["val"]
        shape = (self.native_channels, self.native_size, self.native_size)
        return tuple(
            FakeData(
                size=self.sizes[split],
                image_size=shape,
                num_classes=self._num_classes,
                transform=train_tf if split == "train" else eval_tf,
                random_offset=offsets[split],
            )
            for split in ("train", "val", "test")
        )
