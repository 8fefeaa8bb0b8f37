"""explain_dataset and load_explanations: shards, checksums, resuming, refusals, torchrun.

Tiny problems (eleven inputs, four shards, eight steps) from tests/_torchrun_job.py;
the processes that are killed or launched by ``torchrun`` run that script.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lanlib
from lanlib.data import CorruptFileError
from lanlib.explain import ConfigurationMismatchError, batch_seed

_spec = importlib.util.spec_from_file_location(
    "_torchrun_job", Path(__file__).with_name("_torchrun_job.py"))
job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(job)

def explain(out, **options):
    model, inputs, noise = job.explain_problem()
    return lanlib.explain_dataset(model, inputs, noise, out=out, progress=False,
                                  **{**job.EXPLAIN, **options})


def files(out: Path) -> dict[str, tuple[int, bytes]]:
    """Every shard file: (inode, bytes). An atomic rewrite changes the inode."""
    return {p.name: (p.stat().st_ino, p.read_bytes())
            for p in sorted((out / "shards").iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The store of one uninterrupted run in this process, and its masks."""
    out = tmp_path_factory.mktemp("reference")
    store = explain(out)
    return out, store[:]


def test_each_shard_holds_the_masks_of_its_global_batch(reference):
    out, masks = reference
    model, inputs, noise = job.explain_problem()
    store = lanlib.load_explanations(out)
    assert len(store) == 11 and store.mask_shape == (8,) and store.dtype == torch.float32
    assert sorted(p.name for p in (out / "shards").glob("*.npy")) == [
        f"00000{b}.npy" for b in range(4)]
    options = {k: v for k, v in job.EXPLAIN.items() if k not in ("seed", "batch_size")}
    for b, (start, stop) in enumerate([(0, 3), (3, 6), (6, 9), (9, 11)]):
        expected = lanlib.fit_sample_masks(model, inputs[start:stop], noise, progress=False,
                                           seed=batch_seed(job.EXPLAIN["seed"], b), **options)
        assert torch.equal(store[start:stop], expected)
    assert torch.equal(store[4], masks[4]) and torch.equal(store[-1], masks[10])
    assert torch.equal(store[1:10:4], masks[1:10:4]) and store[5:5].shape == (0, 8)
    assert store.config["steps"] == job.EXPLAIN["steps"]
    assert store.config["noise"] == "uniform(-1.0, 1.0)"
    with pytest.raises(IndexError):
        store[11]


def test_the_store_is_read_only_and_hands_out_copies(reference):
    out, masks = reference
    store = lanlib.load_explanations(out)
    store[0:3].fill_(7.0)
    store[0].fill_(7.0)
    assert torch.equal(store[0:3], masks[0:3])
    with pytest.raises(TypeError):
        store[0] = masks[0]
    store.config["steps"] = 1
    assert store.config["steps"] == job.EXPLAIN["steps"]


def test_a_dataset_a_dataloader_and_a_tensor_give_the_same_masks(reference, tmp_path):
    _, masks = reference
    model, inputs, noise = job.explain_problem()
    labelled = TensorDataset(inputs, torch.arange(11))
    for name, data in [("dataset", labelled), ("loader", DataLoader(labelled, batch_size=5))]:
        store = lanlib.explain_dataset(model, data, noise, out=tmp_path / name, progress=False,
                                       **job.EXPLAIN)
        assert torch.equal(store[:], masks), name
    with pytest.raises(ValueError, match="shuffles"):
        lanlib.explain_dataset(model, DataLoader(labelled, shuffle=True), noise,
                               out=tmp_path / "shuffled", **job.EXPLAIN)


def test_a_trained_lan_stores_its_output(tmp_path):
    model, inputs, noise = job.explain_problem()
    with lanlib.seeded(1):
        lan = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
    store = lanlib.explain_dataset(model, inputs, noise, out=tmp_path, method=lan,
                                   batch_size=4, progress=False)
    with torch.no_grad():
        assert torch.equal(store[:], lan(inputs))
    assert store.config["method"] == "lan" and "steps" not in store.config
    assert lan.training  # its mode is restored


def test_a_run_killed_half_way_resumes_where_it_stopped(reference, tmp_path):
    out, masks = reference
    steps = job.EXPLAIN["steps"]
    killed = job.run_job("explain", str(tmp_path), "--die-at-call", str(2 * steps + 3))
    assert killed.returncode == job.DYING_EXIT, killed.stderr
    assert sorted(p.name for p in (tmp_path / "shards").glob("*.npy")) == [
        "000000.npy", "000001.npy"]
    with pytest.raises(ValueError, match="not finished"):
        lanlib.load_explanations(tmp_path)
    before = files(tmp_path)
    store = explain(tmp_path)
    after = files(tmp_path)
    assert {name: after[name] for name in before} == before  # finished shards kept as they were
    assert torch.equal(store[:], masks)
    assert files(tmp_path).keys() == files(out).keys()
    assert json.loads((tmp_path / "index.json").read_text())["shards"] == json.loads(
        (out / "index.json").read_text())["shards"]


def test_a_corrupted_shard_is_found_on_load_and_redone_on_resume(reference, tmp_path):
    _, masks = reference
    explain(tmp_path)
    damaged = tmp_path / "shards" / "000002.npy"
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    store = lanlib.load_explanations(tmp_path)
    assert torch.equal(store[0:6], masks[0:6])  # the other shards still load
    with pytest.raises(CorruptFileError, match="resume=True"):
        store[7]
    with pytest.raises(CorruptFileError, match="shard 2"):
        store.verify()
    before = files(tmp_path)
    assert torch.equal(explain(tmp_path)[:], masks)
    after = files(tmp_path)
    assert [name for name in before if before[name] != after[name]] == [
        "000002.json", "000002.npy"]  # the damaged shard and its record, nothing else


def test_a_changed_configuration_is_refused_and_nothing_is_lost(reference, tmp_path):
    explain(tmp_path)
    before = files(tmp_path), (tmp_path / "index.json").read_bytes()
    with pytest.raises(ConfigurationMismatchError, match=r"beta: 0\.05 then, 0\.1 now"):
        explain(tmp_path, beta=0.1)
    with pytest.raises(ConfigurationMismatchError, match="steps"):
        explain(tmp_path, steps=9, resume=False)
    assert (files(tmp_path), (tmp_path / "index.json").read_bytes()) == before
    assert torch.equal(lanlib.load_explanations(tmp_path)[:], reference[1])


def test_another_number_of_processes_may_not_take_over_an_unfinished_run(reference, tmp_path):
    killed = job.run_job("explain", str(tmp_path), "--die-at-call", str(job.EXPLAIN["steps"] + 1))
    assert killed.returncode == job.DYING_EXIT, killed.stderr
    index = json.loads((tmp_path / "index.json").read_text())
    index["world_size"] = 2  # as if two processes had started it
    (tmp_path / "index.json").write_text(json.dumps(index))
    before = files(tmp_path)
    with pytest.raises(ConfigurationMismatchError, match="started by 2 process"):
        explain(tmp_path)
    assert files(tmp_path) == before
    assert torch.equal(explain(tmp_path, resume=False)[:], reference[1])


def test_an_unusable_out_gets_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match="cannot write the masks"):
        explain(tmp_path / "file" / "masks")
    with pytest.raises(NotADirectoryError, match="is a file"):
        explain(tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigurationMismatchError, match="not empty"):
        explain(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="index.json"):
        lanlib.load_explanations(tmp_path / "mine")


def test_a_read_only_out_is_refused_and_its_shards_kept(tmp_path, monkeypatch):
    explain(tmp_path)
    (tmp_path / "shards" / "000001.npy").write_bytes(b"damaged")
    before = files(tmp_path)
    # A read-only folder, as every user but root meets it (root may write anywhere, so
    # the refusal to create a file there is played by os.open itself).
    (tmp_path / "shards").chmod(0o555)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if Path(path).parent == tmp_path / "shards" and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    try:
        with pytest.raises(OSError, match="cannot write the masks"):
            explain(tmp_path)
    finally:
        monkeypatch.undo()
        (tmp_path / "shards").chmod(0o755)
    assert files(tmp_path) == before


def test_bad_arguments_are_refused(tmp_path):
    model, inputs, noise = job.explain_problem()
    with pytest.raises(TypeError, match="seed must be an integer"):
        lanlib.explain_dataset(model, inputs, noise, out=tmp_path, beta=0.1, seed=None)
    with pytest.raises(TypeError, match="sets history itself"):
        lanlib.explain_dataset(model, inputs, noise, out=tmp_path, beta=0.1,
                               history=lanlib.History())
    with pytest.raises(ValueError, match="method must be"):
        lanlib.explain_dataset(model, inputs, noise, out=tmp_path, beta=0.1, method="lan")
    assert not any(tmp_path.iterdir())


def test_two_processes_under_torchrun_give_exactly_the_masks_of_one(reference, tmp_path):
    done = job.run_job("explain", str(tmp_path), processes=2)
    assert done.returncode == 0, done.stderr[-3000:]
    store = lanlib.load_explanations(tmp_path)
    assert torch.equal(store[:], reference[1])
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["world_size"] == 2
    assert index["shards"] == json.loads((reference[0] / "index.json").read_text())["shards"]
