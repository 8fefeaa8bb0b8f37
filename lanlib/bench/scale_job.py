"""The job of the ``scale`` section (:mod:`lanlib.bench.scale`), run alone or under ``torchrun``.

    python -m lanlib.bench.scale_job FOLDER

``FOLDER/problem.pt`` holds what :func:`lanlib.bench.scale.scale` saved (the network,
the images, the noise's pool, the options). The job makes one warm-up call and then
``repeats`` timed calls of :func:`lanlib.explain_dataset` into ``FOLDER/masks-<processes>``
(``resume=False``, so every call fits every shard), each started after a barrier, and
rank 0 writes the seconds to ``FOLDER/seconds-<processes>.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .. import noise as noises
from ..data._files import atomic_write
from ..explain import explain_dataset
from ..fit import join_process_group


def main(folder: Path) -> None:
    """Time the problem saved in ``folder`` (see the module docstring)."""
    problem = torch.load(folder / "problem.pt", weights_only=False)
    rank, world, _ = join_process_group(torch.device("cpu"))
    noise = noises.bootstrap(problem["pool"])
    seconds = []
    for _ in range(problem["repeats"] + 1):  # the first call warms up, as in measure.interleaved
        if world > 1:
            dist.barrier()
        start = time.perf_counter()
        explain_dataset(problem["model"], problem["images"], noise,
                        out=folder / f"masks-{world}", resume=False, progress=False,
                        **problem["options"])
        seconds.append(time.perf_counter() - start)  # explain_dataset ends with every rank
    if rank == 0:
        with atomic_write(folder / f"seconds-{world}.json") as f:
            f.write(json.dumps({"processes": world, "first_call_seconds": seconds[0],
                                "seconds": seconds[1:]}).encode())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
