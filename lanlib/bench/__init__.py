"""How fast are lanlib's masks, and what does speed cost in quality? One command measures it.

    LANLIB_DATA_MIRROR=/work/shared/datasets python -m lanlib.bench --out benchmarks/quick.json

prints a table and writes every number to the JSON file (atomically) and a speed–quality
chart next to it (same name, ``.png``). Settings (``--setting``, :mod:`lanlib.bench.settings`):
``smoke`` (seconds, random data, used by the tests so this package cannot rot), ``quick``
(the default, minutes on a laptop CPU) and ``full`` (the paper's step counts, for a GPU).
Every comparison is measured in the same run and reported as a ratio, so a busy machine
inflates the times but not the ratios much; the table's header gives the load average.

What is measured (each a section of the table and of the JSON, :data:`SECTIONS`):

- ``throughput``: masks per second of one batched :func:`lanlib.fit_sample_masks` call at
  batch 1, 16, 64 and 256 with the same number of steps, on the translated-MNIST and the
  CIFAR-10 networks of the book, and the ratio to batch 1 (what a Python loop over
  samples costs per mask); with it, ``threads``: the cost of all the cores' threads.
- ``accelerations``: the optional ``channels_last``, ``amp`` (bfloat16) and ``compile``
  arguments of :func:`lanlib.fit_sample_masks`, each against the plain call; and two
  straightforward loops without one of its savings each (F(x) recomputed every step; F's
  weights left to collect gradients), which must reach the same objective.
- ``convergence``: the Eq. 4 objective (mean over images, estimated with fixed noise
  draws) against steps, with the paper's optimiser (Adam, learning rate 0.05, constant,
  mask ``sigmoid(logits)`` started at 0.5) and with lanlib's defaults (learning rate 0.1),
  and with candidate settings (learning rate, start, schedule); the steps each needs to come
  within 1% of what the paper's settings reach after 10,000 steps (fewer in the quick
  setting, which says so).
- ``amortised``: a LAN (one forward pass per mask) against batched sample-specific
  fitting: time per mask, deletion-curve area and objective.
- ``methods``: the same networks and images explained by Captum's Saliency, Integrated
  Gradients, Occlusion and Feature Ablation, TorchRay's extremal perturbation (if it
  installs) and a random map: time per image and deletion-curve area
  (:func:`lanlib.metrics.perturbation_curve`, with the noise the masks are fitted with;
  occlusion and ablation replace by the same noise draw), plus the ImageNet network
  (EfficientNet-Lite0) on a few photos; with it, ``matched_time``.
- ``flops``: the share of the device's matrix-multiply rate that fitting masks reaches on
  the CIFAR-10 network (FLOPs of F's forward and backward per step, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode`).
- ``options``: the options that shape the masks of :func:`lanlib.fit_sample_masks`
  (noise ``lanlib.noise.blur``, ``tv``, ``max_distortion``, ``gates="hard_concrete"``),
  each alone against the paper's objective: masks per second at one batch (ratio to the
  plain call, and to batch 1: each runs batched), and the quality after the library's
  default steps: deletion and insertion areas under the option's own noise, a blurred
  copy and grey (:func:`lanlib.metrics.faithfulness`), the swap test's ``own_better``,
  the distortion, the share replaced, the total variation, the share of exact 0s and 1s.
- ``mask_nets``: the paper's ``MLPMaskNet`` against ``UNetMaskNet`` and
  ``FeatureMaskNet``: masks per second at inference, :func:`lanlib.fit_lan` steps per
  second (also with each option), and the same quality numbers for LANs trained on the
  networks the setting names (MNIST in the quick setting; also the LANs with each option
  in the smoke and full settings).
- ``scale``: :func:`lanlib.explain_dataset` on the MNIST network, on the CPU: masks per
  second in 1 process and in 2 (``torchrun --standalone --nproc-per-node 2``, Gloo),
  their ratio and whether the two wrote identical masks; and the cost of sharded
  writing: the call against :func:`lanlib.fit_sample_masks` alone over the same batches,
  steps and seeds (ratio), with the seconds to write one shard and to verify one.

Modules: :mod:`~lanlib.bench.settings` (the settings), :mod:`~lanlib.bench.subjects`
(the networks explained), :mod:`~lanlib.bench.measure` (clocks, fits, objectives,
deletion areas), :mod:`~lanlib.bench.speed`, :mod:`~lanlib.bench.quality` and
:mod:`~lanlib.bench.options` and :mod:`~lanlib.bench.scale` (the sections; the latter
runs :mod:`~lanlib.bench.scale_job` in other processes), :mod:`~lanlib.bench.report` (goals, table,
chart, JSON).

CPU runs use one intra-op thread by default (``--threads``): the steps are small, and on a
shared machine PyTorch's threads wait on each other (the ``threads`` row measures it).
Trained networks go through :func:`lanlib.cache.cached_classifier`,
:func:`lanlib.cache.cached_lan` and :func:`lanlib.cache.load_or_train` (names ``bench-*``),
so a second run skips training.

Example (the smoke setting, about a minute on one CPU core):
    >>> results = main(["--setting", "smoke", "--out", "/tmp/smoke.json"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..loop import named_device
from .options import mask_nets, sample_options
from .quality import amortised, batch1_seconds_per_step, convergence, matched_time, methods
from .report import chart, goals, table, write_json
from .scale import scale
from .settings import BETA_REL, LIBRARY, PAPER, SETTINGS, SUBJECTS
from .speed import accelerations, flop_rate, thread_contention, throughput
from .subjects import Subject, load_subject, train_lan

__all__ = ["SECTIONS", "main", "run"]

#: The sections :func:`run` measures, in order (``--sections``).
SECTIONS = ("throughput", "accelerations", "convergence", "amortised", "methods", "flops",
            "options", "mask_nets", "scale")


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def run(setting: str = "quick", device: str = "auto", *, seed: int = 0,
        threads: int | None = None, compile_too: bool | None = None,
        subjects: Sequence[str] | None = None, sections: Sequence[str] | None = None,
        log: Callable[[str], Any] = print) -> dict:
    """Run the benchmark and return every number (see the package docstring for the sections).

    Args:
        setting (str): ``"smoke"``, ``"quick"`` or ``"full"``.
        device (str): ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``
            (:func:`lanlib.loop.named_device`).
        seed (int): seeds training, image choice, masks and noise.
        threads (int, optional): intra-op threads on the CPU; default 1 there.
        compile_too (bool, optional): also measure ``compile=True``; default per setting.
        subjects (sequence of str, optional): a subset of ``("mnist", "cifar", "imagenet")``.
        sections (sequence of str, optional): a subset of :data:`SECTIONS`.
        log (callable): progress messages.

    Returns:
        dict: ``meta``, ``subjects`` and one entry per section, then ``goals``.
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; use one of {sorted(SETTINGS)}")
    cfg = SETTINGS[setting]
    dev = named_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(threads or 1)
    elif threads:
        torch.set_num_threads(threads)
    names = tuple(subjects or cfg["subjects"])
    unknown = set(names) - set(SUBJECTS)
    if unknown:
        raise ValueError(f"unknown subjects {sorted(unknown)}")
    todo = tuple(sections or SECTIONS)
    if set(todo) - set(SECTIONS):
        raise ValueError(f"unknown sections {sorted(set(todo) - set(SECTIONS))}; "
                         f"use {SECTIONS}")
    compile_too = cfg["compile"] if compile_too is None else compile_too
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": {
        "setting": setting, "device": str(dev), "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "load_average_start": _load_average(), "seed": seed,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "paper_settings": PAPER, "library_defaults": LIBRARY, "beta_rel": BETA_REL,
    }}
    # Without a cache (the smoke setting) the networks are trained in a folder forgotten after.
    scratch = (contextlib.nullcontext() if cfg["cache"]
               else tempfile.TemporaryDirectory(prefix="lanlib-bench-"))
    with scratch as root:
        _measure(results, cfg, dev, seed, names, todo, compile_too, root, log)
    results["goals"] = goals(results)
    results["meta"]["load_average_end"] = _load_average()
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _measure(results: dict, cfg: dict, dev: torch.device, seed: int, names: Sequence[str],
             todo: Sequence[str], compile_too: bool, root, log: Callable[[str], Any]) -> None:
    """Prepare the subjects and fill ``results`` with the sections in ``todo``."""
    loaded: dict[str, Subject] = {}
    for name in names:
        log(f"[bench] preparing {name}")
        loaded[name] = load_subject(name, cfg, dev, seed, root=root)
    results["subjects"] = {k: s.info for k, s in loaded.items()}
    small = [s for s in loaded.values() if s.name != "imagenet"]

    def section(key, title, fn, subjects_):
        if key not in todo:
            return
        results[key] = {}
        for s in subjects_:
            log(f"[bench] {title}: {s.name}")
            value = fn(s)
            if value is not None:
                results[key][s.name] = value

    section("throughput", "throughput", lambda s: throughput(s, cfg, dev, seed), small)
    if "throughput" in todo:
        results["threads"] = {s.name: thread_contention(s, cfg, dev, seed) for s in small[:1]}
    section("accelerations", "accelerations",
            lambda s: accelerations(s, cfg, dev, seed, compile_too), small)
    section("convergence", "convergence", lambda s: convergence(s, cfg, dev, seed), small)
    lans = {}
    if "amortised" in todo or "methods" in todo:
        for s in small:
            lan, info = train_lan(s, cfg, dev, seed, root=root)
            if lan is not None:
                lans[s.name] = (lan, info)
    section("amortised", "amortised",
            lambda s: amortised(s, *lans[s.name],
                                batch1_seconds_per_step(results, s, cfg, dev, seed),
                                cfg, dev, seed),
            [s for s in small if s.name in lans])
    section("methods", "methods",
            lambda s: methods(s, cfg, dev, seed, lans.get(s.name, (None,))[0]),
            list(loaded.values()))
    if "methods" in results:
        rivals = ("Captum Occlusion", "Captum Feature Ablation")
        results["matched_time"] = {k: matched_time(m["points"], rivals)
                                   for k, m in results["methods"].items()}
    section("flops", "flops", lambda s: flop_rate(s, cfg, dev, seed),
            [s for s in small if s.name == "cifar"])
    section("options", "options of fit_sample_masks",
            lambda s: sample_options(s, cfg, dev, seed), small)
    section("mask_nets", "mask networks",
            lambda s: mask_nets(s, cfg, dev, seed, root=root), small)
    section("scale", "explain_dataset in 1 and 2 processes", lambda s: scale(s, cfg, seed),
            [s for s in small if s.name == "mnist"])


def main(argv: Sequence[str] | None = None) -> dict:
    """Command line: ``python -m lanlib.bench [--setting quick] [--out PATH.json]``.

    Args:
        argv (sequence of str, optional): the arguments; default ``sys.argv[1:]``.

    Returns:
        dict: what :func:`run` returned, with the chart's file name in ``meta``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m lanlib.bench",
        description="Measure the speed and quality of lanlib's masks against other methods.")
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="quick",
                        help="smoke (seconds), quick (default, minutes on a CPU) or full (GPU)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/bench.json"),
                        help="the JSON file to write; the chart goes next to it (.png)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads on the CPU (default 1)")
    compile_group = parser.add_mutually_exclusive_group()
    compile_group.add_argument("--compile", dest="compile_too", action="store_true",
                               default=None, help="also measure compile=True")
    compile_group.add_argument("--no-compile", dest="compile_too", action="store_false")
    parser.add_argument("--subjects", default=None,
                        help="comma-separated subset of mnist,cifar,imagenet")
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(argv)
    if args.out.suffix != ".json":
        parser.error(f"--out must name a .json file, got {args.out}")

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    results = run(args.setting, args.device, seed=args.seed, threads=args.threads,
                  compile_too=args.compile_too,
                  subjects=args.subjects.split(",") if args.subjects else None,
                  sections=args.sections.split(",") if args.sections else None, log=log)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = chart(results, args.out.with_suffix(".png"))
    results["meta"]["chart"] = png.name if png else None
    write_json(args.out, results)
    print(table(results))
    print(f"\nwrote {args.out}" + (f" and {png}" if png else ""))
    return results
