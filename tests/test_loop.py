"""Value tests of lanlib.loop: the batch stream, seeding, devices and the history."""

import itertools

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from lanlib import loop
from lanlib.loop import History, batches, named_device, seeded

CPU = torch.device("cpu")
DATA = torch.arange(10.0).reshape(10, 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def values(batch: torch.Tensor) -> list[int]:
    return [int(v) for v in batch.flatten()]


def test_tensor_batches_follow_a_fresh_permutation_each_pass():
    stream = batches(DATA, 4, gen(3), CPU)
    g = gen(3)
    for _ in range(3):  # each pass: a new permutation, cut into two batches of 4
        order = torch.randperm(10, generator=g).tolist()
        assert values(next(stream)) == order[:4]
        assert values(next(stream)) == order[4:8]


def test_the_tail_of_a_tensor_is_seen_over_the_passes():
    seen = set()
    for batch in itertools.islice(batches(DATA, 4, gen(0), CPU), 12):
        seen |= set(values(batch))
    assert seen == set(range(10))


def test_a_batch_larger_than_the_data_is_the_whole_data_shuffled():
    first = next(batches(DATA, 64, gen(1), CPU))
    assert values(first) == torch.randperm(10, generator=gen(1)).tolist()


def test_pairs_stay_aligned_and_labels_are_asked_for():
    labels = torch.arange(10) * 10
    x, y = next(batches((DATA, labels), 5, gen(2), CPU, labels=True))
    assert (y == x.flatten().long() * 10).all() and len(x) == 5
    assert next(batches([DATA, labels], 5, gen(2), CPU)).shape == (5, 1)  # inputs only
    with pytest.raises(ValueError, match="10 inputs but 3 labels"):
        next(batches((DATA, labels[:3]), 5, gen(2), CPU))
    with pytest.raises(ValueError, match="pass \\(inputs, labels\\)"):
        next(batches(DATA, 5, gen(2), CPU, labels=True))


def test_a_dataset_is_shuffled_from_the_generator_and_drops_a_short_last_batch():
    data = TensorDataset(DATA, torch.arange(10))
    stream = batches(data, 4, gen(4), CPU)
    one_pass = [values(next(stream)) for _ in range(2)]
    assert all(len(b) == 4 for b in one_pass)
    flat = one_pass[0] + one_pass[1]
    assert len(set(flat)) == 8 and flat != sorted(flat)
    again = batches(data, 4, gen(4), CPU)
    assert [values(next(again)) for _ in range(2)] == one_pass
    # fewer samples than a batch: one short batch, not none
    assert sorted(values(next(batches(TensorDataset(DATA[:3]), 8, gen(0), CPU)))) == [0, 1, 2]
    x, y = next(batches(data, 4, gen(4), CPU, labels=True))
    assert (x.flatten().long() == y).all()


def test_a_shuffling_dataloader_is_shuffled_from_the_generator_not_the_global_state():
    loader = DataLoader(TensorDataset(DATA), batch_size=10, shuffle=True)
    state = torch.random.get_rng_state()
    first = values(next(batches(loader, 1, gen(5), CPU)))
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(123)  # the global state does not matter
    assert values(next(batches(loader, 1, gen(5), CPU))) == first
    assert values(next(batches(loader, 1, gen(6), CPU))) != first
    assert sorted(first) == list(range(10)) and first != list(range(10))


def test_a_dataloader_with_its_own_generator_keeps_its_order():
    loader = DataLoader(DATA, batch_size=10, shuffle=True, generator=gen(9))
    expected = values(next(iter(DataLoader(DATA, batch_size=10, shuffle=True,
                                           generator=gen(9)))))
    assert values(next(batches(loader, 1, gen(0), CPU))) == expected
    plain = DataLoader(TensorDataset(DATA), batch_size=4)
    stream = batches(plain, 1, gen(0), CPU)
    assert [values(next(stream)) for _ in range(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9],
                                                        [0, 1, 2, 3]]


class _Stream(IterableDataset):
    def __iter__(self):
        yield from DATA


def test_refusals():
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        next(batches(DATA, 0, gen(0), CPU))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        next(batches(DATA, 2.0, gen(0), CPU))
    with pytest.raises(TypeError, match="IterableDataset"):
        next(batches(_Stream(), 2, gen(0), CPU))
    with pytest.raises(TypeError, match="got list"):
        next(batches([1, 2, 3], 2, gen(0), CPU))
    with pytest.raises(ValueError, match="yielded no batches"):
        next(batches(DataLoader(TensorDataset(DATA[:0]), batch_size=2), 2, gen(0), CPU))
    dropped = DataLoader(TensorDataset(DATA[:3]), batch_size=8, shuffle=True, drop_last=True)
    with pytest.raises(ValueError, match="yielded no batches"):  # shuffled, yet no batch
        next(batches(dropped, 2, gen(0), CPU))
    with pytest.raises(ValueError, match="\\(input, label\\) pairs"):
        next(batches(DataLoader(DATA, batch_size=2), 2, gen(0), CPU, labels=True))


def test_seeded_gives_the_seeds_numbers_and_restores_the_global_state():
    state = torch.random.get_rng_state()
    with seeded(4):
        inside = torch.rand(3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(inside, torch.rand(3, generator=gen(4)))
    with pytest.raises(TypeError, match="got None"), seeded(None):
        pass


def test_generator_is_seeded_or_fresh():
    assert torch.equal(torch.rand(3, generator=loop.generator(8, CPU)),
                       torch.rand(3, generator=gen(8)))
    fresh = [torch.rand(4, generator=loop.generator(None, CPU)) for _ in range(2)]
    assert not torch.equal(*fresh)


def test_devices_named_and_resolved():
    assert named_device("cpu") == CPU and named_device(CPU) == CPU
    assert named_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a device torch knows"):
        named_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="0 CUDA device"):
            named_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="MPS is not available"):
            named_device("mps")
    assert loop.resolve_device(nn.ReLU(), None) == CPU
    assert loop.resolve_device(nn.Linear(2, 2).double(), None) == CPU
    assert loop.resolve_device(nn.ReLU(), "cpu") == CPU
    assert loop.floating_dtype(nn.Linear(2, 2).double()) == torch.float64
    assert loop.floating_dtype(nn.ReLU()) is None
    bn = nn.BatchNorm1d(2)  # buffers too: an int64 counter, then float ones
    bn.weight = None
    bn.bias = None
    assert loop.floating_dtype(bn) == torch.float32


def test_explained_freezes_and_returns_the_model_home():
    model = nn.Linear(2, 2)
    model.train()
    with loop.explained(model, CPU) as inside:
        assert inside is model and not model.training
        assert not model.weight.requires_grad
    assert model.training and model.weight.requires_grad


def test_history_records_in_order_and_names_what_it_lacks():
    h = History()
    h.extend([])
    assert len(h) == 0 and repr(h) == "History(0 steps: )"
    h.extend([{"loss": torch.tensor(3.0), "mean": torch.tensor(0.5, dtype=torch.float64)},
              {"loss": torch.tensor(1.0, requires_grad=True), "mean": torch.tensor(0.25)}])
    h.extend([{"loss": torch.tensor(0.5), "mean": torch.tensor(0.0)}])
    assert h.loss == [3.0, 1.0, 0.5] and h["mean"] == [0.5, 0.25, 0.0]
    assert len(h) == 3 and repr(h) == "History(3 steps: loss, mean)"
    with pytest.raises(AttributeError, match=r"no series 'kl'; it has \['loss', 'mean'\]"):
        _ = h.kl


def test_named_device_counts_the_cuda_devices_it_is_told_of(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert named_device("auto") == torch.device("cuda") == named_device()  # auto by default
    assert named_device("cuda") == torch.device("cuda")
    assert named_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match="'cuda:2' was asked for, but this machine has 2 CUDA"):
        named_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert named_device("cuda") == torch.device("cuda")  # the one device, index 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="has 0 CUDA device"):
        named_device("cuda:0")


def test_synchronize_waits_for_a_gpu_only(monkeypatch):
    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", waited.append)
    loop.synchronize(CPU)
    assert waited == []
    loop.synchronize(torch.device("cuda:1"))
    assert waited == [torch.device("cuda:1")]


def test_a_history_survives_pickling():
    import pickle

    h = History()
    h.extend([{"loss": torch.tensor(1.5)}])
    assert pickle.loads(pickle.dumps(h)).loss == [1.5]


def test_a_pass_that_draws_from_the_global_generator_is_seeded_from_gen_exactly():
    loader = DataLoader(DATA, batch_size=10, shuffle=True)
    g = gen(5)
    seed = int(torch.randint(2**62, (1,), generator=gen(5)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        expected = values(next(iter(loader)))
    assert values(next(batches(loader, 1, g, CPU))) == expected
    # a sampler without batches (batch_size=None) that shuffles from the global state too
    rows = DATA.reshape(10, 1, 1)  # each item is then a batch of one
    single = DataLoader(rows, batch_size=None, sampler=torch.utils.data.RandomSampler(rows))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        expected = [values(item)[0] for item in single]
    stream = batches(single, 1, gen(5), CPU)
    assert [values(next(stream))[0] for _ in range(10)] == expected


def test_a_pass_that_needs_no_seed_leaves_gen_alone():
    g = gen(0)
    for loader in (DataLoader(DATA, batch_size=4),
                   DataLoader(DATA, batch_size=4, shuffle=True, generator=gen(1))):
        next(batches(loader, 1, g, CPU))
    assert torch.equal(g.get_state(), gen(0).get_state())


@pytest.mark.parametrize("n, size", [(5, 2), (1, 1), (4, 4)])
def test_every_tensor_batch_is_full_and_a_pass_drops_only_the_short_tail(n, size):
    stream = batches(DATA[:n], size, gen(0), CPU)
    assert [len(next(stream)) for _ in range(6)] == [size] * 6


def test_workers_without_a_generator_of_their_own_are_seeded_from_gen():
    g = gen(0)
    next(batches(DataLoader(DATA, batch_size=4, num_workers=1, generator=gen(1)), 1, g, CPU))
    assert torch.equal(g.get_state(), gen(0).get_state())  # their own generator seeds them
    next(batches(DataLoader(DATA, batch_size=4, num_workers=1), 1, g, CPU))
    assert not torch.equal(g.get_state(), gen(0).get_state())  # a seed drawn from gen


def test_a_dataset_is_batched_in_the_order_its_seed_from_gen_gives():
    data = TensorDataset(DATA)
    seed = int(torch.randint(2**62, (1,), generator=gen(4)))
    loader = DataLoader(data, batch_size=4, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    expected = [values(b[0]) for b in loader]
    stream = batches(data, 4, gen(4), CPU)
    assert [values(next(stream)) for _ in range(2)] == expected
    assert len(next(stream)) == 4  # the short tail of 2 is dropped: a new pass starts
