"""Known-answer tests of lanlib.metrics and lanlib.nets (issue 21: the mutants they kill).

Each test checks a value computed by hand or a behaviour a docstring promises, on inputs
small enough to run in a few milliseconds: they run once for every mutant of the modules.
"""

import math

import pytest
import torch
from torch import nn

from lanlib import metrics, nets

# ----------------------------------------------------------------------------- auroc


def test_auroc_refuses_nan_scores_and_names_them():
    with pytest.raises(ValueError, match="scores contain NaN"):
        metrics.auroc(torch.tensor([0.1, float("nan"), 0.3]), torch.tensor([1, 0, 0]))


def test_auroc_refuses_nan_labels_and_names_them():
    with pytest.raises(ValueError, match="labels contain NaN"):
        metrics.auroc(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([1.0, float("nan"), 0.0]))


def test_auroc_with_a_single_relevant_element():
    # the one relevant element outranks two of the three others: U = 2, AUROC = 2 / 3
    scores = torch.tensor([0.5, 0.9, 0.1, 0.2])
    assert metrics.auroc(scores, torch.tensor([1, 0, 0, 0])) == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- mask_correlation


def test_mask_correlation_does_not_depend_on_the_scale_of_small_masks():
    # Pearson correlation is scale-free: tiny masks (norm far below 1) correlate like big ones
    masks = torch.tensor([[0.0, 0.01, 0.0], [0.0, 0.02, 0.0], [0.01, 0.0, 0.01]])
    expected = torch.tensor([[1.0, 1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    torch.testing.assert_close(metrics.mask_correlation(masks), expected.double())


def test_mask_correlation_of_masks_with_norms_above_one():
    masks = torch.tensor([[0.0, 3.0, 0.0, 1.0], [0.0, 6.0, 0.0, 2.0], [5.0, 0.0, 5.0, 0.0]])
    corr = metrics.mask_correlation(masks)
    assert corr[0, 1].item() == pytest.approx(1.0)
    # centred: (-1, 2, -1, 0) and (2.5, -2.5, 2.5, -2.5); dot -10, norms sqrt(6) and 5
    assert corr[0, 2].item() == pytest.approx(-10 / (math.sqrt(6) * 5))


def test_mask_correlation_treats_a_spread_at_the_threshold_as_constant():
    # centred norm exactly 1e-12 (the threshold below which a mask counts as constant)
    a = 7.071067811865475e-13
    masks = torch.tensor([[a, -a], [1.0, -1.0]], dtype=torch.float64)
    assert metrics.mask_correlation(masks).tolist() == [[1.0, 0.0], [0.0, 1.0]]


# ----------------------------------------------------------------------------- class_consistency


def _three_masks():
    """Masks 0 and 1 equal, mask 2 their opposite: corr(0, 1) = 1, corr(0, 2) = corr(1, 2) = -1."""
    return torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]])


def test_class_consistency_values_by_hand():
    stats = metrics.class_consistency(_three_masks(), torch.tensor([0, 0, 1]))
    assert stats == pytest.approx({"within": 1.0, "between": -1.0, "gap": 2.0})


def test_class_consistency_uses_every_pair_once():
    # four masks: corr(0,1) = 1 within class 0, corr(2,3) = 1 within class 1; the
    # neighbours (1, 2) differ by class and correlate -1, as do (0, 2), (0, 3), (1, 3)
    masks = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    stats = metrics.class_consistency(masks, torch.tensor([0, 0, 1, 1]))
    assert stats == pytest.approx({"within": 1.0, "between": -1.0, "gap": 2.0})
    # labels alternating: the within pairs are (0, 2) and (1, 3), not neighbours
    stats = metrics.class_consistency(masks, torch.tensor([0, 1, 0, 1]))
    assert stats["within"] == pytest.approx(-1.0)
    assert stats["between"] == pytest.approx((1.0 + 1.0 - 1.0 - 1.0) / 4)


def test_class_consistency_p_value_is_one_when_every_shuffle_ties():
    # identical masks: every relabelling has the observed gap (0), so every shuffle counts
    masks = torch.tensor([[1.0, 0.0, 2.0]]).repeat(4, 1)
    stats = metrics.class_consistency(masks, torch.tensor([0, 0, 1, 1]), permutations=6,
                                      generator=torch.Generator().manual_seed(0))
    assert stats["gap"] == 0.0
    assert stats["p_value"] == 1.0


def test_class_consistency_p_value_counts_the_shuffles_that_reach_the_gap():
    # with labels (0, 0, 1) a shuffle reaches the observed gap 2 exactly when mask 2 stays
    # the odd one out (gap 2); otherwise the gap is -1 - 0 = -1
    masks, labels = _three_masks(), torch.tensor([0, 0, 1])
    permutations = 30
    stats = metrics.class_consistency(masks, labels, permutations=permutations,
                                      generator=torch.Generator().manual_seed(3))
    at_least = round(stats["p_value"] * (permutations + 1))
    assert stats["p_value"] == at_least / (permutations + 1)
    assert 2 <= at_least < permutations + 1  # some shuffles reach it, not all


def test_class_consistency_p_value_without_a_generator():
    stats = metrics.class_consistency(_three_masks(), torch.tensor([0, 0, 1]), permutations=3)
    assert 1 / 4 <= stats["p_value"] <= 1.0


def test_class_consistency_shuffles_leave_the_global_generator_alone():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    first = metrics.class_consistency(_three_masks(), torch.tensor([0, 0, 1]), permutations=20,
                                      generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3), expected)
    again = metrics.class_consistency(_three_masks(), torch.tensor([0, 0, 1]), permutations=20,
                                      generator=torch.Generator().manual_seed(5))
    assert first == again


# ----------------------------------------------------------------------------- faithfulness


def _linear():
    """A fixed linear classifier of 4 features into 3 classes (nonlinear curves via softmax)."""
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0, 0.5, 0.0],
                                         [-1.0, 2.0, 0.0, 0.5],
                                         [0.0, 0.5, -1.0, 2.0]]))
        model.bias.zero_()
    return model


def _gaussian(inputs, generator=None):
    return torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype)


def _curve_area(model, inputs, importance, mode, steps, target, seed):
    curve = metrics.perturbation_curve(model, inputs, importance, _gaussian, mode=mode,
                                       steps=steps, target=target,
                                       generator=torch.Generator().manual_seed(seed))
    return float(curve["auc"].mean())


_X = torch.tensor([[1.0, 0.2, -0.5, 0.3], [-0.4, 1.5, 0.1, -0.2]])
_IMPORTANCE = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])


def test_faithfulness_is_the_mean_area_of_each_fill_with_a_fresh_seeded_generator():
    model, target = _linear(), torch.tensor([2, 0])  # not what F predicts
    areas = metrics.faithfulness(model, _X, _IMPORTANCE, {"g": _gaussian}, steps=5,
                                 target=target, seed=7)
    for mode in ("deletion", "insertion"):
        expected = _curve_area(model, _X, _IMPORTANCE, mode, 5, target, 7)
        assert areas[f"{mode}/g"] == pytest.approx(expected, abs=1e-12)


def test_faithfulness_defaults_are_twenty_steps_and_seed_zero():
    model = _linear()
    default = metrics.faithfulness(model, _X, _IMPORTANCE, {"g": _gaussian})
    assert default == metrics.faithfulness(model, _X, _IMPORTANCE, {"g": _gaussian},
                                           steps=20, seed=0)
    # both defaults matter on these inputs
    assert default != metrics.faithfulness(model, _X, _IMPORTANCE, {"g": _gaussian},
                                           steps=21, seed=0)
    assert default != metrics.faithfulness(model, _X, _IMPORTANCE, {"g": _gaussian},
                                           steps=20, seed=1)


# ----------------------------------------------------------------------------- known objects


def _cloud(n=1):
    """Objects (n, 1, 4, 4): the top row of every image."""
    cloud = torch.zeros(n, 1, 4, 4, dtype=torch.bool)
    cloud[:, 0, 0, :] = True
    return cloud


def test_area_shares_of_several_images():
    cloud = _cloud(2)
    cloud[1, 0, 1, :] = True  # image 1: half its area
    assert metrics.area_shares({"cloud": cloud}) == pytest.approx({"cloud": 0.375,
                                                                    "rest": 0.625})
    assert metrics.area_shares({"cloud": cloud[:, 0]}) == pytest.approx({"cloud": 0.375,
                                                                          "rest": 0.625})


def test_object_shares_with_little_importance_in_all():
    importance = torch.zeros(1, 1, 4, 4)
    importance[0, 0, 0, 1] = 0.25  # a total far below 1, all on the cloud
    importance[0, 0, 3, 3] = 0.25
    assert metrics.object_shares(importance, {"cloud": _cloud()}) == {"cloud": 0.5,
                                                                       "rest": 0.5}


def test_object_shares_of_an_image_without_importance_are_the_areas():
    shares = metrics.object_shares(torch.zeros(1, 1, 4, 4), {"cloud": _cloud()})
    assert shares == {"cloud": 0.25, "rest": 0.75}


def test_object_shares_error_names_the_object():
    with pytest.raises(ValueError, match="object mask 'cloud'"):
        metrics.object_shares(torch.ones(1, 1, 4, 4), {"cloud": torch.ones(1, 2, 4, 4)})


def test_object_auroc_error_names_the_mask():
    with pytest.raises(ValueError, match="object mask 'mask'"):
        metrics.object_auroc(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3, dtype=torch.bool))


def test_object_auroc_of_a_one_pixel_object():
    importance = torch.arange(16.0).reshape(1, 1, 4, 4)
    pixel = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    pixel[0, 0, 3, 3] = True  # the most important pixel
    assert metrics.object_auroc(importance, pixel) == 1.0


def test_object_auroc_per_image_is_float64_with_nan_where_absent():
    importance = torch.arange(32.0).reshape(2, 1, 4, 4)
    cloud = _cloud(2)
    cloud[1] = False
    values = metrics.object_auroc(importance, cloud, per_image=True)
    assert values.dtype == torch.float64
    assert values[0].item() == 0.0 and math.isnan(values[1].item())


def test_score_computes_every_aurocs_by_default():
    importance = torch.zeros(1, 1, 4, 4)
    importance[0, 0, 0, :2] = 1.0
    assert metrics.score(importance, {"cloud": _cloud()}) == {
        "cloud": 1.0, "rest": 0.0, "auroc_cloud": 0.75}


# ----------------------------------------------------------------------------- nets: layouts


def _kinds(modules):
    return [type(m).__name__ for m in modules]


def test_conv_mask_net_layout():
    net = nets.ConvMaskNet(width=4).net
    assert _kinds(net) == ["AvgPool2d", "Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU",
                           "Conv2d"]
    assert [net[i].dilation for i in (1, 3, 5)] == [(1, 1), (2, 2), (4, 4)]


def test_unet_defaults_and_conv_block_layout():
    lan = nets.UNetMaskNet()
    assert len(lan.encoder) == 4 and len(lan.decoder) == 3  # depth 3
    assert lan.encoder[0][0].out_channels == 16 and lan.head.in_channels == 16  # width 16
    for block in [*lan.encoder, *lan.decoder]:
        assert _kinds(block) == ["Conv2d", "ReLU", "Conv2d", "ReLU"]


def test_unet_accepts_the_smallest_sizes():
    lan = nets.UNetMaskNet(channels=1, width=1, depth=0)
    assert lan(torch.rand(1, 1, 3, 2)).shape == (1, 1, 3, 2)


@pytest.mark.parametrize("option, value", [("channels", 0), ("channels", True),
                                           ("width", 0), ("depth", -1), ("downsample", 0)])
def test_unet_error_names_the_bad_option(option, value):
    with pytest.raises(ValueError, match=f"^{option} must be an integer"):
        nets.UNetMaskNet(**{option: value})


def test_unet_refuses_an_initial_mask_of_zero():
    with pytest.raises(ValueError, match="init must lie strictly between 0 and 1"):
        nets.UNetMaskNet(width=2, depth=1, init=0)


def test_unet_downsample_two_still_gives_a_full_size_mask():
    lan = nets.UNetMaskNet(width=2, depth=1, downsample=2)
    assert lan(torch.rand(1, 3, 6, 4)).shape == (1, 1, 6, 4)


# ----------------------------------------------------------------------------- nets: values


def _randomise(module, seed):
    """Nonzero random weights (the mask nets start constant), seeded."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module


def _up(x, size):
    return nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)


def test_conv_mask_net_reads_the_centred_image():
    lan = _randomise(nets.ConvMaskNet(width=3), 0)
    x = torch.rand(2, 3, 6, 8, generator=torch.Generator().manual_seed(1))
    expected = torch.sigmoid(_up(lan.net(x - 0.5), (6, 8)))
    torch.testing.assert_close(lan(x), expected)


def test_unet_replicates_the_edge_to_pad_and_crops_back():
    lan = _randomise(nets.UNetMaskNet(width=2, depth=2), 0)
    x = torch.rand(1, 3, 5, 6, generator=torch.Generator().manual_seed(1))
    padded = nn.functional.pad(x, (0, 2, 0, 3), mode="replicate")  # to 8 x 8
    torch.testing.assert_close(lan(x), lan(padded)[..., :5, :6])


def test_unet_forward_is_the_documented_encoder_decoder():
    lan = _randomise(nets.UNetMaskNet(width=2, depth=2, downsample=2), 0)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    level0 = lan.encoder[0](x - 0.5)
    level1 = lan.encoder[1](nn.functional.max_pool2d(level0, 2))
    level2 = lan.encoder[2](nn.functional.max_pool2d(level1, 2))
    up = _up(level2, (4, 4))  # doubled, bilinear
    decoded = lan.decoder[0](torch.cat([up, level1], dim=1))  # stops one level early
    expected = torch.sigmoid(_up(lan.head(decoded), (8, 8)))
    torch.testing.assert_close(lan(x), expected)


# ----------------------------------------------------------------------------- FeatureMaskNet


def _pooling_model():
    """Images (N, 3, 8, 8) -> a 1x1 convolution -> max pooling to 4 x 4 -> 2 classes."""
    return nn.Sequential(nn.Conv2d(3, 2, 1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32, 2))


def _vector_model():
    """Vectors (N, 2): layer "0" is the identity (features = inputs), layer "1" three more."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
    return model


def test_feature_mask_net_layout_for_images():
    example = torch.rand(4, 3, 8, 8)
    lan = nets.FeatureMaskNet(_pooling_model(), ["1"], example, width=4)
    assert lan.project[0].kernel_size == (1, 1)
    assert _kinds(lan.head) == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d"]
    assert lan(example).shape == (4, 1, 8, 8)  # one mask shared by the 3 channels


def test_feature_mask_net_forward_for_images():
    example = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = _randomise(_pooling_model(), 1)
    lan = _randomise(nets.FeatureMaskNet(model, ["1"], example, width=3), 2)
    with torch.no_grad():
        features = model[1](model[0](example))  # (4, 2, 4, 4)
    standard = (features - lan.mean_0[:, None, None]) / lan.std_0[:, None, None]
    maps = _up(lan.project[0](standard), (8, 8))
    expected = torch.sigmoid(lan.head(torch.cat([maps, example - 0.5], dim=1)))
    torch.testing.assert_close(lan(example), expected)


def test_feature_mask_net_standardises_with_the_population_std():
    example = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    lan = nets.FeatureMaskNet(_vector_model(), ["0"], example, hidden=(3,))
    assert lan.mean_0.tolist() == [1.0, 2.0] and lan.std_0.tolist() == [1.0, 2.0]
    (standard,) = lan._standardised(lan._features(example))
    assert standard.tolist() == [[-1.0, -1.0], [1.0, 1.0]]


def test_feature_mask_net_with_one_example_divides_by_one():
    lan = nets.FeatureMaskNet(_vector_model(), ["0"], torch.tensor([[3.0, 5.0]]), hidden=(3,))
    assert lan.mean_0.tolist() == [3.0, 5.0] and lan.std_0.tolist() == [1.0, 1.0]


def test_feature_mask_net_mlp_with_two_hidden_layers_and_two_layers_read():
    example = torch.rand(5, 2)
    lan = nets.FeatureMaskNet(_vector_model(), ["0", "1"], example, hidden=(6, 4))
    assert [layer.out_features for layer in lan.head if isinstance(layer, nn.Linear)] == [6, 4, 2]
    assert lan.head[0].in_features == 5  # 2 + 3 features
    assert torch.allclose(lan(example), torch.full((5, 2), 0.5))


def test_feature_mask_net_runs_a_double_model_on_float_inputs():
    model = _vector_model().double()
    example = torch.rand(3, 2)
    lan = nets.FeatureMaskNet(model, ["1"], example, hidden=(3,))
    assert lan._features(example)["1"].dtype == torch.float32
    assert lan(example).dtype == torch.float32


@pytest.mark.parametrize("example", [torch.rand(4), [[0.0, 1.0]]])
def test_feature_mask_net_refuses_an_example_that_is_not_a_batch(example):
    with pytest.raises(ValueError, match="example must be a batch"):
        nets.FeatureMaskNet(_vector_model(), ["0"], example)


def test_feature_mask_net_error_names_the_model_argument():
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module"):
        nets.FeatureMaskNet(lambda x: x, ["0"], torch.rand(2, 2))


def test_feature_mask_net_error_for_vectors_from_image_inputs():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(ValueError, match=r"maps feature maps \(N, c, h, w\) for image inputs "
                                         r"\(N, C, H, W\); "):
        nets.FeatureMaskNet(model, ["1"], torch.rand(2, 3, 2, 2))


def test_feature_mask_net_error_for_feature_maps_from_vector_inputs():
    model = nn.Sequential(nn.Unflatten(1, (1, 2, 2)))
    with pytest.raises(ValueError, match=r"maps vectors \(N, D\) for inputs that are not "
                                         r"images \(N, C, H, W\); "):
        nets.FeatureMaskNet(model, ["0"], torch.rand(2, 4))


class _Pair(nn.Module):
    def forward(self, x):
        return x, x


def test_feature_mask_net_refuses_a_layer_without_a_single_tensor():
    model = nn.Sequential(nn.Linear(2, 2), _Pair())
    with pytest.raises(ValueError, match="return no single tensor"):
        nets.FeatureMaskNet(model, ["1"], torch.rand(2, 2))


def test_feature_mask_net_refuses_the_model_itself_as_a_layer():
    with pytest.raises(ValueError, match="F has no submodule named ''"):
        nets.FeatureMaskNet(_vector_model(), [""], torch.rand(2, 2))


@pytest.mark.parametrize("count, tail", [(60, "'59'"), (61, "'59' and 1 more"),
                                         (70, "'59' and 10 more")])
def test_unknown_layer_message_lists_sixty_submodules(count, tail):
    model = nn.Sequential(*(nn.Identity() for _ in range(count)))
    with pytest.raises(ValueError) as error:
        nets.FeatureMaskNet(model, ["missing"], torch.rand(2, 2))
    assert str(error.value).endswith(f"submodules are '0', '1', '2', '3', '4', "
                                     f"'5', '6', '7', '8', '9', '10', '11', '12', '13', "
                                     f"'14', '15', '16', '17', '18', '19', '20', '21', '22', "
                                     f"'23', '24', '25', '26', '27', '28', '29', '30', '31', "
                                     f"'32', '33', '34', '35', '36', '37', '38', '39', '40', "
                                     f"'41', '42', '43', '44', '45', '46', '47', '48', '49', "
                                     f"'50', '51', '52', '53', '54', '55', '56', '57', '58', "
                                     f"{tail}")


def test_coarse_mask_net_keeps_a_saturated_mask_at_one():
    # bilinear upsampling of all-ones from 3 x 3 to 7 x 7 rounds some pixels to 1 + 1.2e-7
    lan = nets.CoarseMaskNet((1, 7, 7), hidden=(2,), mask_size=3)
    last = lan.mlp.net[-2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(100.0)  # the sigmoid gives exactly 1
    mask = lan(torch.rand(2, 1, 7, 7))
    assert mask.shape == (2, 1, 7, 7) and bool((mask == 1.0).all())


def test_feature_mask_net_default_width_is_sixteen():
    lan = nets.FeatureMaskNet(_pooling_model(), ["1"], torch.rand(2, 3, 8, 8))
    assert lan.project[0].out_channels == 16 and lan.head[0].out_channels == 16
