"""fit_lan in two processes (DistributedDataParallel, Gloo on the CPU) and its checkpoints.

A LAN of one layer on 32 inputs, twelve steps of eight (tests/_torchrun_job.py). The two
ranks are this process and a fork of it, joined as under ``torchrun`` (the launcher itself
is tested in test_explain_dataset.py): the fork runs this process's lanlib, so mutation
testing reaches the code that only several processes run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import lanlib
from lanlib.fit import _leave_process_group, join_process_group

_spec = importlib.util.spec_from_file_location(
    "_torchrun_job", Path(__file__).with_name("_torchrun_job.py"))
job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(job)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def _close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], **TOLERANCE) for k in a)


def test_two_processes_train_the_lan_one_process_trains():
    ranks, one = job.two_ranks(job.fit), job.fit()
    for rank in ranks:
        assert _close(rank["lan"], one["lan"])
        for key, series in one["history"].items():  # the global batch's means, step by step
            assert torch.allclose(torch.tensor(rank["history"][key]), torch.tensor(series),
                                  **TOLERANCE), key
    assert not torch.equal(one["lan"]["0.weight"], job.fit_problem()[1].state_dict()["0.weight"])


def test_each_process_gives_f_only_its_share_of_the_batch():
    assert job.fit()["rows"] == {job.FIT["batch_size"]}
    for rank in job.two_ranks(job.fit):
        assert rank["rows"] == {job.FIT["batch_size"] // 2}


def test_the_multiplier_follows_the_global_batch():
    ranks, one = job.two_ranks(job.fit, max_distortion=0.05, beta=None), job.fit(
        max_distortion=0.05, beta=None)
    for rank in ranks:
        assert _close(rank["lan"], one["lan"])
        assert torch.allclose(torch.tensor(rank["history"]["multiplier"]),
                              torch.tensor(one["history"]["multiplier"]), **TOLERANCE)


def test_two_processes_with_a_checkpoint_match_one(tmp_path):
    ranks, one = job.two_ranks(job.fit, tmp_path / "two.pt"), job.fit(tmp_path / "one.pt")
    for rank in ranks:
        assert _close(rank["lan"], one["lan"])
    assert torch.load(tmp_path / "two.pt", weights_only=True)["step"] == job.FIT["steps"]


def test_without_a_seed_every_rank_takes_the_one_rank_0_draws():
    with lanlib.seeded(job.UNSEEDED):  # rank 0's global generator when it draws
        drawn = int(torch.randint(2**62, (1,)))
    one = job.fit(seed=drawn)
    for rank in job.two_ranks(job.unseeded_fit):
        assert _close(rank["lan"], one["lan"])


def test_only_rank_0_shows_a_progress_bar():
    first, second = job.two_ranks(job.progress_bar)
    assert "fit_lan" in first
    assert second == ""


def test_a_batch_the_processes_cannot_share_and_gates_are_refused():
    for message in job.two_ranks(job.refusal, batch_size=7):
        assert "multiple of the number of processes, 2" in message
    for message in job.two_ranks(job.refusal, gates="hard_concrete"):
        assert "gates are not supported by fit_lan under several processes" in message


def test_a_killed_training_resumes_from_its_checkpoint(tmp_path):
    uninterrupted = job.fit(tmp_path / "whole.pt")
    checkpoint = tmp_path / "killed.pt"
    killed = job.run_job("fit", str(tmp_path / "never.pt"), "--checkpoint", str(checkpoint),
                     "--die-at-call", "8")  # during step 8: the checkpoint of step 5 is there
    assert killed.returncode == job.DYING_EXIT, killed.stderr
    assert torch.load(checkpoint, weights_only=True)["step"] == 5
    resumed = job.fit(checkpoint)
    assert all(torch.equal(resumed["lan"][k], v) for k, v in uninterrupted["lan"].items())
    assert resumed["history"] == uninterrupted["history"]
    assert len(resumed["history"]["objective"]) == job.FIT["steps"]
    again = job.fit(checkpoint)  # finished: loaded, not trained again
    assert all(torch.equal(again["lan"][k], v) for k, v in uninterrupted["lan"].items())


def test_without_a_checkpoint_nothing_changes(tmp_path):
    plain = job.fit()
    assert not any(tmp_path.iterdir())
    assert all(torch.equal(job.fit()["lan"][k], v) for k, v in plain["lan"].items())


def test_a_checkpoint_of_another_run_or_without_a_seed_is_refused(tmp_path):
    checkpoint = tmp_path / "run.pt"
    job.fit(checkpoint)
    with pytest.raises(ValueError, match="another run.*lr"):
        job.fit(checkpoint, lr=0.02)
    with pytest.raises(ValueError, match="needs a seed"):
        job.fit(tmp_path / "other.pt", seed=None)
    checkpoint.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot be read"):
        job.fit(checkpoint)


def test_fit_lan_alone_leaves_torch_distributed_alone():
    job.fit()
    assert not torch.distributed.is_initialized()


LAUNCHER = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")


def test_alone_or_launched_as_one_process_nothing_is_joined(monkeypatch):
    for name in LAUNCHER:
        monkeypatch.delenv(name, raising=False)
    cpu = torch.device("cpu")
    assert join_process_group(cpu) == (0, 1, cpu)
    monkeypatch.setenv("WORLD_SIZE", "2")  # an incomplete launcher's variables: alone
    assert join_process_group(cpu) == (0, 1, cpu)
    for name, value in zip(LAUNCHER, ("0", "1", "127.0.0.1", "29500", "0"), strict=True):
        monkeypatch.setenv(name, value)
    assert join_process_group(cpu) == (0, 1, cpu)
    assert not dist.is_initialized()


def test_a_torch_without_distributed_runs_alone_under_a_launcher(monkeypatch):
    for name, value in zip(LAUNCHER, ("1", "2", "127.0.0.1", "29500", "1"), strict=True):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(dist, "is_available", lambda: False)
    assert join_process_group(torch.device("cpu")) == (0, 1, torch.device("cpu"))


def test_a_launched_bare_cuda_device_becomes_the_local_rank(monkeypatch):
    for name, value in zip(LAUNCHER, ("0", "1", "127.0.0.1", "29500", "3"), strict=True):
        monkeypatch.setenv(name, value)
    assert join_process_group(torch.device("cuda"))[2] == torch.device("cuda", 3)
    assert join_process_group(torch.device("cuda", 1))[2] == torch.device("cuda", 1)
    assert join_process_group(torch.device("cpu"))[2] == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert join_process_group(torch.device("cuda"))[2] == torch.device("cuda")


def test_leaving_destroys_the_group_once():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    _leave_process_group()
    assert not dist.is_initialized()
    _leave_process_group()  # nothing left to leave: no error
