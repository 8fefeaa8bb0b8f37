"""A handful of ImageNet photos, photos that ship inside packages, and the ImageNet-1k class names.

The photos are ``imagenet-samples/imagenet_NN_CLASS.jpg`` (20 files, ``CLASS`` is
the ImageNet-1k class index), looked for in the data root, then in
``$LANLIB_DATA_MIRROR``; there is no download source. When none of them is found,
photos that ship inside installed packages (:func:`package_photos`) are used
instead, labelled with the ImageNet class they show (:data:`PACKAGE_PHOTO_LABELS`)
or -1 where no class fits. Nothing here touches the network.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ._checksums import KNOWN_SHA256
from ._files import candidate_paths, data_root, find_file, notice_once, shown_path

__all__ = ["PACKAGE_PHOTO_LABELS", "imagenet_class_names", "load_imagenet_samples",
           "package_photos"]

_SAMPLES = tuple(sorted(rel for rel in KNOWN_SHA256 if rel.startswith("imagenet-samples/")))
_SAMPLE_NAME = re.compile(r"imagenet_\d+_(\d+)")
_SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
_SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")

#: The ImageNet-1k class each package photo shows, chosen by looking at the photo (not
#: at any network's prediction). The photos not listed have no fitting class, and their
#: label is -1: ``flower`` is a dahlia (ImageNet's flowers are daisy and yellow lady's
#: slipper), ``astronaut`` is a portrait of a person (ImageNet-1k has no person class),
#: and ``rocket`` is a space launcher on its pad (the nearest classes, ``missile`` and
#: ``projectile``, are weapons).
PACKAGE_PHOTO_LABELS: dict[str, int] = {
    "china": 698,  # palace: a tower of the Summer Palace, Beijing
    "chelsea": 281,  # tabby: a tawny coat mottled and striped with black
    "coffee": 967,  # espresso: an espresso with its crema, in a cup on a saucer
}


def imagenet_class_names() -> list[str]:
    """Return the 1000 ImageNet-1k class names, index = class id (no download needed).

    Example:
        >>> imagenet_class_names()[243]
        'bull mastiff'
    """
    from torchvision.models import GoogLeNet_Weights

    return list(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])


def _square(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 ``(3, H, W)`` to shorter side ``size``, centre-crop, scale to [0, 1].

    torchvision resizes the uint8 image itself, so the pixels are rounded to integers
    before they are scaled. Both the sample photos and :func:`package_photos` go through it.
    """
    from torchvision.transforms.v2 import functional as TF

    image = TF.center_crop(TF.resize(image, [size], antialias=True), [size, size])
    return image.float().div_(255)


def package_photos(size: int = 224) -> tuple[torch.Tensor, list[str]]:
    """Photos that ship inside installed packages, resized and centre-cropped to squares.

    Always scikit-learn's ``china`` and ``flower`` (``load_sample_image``); also
    scikit-image's ``astronaut``, ``chelsea`` (a cat), ``coffee`` and ``rocket`` when
    scikit-image is installed. All are files inside the packages: none needs a
    download. The ImageNet class of those that show one is in :data:`PACKAGE_PHOTO_LABELS`.

    Args:
        size (int): the side of the square output. Default 224.

    Returns:
        tuple[Tensor (N, 3, size, size) in [0, 1], list[str]]: the photos and their names.

    Example:
        >>> photos, names = package_photos(64)
        >>> photos.shape[1:], names[:2]
        (torch.Size([3, 64, 64]), ['china', 'flower'])
    """
    from sklearn.datasets import load_sample_image

    arrays = [(Path(name).stem, load_sample_image(name)) for name in _SKLEARN_PHOTOS]
    try:
        from skimage import data as skimage_data
    except ImportError:
        pass
    else:
        arrays += [(name, getattr(skimage_data, name)()) for name in _SKIMAGE_PHOTOS]
    photos = [_square(torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1), size)
              for _, array in arrays]
    return torch.stack(photos), [name for name, _ in arrays]


def load_imagenet_samples(
    root: str | os.PathLike[str] | None = None,
    size: int = 224,
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Load the ImageNet sample photos, resized and centre-cropped to a square.

    Each photo is resized so that its shorter side is ``size`` (antialiased), then
    centre-cropped to ``size x size``. If none of the 20 sample files is found in
    the data root or the mirror, the loader falls back to :func:`package_photos`:
    photos shipped with scikit-learn (``china``, ``flower``) and, if installed,
    scikit-image (``astronaut``, ``chelsea``, ``coffee``, ``rocket``), labelled with
    :data:`PACKAGE_PHOTO_LABELS` (-1 where no ImageNet class fits); a one-line note
    says so.

    Args:
        root (str | PathLike | None): data root; default :func:`~lanlib.data.data_root`.
        size (int): output side in pixels. Default 224.

    Returns:
        tuple[Tensor, Tensor, list[str]]: images, float32 ``(N, 3, size, size)`` in
        [0, 1]; labels, int64 ``(N,)``, the ImageNet-1k class parsed from the file
        name (see :func:`imagenet_class_names`), or that of :data:`PACKAGE_PHOTO_LABELS`,
        or -1 (no class fits); names, the file stems (e.g. ``"imagenet_00_243"``) or the
        package photos' names.

    Raises:
        ValueError: ``size`` is not a positive int.
        DataNotFoundError: some but not all sample files are found.
        CorruptFileError: a sample file fails its checksum.

    Example:
        >>> images, labels, names = load_imagenet_samples(size=128)
        >>> images.shape
        torch.Size([20, 3, 128, 128])
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    from torchvision.io import ImageReadMode, decode_image, read_file

    root = data_root(root)
    if any(path.is_file() for rel in _SAMPLES for path in candidate_paths(rel, root)):
        paths = [find_file(rel, root) for rel in _SAMPLES]
        names = [path.stem for path in paths]
        labels = [int(_SAMPLE_NAME.fullmatch(name).group(1)) for name in names]
        photos = [decode_image(read_file(str(path)), mode=ImageReadMode.RGB) for path in paths]
        images = torch.stack([_square(photo, size) for photo in photos])
    else:
        looked = ", ".join(shown_path(path.parent) for path in candidate_paths(_SAMPLES[0], root))
        notice_once(
            f"ImageNet sample photos not found (looked in {looked}); using the photos that "
            "ship with scikit-learn/scikit-image instead (label -1 where no class fits)."
        )
        images, names = package_photos(size)
        labels = [PACKAGE_PHOTO_LABELS.get(name, -1) for name in names]
    return images, torch.tensor(labels, dtype=torch.int64), names
