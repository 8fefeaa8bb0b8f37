"""Tests of lanlib.attribution on tiny models whose attributions can be worked out by hand."""

import time

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient
from torch import nn

import lanlib
from lanlib import attribution, noise
from lanlib.attribution import attribute, attribute_many, explain_func, patch_partition


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
    assert out.method == "saliency"


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


# ----------------------------------------------------------------------------- masks


@pytest.fixture
def cnn():
    with lanlib.seeded(0):
        return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(3 * 6 * 6, 3))


@pytest.fixture
def lan():
    with lanlib.seeded(1):
        return nn.Sequential(nn.Conv2d(2, 1, 3, padding=1), nn.Sigmoid())


FIT = {"beta": 0.5, "steps": 6, "lr": 0.2, "seed": 3}


def test_sample_masks_are_one_minus_fit_sample_masks(cnn, x):
    # Default noise: the baselines (0), i.e. constant noise 0.
    masks = lanlib.fit_sample_masks(cnn, x, noise.constant(0.0), progress=False, **FIT)
    out = lanlib.attribute(cnn, x, "sample_masks", reduce="none", **FIT)
    assert out.method == "sample_masks" and out.maps.shape == x.shape
    assert torch.allclose(out.maps, 1 - masks, atol=1e-6)
    # Per-channel masks: the default reduce sums the channels' importances, abs_max takes
    # their maximum.
    summed = lanlib.attribute(cnn, x, "sample_masks", **FIT).maps
    assert torch.allclose(summed, (1 - masks).sum(1, keepdim=True), atol=1e-6)
    top = lanlib.attribute(cnn, x, "sample_masks", reduce="abs_max", **FIT).maps
    assert torch.allclose(top, (1 - masks).amax(1, keepdim=True), atol=1e-6)


def test_sample_masks_take_noise_baselines_and_coarse_shared_masks(cnn, x):
    uniform = lanlib.fit_sample_masks(cnn, x, noise.uniform(), mask_shape=(1, 3, 3),
                                      progress=False, **FIT)
    out = lanlib.attribute(cnn, x, "sample_masks", noise=noise.uniform(), mask_shape=(1, 3, 3),
                           **FIT).maps
    # A mask shared by the channels counts once, upsampled as in the fit.
    expected = 1 - lanlib.upsample_mask(uniform, (4, 1, 6, 6))
    assert out.shape == (4, 1, 6, 6) and torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(
        lanlib.attribute(cnn, x, "sample_masks", noise=noise.uniform(), mask_shape=(1, 3, 3),
                         reduce="abs", **FIT).maps, expected.expand_as(x), atol=1e-6)
    # A tensor baseline, one per input, is the replacement when no noise is given.
    b = x.flip(0)
    fixed = lanlib.fit_sample_masks(cnn, x, lambda inputs, generator=None: b,
                                    progress=False, **FIT)
    out = lanlib.attribute(cnn, x, "sample_masks", baselines=b, reduce="none", **FIT).maps
    assert torch.allclose(out, 1 - fixed, atol=1e-6)


def test_explicit_beta_fits_exactly_as_fit_sample_masks(cnn, x):
    # With beta given the defaults stay out: the same masks to the bit as the fit called
    # with the baselines as constant noise and the fit's own defaults.
    masks = lanlib.fit_sample_masks(cnn, x, noise.constant(0.0), beta=0.5, seed=3,
                                    progress=False, steps=8)
    out = lanlib.attribute(cnn, x, "sample_masks", reduce="none", beta=0.5, seed=3, steps=8)
    assert torch.equal(out.maps, 1 - masks)
    bounded = lanlib.fit_sample_masks(cnn, x, noise.constant(0.0), max_distortion=0.1,
                                      seed=3, progress=False, steps=8)
    out = lanlib.attribute(cnn, x, "sample_masks", reduce="none", max_distortion=0.1, seed=3,
                           steps=8)
    assert torch.equal(out.maps, 1 - bounded)


# ----------------------------------------------------------------------------- defaults


def test_defaults_follow_the_input_shape_and_the_full_distortion(cnn, x):
    settings = attribution.sample_mask_defaults(cnn, x, seed=0)
    assert settings["mask_shape"] == (1, 6, 6)  # never coarser than 8 cells a side
    assert settings["noise"].sigma == 1.0  # 10 px at 224 px, and 1 px at least
    assert settings["steps"] == attribution.DEFAULT_STEPS and settings["tv"] == 0
    with torch.no_grad():
        d_full = lanlib.objective(cnn, x, torch.ones(1, 1, 1, 1), settings["noise"],
                                  beta=1.0)["distortion"].mean().item()
    assert settings["beta"] == pytest.approx(attribution.DEFAULT_BETA_SHARE * d_full)
    big = torch.rand(2, 3, 160, 100)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    assert attribution.sample_mask_defaults(model, big)["mask_shape"] == (1, 20, 12)
    # The model and a batch are enough; options given override the defaults one by one.
    out = lanlib.attribute(cnn, x, "sample_masks", seed=0, steps=5, reduce="none").maps
    expected = lanlib.fit_sample_masks(cnn, x, progress=False, seed=0,
                                       **{**settings, "steps": 5})
    assert torch.equal(out, (1 - lanlib.upsample_mask(expected, x)).expand_as(x))
    assert torch.equal(lanlib.LatentAttention(cnn, seed=0, steps=5).attribute(x), out)


class TextureDetector(nn.Module):
    """Logits (0, s): s is high where some 4 x 4 window holds a fine checkerboard.

    The texture's energy (squared differences of horizontal neighbours) is pooled over
    4 x 4 windows, and the strongest window decides. A blur erases the texture and
    leaves the flat grey background as it was: only the patch matters to F.
    """

    def forward(self, x):
        energy = (x[..., 1:] - x[..., :-1]).pow(2).mean(1, keepdim=True)
        pooled = nn.functional.avg_pool2d(energy, 4, stride=1).flatten(1).amax(1)
        score = 10 * (pooled - 0.3)
        return torch.stack([torch.zeros_like(score), score], dim=1)


def texture_task(n: int = 6, side: int = 32, patch: int = 8):
    """Grey images with a checkerboard patch at a different place in each: (images, truth)."""
    g = torch.Generator().manual_seed(0)
    images = 0.5 + 0.02 * torch.randn(n, 3, side, side, generator=g)
    truth = torch.zeros(n, 1, side, side, dtype=torch.bool)
    board = (torch.arange(patch)[:, None] + torch.arange(patch)[None, :]) % 2
    for i in range(n):
        r, c = torch.randint(0, side - patch, (2,), generator=g).tolist()
        images[i, :, r:r + patch, c:c + patch] = board.float()
        truth[i, :, r:r + patch, c:c + patch] = True
    return images, truth


def test_default_masks_find_a_patch_that_moves():
    images, truth = texture_task()
    model = TextureDetector()
    assert (model(images).argmax(1) == 1).all()
    maps = lanlib.attribute(model, images, "sample_masks", seed=0).maps
    assert maps.shape == truth.shape
    # Each image's own patch ranks above its background (1.0 is perfect, 0.5 chance).
    per_image = [lanlib.metrics.auroc(m, t) for m, t in zip(maps, truth, strict=True)]
    assert min(per_image) >= 0.9, per_image


class WordAverage(nn.Module):
    """A DAN reduced to its core: logits are the count-weighted mean of word vectors.

    Words 0-3 carry the class (0 and 1 vote for class 0, 2 and 3 for class 1); the
    other words have zero vectors. Like the DAN, it ignores a common factor of the counts.
    """

    def __init__(self, vocab: int = 20):
        super().__init__()
        vectors = torch.zeros(vocab, 2)
        vectors[:2, 0] = vectors[2:4, 1] = 10.0
        self.register_buffer("vectors", vectors)

    def forward(self, counts):
        return counts @ self.vectors / counts.sum(1, keepdim=True).clamp_min(1)


def word_task(n: int = 8, vocab: int = 20):
    """Posts of four filler words and one class word, a different one from post to post."""
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(n, vocab)
    signal = torch.arange(n) % 4
    for i in range(n):
        counts[i, 4 + torch.randperm(vocab - 4, generator=g)[:4]] = 1.0
        counts[i, signal[i]] = 2.0
    return counts, signal


def test_default_masks_find_the_word_that_decides_each_post():
    counts, signal = word_task()
    model = WordAverage()
    maps = lanlib.attribute(model, counts, "sample_masks", seed=0).maps
    assert maps.shape == counts.shape and 0 <= maps.min() <= maps.max() <= 1
    present = maps.masked_fill(counts == 0, -1.0)  # rank the words each post holds
    assert torch.equal(present.argmax(1), signal)
    # Against a constant 0 a uniform mask only rescales a post, which F does not see (on
    # the book's DAN such masks fail, chapter 04), so the default replaces words by the
    # batch's mean post instead.
    settings = attribution.sample_mask_defaults(model, counts)
    assert torch.equal(settings["noise"](counts), counts.mean(0, keepdim=True).expand_as(counts))


def test_defaults_run_on_the_books_dan():
    from lanlib.models.dan import DAN

    with lanlib.seeded(0):
        dan = DAN(vocab_size=30, num_classes=3)
    counts = torch.poisson(torch.full((4, 30), 0.5), generator=torch.Generator().manual_seed(0))
    out = lanlib.attribute(dan, counts, "sample_masks", seed=0, steps=5)
    assert out.maps.shape == counts.shape and 0 <= out.maps.min() <= out.maps.max() <= 1
    assert lanlib.attribute(dan, counts[:1], "sample_masks", seed=0, steps=5).maps.shape == (1, 30)


def test_a_lan_is_a_method_its_output_the_mask(cnn, lan, x):
    out = lanlib.attribute(cnn, x, lan)
    assert out.method == "Sequential"
    assert torch.allclose(out.maps, 1 - lan(x).detach(), atol=1e-6)
    assert torch.allclose(lanlib.attribute(cnn, x, lan, reduce="none").maps,
                          (1 - lan(x).detach()).expand_as(x), atol=1e-6)
    coarse = nn.Sequential(lan, nn.AvgPool2d(2))  # (N, 1, 3, 3), upsampled to 6 x 6
    expected = 1 - lanlib.upsample_mask(coarse(x).detach(), (4, 1, 6, 6))
    assert torch.allclose(lanlib.attribute(cnn, x, coarse).maps, expected, atol=1e-6)
    with pytest.raises(ValueError, match="model itself"):
        lanlib.attribute(cnn, x, cnn)
    outside = nn.Conv2d(2, 1, 1)
    with torch.no_grad():  # outputs 2 * (x0 + x1) + 1 > 1 whatever the global random state
        outside.weight.fill_(2.0)
        outside.bias.fill_(1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lanlib.attribute(cnn, x, outside)


def test_model_and_lan_are_restored(cnn, lan, x):
    cnn.train(), lan.train()
    lanlib.attribute(cnn, x, lan)
    lanlib.attribute(cnn, x, "sample_masks", **FIT)
    for module in (cnn, lan):
        assert module.training
        assert all(p.requires_grad and p.grad is None for p in module.parameters())


def test_latent_attention_has_captums_interface(cnn, x):
    masks = lanlib.fit_sample_masks(cnn, x, noise.constant(0.0), progress=False, **FIT)
    explainer = lanlib.LatentAttention(cnn, **FIT)
    first = explainer.attribute(x)
    assert isinstance(first, torch.Tensor) and first.shape == x.shape
    assert torch.allclose(first, 1 - masks, atol=1e-6)
    # target is accepted and changes nothing: the KL keeps the whole output distribution.
    assert torch.allclose(explainer.attribute(x, target=torch.tensor([0, 1, 2, 0])), first)
    shared = lanlib.LatentAttention(cnn, noise.uniform(), mask_shape=(1, 6, 6), **FIT)
    expected = lanlib.fit_sample_masks(cnn, x, noise.uniform(), mask_shape=(1, 6, 6),
                                       progress=False, **FIT)
    assert torch.allclose(shared.attribute(x, target=1), (1 - expected).expand_as(x),
                          atol=1e-6)
    with pytest.raises(TypeError, match="nn.Module"):
        lanlib.LatentAttention(lambda v: cnn(v), beta=1.0)


def test_explain_func_returns_arrays_shaped_like_the_inputs(cnn, lan, x):
    inputs, targets = x.double().numpy(), np.array([0, 1, 2, 1])
    saliency = explain_func("saliency")(cnn, inputs, targets)
    assert isinstance(saliency, np.ndarray) and saliency.shape == x.shape
    assert saliency.dtype == np.float32
    expected = attribute(cnn, x, "saliency", target=torch.tensor(targets), reduce="abs").maps
    assert np.allclose(saliency, expected.numpy(), atol=1e-6)
    # Maps reduced over the channels are repeated over them; call-time kwargs win.
    explain = explain_func("sample_masks", mask_shape=(1, 6, 6), reduce="abs_sum", **FIT)
    masks = explain(cnn, inputs, targets, steps=4)
    shared = lanlib.fit_sample_masks(cnn, x, noise.constant(0.0), mask_shape=(1, 6, 6),
                                     progress=False, **{**FIT, "steps": 4})
    assert masks.shape == x.shape and np.allclose(masks, (1 - shared).expand_as(x).numpy(),
                                                  atol=1e-6)
    assert explain_func(lan)(cnn, x, None).shape == x.shape


def test_many_takes_sample_masks_and_lans(cnn, lan, x):
    out = attribute_many(cnn, x, {"masks": "sample_masks", "lan": lan, "saliency": "saliency"},
                         options={"masks": {k: v for k, v in FIT.items() if k != "seed"}},
                         seed=FIT["seed"])
    assert list(out) == ["masks", "lan", "saliency"]
    alone = lanlib.attribute(cnn, x, "sample_masks", **FIT).maps  # seed from `seed`
    assert torch.allclose(out["masks"].maps, alone, atol=1e-6)
    assert torch.allclose(out["lan"].maps, 1 - lan(x).detach(), atol=1e-6)
    with pytest.raises(ValueError, match="two methods"):
        attribute_many(cnn, x, [lan, nn.Sequential(nn.Conv2d(2, 1, 1), nn.Sigmoid())])


# ----------------------------------------------------------------------------- time


@pytest.mark.parametrize("method", [*attribution.METHODS, "lan"])
def test_time_per_image_is_recorded_for_every_method(cnn, lan, x, method):
    options = {"n_steps": 4} if method == "integrated_gradients" else {}
    if method == "occlusion":
        options = {"window": 2, "stride": 2}
    if method == "sample_masks":
        options = FIT
    start = time.perf_counter()
    out = lanlib.attribute(cnn, x, lan if method == "lan" else method, **options)
    elapsed = time.perf_counter() - start
    # the clock runs inside the call: a positive part of the call's own wall time
    assert 0 < out.seconds <= elapsed
    assert out.seconds_per_image * len(x) == pytest.approx(out.seconds)


class Sleepy(nn.Module):
    """A classifier whose forward pass sleeps: its targets take time to predict."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.linear = nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        time.sleep(self.seconds)
        return self.linear(x.flatten(1))


def test_time_covers_the_method_and_not_the_targets(x):
    def sleeps(model, inputs, target, baselines):
        time.sleep(0.02)
        return inputs

    # The targets (one slow forward pass) are computed before the clock starts; the two
    # calls of the method (batches of 2 of the 4 inputs) are on the clock.
    out = attribute(Sleepy(0.3), x, sleeps, batch_size=2)
    assert 0.04 <= out.seconds < 0.3 and out.seconds_per_image == out.seconds / 4

    class SleepyLan(nn.Module):
        def forward(self, inputs):
            time.sleep(0.02)
            return torch.full_like(inputs[:, :1], 0.5)

    assert attribute(Sleepy(0.0), x, SleepyLan(), batch_size=2).seconds >= 0.04
    fit = attribute(Sleepy(0.0), x, "sample_masks", beta=1.0, steps=3,
                    callback=lambda step, masks: time.sleep(0.02))
    assert fit.seconds >= 0.06  # the whole fit: each of its 3 steps
