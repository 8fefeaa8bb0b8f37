"""Tests of fit_lan and fit_sample_masks on tiny models whose right answer is known."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lanlib
from lanlib import noise
from lanlib.chapters.method import known_pixels_task
from lanlib.metrics import auroc
from lanlib.nets import MLPMaskNet


@pytest.fixture(scope="module")
def task():
    return known_pixels_task(256, shape=(1, 12, 12), relevant=6, seed=0)


def _truth_auroc(masks, truth):
    imp = lanlib.importance(masks)
    return auroc(imp, truth.expand_as(imp))


def test_sample_masks_single_out_the_pixels_the_classifier_reads(task):
    masks = lanlib.fit_sample_masks(task.model, task.inputs, noise.bootstrap(task.inputs),
                                    beta=0.1, steps=300, lr=0.1, seed=0, progress=False)
    assert masks.shape == task.inputs.shape
    assert masks.min() >= 0 and masks.max() <= 1
    assert _truth_auroc(masks, task.truth) >= 0.95


def test_a_small_lan_singles_out_the_pixels_the_classifier_reads(task):
    lan = MLPMaskNet((1, 12, 12), hidden=(64,))
    history = lanlib.History()
    lanlib.fit_lan(task.model, lan, task.inputs, noise.bootstrap(task.inputs), beta=0.1,
                   steps=500, lr=1e-3, batch_size=64, seed=0, progress=False, history=history)
    # inputs never seen in training: another stream, and no row equal to a training row
    held_out = torch.rand(128, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    assert torch.cdist(held_out.flatten(1), task.inputs.flatten(1)).min() > 0.5
    with torch.no_grad():
        masks = lan(held_out)
    assert _truth_auroc(masks, task.truth) >= 0.95
    assert len(history) == 500
    assert history.objective[-1] < history.objective[0]


def test_batched_sample_masks_equal_one_at_a_time(task):
    x = task.inputs[:8]
    kwargs = dict(beta=0.1, steps=60, lr=0.1, progress=False, seed=0)
    constant = noise.constant(0.5)  # deterministic noise: the trajectories must coincide
    batched = lanlib.fit_sample_masks(task.model, x, constant, **kwargs)
    single = torch.cat([lanlib.fit_sample_masks(task.model, x[i:i + 1], constant, **kwargs)
                        for i in range(len(x))])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)

    # with random noise the draws differ, but the quality must not
    boot = noise.bootstrap(task.inputs)
    batched = lanlib.fit_sample_masks(task.model, x, boot, **kwargs)
    single = torch.cat([lanlib.fit_sample_masks(task.model, x[i:i + 1], boot, **kwargs)
                        for i in range(len(x))])

    def score(masks):
        terms = lanlib.objective(task.model, x, masks, boot, beta=0.1,
                                 generator=torch.Generator().manual_seed(5))
        return terms["objective"].mean().item()

    assert score(batched) == pytest.approx(score(single), abs=0.02)


def test_coarse_and_channel_shared_mask_shape():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    model(torch.rand(1, 3, 16, 16))
    x = torch.rand(3, 3, 16, 16)
    masks = lanlib.fit_sample_masks(model, x, noise.uniform(), beta=1.0, steps=3,
                                    mask_shape=(1, 4, 4), progress=False, seed=0)
    assert masks.shape == (3, 1, 4, 4)
    with pytest.raises(ValueError, match="one entry per input dimension"):
        lanlib.fit_sample_masks(model, x, noise.uniform(), beta=1.0, steps=1, mask_shape=(4, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        lanlib.fit_sample_masks(model, x, noise.uniform(), beta=1.0, steps=1,
                                mask_shape=(2, 4, 4))


class _Const(nn.Module):
    def __init__(self, shape, value=0.5):
        super().__init__()
        self.shape, self.value = shape, value
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.full((len(x), *self.shape), self.value) + 0 * self.p


def _snapshot(model):
    return copy.deepcopy(model.state_dict())


@pytest.mark.parametrize("variant", ["lan", "sample"])
def test_model_unchanged_and_mode_and_flags_restored(variant):
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.2), nn.Linear(8, 3))
    model.train()
    model[0].bias.requires_grad_(False)
    before = _snapshot(model)
    x = torch.rand(32, 5)
    if variant == "lan":
        lanlib.fit_lan(model, MLPMaskNet((5,), hidden=(8,)), x, noise.uniform(), beta=1.0,
                       steps=5, batch_size=8, progress=False, seed=0)
    else:
        lanlib.fit_sample_masks(model, x, noise.uniform(), beta=1.0, steps=5, progress=False)
    assert model.training and model[1].training
    assert model[0].weight.requires_grad and not model[0].bias.requires_grad
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_model_mode_restored_when_the_call_raises():
    model = nn.Linear(4, 2).train()
    with pytest.raises(ValueError, match=r"LAN's output must lie in \[0, 1\]"):
        lanlib.fit_lan(model, _Const((4,), value=2.0), torch.rand(8, 4), noise.uniform(),
                       beta=1.0, steps=2, progress=False)
    assert model.training and model.weight.requires_grad


class _Recording(nn.Module):
    """A LAN that keeps every batch it is given."""

    def __init__(self, lan):
        super().__init__()
        self.lan, self.seen = lan, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.lan(x)


def _rows(batch, inputs):
    """The indices in ``inputs`` of the rows of ``batch`` (each must be one of them)."""
    equal = (batch.flatten(1)[:, None] == inputs.flatten(1)[None]).all(-1)
    assert (equal.sum(1) == 1).all(), "a batch holds a row that is not an input"
    return equal.float().argmax(1).tolist()


def test_fit_lan_reads_tensors_datasets_and_dataloaders_by_value_and_is_seeded():
    task = known_pixels_task(64, shape=(1, 4, 4), relevant=3, seed=2)
    pairs = TensorDataset(task.inputs, task.labels)
    in_order = DataLoader(pairs, batch_size=16, shuffle=False)
    seen, histories = {}, {}
    for name, data in (("tensor", task.inputs), ("dataset", pairs), ("loader", in_order)):
        torch.manual_seed(0)
        lan = _Recording(MLPMaskNet((1, 4, 4), hidden=(8,)))
        first = lan.lan(task.inputs).detach()  # the untrained LAN's masks
        histories[name] = lanlib.History()
        lanlib.fit_lan(task.model, lan, data, noise.uniform(), beta=0.1, steps=8, batch_size=16,
                       seed=3, progress=False, history=histories[name])
        seen[name] = [_rows(batch, task.inputs) for batch in lan.seen]
        assert len(seen[name]) == 8 and all(len(rows) == 16 for rows in seen[name])
        # the first step's mean mask is the untrained LAN's on exactly that batch
        assert histories[name].mask_mean[0] == pytest.approx(first[seen[name][0]].mean().item(),
                                                             abs=1e-6)
    everything = list(range(64))
    for name in ("tensor", "dataset"):  # shuffled: each pass of 4 batches sees every row once
        for start in (0, 4):
            assert sorted(sum(seen[name][start:start + 4], [])) == everything, name
        assert sum(seen[name][:4], []) != everything, f"{name}: the batches were not shuffled"
        assert sum(seen[name][:4], []) != sum(seen[name][4:], []), f"{name}: the same order twice"
    assert sum(seen["loader"], []) == everything * 2  # the DataLoader's own order, twice

    torch.manual_seed(0)
    again, other = lanlib.History(), lanlib.History()
    lanlib.fit_lan(task.model, MLPMaskNet((1, 4, 4), hidden=(8,)), task.inputs, noise.uniform(),
                   beta=0.1, steps=8, batch_size=16, seed=3, progress=False, history=again)
    assert again.objective == histories["tensor"].objective
    torch.manual_seed(0)
    lanlib.fit_lan(task.model, MLPMaskNet((1, 4, 4), hidden=(8,)), task.inputs, noise.uniform(),
                   beta=0.1, steps=8, batch_size=16, seed=4, progress=False, history=other)
    assert other.objective != histories["tensor"].objective


def test_fit_lan_works_on_a_dataset_smaller_than_a_batch():
    model = nn.Linear(3, 2)
    torch.manual_seed(0)
    lan = _Recording(MLPMaskNet((3,), hidden=(4,)))
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in lan.parameters()]
    history = lanlib.History()
    lanlib.fit_lan(model, lan, x, noise.uniform(), beta=1.0, steps=3, batch_size=64,
                   progress=False, history=history)
    assert len(history) == 3
    assert [sorted(_rows(batch, x)) for batch in lan.seen] == [list(range(5))] * 3  # all rows
    assert all(not torch.equal(a, b) for a, b in zip(before, lan.parameters(), strict=True))


class _ReturnsTuple(nn.Module):
    def forward(self, x):
        return x.sum(1), x.mean(1)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(inputs=torch.zeros(4, 3, dtype=torch.long)), TypeError, "floating point"),
    (dict(inputs=torch.tensor([[0.0, float("nan"), 1.0]])), ValueError, "NaN"),
    (dict(inputs=[[0.0, 1.0, 2.0]]), TypeError, "torch.Tensor"),
    (dict(beta=0.0), ValueError, "beta must be a positive number"),
    (dict(beta=-1.0), ValueError, "beta must be a positive number"),
    (dict(steps=0), ValueError, "steps must be an integer >= 1"),
    (dict(lr=0.0), ValueError, "lr must be a positive number"),
    (dict(model=_ReturnsTuple()), TypeError, "must return a tensor"),
    (dict(noise=lambda x, generator=None: torch.zeros(2, 5)), ValueError,
     "noise of shape .* does not broadcast"),
    (dict(init=1.0), ValueError, "init must lie strictly between 0 and 1"),
])
def test_sample_masks_bad_input_gives_a_clear_error(kwargs, error, message):
    args = dict(model=nn.Linear(3, 2), inputs=torch.rand(4, 3), noise=noise.uniform(),
                beta=1.0, steps=2, lr=0.1, progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        lanlib.fit_sample_masks(args.pop("model"), args.pop("inputs"), args.pop("noise"), **args)


@pytest.mark.parametrize("lan, data, error, message", [
    (_Const((2,)), torch.rand(8, 3), ValueError, "the LAN's output of shape .* does not broadcast"),
    (_Const((3,), value=-0.1), torch.rand(8, 3), ValueError, r"must lie in \[0, 1\]"),
    (_Const((3,)), torch.zeros(8, 3, dtype=torch.int64), TypeError, "floating point"),
    (_Const((3,)), [1, 2, 3], TypeError, "data must be a tensor"),
    (lambda x: x, torch.rand(8, 3), TypeError, "lan must be a torch.nn.Module"),
    (nn.Sigmoid(), torch.rand(8, 3), ValueError, "no trainable parameters"),
])
def test_fit_lan_bad_input_gives_a_clear_error(lan, data, error, message):
    with pytest.raises(error, match=message):
        lanlib.fit_lan(nn.Linear(3, 2), lan, data, noise.uniform(), beta=1.0, steps=2,
                       progress=False)


def test_fit_over_beta_matches_separate_fits():
    model = nn.Linear(4, 2)  # reads only input element 0 (class 0 if positive)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[0, 0], model.weight[1, 0] = 5.0, -5.0
        model.bias.zero_()
    x = torch.tensor([[1.0, 0.3, -0.2, 0.5], [0.5, -1.0, 0.1, 0.2]])
    zero = noise.constant(0.0)
    betas = [0.05, 0.5]
    both = lanlib.fit_sample_masks_over_beta(model, x, zero, betas, steps=60, lr=0.1, seed=0,
                                            progress=False)
    assert both.shape == (2, 2, 4)
    for k, beta in enumerate(betas):
        alone = lanlib.fit_sample_masks(model, x, zero, beta=beta, steps=60, lr=0.1, seed=0,
                                        progress=False)
        assert torch.allclose(both[k], alone, atol=1e-3)
    assert both[1].mean() > both[0].mean()  # a larger beta, a larger mask


@pytest.mark.parametrize("betas", [0.5, "0.5", None])
def test_beta_sweep_wants_a_sequence(betas):
    model = torch.nn.Linear(4, 3)
    with pytest.raises(TypeError, match="betas must be a sequence"):
        lanlib.fit_sample_masks_over_beta(model, torch.rand(2, 4), lanlib.noise.uniform(),
                                          betas, steps=2, progress=False)
