"""fit_lan under torchrun (DistributedDataParallel, Gloo on the CPU) and its checkpoints.

A LAN of one layer on 32 inputs, twelve steps of eight (tests/_torchrun_job.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import lanlib

_spec = importlib.util.spec_from_file_location(
    "_torchrun_job", Path(__file__).with_name("_torchrun_job.py"))
job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(job)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def _close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], **TOLERANCE) for k in a)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """What rank 0 of a two-process torchrun of the fit job saved."""
    result = tmp_path_factory.mktemp("ddp") / "result.pt"
    done = job.run_job("fit", str(result), processes=2)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(result, weights_only=True)


def test_two_processes_train_the_lan_one_process_trains(two_processes):
    one = job.fit()
    assert _close(two_processes["plain"]["lan"], one["lan"])
    assert not torch.equal(one["lan"]["0.weight"], job.fit_problem()[1].state_dict()["0.weight"])
    for key, series in one["history"].items():  # the global batch's means, step by step
        assert torch.allclose(torch.tensor(two_processes["plain"]["history"][key]),
                              torch.tensor(series), **TOLERANCE), key


def test_the_multiplier_follows_the_global_batch(two_processes):
    one = job.fit(max_distortion=0.05, beta=None)
    assert _close(two_processes["max_distortion"]["lan"], one["lan"])
    assert torch.allclose(torch.tensor(two_processes["max_distortion"]["history"]["multiplier"]),
                          torch.tensor(one["history"]["multiplier"]), **TOLERANCE)


def test_two_processes_with_a_checkpoint_match_one(two_processes, tmp_path):
    one = job.fit(tmp_path / "one.pt")
    assert _close(two_processes["checkpointed"]["lan"], one["lan"])


def test_a_batch_the_processes_cannot_share_is_refused(two_processes):
    assert "multiple of the number of processes, 2" in two_processes["odd_batch"]


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
    assert lanlib.fit_lan.__kwdefaults__["checkpoint"] is None
