"""Tests of lanlib.models.imagenet: pixel-space wrappers and the offline network."""

import pytest
import torch
from torch import nn

from lanlib.data import imagenet_class_names, package_photos
from lanlib.models import imagenet


class _Recorder(nn.Module):
    def forward(self, x):
        self.seen = x
        return x.flatten(1)[:, :5]


def test_wrapper_normalises_inside():
    inner = _Recorder()
    model = imagenet.PixelSpaceClassifier(inner, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), name="r")
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert model(x).shape == (1, 5)
    assert torch.allclose(inner.seen[0, :, 0, 0], torch.tensor([-1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="RGB"):
        model(torch.rand(1, 1, 4, 4))


@pytest.fixture(scope="module")
def lite0():
    return imagenet.load_classifier("efficientnet_lite0")


def test_efficientnet_lite0_offline_recognises_a_photo(lite0):
    assert not lite0.training and lite0.name == "efficientnet_lite0"
    photos, names = package_photos(128)
    with torch.no_grad():
        logits = lite0(photos[[names.index("china")]])
    assert logits.shape == (1, 1000)
    top = [imagenet_class_names()[int(i)] for i in logits[0].topk(5).indices]
    assert {"palace", "monastery", "bell cote", "castle", "boathouse"} & set(top)


def test_any_input_size_and_gradients_to_the_input(lite0):
    x = torch.rand(2, 3, 72, 72, requires_grad=True)
    lite0(x).logsumexp(1).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unknown_model_and_offline_googlenet(monkeypatch):
    with pytest.raises(ValueError, match="unknown model"):
        imagenet.load_classifier("resnet")
    import urllib.error

    import torchvision.models

    def offline(**kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models, "googlenet", offline)
    with pytest.raises(RuntimeError, match="need internet"):
        imagenet.load_classifier("googlenet")


def test_channels_last_gives_the_same_logits(lite0):
    plain = imagenet.load_classifier("efficientnet_lite0", channels_last=False)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(lite0(x), plain(x), atol=1e-4)
