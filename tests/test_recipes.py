"""The one load-or-train recipe for classifiers and LANs, and the chapters' one setup call."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lanlib
from lanlib import book, nets, noise
from lanlib.cache import cached_classifier, cached_lan, checkpoint_path


@pytest.fixture
def halfplane():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 2, generator=g)
    return x, (x[:, 0] > 0).long()


def _linear(key):
    return nn.Linear(2, 2)


def test_classifier_trained_once_then_loaded(tmp_path, halfplane):
    calls = []

    def data():
        calls.append(1)
        return halfplane

    first, key, loaded = cached_classifier("f", _linear, data, config={"task": "halfplane"},
                                           steps=60, lr=0.05, root=tmp_path, verbose=False)
    assert not loaded and calls == [1]
    assert key == {"task": "halfplane", "train": {"steps": 60, "lr": 0.05, "batch_size": 64,
                                                  "weight_decay": 0.0, "seed": 0}}
    assert checkpoint_path("f", key, tmp_path).is_file()
    x, y = halfplane
    assert lanlib.train.accuracy(first, x, y) > 0.9
    again, key2, loaded = cached_classifier("f", _linear, data, config={"task": "halfplane"},
                                            steps=60, lr=0.05, root=tmp_path, verbose=False)
    assert loaded and key2 == key and calls == [1]  # the data are not even built
    assert not again.training
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_classifier_depends_on_seed_and_settings_only(tmp_path, halfplane):
    def fit(root, **kw):
        return cached_classifier("f", _linear, halfplane, config={}, steps=20, lr=0.05,
                                 root=root, verbose=False, **kw)[0]

    torch.manual_seed(123)  # the global generator must not matter
    a = fit(tmp_path / "a", seed=3)
    torch.manual_seed(456)
    b = fit(tmp_path / "b", seed=3)
    c = fit(tmp_path / "c", seed=4)
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(a.weight, c.weight)
    _, key, loaded = cached_classifier("f", _linear, halfplane, config={}, steps=21, lr=0.05,
                                       root=tmp_path / "a", verbose=False, seed=3)
    assert not loaded and key["train"]["steps"] == 21  # another setting, another network


def test_lan_cached_per_explained_model(tmp_path, halfplane):
    x, _ = halfplane
    f, key, _ = cached_classifier("f", _linear, halfplane, config={}, steps=30, lr=0.05,
                                  root=tmp_path, verbose=False)

    def build(cfg):
        return nets.MLPMaskNet((2,), hidden=(8,))

    kwargs = dict(config={"noise": "zeros"}, beta=0.1, steps=20, root=tmp_path, verbose=False)
    lan, loaded = cached_lan("lan", f, build, x, noise.constant(0.0), explains=key, **kwargs)
    assert not loaded and not lan.training
    masks = lan(x[:5])
    assert masks.shape == (5, 2) and bool(((masks >= 0) & (masks <= 1)).all())
    again, loaded = cached_lan("lan", f, build, x, noise.constant(0.0), explains=key, **kwargs)
    assert loaded and torch.equal(again(x[:5]), masks)
    other = {**key, "task": "another F"}
    _, loaded = cached_lan("lan", f, build, x, noise.constant(0.0), explains=other, **kwargs)
    assert not loaded


def test_lan_options_must_be_json_or_a_function(tmp_path, halfplane):
    x, _ = halfplane
    args = ("lan", _linear({}), lambda c: nets.MLPMaskNet((2,)), x, noise.constant(0.0))
    kwargs = dict(explains={}, config={"loss": "squared error"}, beta=0.1, steps=2,
                  root=tmp_path, verbose=False)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        cached_lan(*args, **kwargs, tv=torch.tensor(0.1))
    assert not list(tmp_path.rglob("*.pt"))  # nothing half-written
    # A loss function cannot be hashed: it is left out of the key, described in config.
    lan, loaded = cached_lan(*args, **kwargs, loss=lambda r, o: (r - o).pow(2).sum(1))
    assert not loaded
    _, loaded = cached_lan(*args, **kwargs, loss=lambda r, o: (r - o).abs().sum(1))
    assert loaded


def test_setup_resolves_seeds_and_limits_threads():
    threads = torch.get_num_threads()
    try:
        run = book.setup("auto", seed=5, device="cpu")
        assert run == book.Setup("quick", torch.device("cpu"), 5)
        assert torch.get_num_threads() == 1
        first = torch.rand(3)
        book.setup("quick", seed=5, device="cpu", threads=None)
        assert torch.equal(torch.rand(3), first)  # the global generator is seeded
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"seed": 1.5}, TypeError), ({"seed": True}, TypeError), ({"seed": "0"}, TypeError),
    ({"profile": "fast"}, ValueError), ({"device": "tpu"}, ValueError),
])
def test_setup_rejects_bad_parameters(kwargs, error):
    with pytest.raises(error):
        book.setup(**{"profile": "quick", "seed": 0, "device": "cpu", **kwargs})


@pytest.mark.parametrize("threads", [0, -1, "2", 1.5, True])
def test_setup_rejects_bad_thread_counts(threads):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        book.setup("quick", seed=0, device="cpu", threads=threads)
