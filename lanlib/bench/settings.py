"""The benchmark's settings: how many steps, images and repeats each section uses.

:data:`SETTINGS` holds one dict per setting (``--setting`` on the command line):

- ``"smoke"``: seconds, random data and untrained-looking networks (a few steps), no
  cache; the tests run it so that the benchmark cannot rot;
- ``"quick"``: the default, minutes on a laptop CPU, the book's data sets;
- ``"full"``: the paper's step counts and more images, for a GPU.

Keys (each section reads its own): ``synthetic`` (random data instead of the data
sets), ``cache`` (keep the trained networks under ``data/checkpoints/``), ``subjects``,
``f_steps`` (training steps of each classifier F), ``d_full_images`` (images to
estimate the distortion of full replacement, which sets beta), ``throughput_*``,
``accel_*``, ``convergence_images``, ``reference_steps``, ``library_steps``,
``candidate*``, ``eval_draws`` (fixed noise draws to evaluate an objective), ``lan``
(training steps of the amortised LAN per subject), ``amortised_images``,
``methods_images``, ``imagenet_size``, ``sample_checkpoints``, ``ig_steps``,
``ep_iters``, ``deletion_steps``, ``occlusion`` ((window, stride) pairs),
``ablation`` (patch sizes), ``flops_*``, ``matmul_size``, and for the options and the
mask networks (:mod:`lanlib.bench.options`) ``option_batch`` and ``option_speed_steps``
(the timed calls), ``option_steps`` (the fits whose quality is measured),
``lan_speed_steps`` (the timed fit_lan calls), ``mask_net_steps`` (training steps of each
mask network, for the networks named) and ``lan_options`` (also train a LAN with each
option); for the ``scale`` section (:mod:`lanlib.bench.scale`) ``scale_images``,
``scale_batch`` and ``scale_steps`` (the MNIST images explained, the global batch and the
steps per batch) and ``scale_repeats`` (timed calls).

Example:
    >>> SETTINGS["quick"]["throughput_batches"]
    (1, 16, 64, 256)
"""

from __future__ import annotations

from typing import Any

__all__ = ["BETA_REL", "LIBRARY", "PAPER", "SETTINGS", "SUBJECTS"]

#: The paper's sample-specific optimiser (Appendix D): Adam, learning rate 0.05, 10,000 steps.
PAPER = {"lr": 0.05, "steps": 10_000, "schedule": "constant", "init": 0.5}
#: lanlib's defaults for :func:`lanlib.fit_sample_masks`.
LIBRARY = {"lr": 0.1, "steps": 300, "schedule": "constant", "init": 0.5}
#: beta = BETA_REL * D_full, the distortion when every element is replaced by noise.
BETA_REL = 1.0
#: The networks the benchmark explains (see :mod:`lanlib.bench.subjects`).
SUBJECTS = ("mnist", "cifar", "imagenet")

SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {
        "synthetic": True, "cache": False, "subjects": SUBJECTS,
        "f_steps": {"mnist": 3, "cifar": 2}, "d_full_images": 8,
        "throughput_batches": (1, 16, 64, 256), "throughput_steps": 1, "repeats": 1,
        "accel_batch": 8, "accel_steps": 1, "compile": False,
        "convergence_images": {"mnist": 4, "cifar": 2},
        "reference_steps": {"mnist": 8, "cifar": 8}, "library_steps": 6,
        "candidates": 5, "candidate_curve_steps": 4, "candidate_steps": (2, 4),
        "eval_draws": 2, "lan": {"mnist": 4}, "amortised_images": 8,
        "methods_images": {"mnist": 4, "cifar": 2, "imagenet": 1}, "imagenet_size": 32,
        "sample_checkpoints": (1, 2, 3), "ig_steps": 4, "ep_iters": 2, "deletion_steps": 4,
        "occlusion": {"mnist": ((14, 14),), "cifar": ((16, 16),), "imagenet": ((16, 16),)},
        "ablation": {"mnist": (14,), "cifar": (16,), "imagenet": (16,)},
        "flops_batch": 8, "flops_steps": 1, "matmul_size": 256,
        "option_batch": 8, "option_speed_steps": 1, "option_steps": 30, "lan_speed_steps": 1,
        "mask_net_steps": {"mnist": 3}, "lan_options": True,
        "scale_images": 16, "scale_batch": 8, "scale_steps": 1, "scale_repeats": 1,
    },
    "quick": {
        "synthetic": False, "cache": True, "subjects": SUBJECTS,
        "f_steps": {"mnist": 2000, "cifar": 600}, "d_full_images": 256,
        "throughput_batches": (1, 16, 64, 256), "throughput_steps": 10, "repeats": 5,
        "accel_batch": 64, "accel_steps": 20, "compile": False,
        "convergence_images": {"mnist": 32, "cifar": 8},
        "reference_steps": {"mnist": 10_000, "cifar": 2000}, "library_steps": 2000,
        "candidates": 3, "candidate_curve_steps": 1000, "candidate_steps": (300, 1000),
        "eval_draws": 8, "lan": {"mnist": 3000}, "amortised_images": 256,
        "methods_images": {"mnist": 64, "cifar": 32, "imagenet": 4}, "imagenet_size": 160,
        "sample_checkpoints": (10, 25, 50, 100, 200, 300), "ig_steps": 32, "ep_iters": 100,
        "deletion_steps": 20,
        "occlusion": {"mnist": ((8, 4), (4, 2)), "cifar": ((8, 4), (4, 2)),
                      "imagenet": ((40, 20), (20, 10))},
        "ablation": {"mnist": (7, 4), "cifar": (8, 4), "imagenet": (40, 20)},
        "flops_batch": 64, "flops_steps": 10, "matmul_size": 2048,
        "option_batch": 64, "option_speed_steps": 10, "option_steps": 300, "lan_speed_steps": 3,
        "mask_net_steps": {"mnist": 300}, "lan_options": False,
        "scale_images": 256, "scale_batch": 64, "scale_steps": 100, "scale_repeats": 3,
    },
    "full": {
        "synthetic": False, "cache": True, "subjects": SUBJECTS,
        "f_steps": {"mnist": 20_000, "cifar": 20_000}, "d_full_images": 1000,
        "throughput_batches": (1, 16, 64, 256), "throughput_steps": 50, "repeats": 5,
        "accel_batch": 256, "accel_steps": 50, "compile": True,
        "convergence_images": {"mnist": 256, "cifar": 64},
        "reference_steps": {"mnist": 10_000, "cifar": 10_000}, "library_steps": 10_000,
        "candidates": 5, "candidate_curve_steps": 2000, "candidate_steps": (100, 300, 1000),
        "eval_draws": 16,
        "lan": {"mnist": 100_000, "cifar": 50_000}, "amortised_images": 1000,
        "methods_images": {"mnist": 256, "cifar": 256, "imagenet": 20}, "imagenet_size": 224,
        "sample_checkpoints": (10, 25, 50, 100, 200, 300, 500, 1000), "ig_steps": 64,
        "ep_iters": 800, "deletion_steps": 32,
        "occlusion": {"mnist": ((8, 4), (4, 2), (2, 1)), "cifar": ((8, 4), (4, 2), (2, 1)),
                      "imagenet": ((56, 28), (28, 14), (14, 7))},
        "ablation": {"mnist": (7, 4, 2), "cifar": (8, 4, 2), "imagenet": (56, 28, 14)},
        "flops_batch": 1024, "flops_steps": 50, "matmul_size": 8192,
        "option_batch": 256, "option_speed_steps": 50, "option_steps": 300,
        "lan_speed_steps": 20, "mask_net_steps": {"mnist": 5000, "cifar": 5000},
        "lan_options": True,
        "scale_images": 1024, "scale_batch": 128, "scale_steps": 300, "scale_repeats": 3,
    },
}
