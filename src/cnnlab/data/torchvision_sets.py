"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 through torchvision, downloaded on first use.

Train and validation both come from the official training set, split once with a fixed seed
(``val_fraction`` of it goes to validation, seen through the evaluation transforms); the test
split is the official test set. Without network access the files can be copied into ``root``
by hand: the error raised when they are missing says exactly which files go where.

A torchvision set with another constructor or file layout (SVHN, in ``cnnlab.data.svhn``)
overrides the four hooks of ``TorchvisionDataModule``: ``_expected_files``, ``_source_text``,
``_dataset`` and ``_download``.
"""

import copy
import os
from urllib.error import URLError

import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets
from torchvision.datasets.vision import StandardTransform

from cnnlab.data.classification import ClassificationDataModule
from cnnlab.errors import UserError

CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain "
    "mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain "
    "plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank "
    "telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf "
    "woman worm"
).split()


def expected_files(dataset_cls: type, root: str) -> tuple[str, list[str]]:
    """The folder under ``root`` where torchvision looks for ``dataset_cls``, and its files."""
    if issubclass(dataset_cls, datasets.MNIST):
        folder = os.path.join(root, dataset_cls.__name__, "raw")
        # torchvision downloads the .gz archives and reads the unpacked files beside them
        names = [os.path.splitext(name)[0] for name, _ in dataset_cls.resources]
    else:  # the CIFAR family: pickled batches plus a metadata file
        folder = os.path.join(root, dataset_cls.base_folder)
        names = [name for name, _ in dataset_cls.train_list + dataset_cls.test_list]
        names.append(dataset_cls.meta["filename"])
    return folder, names


def _source(dataset_cls: type) -> str:
    if issubclass(dataset_cls, datasets.MNIST):
        return f"the .gz files at {dataset_cls.mirrors[0]} (unpack them with gunzip)"
    return f"{dataset_cls.url} (unpack it with tar -xzf inside the data root)"


def _with_transform(dataset: Dataset, transform) -> Dataset:
    """A second view of a loaded dataset with other transforms; the image arrays are shared."""
    twin = copy.copy(dataset)
    twin.transform = transform
    twin.transforms = StandardTransform(transform, None)
    return twin


class TorchvisionDataModule(ClassificationDataModule):
    """Shared logic; a subclass names the torchvision class, its statistics and class names."""

    dataset_cls: type
    names: tuple[str, ...] = ()
    in_memory_on_cpu = True  # torchvision holds these as one array already (47-180 MB as bytes)

    def __init__(self, val_fraction: float = 0.1, download: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 < val_fraction < 1.0:
            raise UserError(
                f"data.val_fraction={val_fraction} must be between 0 and 1 (exclusive): it is the "
                "share of the official training set held out for validation, e.g. 0.1."
            )
        self.val_fraction = val_fraction
        self.download = download

    @property
    def all_class_names(self) -> list[str]:
        return list(self.names)

    # What differs between torchvision sets: a subclass overrides these four ----------------
    def _expected_files(self) -> tuple[str, list[str]]:
        """The folder torchvision reads the files from, and their names."""
        return expected_files(self.dataset_cls, self.root)

    def _source_text(self) -> str:
        """Where the files can be fetched by hand, for the error that lists them."""
        return _source(self.dataset_cls)

    def _dataset(self, train: bool, download: bool = False) -> Dataset:
        """torchvision's dataset of the official training (``train``) or test set."""
        return self.dataset_cls(self.root, train=train, download=download)

    def _download(self) -> None:
        """Fetch every file into ``root``: for these sets the training set's download brings
        the test files too."""
        self._dataset(train=True, download=True)

    # -------------------------------------------------------------------------------------
    def files_present(self) -> bool:
        folder, names = self._expected_files()
        return all(os.path.isfile(os.path.join(folder, name)) for name in names)

    def _missing_error(self, reason: str) -> UserError:
        folder, names = self._expected_files()
        return UserError(
            f"{self.dataset_cls.__name__} is not available: {reason}. Expected the folder "
            f"{folder} holding the files {', '.join(names)}. Get them from "
            f"{self._source_text()} on a machine with network access and copy them there, "
            "or run once online with data.download=true; point data.root elsewhere if the data "
            "lives in another folder."
        )

    def prepare_data(self) -> None:
        """Download into ``root`` once if the files are not there yet (rank 0 only in DDP)."""
        if self.files_present():
            return
        if not self.download:
            raise self._missing_error("its files are absent and data.download=false")
        try:
            self._download()
        except (URLError, OSError, RuntimeError) as err:
            raise self._missing_error(f"the download failed ({err})") from err

    def _load(self, train: bool) -> Dataset:
        try:
            return self._dataset(train=train)
        except RuntimeError as err:  # torchvision's "not found or corrupted"
            raise self._missing_error(f"its files are missing or corrupted ({err})") from err

    def _build(self, train_tf, eval_tf):
        if not self.files_present():
            self.prepare_data()  # setup() called without prepare_data(), e.g. from a notebook
        full, test = self._load(train=True), self._load(train=False)
        n_val = round(len(full) * self.val_fraction)
        if not 0 < n_val < len(full):
            raise UserError(
                f"data.val_fraction={self.val_fraction} of {len(full)} training images leaves "
                "an empty train or validation split; choose a fraction between them."
            )
        order = torch.randperm(len(full), generator=self.split_generator()).tolist()
        train = Subset(_with_transform(full, train_tf), order[n_val:])
        val = Subset(_with_transform(full, eval_tf), order[:n_val])
        return train, val, _with_transform(test, eval_tf)


class MNISTDataModule(TorchvisionDataModule):
    """70,000 handwritten digits, 28x28 grey (60,000 train, 10,000 test)."""

    dataset_cls = datasets.MNIST
    native_channels = 1
    native_size = 28
    mean = (0.1307,)
    std = (0.3081,)
    hflip_makes_sense = False  # a mirrored 3 is not a 3
    names = tuple(str(d) for d in range(10))


class FashionMNISTDataModule(TorchvisionDataModule):
    """Zalando's 70,000 clothing pictures, 28x28 grey, 10 classes; a harder MNIST drop-in."""

    dataset_cls = datasets.FashionMNIST
    native_channels = 1
    native_size = 28
    mean = (0.2860,)
    std = (0.3530,)
    hflip_makes_sense = True  # a mirrored shirt is still a shirt
    names = tuple(datasets.FashionMNIST.classes)


class CIFAR10DataModule(TorchvisionDataModule):
    """60,000 colour photos, 32x32, 10 classes (50,000 train, 10,000 test)."""

    dataset_cls = datasets.CIFAR10
    native_channels = 3
    native_size = 32
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    hflip_makes_sense = True
    names = tuple("airplane automobile bird cat deer dog frog horse ship truck".split())


class CIFAR100DataModule(TorchvisionDataModule):
    """60,000 colour photos, 32x32, 100 fine classes (in the alphabetical order of its meta)."""

    dataset_cls = datasets.CIFAR100
    native_channels = 3
    native_size = 32
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    hflip_makes_sense = True
    names = tuple(CIFAR100_CLASSES)
