"""Known-answer tests of lanlib.cache (issue 21: the mutants they kill).

The training functions are replaced by recorders, so that these tests check what the cache
passes on and where it stores the result, in milliseconds.
"""

import hashlib
import json

import pytest
import torch
from torch import nn

import lanlib
from lanlib import cache
from lanlib.data._files import load_tensor_file


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The default data root, away from the explicit roots the tests pass."""
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "default"))
    return tmp_path / "default"


@pytest.fixture
def calls(monkeypatch):
    """Replace train_classifier and fit_lan by recorders of their arguments."""
    seen = []

    def record(*args, **kwargs):
        seen.append((args, kwargs))

    monkeypatch.setattr(cache, "train_classifier", record)
    monkeypatch.setattr(cache, "fit_lan", record)
    return seen


def test_checkpoint_key_is_the_sha256_of_the_canonical_json(tmp_path):
    config = {"b": [1, 2], "a": {"y": 1.5, "x": None}}
    text = '{"config":{"a":{"x":null,"y":1.5},"b":[1,2]},"name":"net"}'  # sorted, no spaces
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    assert cache.checkpoint_path("net", config, tmp_path) == tmp_path / "checkpoints" / (
        f"net-{key}.pt")


def test_load_or_train_reports_the_training_time_and_saves_the_version(tmp_path, capsys):
    module, loaded = cache.load_or_train("net", {"a": 1}, lambda cfg: nn.Linear(2, 2),
                                         lambda m, cfg: None, root=tmp_path)
    assert loaded is False
    assert capsys.readouterr().out.startswith("lanlib: trained net in 0.0 s, saved to ")
    _, meta = load_tensor_file(cache.checkpoint_path("net", {"a": 1}, tmp_path))
    assert meta == {"name": "net", "config": {"a": 1}, "lanlib_version": lanlib.__version__}


def test_load_or_train_says_what_it_could_not_write(tmp_path):
    (tmp_path / "checkpoints").write_text("a file where the folder should be")
    with pytest.raises(OSError, match="cannot write the checkpoint of 'net' to"):
        cache.load_or_train("net", {}, lambda cfg: nn.Linear(2, 2), lambda m, cfg: None,
                            root=tmp_path)


def test_cached_classifier_passes_its_defaults_to_the_training(tmp_path, elsewhere, calls,
                                                               capsys):
    built = []

    def build(key):
        built.append(key)
        return nn.Linear(2, 2)

    data = (torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    model, key, loaded = cache.cached_classifier("f", build, data, config={"d": 1}, steps=3,
                                                 root=tmp_path)
    assert key == {"d": 1, "train": {"steps": 3, "lr": 1e-3, "batch_size": 64,
                                     "weight_decay": 0.0, "seed": 0}}
    assert built == [key] and loaded is False
    ((args, kwargs),) = calls
    assert args[0] is model and args[1] is data
    assert kwargs == {"steps": 3, "lr": 1e-3, "batch_size": 64, "weight_decay": 0.0,
                      "augment": None, "seed": 0, "progress": False, "device": None}
    assert capsys.readouterr().out.startswith("lanlib: trained f in ")
    assert cache.checkpoint_path("f", key, tmp_path).is_file()
    assert not elsewhere.exists()


def test_cached_classifier_passes_every_setting_and_returns_on_the_device(tmp_path, elsewhere,
                                                                          calls, capsys):
    def augment(x, generator):
        return x

    model, key, _ = cache.cached_classifier(
        "f", lambda key: nn.Linear(2, 2), (torch.zeros(4, 2), torch.zeros(4)), config={},
        steps=5, lr=0.5, batch_size=7, weight_decay=0.25, augment=augment, seed=9,
        device="meta", root=tmp_path, verbose=False)
    (_, kwargs), = calls
    assert kwargs == {"steps": 5, "lr": 0.5, "batch_size": 7, "weight_decay": 0.25,
                      "augment": augment, "seed": 9, "progress": False, "device": "meta"}
    assert next(model.parameters()).device.type == "meta" and not model.training
    assert capsys.readouterr().out == ""
    assert cache.checkpoint_path("f", key, tmp_path).is_file()


def _lan_key(**fit):
    return {"explains": {"f": 1}, "size": 2,
            "fit": {"beta": 0.5, "steps": 3, "lr": 1e-3, "batch_size": 64, "seed": 0, **fit}}


def test_cached_lan_passes_its_defaults_to_the_fit(tmp_path, elsewhere, calls, capsys):
    built = []

    def build(key):
        built.append(key)
        return nn.Linear(2, 2)

    f, data, noise = nn.Linear(2, 2), torch.zeros(4, 2), object()
    lan, loaded = cache.cached_lan("lan", f, build, data, noise, explains={"f": 1},
                                   config={"size": 2}, beta=0.5, steps=3, root=tmp_path)
    assert built == [_lan_key()] and loaded is False
    ((args, kwargs),) = calls
    assert args == (f, lan, data, noise)
    assert kwargs == {"beta": 0.5, "steps": 3, "lr": 1e-3, "batch_size": 64, "seed": 0,
                      "progress": False, "device": None}
    assert capsys.readouterr().out.startswith("lanlib: trained lan in ")
    assert cache.checkpoint_path("lan", _lan_key(), tmp_path).is_file()
    assert not elsewhere.exists()


def test_cached_lan_passes_every_setting_and_returns_on_the_device(tmp_path, elsewhere, calls,
                                                                   capsys):
    def loss(a, b):
        return a

    lan, _ = cache.cached_lan("lan", nn.Linear(2, 2), lambda key: nn.Linear(2, 2),
                              torch.zeros(4, 2), object(), explains={"f": 1},
                              config={"size": 2}, beta=0.5, steps=3, lr=0.125, batch_size=5,
                              seed=4, device="meta", root=tmp_path, verbose=False,
                              loss=loss, init=0.25)
    (_, kwargs), = calls
    assert kwargs == {"beta": 0.5, "steps": 3, "lr": 0.125, "batch_size": 5, "seed": 4,
                      "progress": False, "device": "meta", "loss": loss, "init": 0.25}
    assert next(lan.parameters()).device.type == "meta" and not lan.training
    assert capsys.readouterr().out == ""
    key = _lan_key(lr=0.125, batch_size=5, seed=4, init=0.25)
    assert cache.checkpoint_path("lan", key, tmp_path).is_file()
    assert json.loads(json.dumps(key)) == key  # the key holds no function
