"""Jobs that tests/test_explain_dataset.py and tests/test_fit_distributed.py run in other processes.

Under ``torchrun --standalone --nproc-per-node 2`` (Gloo on the CPU), or alone with
``python``; the tests import the same problems to compute the one-process answers.

    python tests/_torchrun_job.py explain OUT [--die-at-call K]
    python tests/_torchrun_job.py fit RESULT [--checkpoint PATH] [--die-at-call K]

``--die-at-call K`` ends the process abruptly (``os._exit``, no clean-up, like a kill)
at the K-th draw of the noise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import lanlib

ROOT = Path(__file__).resolve().parents[1]
EXPLAIN = {"beta": 0.05, "steps": 8, "batch_size": 3, "seed": 5, "lr": 0.1}
FIT = {"beta": 0.05, "steps": 12, "batch_size": 8, "seed": 3, "lr": 0.01}
DYING_EXIT = 17


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
    """Train the fit problem's LAN; returns its parameters and history."""
    model, lan, inputs, own_noise = fit_problem()
    history = lanlib.History()
    lanlib.fit_lan(model, lan, inputs, noise or own_noise, progress=False, history=history,
                   checkpoint=checkpoint, checkpoint_every=5, **{**FIT, **options})
    return {"lan": lan.state_dict(), "history": history.series}


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
    result = {"plain": fit(args.checkpoint, noise)}
    if dist.is_initialized():  # what only several processes can show
        result["max_distortion"] = fit(max_distortion=0.05, beta=None)
        result["checkpointed"] = fit(f"{args.out}.checkpoint")
        try:
            fit(batch_size=7)
        except ValueError as exc:
            result["odd_batch"] = str(exc)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(result, args.out)


if __name__ == "__main__":
    main()
