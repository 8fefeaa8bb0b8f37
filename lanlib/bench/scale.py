"""The ``scale`` section: :func:`lanlib.explain_dataset` in one and two processes, and its cost.

Both parts run on the CPU whatever the benchmark's device (two processes share the
CPU's cores through Gloo), on the MNIST subject's first ``scale_images`` images, in
global batches of ``scale_batch`` with ``scale_steps`` steps (:mod:`lanlib.bench.settings`):

- processes: the same call in 1 process (``python -m lanlib.bench.scale_job``) and in 2
  (``torchrun --standalone --nproc-per-node 2``, as ``python -m torch.distributed.run``),
  each timed inside its job from a barrier to the return after one warm-up call, so the
  launch, the imports and the first call are not counted: masks/s, the ratio of 2 to 1,
  and whether the two stores hold identical masks (the promise of
  :func:`lanlib.explain_dataset`);
- writing: :func:`lanlib.explain_dataset` in this process against a loop of
  :func:`lanlib.fit_sample_masks` over the same global batches with the same seeds,
  timed round-robin (:func:`lanlib.bench.measure.interleaved`); the ratio is the cost of
  sharding, checksums and the index; with it the seconds to write one shard and to verify
  one (what a resumed run does before it keeps a shard).

The noise draws from the subject's first 1024 training inputs (a smaller pool than the
other sections', so that the problem the jobs load stays small).
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import torch

from .. import noise as noises
from ..explain import (
    _finished,
    _write_shard,
    batch_seed,
    explain_dataset,
    load_explanations,
    run_processes,
)
from ..fit import fit_sample_masks
from .measure import interleaved, median, rounded, timed
from .subjects import Subject

__all__ = ["POOL", "launch", "scale"]

#: Training inputs the noise of the scale section draws from.
POOL = 1024


def launch(folder: Path, processes: int, threads: int) -> dict:
    """Run :mod:`lanlib.bench.scale_job` on ``folder`` in ``processes`` processes; its seconds.

    Args:
        folder (Path): holds ``problem.pt``; receives the masks and the seconds.
        processes (int): 1 (plain ``python``) or more (``torchrun --standalone``).
        threads (int): intra-op threads per process (``OMP_NUM_THREADS``).

    Returns:
        dict: ``processes``, ``first_call_seconds`` (the warm-up) and ``seconds`` (one per
        repeat), as the job wrote them.
    """
    done = run_processes(["-m", "lanlib.bench.scale_job", str(folder)], processes,
                         threads=threads, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"the scale job in {processes} process(es) failed "
                           f"(exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads((folder / f"seconds-{processes}.json").read_text())


def scale(subject: Subject, cfg: dict, seed: int) -> dict:
    """The section's numbers for one subject (see the module docstring)."""
    cpu = torch.device("cpu")
    n = min(cfg["scale_images"], len(subject.images))
    size, steps, repeats = cfg["scale_batch"], cfg["scale_steps"], cfg["scale_repeats"]
    model = copy.deepcopy(subject.model).to(cpu)
    images, pool = subject.images[:n].to(cpu), subject.pool[:POOL].to(cpu)
    noise = noises.bootstrap(pool)
    options = {"beta": subject.beta, "steps": steps, "batch_size": size, "seed": seed,
               "mask_shape": subject.mask_shape}
    threads = torch.get_num_threads()
    batches = range(0, n, size)
    with tempfile.TemporaryDirectory(prefix="lanlib-bench-scale-") as scratch:
        folder = Path(scratch)
        torch.save({"model": model, "images": images, "pool": pool, "options": options,
                    "repeats": repeats}, folder / "problem.pt")
        runs = {p: launch(folder, p, threads) for p in (1, 2)}
        one, two = (load_explanations(folder / f"masks-{p}")[:] for p in (1, 2))

        def fitted():
            return torch.cat([fit_sample_masks(model, images[b:b + size], noise,
                                               beta=subject.beta, steps=steps,
                                               seed=batch_seed(seed, b // size),
                                               mask_shape=subject.mask_shape, progress=False)
                              for b in batches])

        def sharded():
            return explain_dataset(model, images, noise, out=folder / "here", resume=False,
                                   progress=False, **options)

        times, _, last = interleaved({"fit": fitted, "explain": sharded}, cpu, repeats)
        masks = last["fit"][:size]
        digest = "0" * 64  # a made-up configuration: the shard is timed, not kept
        write, _ = timed(lambda: _write_shard(folder / "one", 0, 0, size, masks, digest),
                         cpu, max(repeats, 3))
        verify, ok = timed(lambda: _finished(folder / "one", 0, 0, size, digest), cpu,
                           max(repeats, 3))
        shard_bytes = (folder / "one" / "shards" / "000000.npy").stat().st_size
        same_as_fit = torch.equal(last["explain"][:], last["fit"])
    per = {p: median(r["seconds"]) for p, r in runs.items()}
    fit_s, explain_s = median(times["fit"]), median(times["explain"])
    return {
        "images": n, "batch": size, "steps": steps, "repeats": repeats, "device": "cpu",
        "threads_per_process": threads,
        "processes": {str(p): {"seconds": rounded(per[p]),
                               "seconds_each": [rounded(t) for t in runs[p]["seconds"]],
                               "first_call_seconds": rounded(runs[p]["first_call_seconds"]),
                               "masks_per_second": rounded(n / per[p]),
                               "ratio_to_1": rounded(per[1] / per[p], 3)} for p in per},
        "identical_masks_1_and_2_processes": torch.equal(one, two),
        "writing": {"fit_sample_masks_seconds": rounded(fit_s),
                    "explain_dataset_seconds": rounded(explain_s),
                    "fit_sample_masks_masks_per_second": rounded(n / fit_s),
                    "explain_dataset_masks_per_second": rounded(n / explain_s),
                    "overhead_ratio": rounded(explain_s / fit_s, 3),
                    "same_masks": same_as_fit,
                    "shard_bytes": shard_bytes,
                    "write_one_shard_seconds": rounded(median(write)),
                    "verify_one_shard_seconds": rounded(median(verify)),
                    "verified": bool(ok)},
    }
