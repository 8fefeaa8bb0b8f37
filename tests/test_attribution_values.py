"""Value tests of lanlib.attribution: defaults, options passed on, batching, names, devices.

Each test pins something the docstrings promise with an answer worked out by hand (or
read off Captum called with the documented settings), so that a changed default, a
dropped option or a chunk off by one fails here. Device placement is checked on the
"meta" device with models that have no parameters (moving them costs nothing).
"""

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Occlusion, Saliency
from torch import nn

from lanlib import noise
from lanlib.attribution import (
    LatentAttention,
    _baselines_for,
    _random,
    _targets,
    attribute,
    attribute_many,
    explain_func,
    image_mask_settings,
    patch_partition,
    sample_mask_defaults,
)

META = torch.device("meta")


@pytest.fixture(autouse=True)
def seeded():
    """The models' initial weights: the same at every run."""
    torch.manual_seed(0)


class Scaled(nn.Module):
    """Logits ``scale * (x @ weight.T)``: the extra argument tests additional_forward_args."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, x, scale):
        return scale * x.flatten(1) @ self.weight.T


class Flat(nn.Module):
    """No parameters; the logits are the flattened inputs. Records where it was called."""

    def __init__(self):
        super().__init__()
        self.devices = []

    def forward(self, x):
        self.devices.append(x.device.type)
        return x.flatten(1)


class Counting(nn.Module):
    """A linear model that counts its forward passes."""

    def __init__(self, features: int, classes: int = 3):
        super().__init__()
        self.linear = nn.Linear(features, classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear(x.flatten(1))


class Recorder:
    """A method ``fn(model, inputs, target, baselines)`` that records where it ran.

    It returns a number baseline everywhere (on the CPU, where the maps end up)."""

    def __init__(self):
        self.chunks, self.targets = [], []

    def __call__(self, model, inputs, target, baselines):
        self.chunks.append((inputs.device.type, len(inputs)))
        self.targets.append(None if target is None else target.device.type)
        return torch.full(tuple(inputs.shape), baselines if isinstance(baselines, float) else 0.0)


def echo_baselines(model, inputs, target, baselines):
    return torch.zeros_like(inputs) + baselines


def weights(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- defaults


def test_default_method_of_attribute_and_explain_func_is_saliency():
    model = nn.Linear(4, 2)
    x = weights(3, 4)
    out = attribute(model, x, target=1)
    assert out.method == "saliency"
    assert torch.allclose(out.maps, model.weight[1].abs().expand(3, 4))
    explained = explain_func()(model, x.numpy(), np.array([0, 1, 0]))
    assert np.allclose(explained[1], model.weight[1].abs().detach().numpy())


def test_saliency_with_reduce_none_is_the_signed_gradient():
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, -0.25], [0.0, 1.0, 2.0, 3.0]]))
    out = attribute(model, weights(3, 4), "saliency", target=0, reduce="none")
    assert torch.allclose(out.maps, model.weight[0].detach().expand(3, 4))


def test_integrated_gradients_default_is_32_steps():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    x = 3 * weights(3, 4, seed=1)
    out = attribute(model, x, "integrated_gradients", target=1, reduce="none")
    ig = IntegratedGradients(model)
    expected = ig.attribute(x, baselines=0.0, target=1, n_steps=32)
    assert torch.allclose(out.maps, expected, atol=1e-6)
    other = ig.attribute(x, baselines=0.0, target=1, n_steps=33)
    assert not torch.allclose(out.maps, other, atol=1e-6)


def test_occlusion_defaults_are_window_6_stride_3():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 12 * 12, 5), nn.Tanh(),
                          nn.Linear(5, 2))
    x = torch.rand(2, 2, 12, 12, generator=torch.Generator().manual_seed(2))
    out = attribute(model, x, "occlusion", target=1, reduce="none")
    expected = Occlusion(model).attribute(x, sliding_window_shapes=(2, 6, 6),
                                          strides=(2, 3, 3), baselines=0.0, target=1)
    assert torch.allclose(out.maps, expected, atol=1e-6)


def test_occlusion_of_a_linear_model_with_disjoint_windows_and_a_baseline():
    # window = stride = 2: each element lies in one window, whose drop is sum w (x - b)
    w = weights(1, 4, 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1, bias=False))
    model[1].weight.data = w.view(1, 16)
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    out = attribute(model, x, "occlusion", target=0, baselines=0.5, reduce="none",
                    window=2, stride=2)
    drop = (w * (x[0] - 0.5)).view(1, 2, 2, 2, 2).sum(dim=(2, 4))  # per 2 x 2 block
    expected = drop.repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert torch.allclose(out.maps[0], expected, atol=1e-6)


def test_occlusion_refuses_inputs_that_are_not_images_by_name():
    with pytest.raises(ValueError, match="^occlusion slides"):
        attribute(nn.Linear(4, 2), torch.rand(2, 4), "occlusion")


def test_feature_ablation_default_patch_is_4():
    # a linear model: the drop of a patch is the sum of w * x over it
    w = weights(1, 8, 8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 1, bias=False))
    model[1].weight.data = w.view(1, 64)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    out = attribute(model, x, "feature_ablation", target=0, reduce="none")
    drop = (w * x[0]).view(1, 2, 4, 2, 4).sum(dim=(2, 4))
    expected = drop.repeat_interleave(4, 1).repeat_interleave(4, 2)
    assert torch.allclose(out.maps[0], expected, atol=1e-5)


def test_feature_ablation_uses_the_baselines_and_a_given_feature_mask():
    w = weights(1, 4, 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1, bias=False))
    model[1].weight.data = w.view(1, 16)
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    halves = (torch.arange(4) >= 2).long().expand(1, 1, 4, 4)  # left and right halves
    out = attribute(model, x, "feature_ablation", target=0, baselines=0.25, reduce="none",
                    feature_mask=halves)
    drop = (w * (x[0] - 0.25)).view(1, 4, 2, 2).sum(dim=(1, 3))  # per half
    assert torch.allclose(out.maps, drop.repeat_interleave(2).expand(1, 1, 4, 4), atol=1e-5)


def test_feature_ablation_of_flat_inputs_ablates_each_element_against_the_baseline():
    model = nn.Linear(5, 2)
    x = weights(3, 5, seed=6)
    out = attribute(model, x, "feature_ablation", target=1, baselines=1.0, reduce="none")
    assert torch.allclose(out.maps, model.weight[1].detach() * (x - 1.0), atol=1e-5)


def test_random_maps_take_the_inputs_dtype():
    x = torch.rand(2, 3, dtype=torch.float64)
    out = attribute(nn.Linear(3, 2).double(), x, "random", reduce="none",
                    generator=torch.Generator().manual_seed(0))
    assert out.maps.dtype == torch.float64


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients",
                                    "occlusion", Saliency])
def test_options_reach_captum(method):
    # the model needs its `scale`: a method that drops the options fails
    w = weights(2, 2 * 4 * 4)
    x = torch.rand(2, 2, 4, 4, generator=torch.Generator().manual_seed(7))
    options = {"window": 2, "stride": 2} if method == "occlusion" else {}
    once = attribute(Scaled(w), x, method, target=1, reduce="none",
                     additional_forward_args=(1.0,), **options).maps
    twice = attribute(Scaled(w), x, method, target=1, reduce="none",
                      additional_forward_args=(2.0,), **options).maps
    assert torch.allclose(twice, 2 * once, atol=1e-5)
    assert once.abs().sum() > 0


def test_a_captum_class_and_callables_are_named_by_their_names():
    model = nn.Linear(3, 2)
    x = torch.rand(2, 3)
    assert attribute(model, x, Saliency).method == "Saliency"
    assert attribute(model, x, echo_baselines).method == "echo_baselines"
    assert attribute(model, x, Recorder()).method == "Recorder"


def test_a_callable_gets_inputs_that_require_gradients():
    def gradient(model, inputs, target, baselines):
        logits = model(inputs).gather(1, target[:, None]).sum()
        return torch.autograd.grad(logits, inputs)[0]

    model = nn.Linear(3, 2)
    out = attribute(model, torch.rand(4, 3), gradient, target=0, reduce="none")
    assert torch.allclose(out.maps, model.weight[0].detach().expand(4, 3))


def test_a_given_target_is_explained_not_the_prediction():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.5, -2.0, 0.0]]))
        model.bias.zero_()
    x = torch.rand(2, 3) + 0.1  # predicted class 0
    expected = torch.tensor([0.5, -2.0, 0.0]).expand(2, 3)
    single = attribute(model, x, "saliency", target=1, reduce="none")
    assert torch.equal(single.maps, expected)
    many = attribute_many(model, x, ["saliency"], target=1, reduce="none")
    assert torch.equal(many["saliency"].maps, expected)


def test_masks_ignore_the_target_even_a_malformed_one():
    lan = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid())
    model = Counting(3)
    x = torch.rand(4, 3)
    out = attribute(model, x, lan, target=[0, 1])
    assert out.maps.shape == (4, 3)
    assert model.calls == 0


# ----------------------------------------------------------------------------- errors


def test_a_callable_returning_the_wrong_shape_is_named_in_the_error():
    def bad(model, inputs, target, baselines):
        return torch.zeros(len(inputs), 2)

    with pytest.raises(ValueError, match="method 'bad' returned"):
        attribute(nn.Linear(3, 2), torch.rand(2, 3), bad)


def test_a_lan_returning_a_mask_out_of_range_is_named_in_the_error():
    lan = nn.Sequential(nn.Linear(3, 3))
    lan[0].bias.data.fill_(5.0)
    with pytest.raises(ValueError, match="the mask of 'Sequential' must lie in"):
        attribute(nn.Linear(3, 2), torch.rand(2, 3), lan)


# ----------------------------------------------------------------------------- reduce


class Constant(nn.Module):
    """A LAN whose mask is fixed: ``mask`` repeated over the batch."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return self.mask.expand(len(x), *self.mask.shape)


def test_mask_importance_with_reduce_abs_is_shaped_like_the_inputs():
    mask = torch.tensor([[[0.25, 1.0], [0.5, 0.0]]])  # (1, 2, 2), shared by the channels
    x = torch.rand(2, 3, 2, 2)
    out = attribute(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), x, Constant(mask),
                    reduce="abs")
    assert torch.equal(out.maps, (1 - mask).expand(2, 3, 2, 2))


def test_three_dimensional_inputs_reduce_over_their_channels():
    # (N, C, L) inputs: "abs_sum" sums over C for attributions and per-channel masks alike
    mask = torch.tensor([[0.0, 0.5, 1.0], [0.5, 0.5, 0.25]])  # (C=2, L=3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    x = torch.rand(2, 2, 3)
    masks = attribute(model, x, Constant(mask), reduce="abs_sum").maps
    assert torch.equal(masks, (1 - mask).sum(0).expand(2, 1, 3))
    grads = attribute(model, x, "saliency", target=1).maps
    expected = model[1].weight[1].detach().view(2, 3).abs().sum(0)
    assert torch.allclose(grads, expected.expand(2, 1, 3))


# ----------------------------------------------------------------------------- baselines


def test_per_input_baselines_follow_their_inputs_through_the_chunks():
    x = torch.zeros(4, 1, 3)
    b = torch.arange(12.0).view(4, 1, 3)
    out = attribute(nn.Flatten(), x, echo_baselines, target=0, baselines=b, batch_size=2,
                    reduce="none")
    assert torch.equal(out.maps, b)
    pair = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = attribute(nn.Flatten(), torch.zeros(2, 2), echo_baselines, target=0,
                    baselines=pair, batch_size=1, reduce="none")
    assert torch.equal(out.maps, pair)


def test_one_baseline_for_all_serves_every_chunk():
    x = torch.zeros(3, 2, 2)
    shared = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (1, 2, 2)
    out = attribute(nn.Flatten(), x, echo_baselines, target=0, baselines=shared,
                    batch_size=1, reduce="none")
    assert torch.equal(out.maps, shared.expand(3, 2, 2))
    per_element = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # (2, 2): no batch dimension
    out = attribute(nn.Flatten(), x, echo_baselines, target=0, baselines=per_element,
                    batch_size=2, reduce="none")
    assert torch.equal(out.maps, per_element.expand(3, 2, 2))


def test_baselines_take_the_chunks_dtype_and_device():
    b = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    assert _baselines_for(b, 0, 2, torch.zeros(2, 2)).dtype == torch.float32
    on_meta = _baselines_for(b, 0, 2, torch.empty(2, 2, device=META))
    assert on_meta.device == META
    assert on_meta.dtype == torch.float32


def test_targets_are_put_on_the_inputs_device():
    assert _targets(Flat(), torch.empty(2, 3, device=META), [0, 1], 2).device == META


# ----------------------------------------------------------------------------- devices


def test_attribute_computes_on_the_device_given():
    model, method = Flat(), Recorder()
    x = torch.rand(3, 4)
    out = attribute(model, x, method, target=[0, 1, 2], device=META, batch_size=2)
    assert method.chunks == [("meta", 2), ("meta", 1)]
    assert method.targets == ["meta", "meta"]
    assert out.maps.device.type == "cpu"


def test_random_maps_are_drawn_on_the_inputs_device():
    g = torch.Generator().manual_seed(0)
    assert _random(Flat(), torch.empty(2, 3, device=META), None, 0.0, generator=g).is_meta


def test_attribute_many_computes_on_the_device_given():
    method = Recorder()
    attribute_many(Flat(), torch.rand(3, 4), {"rec": method}, target=[0, 1, 2], device=META,
                   batch_size=2)
    assert method.chunks == [("meta", 2), ("meta", 1)]
    assert method.targets == ["meta", "meta"]


def test_attribute_many_computes_the_targets_on_the_device_given():
    model = Flat()
    attribute_many(model, torch.rand(3, 4), {"rec": Recorder()}, device=META, batch_size=2)
    assert model.devices == ["meta", "meta"]  # one pass per chunk


# ----------------------------------------------------------------------------- attribute_many


def test_attribute_many_computes_the_targets_once_for_all_methods():
    model = Counting(3)
    x = torch.rand(4, 3)
    attribute_many(model, x, {"a": Recorder(), "b": Recorder()})
    assert model.calls == 1
    model.calls = 0
    attribute_many(model, x, {"a": Recorder(), "b": Recorder()}, target=0)
    assert model.calls == 0


def test_attribute_many_passes_batch_size_and_baselines():
    method = Recorder()
    out = attribute_many(Flat(), torch.zeros(3, 2), {"rec": method}, batch_size=2,
                         baselines=2.5, target=0, reduce="none")
    assert [n for _, n in method.chunks] == [2, 1]
    assert torch.equal(out["rec"].maps, torch.full((3, 2), 2.5))


def test_attribute_many_seeds_sample_masks_without_their_own_seed():
    model = nn.Linear(4, 3)
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(8))
    settings = {"beta": 0.1, "steps": 3, "noise": noise.uniform()}
    many = attribute_many(model, x, ["sample_masks"], options={"sample_masks": settings},
                          seed=5)
    one = attribute(model, x, "sample_masks", seed=5, **settings)
    assert torch.equal(many["sample_masks"].maps, one.maps)


# ----------------------------------------------------------------------------- sample masks


class CountingNoise(noise.Noise):
    """A constant 0.3 that counts its draws."""

    def __init__(self):
        super().__init__()
        self.draws = 0

    def sample(self, inputs, generator):
        self.draws += 1
        return torch.full_like(inputs, 0.3)


def test_sample_masks_without_beta_use_the_noise_given():
    counting = CountingNoise()
    attribute(nn.Linear(4, 3), torch.rand(2, 4), "sample_masks", noise=counting, steps=2,
              seed=0)
    assert counting.draws == 3  # D_full, then one draw per step


def test_sample_masks_without_beta_are_reproducible_with_random_noise():
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(9))
    runs = [attribute(model, x, "sample_masks", noise=noise.uniform(), steps=3, seed=1).maps
            for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_sample_masks_show_no_progress_bar_unless_asked(capsys):
    attribute(nn.Linear(4, 3), torch.rand(2, 4), "sample_masks", beta=0.1, steps=2, seed=0)
    attribute(nn.Linear(4, 3), torch.rand(2, 4), "sample_masks", steps=2, seed=0)
    captured = capsys.readouterr()
    assert "fit_sample_masks" not in captured.err + captured.out


def test_latent_attention_uses_the_baselines_given():
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(10))
    explainer = LatentAttention(model, beta=0.05, steps=5, seed=0)
    b = torch.full((1, 4), 2.0)
    expected = attribute(model, x, "sample_masks", baselines=b, reduce="none", beta=0.05,
                         steps=5, seed=0).maps
    at_zero = attribute(model, x, "sample_masks", reduce="none", beta=0.05, steps=5,
                        seed=0).maps
    got = explainer.attribute(x, baselines=b)
    assert torch.equal(got, expected)
    assert not torch.equal(got, at_zero)


# ----------------------------------------------------------------------------- settings


def test_image_mask_settings_values():
    assert image_mask_settings(448, 448) == (20.0, (1, 56, 56))
    assert image_mask_settings(112, 224) == (10.0, (1, 14, 28))
    assert image_mask_settings(16, 16) == (1.0, (1, 8, 8))
    assert image_mask_settings(4, 20) == (1.0, (1, 4, 8))


def test_sample_mask_defaults_for_flat_inputs():
    model = nn.Linear(3, 2)
    x = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    settings = sample_mask_defaults(model, x)
    assert settings["mask_shape"] == (3,)
    assert settings["lr"] == 0.1
    assert settings["steps"] == 50
    assert settings["tv"] == 0.0
    assert torch.equal(settings["noise"](x, None), torch.tensor([[2.0, 3.0, 4.0]] * 2))
    one = sample_mask_defaults(model, x[:1])["noise"]
    assert torch.equal(one(x[:1], None), torch.zeros(1, 3))
    three = torch.tensor([[0.0, 3.0, 6.0], [3.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    assert torch.equal(sample_mask_defaults(model, three)["noise"](three, None),
                       torch.tensor([[1.0, 1.0, 3.0]] * 3))


def test_sample_mask_defaults_beta_is_half_of_d_full_with_a_seeded_draw():
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(11))
    betas = {sample_mask_defaults(model, x, noise.uniform(), seed=3)["beta"] for _ in range(2)}
    assert len(betas) == 1
    other = sample_mask_defaults(model, x, noise.uniform(), seed=4)["beta"]
    assert other not in betas


# ----------------------------------------------------------------------------- partition


def test_patch_partition_of_a_wide_image_with_patch_1_numbers_every_pixel():
    assert torch.equal(patch_partition((1, 2, 3), 1)[0, 0], torch.arange(6).view(2, 3))
    wide = patch_partition((1, 2, 4), 2)[0, 0]
    assert torch.equal(wide, torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]))


@pytest.mark.parametrize("patch", [0, -1, True, 2.0])
def test_patch_partition_refuses_a_patch_that_is_not_a_positive_int(patch):
    with pytest.raises(ValueError, match="positive int"):
        patch_partition((1, 4, 4), patch)


# ----------------------------------------------------------------------------- explain_func


def test_explain_func_converts_arrays_to_the_models_dtype():
    model = nn.Linear(3, 2).double()
    explain = explain_func("saliency")
    out = explain(model, np.ones((2, 3), dtype=np.float32), np.array([0, 1]))
    assert out.dtype == np.float64
    assert np.allclose(out, model.weight.detach().abs().numpy())


def test_explain_func_with_a_model_without_parameters_uses_the_default_dtype():
    out = explain_func("saliency")(Flat(), np.ones((2, 3), dtype=np.int64), np.array([0, 2]))
    assert out.dtype == np.float32
    assert np.array_equal(out, np.array([[1.0, 0, 0], [0, 0, 1.0]], dtype=np.float32))
