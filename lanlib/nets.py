"""Small mask networks: the fully connected LANs of the paper's appendices.

:class:`MLPMaskNet` flattens each input, applies fully connected layers with
leaky ReLU, and ends with a sigmoid reshaped to the mask shape. The paper's LANs
are all of this form:

- translated MNIST (Appendix A): ``MLPMaskNet((1, 28, 28), hidden=(100,))``;
- CIFAR-10 (Appendix B): ``MLPMaskNet((3, 32, 32), hidden=(500, 500, 500),
  mask_shape=(1, 32, 32))``, one mask shared by the three colour channels;
- 20 Newsgroups (Appendix C): ``MLPMaskNet((vocab,), hidden=(100, 1000))``.

Two image LANs that are not the paper's, used by the tank chapter
(``notebooks/06_tank_story``):

- :class:`CoarseMaskNet`: an :class:`MLPMaskNet` that predicts a coarser mask, shared by
  the colour channels and upsampled to the image;
- :class:`ConvMaskNet`: a small fully convolutional mask network, the same weights at
  every position.

Two mask networks whose masks can follow each input (issue 15): the paper's fully
connected LAN tends to draw nearly one mask for every image (chapter 03's swap test,
``notebooks/03_cifar10``):

- :class:`UNetMaskNet`: a fully convolutional encoder-decoder with skip connections, for
  images of any size;
- :class:`FeatureMaskNet`: reads the explained model's own hidden activations, through
  forward hooks, and maps them to a mask (after DiffMask).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .core import check_module, frozen
from .loop import floating_dtype

__all__ = ["CoarseMaskNet", "ConvMaskNet", "FeatureMaskNet", "MLPMaskNet", "UNetMaskNet"]


class MLPMaskNet(nn.Module):
    """Fully connected mask network ``A(x)`` with outputs in [0, 1].

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapters 02, 03, 04 and 06 use it.

    Args:
        input_shape (tuple): per-sample input shape, e.g. ``(1, 28, 28)``.
        hidden (tuple of int): widths of the hidden layers (leaky ReLU). Default ``(100,)``.
        mask_shape (tuple, optional): per-sample mask shape; default ``input_shape``. Use
            size-1 dimensions for a mask shared across them (e.g. colour channels).
        negative_slope (float): slope of the leaky ReLU. Default 0.01.

    Shape:
        input ``(N, *input_shape)``, output ``(N, *mask_shape)``.

    Example:
        >>> lan = MLPMaskNet((1, 28, 28), hidden=(100,))
        >>> lan(torch.rand(5, 1, 28, 28)).shape
        torch.Size([5, 1, 28, 28])
    """

    def __init__(self, input_shape, hidden=(100,), mask_shape=None, negative_slope: float = 0.01):
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.mask_shape = self.input_shape if mask_shape is None else tuple(mask_shape)
        if len(self.mask_shape) != len(self.input_shape):
            raise ValueError(
                f"mask_shape {self.mask_shape} needs one entry per input dimension "
                f"{self.input_shape}"
            )
        widths = [math.prod(self.input_shape), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU(negative_slope)]
        layers += [nn.Linear(widths[-1], math.prod(self.mask_shape)), nn.Sigmoid()]
        self.net = nn.Sequential(nn.Flatten(), *layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ValueError(
                f"MLPMaskNet was built for inputs {self.input_shape} per sample, "
                f"got {tuple(inputs.shape[1:])}"
            )
        return self.net(inputs).reshape(len(inputs), *self.mask_shape)


class CoarseMaskNet(nn.Module):
    """A fully connected LAN with a coarser mask, upsampled to the image.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    An :class:`MLPMaskNet` sees the centred image (``inputs - 0.5``) and predicts a
    ``(1, mask_size, mask_size)`` mask shared by the colour channels; bilinear
    upsampling brings it to ``(1, H, W)``. Predicting a quarter of the values (for
    ``mask_size = H / 2``) makes the last layer four times smaller and the masks
    smoother; objects several pixels wide survive the coarser grid.

    Args:
        input_shape (tuple): ``(C, H, W)`` of the images.
        hidden (tuple of int): hidden widths of the MLP. Default ``(256,)``.
        mask_size (int): side of the coarse mask. Default 24.

    Shape:
        input ``(N, C, H, W)`` in [0, 1], output ``(N, 1, H, W)`` in [0, 1].

    Example:
        >>> lan = CoarseMaskNet((3, 48, 48), hidden=(32,), mask_size=24)
        >>> lan(torch.rand(2, 3, 48, 48)).shape
        torch.Size([2, 1, 48, 48])
    """

    def __init__(self, input_shape, hidden=(256,), mask_size: int = 24):
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {self.input_shape}")
        self.mlp = MLPMaskNet(self.input_shape, hidden=tuple(hidden),
                              mask_shape=(1, int(mask_size), int(mask_size)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        coarse = self.mlp(inputs - 0.5)  # centred, as the classifier sees them
        return nn.functional.interpolate(coarse, size=self.input_shape[1:], mode="bilinear",
                                         align_corners=False).clamp(0, 1)


class ConvMaskNet(nn.Module):
    """A small fully convolutional LAN: the same weights look for what matters everywhere.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Not the paper's architecture (its LANs are fully connected): on images, a
    convolutional mask network shares what it learns across positions, so it can mark
    *this* image's object rather than where such objects usually are. The centred image
    (``inputs - 0.5``) is halved (average pooling), passed through three 3x3
    convolutions with dilations 1, 2 and 4 (ReLU; a receptive field of 15 pixels at half
    resolution) and a 1x1 convolution; the logits are upsampled back to the input's
    size (bilinear) and squashed by a sigmoid. Works for any ``H, W >= 2``.

    Args:
        width (int): channels of the hidden convolutions. Default 16.
        channels (int): channels of the input images. Default 3.
        padding (str): how the convolutions pad: ``"zeros"`` (default) or
            ``"replicate"``. Zero padding frames the centred image with grey, so a stack
            of convolutions can tell how far a pixel is from the border and mark the
            border for its own sake; replicate padding repeats the edge pixels, so a
            pixel near the border looks like one inside a wider image (chapter 06).

    Shape:
        input ``(N, channels, H, W)`` in [0, 1], output ``(N, 1, H, W)`` in [0, 1].

    Example:
        >>> ConvMaskNet(width=4)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(self, width: int = 16, channels: int = 3, padding: str = "zeros"):
        super().__init__()
        padding = _padding(padding)
        self.net = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(channels, width, 3, padding=1, padding_mode=padding), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2, padding_mode=padding), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4, padding_mode=padding), nn.ReLU(),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = self.net(inputs - 0.5)
        logits = nn.functional.interpolate(logits, size=inputs.shape[-2:], mode="bilinear",
                                           align_corners=False)
        return torch.sigmoid(logits)


_PADDINGS = ("zeros", "replicate")


def _padding(padding) -> str:
    """A convolution padding mode a mask network offers, checked."""
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")
    return padding


def _init_value(init) -> float:
    """``init`` checked to lie strictly between 0 and 1; returns it as a float."""
    if isinstance(init, bool) or not isinstance(init, numbers.Real) or not 0 < init < 1:
        raise ValueError(f"init must lie strictly between 0 and 1, got {init!r}")
    return float(init)


def _constant_start(layer: nn.Module, init: float) -> None:
    """Zero ``layer``'s weight and set its bias to ``logit(init)``: the sigmoid after it
    then gives exactly ``init`` everywhere at the start, as the sample masks start."""
    nn.init.zeros_(layer.weight)
    nn.init.constant_(layer.bias, math.log(init / (1 - init)))


def _conv_block(c_in: int, c_out: int, padding: str = "zeros") -> nn.Sequential:
    """Two 3x3 convolutions with "same" padding, each followed by a ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode=padding), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, padding_mode=padding), nn.ReLU())


class UNetMaskNet(nn.Module):
    """A fully convolutional encoder-decoder LAN with skip connections, for images of any size.

    Not the paper's architecture (its LANs are fully connected). It answers the swap
    test of chapter 03 (``notebooks/03_cifar10.ipynb``), where the paper's LAN draws
    nearly the same mask for every image: a convolutional network applies the same
    weights at every position, so a mask can move with what it marks. The layout is
    U-Net's (Ronneberger et al. 2015): an encoder halves the resolution ``depth`` times
    (max pooling, two 3x3 convolutions with ReLU per level, ``width * 2**level``
    channels), a decoder doubles it back (bilinear upsampling, concatenation with the
    encoder's features at that resolution, two 3x3 convolutions), and a 1x1
    convolution gives the mask's logits. Predicting a saliency mask with such a network,
    trained against a black-box classifier, is the masking model of Dabkowski & Gal
    (2017), "Real time image saliency for black box classifiers".

    The network sees the centred image (``inputs - 0.5``), padded at the bottom and
    right (by replicating the edge) to a multiple of ``2**depth``; the mask is cropped
    back to ``(H, W)``. With ``downsample = 2**k`` the decoder stops ``k`` levels early
    and its logits are upsampled bilinearly to the image: a coarser, smoother mask. The
    last convolution starts with zero weights and bias ``logit(init)``, so the initial
    mask is ``init`` at every pixel of every image, as for the sample masks of
    :func:`lanlib.fit_sample_masks`.

    Args:
        channels (int): channels of the input images. Default 3.
        width (int): channels at full resolution, doubled at each level. Default 16.
        depth (int): number of halvings, >= 0 (0: no encoder-decoder, two 3x3
            convolutions). Default 3.
        downsample (int): the mask's resolution is ``1 / downsample`` of the image's
            before the bilinear upsampling; a power of two, at most ``2**depth``. Default
            1 (full resolution).
        per_channel (bool): one mask per colour channel (``channels`` outputs) instead of
            one shared by them. Default False.
        init (float): the initial mask value, in (0, 1). Default 0.5.
        padding (str): how the 3x3 convolutions pad: ``"zeros"`` (default) or
            ``"replicate"`` (see :class:`ConvMaskNet`; chapter 06 uses it).

    Shape:
        input ``(N, channels, H, W)`` in [0, 1], any ``H, W >= 1``; output
        ``(N, 1, H, W)`` (``(N, channels, H, W)`` if ``per_channel``) in (0, 1).

    Example:
        >>> lan = UNetMaskNet(width=4, depth=2)
        >>> m = lan(torch.rand(2, 3, 17, 30))
        >>> m.shape, round(m.min().item(), 3), round(m.max().item(), 3)
        (torch.Size([2, 1, 17, 30]), 0.5, 0.5)
    """

    def __init__(self, channels: int = 3, width: int = 16, depth: int = 3,
                 downsample: int = 1, per_channel: bool = False, init: float = 0.5,
                 padding: str = "zeros"):
        super().__init__()
        padding = _padding(padding)
        for name, value, low in (("channels", channels, 1), ("width", width, 1),
                                 ("depth", depth, 0), ("downsample", downsample, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        skipped = int(downsample).bit_length() - 1  # decoder levels left out
        if downsample != 2 ** skipped or skipped > depth:
            raise ValueError(f"downsample must be a power of two no larger than 2**depth = "
                             f"{2 ** depth}, got {downsample!r}")
        init = _init_value(init)
        self.channels, self.depth, self.downsample = int(channels), int(depth), int(downsample)
        widths = [int(width) * 2 ** level for level in range(self.depth + 1)]
        self.encoder = nn.ModuleList(
            [_conv_block(self.channels, widths[0], padding)]
            + [_conv_block(a, b, padding) for a, b in zip(widths[:-1], widths[1:], strict=True)])
        # decoder[i] brings level i + 1 up to level i; only levels >= skipped are built
        self.decoder = nn.ModuleList(
            [_conv_block(widths[i + 1] + widths[i], widths[i], padding)
             for i in range(skipped, self.depth)][::-1])
        self.head = nn.Conv2d(widths[skipped], self.channels if per_channel else 1, 1)
        _constant_start(self.head, init)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.ndim != 4 or inputs.shape[1] != self.channels:
            raise ValueError(f"UNetMaskNet takes (N, {self.channels}, H, W) images, got "
                             f"{tuple(inputs.shape)}")
        height, width = inputs.shape[-2:]
        step = 2 ** self.depth
        x = nn.functional.pad(inputs - 0.5, (0, -width % step, 0, -height % step),
                              mode="replicate")
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear",
                                          align_corners=False)
            x = block(torch.cat([x, skips.pop()], dim=1))
        logits = self.head(x)
        if self.downsample > 1:
            logits = nn.functional.interpolate(logits, scale_factor=self.downsample,
                                               mode="bilinear", align_corners=False)
        return torch.sigmoid(logits[..., :height, :width])


def _named_layers(model: nn.Module, layers) -> dict[str, nn.Module]:
    """The submodules of ``model`` named in ``layers``; a clear error for unknown names."""
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a non-empty list of F's submodule names (as in "
                         f"dict(model.named_modules())), got {layers!r}")
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules or name == ""]
    if unknown:
        known = [name for name in modules if name]
        shown = ", ".join(repr(n) for n in known[:60])
        more = f" and {len(known) - 60} more" if len(known) > 60 else ""
        raise ValueError(f"F has no submodule named {', '.join(map(repr, unknown))}; its "
                         f"submodules are {shown}{more}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers names a submodule twice: {list(layers)}")
    return {name: modules[name] for name in layers}


class FeatureMaskNet(nn.Module):
    """A LAN that reads the explained model's own hidden activations (after DiffMask).

    Not the paper's architecture. It answers the swap test of chapter 03
    (``notebooks/03_cifar10.ipynb``), where the paper's LAN draws nearly the same mask
    for every image. DiffMask (De Cao et al. 2020) predicts its gates from the hidden
    states of the model it explains: what F computed on this input already says where
    F looks. At each call F runs on the inputs (in eval mode and without gradients, so
    its parameters are never trained), forward hooks collect the outputs of the
    submodules named in ``layers``, and a small network maps them to a mask:

    - image inputs ``(N, C, H, W)`` and feature maps ``(N, c, h, w)``: each layer's
      features are standardised, projected by a 1x1 convolution to ``width`` channels
      and upsampled (bilinear) to ``(H, W)``; their sum, concatenated with the centred
      image (``inputs - 0.5``), goes through two 3x3 convolutions with ReLU and a 1x1
      convolution;
    - any other inputs ``(N, *S)`` and vector features ``(N, D)`` (e.g. the hidden
      layer of a deep averaging network on bag-of-words counts ``(N, V)``): the
      standardised features, concatenated, go through an MLP (ReLU) to a mask shaped
      like the input.

    A sigmoid gives the mask. Its last layer starts with zero weights and bias
    ``logit(init)``, so the initial mask is ``init`` everywhere. ``example`` (a batch of
    typical inputs) is run through F once when the network is built: it fixes the
    features' sizes and the means and standard deviations that standardise them
    (buffers, saved in the ``state_dict``).

    F is kept as a plain attribute (``lan.model``), not a submodule: its parameters are
    not among the LAN's ``parameters()``, not in its ``state_dict`` and not moved by
    ``lan.to(...)``. The LAN is built on the CPU; move it to F's device yourself, or let
    :func:`lanlib.fit_lan` move both. The hooks are registered on entering each call and
    removed on leaving it, also when it raises, so F carries no hooks between calls and
    no features are kept from one call to the next.

    Args:
        model (nn.Module): F, the network explained.
        layers (list of str): names of F's submodules whose outputs are read, as in
            ``dict(model.named_modules())``, e.g. ``["features.1", "features.3"]``. Each
            must run exactly once in F's forward.
        example (Tensor (N, ...)): typical inputs, on F's device (a few dozen or more:
            their statistics standardise the features).
        width (int): channels of the convolutional head (image inputs). Default 16.
        hidden (tuple of int): hidden widths of the MLP (vector features). Default (100,).
        per_channel (bool): for image inputs, one mask per channel instead of one shared
            by them. Default False.
        init (float): the initial mask value, in (0, 1). Default 0.5.

    Shape:
        input shaped like ``example`` per sample; output ``(N, 1, H, W)`` for images
        (``(N, C, H, W)`` if ``per_channel``), else shaped like the input; in (0, 1).

    Raises:
        ValueError: an unknown layer name (the message lists F's submodules), a layer
            that did not run or ran more than once, or features it cannot map (feature
            maps for non-image inputs, vectors for image inputs, other ranks).

    Example:
        >>> f = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
        ...                   nn.Linear(8 * 12 * 12, 10))
        >>> lan = FeatureMaskNet(f, ["1"], torch.rand(4, 3, 12, 12), width=4)
        >>> lan(torch.rand(2, 3, 12, 12)).shape
        torch.Size([2, 1, 12, 12])
        >>> any(p is q for p in lan.parameters() for q in f.parameters())
        False
    """

    def __init__(self, model: nn.Module, layers, example: torch.Tensor, *, width: int = 16,
                 hidden=(100,), per_channel: bool = False, init: float = 0.5):
        super().__init__()
        check_module("model", model)
        init = _init_value(init)
        object.__setattr__(self, "model", model)  # a plain attribute: not a submodule
        self.layers = list(_named_layers(model, layers))
        if not isinstance(example, torch.Tensor) or example.ndim < 2 or not len(example):
            raise ValueError("example must be a batch of inputs (N, ...), N >= 1")
        self.input_shape = tuple(example.shape[1:])
        self.images = example.ndim == 4
        features = self._features(example)
        want = 4 if self.images else 2
        wrong = {name: tuple(f.shape) for name, f in features.items() if f.ndim != want}
        if wrong:
            kind = ("feature maps (N, c, h, w) for image inputs (N, C, H, W)" if self.images
                    else "vectors (N, D) for inputs that are not images (N, C, H, W)")
            raise ValueError(f"FeatureMaskNet maps {kind}; the layers {wrong} give other "
                             f"shapes; pick other layers")
        sizes = [f.shape[1] for f in features.values()]
        for k, f in enumerate(features.values()):  # per-feature statistics of the example
            dims = [0, 2, 3] if self.images else [0]
            values_each = f.numel() // f.shape[1]
            mean = f.mean(dim=dims)
            std = f.std(dim=dims, correction=0) if values_each > 1 else torch.ones_like(mean)
            self.register_buffer(f"mean_{k}", mean.float().cpu())  # the LAN starts on the CPU
            self.register_buffer(f"std_{k}", std.float().clamp_min(1e-3).cpu())
        if self.images:
            channels = self.input_shape[0]
            self.project = nn.ModuleList(nn.Conv2d(c, width, 1) for c in sizes)
            self.head = nn.Sequential(
                nn.Conv2d(width + channels, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, channels if per_channel else 1, 1))
        else:
            widths = [sum(sizes), *hidden]
            mlp: list[nn.Module] = []
            for a, b in zip(widths[:-1], widths[1:], strict=True):
                mlp += [nn.Linear(a, b), nn.ReLU()]
            mlp.append(nn.Linear(widths[-1], math.prod(self.input_shape)))
            self.head = nn.Sequential(*mlp)
        _constant_start(self.head[-1], init)

    def extra_repr(self) -> str:
        return f"layers={self.layers}"

    def _features(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """F's outputs at ``layers`` on ``inputs``: hooks live for this call only."""
        found: dict[str, list] = {name: [] for name in self.layers}

        def keep(name):
            def hook(module, args, output):
                found[name].append(output)
            return hook

        modules = _named_layers(self.model, self.layers)
        handles = [module.register_forward_hook(keep(name)) for name, module in modules.items()]
        dtype = floating_dtype(self.model) or inputs.dtype
        try:
            with frozen(self.model), torch.no_grad():
                self.model(inputs.to(dtype))
        finally:
            for handle in handles:
                handle.remove()
        missing = [name for name, outs in found.items() if not outs]
        if missing:
            raise ValueError(f"the layers {missing} did not run in F's forward on these inputs; "
                             f"pick submodules that F calls")
        repeated = {name: len(outs) for name, outs in found.items() if len(outs) > 1}
        if repeated:
            raise ValueError(f"the layers {repeated} ran several times in one forward of F (a "
                             f"module reused, e.g. one ReLU for many layers); pick modules that "
                             f"run once")
        bad = [name for name, outs in found.items() if not isinstance(outs[0], torch.Tensor)]
        if bad:
            raise ValueError(f"the layers {bad} return no single tensor; pick layers that do")
        return {name: outs[0].to(inputs.dtype) for name, outs in found.items()}

    def _standardised(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each layer's features less the example's mean, over its standard deviation."""
        out = []
        for k, f in enumerate(features.values()):
            mean, std = getattr(self, f"mean_{k}"), getattr(self, f"std_{k}")
            if f.ndim == 4:
                mean, std = mean[:, None, None], std[:, None, None]
            out.append((f - mean) / std)
        return out

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ValueError(f"FeatureMaskNet was built for inputs {self.input_shape} per "
                             f"sample, got {tuple(inputs.shape[1:])}")
        features = self._standardised(self._features(inputs))
        if not self.images:
            return torch.sigmoid(self.head(torch.cat(features, dim=1))).reshape(inputs.shape)
        size = inputs.shape[-2:]
        maps = sum(nn.functional.interpolate(project(f), size=size, mode="bilinear",
                                             align_corners=False)
                   for project, f in zip(self.project, features, strict=True))
        return torch.sigmoid(self.head(torch.cat([maps, inputs - 0.5], dim=1)))
