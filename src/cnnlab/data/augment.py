"""Training augmentation policies for classification (``recipe.augment``), from
torchvision.transforms.v2.

- ``none``: no augmentation;
- ``basic``: a random shift of up to ``shift`` pixels (zero padding, crop back) and, where a
  mirror image is still the same class, a horizontal flip: what cnnlab trains with by default;
- ``trivialaugment`` (TrivialAugmentWide: one random operation at a random strength per image),
  ``randaugment`` (two operations at a fixed strength) and ``autoaugment`` (the policy searched
  on CIFAR-10 for images up to 64 pixels, on ImageNet above): each after ``basic``.

``random_erasing`` (a probability) blanks a random rectangle of the normalised image, the last
step of torchvision's classification recipe.
"""

from torchvision.transforms import v2

from cnnlab.errors import UserError

POLICIES = ("none", "basic", "trivialaugment", "randaugment", "autoaugment")


def check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise UserError(
            f"recipe.augment={policy} is not known: choose one of {', '.join(POLICIES)}."
        )


def geometric(policy: str, image_size: int, shift: int, hflip: bool) -> list[v2.Transform]:
    """Shift and flip, the part of every policy but ``none``."""
    check_policy(policy)
    if policy == "none":
        return []
    steps: list[v2.Transform] = []
    if shift > 0:
        steps.append(v2.RandomCrop(image_size, padding=shift))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    return steps


def photometric(policy: str, image_size: int) -> list[v2.Transform]:
    """The searched or random operation policy, on images with values in [0, 1] or 0..255."""
    check_policy(policy)
    if policy == "trivialaugment":
        return [v2.TrivialAugmentWide()]
    if policy == "randaugment":
        return [v2.RandAugment()]
    if policy == "autoaugment":
        small = image_size <= 64
        return [
            v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10 if small else v2.AutoAugmentPolicy.IMAGENET)
        ]
    return []


def colour(strength: float) -> list[v2.Transform]:
    """``recipe.color_jitter``: brightness, contrast and saturation each scaled by a factor drawn
    from [1 - s, 1 + s], and the hue shifted by up to s / 4 of a turn (at most 0.5); grey images
    keep their (absent) colour. Only the image changes: boxes and masks stay where they are."""
    if strength < 0:
        raise UserError(f"recipe.color_jitter must be 0 (off) or more, got {strength}.")
    if strength == 0:
        return []
    return [v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength,
                           hue=min(0.5, strength / 4))]  # fmt: skip


def erasing(probability: float) -> list[v2.Transform]:
    if not 0.0 <= probability <= 1.0:
        raise ValueError(
            f"recipe.random_erasing must be a probability in [0, 1], got {probability}."
        )
    return [v2.RandomErasing(p=probability)] if probability > 0 else []
