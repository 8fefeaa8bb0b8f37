"""Tests of lanlib.attribution on tiny models whose attributions can be worked out by hand."""

import pytest
import torch
from captum.attr import InputXGradient
from torch import nn

from lanlib import attribution
from lanlib.attribution import attribute, attribute_many, patch_partition


class Linear(nn.Module):
    """Logits (0, sum(w * x)): the attribution of class 1 is known in closed form."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, x):
        score = (x * self.weight).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(score), score], dim=1)


@pytest.fixture
def linear():
    w = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(0))
    return Linear(w)


@pytest.fixture
def x():
    return torch.rand(4, 2, 6, 6, generator=torch.Generator().manual_seed(1))


def test_saliency_of_a_linear_model_is_its_weight(linear, x):
    out = attribute(linear, x, "saliency", target=1)
    expected = linear.weight.detach().abs().sum(0, keepdim=True).expand(4, 1, 6, 6)
    assert out.maps.shape == (4, 1, 6, 6)
    assert torch.allclose(out.maps, expected)
    assert out.method == "saliency" and out.seconds_per_image == pytest.approx(out.seconds / 4)


def test_integrated_gradients_of_a_linear_model_is_weight_times_input(linear, x):
    out = attribute(linear, x, "integrated_gradients", target=1, reduce="none", n_steps=8)
    assert torch.allclose(out.maps, linear.weight.detach() * x, atol=1e-5)
    half = attribute(linear, x, "integrated_gradients", target=1, reduce="none",
                     baselines=x / 2, n_steps=8)
    assert torch.allclose(half.maps, linear.weight.detach() * x / 2, atol=1e-5)


def test_feature_ablation_sums_each_patch(linear, x):
    out = attribute(linear, x, "feature_ablation", target=1, reduce="none", patch=3)
    contribution = (linear.weight.detach() * x).sum(1)  # (N, 6, 6): per pixel, both channels
    patches = contribution.view(4, 2, 3, 2, 3).sum(dim=(2, 4))  # (N, 2, 2)
    expected = patches.repeat_interleave(3, 1).repeat_interleave(3, 2)
    # Captum gives every element of a patch the drop of removing the whole patch.
    assert torch.allclose(out.maps[:, 0], expected, atol=1e-5)
    assert torch.allclose(out.maps[:, 1], expected, atol=1e-5)


def test_occlusion_finds_the_one_pixel_a_model_reads():
    class OnePixel(nn.Module):
        def forward(self, x):
            v = x[:, 0, 4, 5]
            return torch.stack([-v, v], dim=1)

    x = torch.ones(2, 1, 8, 8)
    out = attribute(OnePixel(), x, "occlusion", target=1, window=2, stride=1)
    maps = out.maps[:, 0]
    # Every window over (4, 5) loses the whole output, so that pixel scores highest (1);
    # its neighbours share only some of those windows; pixels no such window reaches, 0.
    assert torch.allclose(maps[:, 4, 5], torch.ones(2))
    assert (maps.flatten(1).argmax(1) == 4 * 8 + 5).all()
    reached = torch.zeros(8, 8, dtype=torch.bool)
    reached[3:6, 4:7] = True  # windows start at rows 3-4, cols 4-5 and are 2 wide
    assert (maps[:, reached] > 0).all() and (maps[:, ~reached] == 0).all()


def test_reductions_and_layouts(linear, x):
    raw = attribute(linear, x, "input_x_gradient", target=1, reduce="none").maps
    assert raw.shape == x.shape and (raw < 0).any()
    assert torch.allclose(attribute(linear, x, "input_x_gradient", target=1, reduce="abs").maps,
                          raw.abs())
    assert torch.allclose(attribute(linear, x, "input_x_gradient", target=1,
                                    reduce="abs_max").maps, raw.abs().amax(1, keepdim=True))
    flat = nn.Linear(5, 3)
    v = torch.randn(3, 5)
    assert attribute(flat, v, "saliency").maps.shape == (3, 5)
    assert attribute(flat, v, "feature_ablation").maps.shape == (3, 5)
    with pytest.raises(ValueError, match="images"):
        attribute(flat, v, "occlusion")
    with pytest.raises(ValueError, match="reduce"):
        attribute(flat, v, "saliency", reduce="mean")


def test_default_target_is_the_prediction(linear, x):
    predicted = linear(x).argmax(1)
    ours = attribute(linear, x, "integrated_gradients", reduce="none", n_steps=4).maps
    theirs = torch.stack([
        attribute(linear, x[i:i + 1], "integrated_gradients", target=int(predicted[i]),
                  reduce="none", n_steps=4).maps[0] for i in range(len(x))])
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "occlusion",
                                    "feature_ablation"])
def test_result_does_not_depend_on_the_batch_size(method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3))
    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    whole = attribute(model, x, method).maps
    pieces = attribute(model, x, method, batch_size=2).maps
    assert torch.allclose(whole, pieces, atol=1e-5)


def test_model_mode_and_flags_are_restored(linear, x):
    linear.train()
    attribute(linear, x, "saliency")
    assert linear.training and linear.weight.requires_grad
    assert linear.weight.grad is None


def test_random_is_seeded_and_uniform(linear, x):
    a = attribute_many(linear, x, ["random"], seed=3)["random"].maps
    b = attribute_many(linear, x, ["random"], seed=3)["random"].maps
    assert torch.equal(a, b) and a.shape == (4, 1, 6, 6)
    raw = attribute(linear, x, "random", reduce="none",
                    generator=torch.Generator().manual_seed(0)).maps
    assert raw.min() >= 0 and raw.max() < 1


def test_captum_classes_callables_and_labels(linear, x):
    def doubled_input(model, inputs, target, baselines):
        return 2 * inputs

    out = attribute_many(linear, x, {"ixg": InputXGradient, "mine": doubled_input},
                         reduce="none")
    assert list(out) == ["ixg", "mine"]
    target = linear(x).argmax(1)
    expected = torch.where(target.view(-1, 1, 1, 1) == 1, linear.weight.detach() * x,
                           torch.zeros_like(x))
    assert torch.allclose(out["ixg"].maps, expected, atol=1e-6)
    assert torch.allclose(out["mine"].maps, 2 * x)


def test_many_runs_the_defaults_and_checks_options(linear, x):
    out = attribute_many(linear, x, baselines=x.mean(0, keepdim=True),
                         options={"occlusion": {"window": 2, "stride": 2}})
    assert list(out) == list(attribution.DEFAULT_METHODS)
    assert all(a.maps.shape == (4, 1, 6, 6) and a.seconds_per_image >= 0 for a in out.values())
    with pytest.raises(ValueError, match="not among the methods"):
        attribute_many(linear, x, ["saliency"], options={"occlusion": {}})
    with pytest.raises(ValueError, match="unknown method"):
        attribute(linear, x, "gradcam")


def test_patch_partition_covers_ragged_edges():
    p = patch_partition((1, 5, 5), 2)[0, 0]
    assert p.shape == (5, 5) and int(p.max()) == 8
    assert p[4, 4] == 8 and p[0, 4] == 2
