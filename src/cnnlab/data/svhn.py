"""SVHN, the Street View House Numbers (Netzer et al., 2011), through torchvision.

73,257 training and 26,032 test crops, 32x32 colour, one digit centred in each (neighbouring
digits often show at the sides), 10 classes. The official files are two MATLAB files,
``train_32x32.mat`` and ``test_32x32.mat``, which torchvision reads with scipy (a dependency of
scikit-learn, so always installed) and keeps directly in ``root``, with no folder of their own.
In the files the digit 0 has the label 10; torchvision turns it into 0, so label d is digit d.
The 531,131 "extra" images are not used.

Everything else is ``TorchvisionDataModule``'s: the download on first use, the seeded
train/validation split of the official training set, and the error that lists the files to
copy by hand when offline. Only the hooks that differ from MNIST and CIFAR are replaced here:
torchvision's SVHN takes ``split="train"|"test"`` instead of ``train=True|False``, and each
split is its own download.
"""

from torch.utils.data import Dataset
from torchvision import datasets

from cnnlab.data.torchvision_sets import TorchvisionDataModule

SPLITS = ("train", "test")  # the official splits, in the order (training set, test set)


class SVHNDataModule(TorchvisionDataModule):
    """99,289 house-number digits, 32x32 colour (73,257 train, 26,032 test), classes "0".."9".

    In-memory loading needs nothing special: the in-memory path decodes each split through the
    dataset's own ``__getitem__`` (a PIL image built from torchvision's (N, 3, 32, 32) array),
    never from ``.data`` directly, so the channel layout differing from CIFAR's (N, 32, 32, 3)
    does not matter. The two splits take about 290 MB as bytes, well under the default limit.
    """

    dataset_cls = datasets.SVHN
    native_channels = 3
    native_size = 32
    # Per-channel (R, G, B) mean and standard deviation of the training split's pixels, scaled
    # to [0, 1]: the values commonly quoted for SVHN (public PyTorch SVHN training code), not
    # recomputed here, which needs the 182 MB training file. Rounded to 4 places, as for CIFAR.
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)
    hflip_makes_sense = False  # a mirrored 2 or 7 is no digit (random shifts stay on)
    names = tuple(str(d) for d in range(10))

    def _expected_files(self) -> tuple[str, list[str]]:
        # torchvision looks for the .mat files in root itself, not in a folder under it
        return self.root, [self.dataset_cls.split_list[split][1] for split in SPLITS]

    def _source_text(self) -> str:
        folder = self.dataset_cls.split_list["train"][0].rpartition("/")[0]
        return f"{folder}/ (the .mat files as they are: nothing to unpack)"

    def _dataset(self, train: bool, download: bool = False) -> Dataset:
        split = SPLITS[0] if train else SPLITS[1]
        return self.dataset_cls(self.root, split=split, download=download)

    def _download(self) -> None:
        for train in (True, False):  # a file each; one already there is only checked
            self._dataset(train=train, download=True)
