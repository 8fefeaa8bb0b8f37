"""Tests of lanlib.cache.load_or_train: train once, then load; refuse wrong or damaged files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lanlib import noise, seeded
from lanlib.cache import (
    CheckpointMismatchError,
    cached_classifier,
    cached_lan,
    checkpoint_path,
    load_or_train,
)
from lanlib.data import CorruptFileError
from lanlib.nets import MLPMaskNet

CONFIG = {"hidden": 3, "lr": 0.1, "layers": [2, 3]}


class Recorder:
    """build/train callables that count their calls; training sets known weights."""

    def __init__(self):
        self.trained = 0

    def build(self, config):
        return nn.Sequential(nn.Linear(2, config["hidden"]), nn.Dropout(0.5))

    def train(self, module, config):
        self.trained += 1
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.fill_(config["lr"])


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path))
    return tmp_path


def test_trains_once_then_loads(root, capsys):
    recorder = Recorder()
    module, loaded = load_or_train("mlp", CONFIG, recorder.build, recorder.train)
    path = checkpoint_path("mlp", CONFIG)
    assert not loaded and recorder.trained == 1 and path.is_file()
    assert path.parent == root / "checkpoints" and path.name.startswith("mlp-")
    out = capsys.readouterr().out
    assert out.startswith("lanlib: trained mlp") and "saved to $LANLIB_DATA_DIR/checkpoints/" in out

    again, loaded = load_or_train(
        "mlp", dict(reversed(CONFIG.items())), recorder.build, recorder.train
    )
    assert loaded and recorder.trained == 1
    assert capsys.readouterr().out == (  # printed without the machine's folders
        f"lanlib: loaded mlp from $LANLIB_DATA_DIR/checkpoints/{path.name}\n")
    assert torch.equal(again[0].weight, module[0].weight)
    assert torch.all(again[0].weight == 0.1)
    assert not again.training and not module.training  # eval() either way
    assert [p.name for p in root.rglob("*.tmp")] == []


def test_other_config_other_file(root, capsys):
    recorder = Recorder()
    load_or_train("mlp", CONFIG, recorder.build, recorder.train, verbose=False)
    other = {**CONFIG, "lr": 0.2}
    module, loaded = load_or_train("mlp", other, recorder.build, recorder.train, verbose=False)
    assert not loaded and recorder.trained == 2
    assert checkpoint_path("mlp", other) != checkpoint_path("mlp", CONFIG)
    assert capsys.readouterr().out == ""


def test_explicit_root(tmp_path):
    recorder = Recorder()
    load_or_train("mlp", CONFIG, recorder.build, recorder.train, root=tmp_path / "r", verbose=False)
    assert checkpoint_path("mlp", CONFIG, root=tmp_path / "r").is_file()


@pytest.mark.parametrize(
    ("name", "config", "error"),
    [
        ("mlp", {"fn": print}, TypeError),
        ("mlp", {"x": float("nan")}, TypeError),
        ("mlp", [1, 2], TypeError),
        ("../escape", CONFIG, ValueError),
        ("", CONFIG, ValueError),
    ],
)
def test_bad_name_or_config(root, name, config, error):
    recorder = Recorder()
    with pytest.raises(error):
        load_or_train(name, config, recorder.build, recorder.train)
    assert recorder.trained == 0


def test_config_mismatch_under_same_key(root):
    recorder = Recorder()
    load_or_train("mlp", CONFIG, recorder.build, recorder.train, verbose=False)
    other = {**CONFIG, "hidden": 3, "layers": [9]}
    checkpoint_path("mlp", CONFIG).rename(checkpoint_path("mlp", other))
    with pytest.raises(CheckpointMismatchError, match="not the requested"):
        load_or_train("mlp", other, recorder.build, recorder.train)


def test_changed_architecture(root):
    recorder = Recorder()
    load_or_train("mlp", CONFIG, recorder.build, recorder.train, verbose=False)
    with pytest.raises(CheckpointMismatchError, match="does not fit"):
        load_or_train("mlp", CONFIG, lambda config: nn.Linear(2, 5), recorder.train)


def test_truncated_checkpoint(root):
    recorder = Recorder()
    load_or_train("mlp", CONFIG, recorder.build, recorder.train, verbose=False)
    path = checkpoint_path("mlp", CONFIG)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match="(?s)truncated or damaged.*Delete it"):
        load_or_train("mlp", CONFIG, recorder.build, recorder.train)
    assert recorder.trained == 1


def test_altered_checkpoint(root):
    recorder = Recorder()
    load_or_train("mlp", CONFIG, recorder.build, recorder.train, verbose=False)
    path = checkpoint_path("mlp", CONFIG)
    payload = torch.load(path, weights_only=True)
    payload["tensors"]["0.weight"][0, 0] = 7.0
    torch.save(payload, path)
    with pytest.raises(CorruptFileError, match="damaged"):
        load_or_train("mlp", CONFIG, recorder.build, recorder.train)


def test_failed_training_saves_nothing(root):
    def crash(module, config):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_or_train("mlp", CONFIG, Recorder().build, crash)
    assert not checkpoint_path("mlp", CONFIG).exists()


def test_save_failure_returns_the_trained_network_with_a_warning(root, monkeypatch, capsys):
    import lanlib.cache

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(lanlib.cache, "save_tensor_file", refuse)
    recorder = Recorder()
    with pytest.warns(RuntimeWarning, match="could not save it"):
        module, loaded = load_or_train("mlp", CONFIG, recorder.build, recorder.train)
    assert not loaded and recorder.trained == 1 and torch.all(module[0].weight == 0.1)
    out = capsys.readouterr().out
    assert out.startswith("lanlib: trained mlp in ") and out.endswith(" s, NOT saved\n")
    assert not checkpoint_path("mlp", CONFIG).exists()


X = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


def test_cached_classifier_trains_under_its_seed_once_then_loads(root):
    calls = []

    def data():
        calls.append(1)
        return X, Y

    first, key, loaded = cached_classifier("f", lambda key: nn.Linear(2, 2), data,
                                           config={"data": "halfplane"}, steps=3, lr=0.05,
                                           seed=4, verbose=False)
    assert not loaded and calls == [1] and not first.training
    assert key == {"data": "halfplane", "train": {"steps": 3, "lr": 0.05, "batch_size": 64,
                                                  "weight_decay": 0.0, "seed": 4}}
    again, key_again, loaded = cached_classifier("f", lambda key: nn.Linear(2, 2), data,
                                                 config={"data": "halfplane"}, steps=3,
                                                 lr=0.05, seed=4, verbose=False)
    assert loaded and calls == [1] and key_again == key  # loading never builds the data
    assert torch.equal(again.weight, first.weight)
    with seeded(4):
        untrained = nn.Linear(2, 2)
    assert not torch.equal(untrained.weight, first.weight)  # trained from that start
    other, _, loaded = cached_classifier("f", lambda key: nn.Linear(2, 2), (X, Y),
                                         config={"data": "halfplane"}, steps=3, lr=0.05,
                                         seed=5, verbose=False)
    assert not loaded  # another seed, another key


def test_cached_lan_trains_once_then_loads(root):
    model = nn.Linear(2, 2)
    build = lambda key: MLPMaskNet((2,), hidden=(3,))  # noqa: E731
    options = dict(explains={"f": 1}, config={"lan": "mlp"}, beta=0.1, steps=2, seed=1,
                   batch_size=8, verbose=False)
    lan, loaded = cached_lan("lan", model, build, lambda: X, noise.constant(0.0), **options,
                             loss="mse")
    assert not loaded and not lan.training
    with seeded(1):
        untrained = build(None)
    assert not torch.equal(untrained.net[1].weight, lan.net[1].weight)
    again, loaded = cached_lan("lan", model, build, X, noise.constant(0.0), **options,
                               loss="mse")
    assert loaded and torch.equal(again.net[1].weight, lan.net[1].weight)
    _, loaded = cached_lan("lan", model, build, X, noise.constant(0.0), **options)
    assert not loaded  # the fit options are part of the key
    mse = torch.nn.functional.mse_loss
    function, loaded = cached_lan("lan-fn", model, build, X, noise.constant(0.0), **options,
                                  loss=lambda ref, out: mse(out, ref, reduction="none").sum(1))
    assert not loaded  # a loss function trains (it is described in config, not hashed)
    _, loaded = cached_lan("lan-fn", model, build, X, noise.constant(0.0), **options,
                           loss=lambda ref, out: mse(out, ref, reduction="none").sum(1))
    assert loaded
