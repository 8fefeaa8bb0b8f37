"""Jobs that tests/test_explain_dataset.py and tests/test_fit_distributed.py run in other processes.

Under ``torchrun --standalone --nproc-per-node 2`` (Gloo on the CPU), alone with
``python``, or as two ranks of which one is the test's own process (:func:`two_ranks`);
the tests import the same problems to compute the one-process answers.

    python tests/_torchrun_job.py explain OUT [--die-at-call K]
    python tests/_torchrun_job.py fit RESULT [--checkpoint PATH] [--die-at-call K]

``--die-at-call K`` ends the process abruptly (``os._exit``, no clean-up, like a kill)
at the K-th draw of the noise.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import lanlib

ROOT = Path(__file__).resolve().parents[1]
EXPLAIN = {"beta": 0.05, "steps": 8, "batch_size": 3, "seed": 5, "lr": 0.1}
FIT = {"beta": 0.05, "steps": 12, "batch_size": 8, "seed": 3, "lr": 0.01}
DYING_EXIT = 17
PR_SET_PDEATHSIG = 1  # prctl's option: a signal for this process when its parent dies


def run_job(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    """Run this script alone, or under ``torchrun --standalone`` with ``processes`` processes."""
    return lanlib.explain.run_processes([__file__, *args], processes, timeout=300, cwd=ROOT)


class Dying:
    """A noise that ends the process at its ``at``-th draw; described as the noise it wraps."""

    def __init__(self, noise, at: int | None):
        self.noise, self.at, self.calls = noise, at, 0

    def __call__(self, inputs, generator=None):
        self.calls += 1
        if self.at is not None and self.calls >= self.at:
            os._exit(DYING_EXIT)
        return self.noise(inputs, generator=generator)

    def __repr__(self):
        return repr(self.noise)


def explain_problem():
    """(model, inputs, noise): eleven inputs of eight features, four batches of three."""
    with lanlib.seeded(0):
        model = nn.Linear(8, 3)
    inputs = torch.randn(11, 8, generator=torch.Generator().manual_seed(1))
    return model, inputs, lanlib.noise.uniform(-1.0, 1.0)


def fit_problem():
    """(model, lan, inputs, noise) for fit_lan: a LAN of one layer on 32 inputs."""
    with lanlib.seeded(0):
        model = nn.Linear(8, 3)
        lan = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
    inputs = torch.randn(32, 8, generator=torch.Generator().manual_seed(2))
    return model, lan, inputs, lanlib.noise.uniform(-1.0, 1.0)


def fit(checkpoint=None, noise=None, **options):
    """Train the fit problem's LAN; returns its parameters, history and the numbers of rows
    F was given at a time."""
    model, lan, inputs, own_noise = fit_problem()
    history, rows = lanlib.History(), set()
    model.register_forward_pre_hook(lambda _, args: rows.add(len(args[0])))
    lanlib.fit_lan(model, lan, inputs, noise or own_noise, history=history,
                   checkpoint=checkpoint, checkpoint_every=5,
                   **{"progress": False, **FIT, **options})
    return {"lan": lan.state_dict(), "history": history.series, "rows": rows}


UNSEEDED = 100  # rank r runs the unseeded fit with torch's global generator seeded UNSEEDED + r


def unseeded_fit() -> dict:
    """:func:`fit` without a seed, torch's global generator seeded differently on each rank."""
    with lanlib.seeded(UNSEEDED + int(os.environ.get("RANK", "0"))):
        return fit(seed=None)


def progress_bar() -> str:
    """What a short fit with a progress bar writes to stderr."""
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        fit(steps=2, progress=True)
    return stderr.getvalue()


def refusal(**options) -> str | None:
    """The message of the ValueError that :func:`fit` with ``options`` raises, if any."""
    try:
        fit(**options)
    except ValueError as exc:
        return str(exc)
    return None


def two_ranks(job, *args, timeout: float = 120.0, **options):
    """``job(*args, **options)`` as rank 0 of two in this process and as rank 1 in a forked one.

    Both see the variables ``torchrun`` sets, so lanlib joins them itself (Gloo: rank 0
    hosts the group); the group is left after the job. The fork inherits this process's
    modules, mutated ones included. Returns (rank 0's result, rank 1's result); rank 1's
    comes back through ``torch.save``. Raises if rank 1 fails or does not answer in time.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    other = fork.Process(target=_rank_one, args=(send, launcher, job, args, options),
                         daemon=True)
    other.start()
    before = dict(os.environ)
    os.environ.update(launcher, RANK="0", LOCAL_RANK="0")
    try:
        mine = job(*args, **options)
        if not receive.poll(timeout):
            raise RuntimeError(f"rank 1 gave no result in {timeout} s")
        failed, theirs = torch.load(io.BytesIO(receive.recv_bytes()), weights_only=False)
        other.join(timeout)
    finally:  # rank 1 cannot finish alone: when rank 0 fails, it goes too
        os.environ.clear()
        os.environ.update(before)
        if dist.is_initialized():
            dist.destroy_process_group()
        if other.is_alive():
            other.kill()
    if failed:
        raise RuntimeError(f"rank 1 failed:\n{theirs}")
    return mine, theirs


def _rank_one(send, launcher, job, args, options) -> None:
    if sys.platform == "linux":  # killed with rank 0's process, however that ends
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.environ.update(launcher, RANK="1", LOCAL_RANK="1")
    try:
        answer = False, job(*args, **options)
        if dist.is_initialized():
            dist.destroy_process_group()
    except BaseException:  # the traceback goes back instead
        answer = True, traceback.format_exc()
    buffer = io.BytesIO()
    torch.save(answer, buffer)
    send.send_bytes(buffer.getvalue())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("job", choices=("explain", "fit"))
    parser.add_argument("out")
    parser.add_argument("--checkpoint")
    parser.add_argument("--die-at-call", type=int)
    args = parser.parse_args()
    if args.job == "explain":
        model, inputs, noise = explain_problem()
        lanlib.explain_dataset(model, inputs, Dying(noise, args.die_at_call), out=args.out,
                               progress=False, **EXPLAIN)
        return
    noise = Dying(fit_problem()[3], args.die_at_call)
    torch.save({"plain": fit(args.checkpoint, noise)}, args.out)


if __name__ == "__main__":
    main()
