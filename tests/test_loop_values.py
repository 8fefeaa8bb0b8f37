"""Value tests of lanlib.noise and lanlib.loop that pin where results land and which random
state a pass over the data reads.

Device placement is checked on the "meta" device, which every torch build has: a tensor
there has a shape, a dtype and a device but no values, so a result that should land on
the device asked for and lands on the CPU instead is seen on a CPU-only machine too.
"""

import pytest
import torch

# Indexing a meta tensor imports torch's symbolic shapes (sympy) on first use, which takes
# seconds: imported here, as the tests are collected, it leaves each test milliseconds.
import torch.fx.experimental.symbolic_shapes
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from lanlib import noise
from lanlib.loop import batches, resolve_device

CPU, META = torch.device("cpu"), torch.device("meta")
DATA = torch.arange(10.0).reshape(10, 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_tensor_batches_land_on_the_device_asked_for():
    stream = batches(DATA, 4, gen(0), META)
    assert [(b.device, b.shape) for b in (next(stream), next(stream))] == [
        (META, (4, 1)), (META, (4, 1))]
    x, y = next(batches((DATA, torch.arange(10)), 4, gen(0), META, labels=True))
    assert (x.device, x.shape, y.device, y.shape, y.dtype) == (
        META, (4, 1), META, (4,), torch.int64)


def test_dataloader_batches_land_on_the_device_asked_for():
    loader = DataLoader(TensorDataset(DATA, torch.arange(10)), batch_size=4)
    x, y = next(batches(loader, 4, gen(0), META, labels=True))
    assert (x.device, y.device, x.shape, y.shape) == (META, META, (4, 1), (4,))
    x = next(batches(loader, 4, gen(0), META))
    assert (x.device, x.shape) == (META, (4, 1))


class _BufferOnly(nn.Module):
    def __init__(self, device):
        super().__init__()
        self.register_buffer("scale", torch.ones(1, device=device))


@pytest.mark.parametrize("model", [nn.Linear(2, 2, device=META), _BufferOnly(META)],
                         ids=["parameters", "buffers only"])
def test_without_a_device_a_model_is_explained_where_its_first_tensor_lives(model):
    assert resolve_device(model, None) == META
    assert resolve_device(nn.ReLU(), None) == CPU  # nothing to go by: the CPU


@pytest.mark.parametrize("pool", [DATA[:5], TensorDataset(DATA[:5])],
                         ids=["tensor", "dataset"])
def test_a_bootstrap_draw_lands_on_the_device_asked_for(pool):
    draw = noise.bootstrap(pool)._draw  # moves the drawn samples to the device
    index = torch.tensor([4, 0, 4])
    assert draw(index, CPU).flatten().tolist() == [4.0, 0.0, 4.0]
    on_meta = draw(index, META)
    assert (on_meta.device, on_meta.shape) == (META, (3, 1))


def test_a_custom_batch_sampler_that_shuffles_from_the_global_state_is_seeded_from_gen():
    # the shuffling sampler sits inside the batch sampler; DataLoader.sampler is then a
    # SequentialSampler, which does not draw
    data = TensorDataset(DATA)
    loader = DataLoader(data, batch_sampler=BatchSampler(RandomSampler(data), 10, False))
    before = torch.get_rng_state()
    first = next(batches(loader, 1, gen(3), CPU))
    assert torch.equal(torch.get_rng_state(), before)  # the global state is left alone
    assert torch.equal(next(batches(loader, 1, gen(3), CPU)), first)  # gen decides
    assert sorted(first.flatten().tolist()) == DATA.flatten().tolist()


def test_a_pass_seeded_from_gen_leaves_the_cuda_generators_alone(monkeypatch):
    # as if the machine had a GPU: the pass forks the CPU generator only
    def refuse(*args):
        raise AssertionError("a CUDA generator was read")

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state", refuse)
    loader = DataLoader(DATA, batch_size=10, shuffle=True)
    assert sorted(next(batches(loader, 1, gen(0), CPU)).flatten().tolist()) == list(range(10))

