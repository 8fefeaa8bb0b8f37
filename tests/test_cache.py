"""Tests of lanlib.cache.load_or_train: train once, then load; refuse wrong or damaged files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lanlib.cache import CheckpointMismatchError, checkpoint_path, load_or_train
from lanlib.data import CorruptFileError

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
