"""Bad inputs and faults, each with the clear error or the right result lanlib must give.

One table (``CASES``): every row is a call that a careless or unlucky user could make
and what must come of it, either ``raises(Error, "message")`` (lanlib's own message, not
a raw torch or Python error, nor a silently wrong result) or ``gives(check)``, a check
of the result. Issue 16 collected them; none may come back.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import lanlib
from lanlib import losses, noise
from lanlib.cache import load_or_train
from lanlib.data import CorruptFileError, _files, load_cifar10
from lanlib.metrics import auroc, output_agreement, perturbation_curve
from lanlib.nets import MLPMaskNet
from lanlib.train import train_classifier
from tools import build_book

# ----------------------------------------------------------------------------- the pieces

X = torch.rand(8, 4, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1  # in (0.1, 0.9)


def reader(outputs: int = 3, dtype=torch.float32) -> nn.Linear:
    """A linear model that reads feature 0 only (to ``outputs`` logits)."""
    model = nn.Linear(4, outputs)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[:, 0] = torch.linspace(-6.0, 6.0, outputs) if outputs > 1 else 6.0
        model.bias.fill_(-3.0 if outputs == 1 else 0.0)
    return model.to(dtype)


class Squeezed(nn.Module):
    """A single-logit model returning ``(N,)`` rather than ``(N, 1)``."""

    def __init__(self):
        super().__init__()
        self.inner = reader(1)

    def forward(self, x):
        return self.inner(x).squeeze(1)


class Poisoned(nn.Module):
    """Finite on the clean inputs (all > 0), NaN once the noise makes an input negative."""

    def __init__(self, value=None):
        super().__init__()
        self.inner, self.value = reader(), value

    def forward(self, x):
        out = self.inner(x)
        if self.value is not None:
            return out.index_fill(1, torch.tensor([0]), self.value)
        return out + torch.log(x.min(dim=1, keepdim=True).values)


class Wayward(nn.Module):
    """A LAN whose output leaves [0, 1] (or is NaN) at one middle step only."""

    def __init__(self, bad_call: int, value: float):
        super().__init__()
        self.net, self.calls, self.bad_call, self.value = MLPMaskNet((4,), hidden=(4,)), 0, \
            bad_call, value

    def forward(self, x):
        self.calls += 1
        mask = self.net(x)
        return mask + self.value if self.calls == self.bad_call else mask


class Stream(IterableDataset):
    def __iter__(self):
        yield from X


class NanDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.full((4,), float("nan"))


def fit(model=None, inputs=None, noise_=None, **kwargs):
    args = dict(beta=1.0, steps=3, lr=0.1, seed=0, progress=False)
    args.update(kwargs)
    return lanlib.fit_sample_masks(reader() if model is None else model,
                                   X if inputs is None else inputs,
                                   noise.uniform() if noise_ is None else noise_, **args)


def fit_lan(model=None, data=None, noise_=None, lan=None, **kwargs):
    args = dict(beta=1.0, steps=3, lr=1e-2, batch_size=4, seed=0, progress=False)
    args.update(kwargs)
    with lanlib.seeded(0):
        lan = MLPMaskNet((4,), hidden=(4,)) if lan is None else lan
    return lanlib.fit_lan(reader() if model is None else model, lan,
                          X if data is None else data,
                          noise.uniform() if noise_ is None else noise_, **args)


def with_inf(x: torch.Tensor, value=float("inf")) -> torch.Tensor:
    x = x.clone()
    x[1, 2] = value
    return x


def leaf_inputs(env):
    x = X.clone().requires_grad_()
    masks = fit(inputs=x)
    return x.grad, masks


def importance_of_feature_0(masks: torch.Tensor, rows=slice(None)) -> bool:
    imp = lanlib.importance(masks)[rows]
    return bool(imp[:, 0].mean() > imp[:, 1:].mean() + 0.3)


def importance_of_feature_0_in_class_1(masks: torch.Tensor) -> bool:
    """For the cross-entropy, on the inputs of class 1 (x_0 > 0.5): replacing x_0 by 0 makes
    class 0 MORE certain for the others, which the cross-entropy rewards."""
    return importance_of_feature_0(masks, X[:, 0] > 0.5)


# ------------------------------------------------------------------- files and the book


@dataclass
class Env:
    tmp: Path
    monkeypatch: pytest.MonkeyPatch


def umask_mode(env: Env, umask: int) -> tuple[int, int]:
    old = os.umask(umask)
    try:
        with _files.atomic_write(env.tmp / "f.bin") as f:
            f.write(b"x")
        archive = env.tmp / "a.tar"
        with tarfile.open(archive, "w") as tar:
            info = tarfile.TarInfo("top/a.txt")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"A"))
        dest = _files.extract_archive(archive, env.tmp / "dest")
    finally:
        os.umask(old)
    return stat.S_IMODE((env.tmp / "f.bin").stat().st_mode), stat.S_IMODE(dest.stat().st_mode)


def unreadable_checkpoint(env: Env):
    _files.save_tensor_file(env.tmp / "c.pt", {"w": torch.ones(2)}, {})

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    # chmod 000 would not stop root, who runs the CI: fail the open instead
    env.monkeypatch.setattr(_files, "open", denied, raising=False)
    return _files.load_tensor_file(env.tmp / "c.pt")


class Trainer:
    def __init__(self):
        self.trained = 0

    def __call__(self, module, config):
        self.trained += 1
        with torch.no_grad():
            module.weight.fill_(0.5)


def unwritable_root(env: Env, how: str):
    trainer = Trainer()
    if how == "permission":
        def denied(path, make):
            raise PermissionError(13, "Permission denied", str(path))
        env.monkeypatch.setattr(_files, "_temporary", denied)
        root = env.tmp / "data"
    else:
        (env.tmp / "a-file").write_text("not a folder")
        root = env.tmp / "a-file" / "data"
    try:
        return load_or_train("net", {"n": 1}, lambda c: nn.Linear(2, 2), trainer, root=root,
                             verbose=False)
    finally:
        assert trainer.trained == 0  # refused before training, not after


def save_fails(env: Env):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    env.monkeypatch.setattr(lanlib.cache, "save_tensor_file", full_disk)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module, loaded = load_or_train("net", {"n": 1}, lambda c: nn.Linear(2, 2), Trainer(),
                                       root=env.tmp, verbose=False)
    return module, loaded, [str(w.message) for w in caught]


def concurrent_extraction(env: Env):
    """The second of two first-time extractions finds the folder made by the first."""
    archive = env.tmp / "a.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("top/a.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"A"))
    dest = env.tmp / "dest"
    with _files.atomic_directory(dest) as mine:  # we extract ...
        (mine / "top").mkdir()
        (mine / "top" / "a.txt").write_bytes(b"A")
        _files.extract_archive(archive, dest)  # ... and another process finishes first
    return (dest / "top" / "a.txt").read_bytes(), sorted(p.name for p in env.tmp.iterdir())


def two_threads_extract(env: Env):
    """Two first loads at once, as two notebooks starting together would do."""
    import threading

    archive = env.tmp / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for i in range(200):
            info = tarfile.TarInfo(f"top/{i}.txt")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"A"))
    dest, start, errors = env.tmp / "dest", threading.Barrier(2), []

    def load():
        start.wait()
        try:
            _files.extract_archive(archive, dest)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, len(list((dest / "top").iterdir())), sorted(p.name for p in env.tmp.iterdir())


def wrong_cifar_cache(env: Env):
    root = env.tmp / "data"
    env.monkeypatch.setenv("LANLIB_DATA_DIR", str(root))
    env.monkeypatch.delenv("LANLIB_DATA_MIRROR", raising=False)
    one = {"images": torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "labels": torch.tensor([99])}
    _files.save_tensor_file(root / "cifar10-imagefolder-decoded.pt",
                            {f"{s}_{k}": v for s in ("train", "test") for k, v in one.items()},
                            {"source": "test"})
    return load_cifar10("train", download=False)


def site_swap(env: Env, exchange: bool):
    site, new = env.tmp / "html", env.tmp / "new"
    for folder, text in ((site, "old"), (new, "new")):
        folder.mkdir()
        (folder / "index.html").write_text(text)
    if not exchange:
        env.monkeypatch.setattr(_files, "_exchange", lambda a, b: False)
    _files.replace_directory(new, site)
    return (site / "index.html").read_text(), sorted(p.name for p in env.tmp.iterdir())


def executed_notebook(env: Env, fault: str):
    import papermill as pm

    source = env.tmp / "ch.ipynb"
    source.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                  "nbformat_minor": 5}))
    out = env.tmp / "executed"
    out.mkdir()
    (out / "ch.ipynb").write_text("previous build")

    def papermill(input_path, output_path, **kwargs):
        Path(output_path).write_text('{"cells": [')  # papermill saves as it goes
        if fault == "interrupt":
            raise KeyboardInterrupt
        Path(output_path).write_text(source.read_text())
        raise pm.PapermillExecutionError(1, 1, "", "ValueError", "boom", [])

    env.monkeypatch.setattr(pm, "execute_notebook", papermill)
    chapter = build_book.Chapter(name="ch", source=source)
    try:
        build_book.execute(chapter, out, env.tmp, "quick", None)
    except (KeyboardInterrupt, build_book.BuildError) as error:
        return type(error).__name__, (out / "ch.ipynb").read_text()[:14]


# ----------------------------------------------------------------------------- the table


def raises(error, match):
    return ("raises", error, match)


def gives(check):
    return ("gives", check)


def seeded_loader_runs():
    data = TensorDataset(X.repeat(4, 1) * torch.linspace(0.5, 1, 32)[:, None])
    runs, model = [], reader()
    state = torch.get_rng_state()
    for seed in (3, 3, 4):
        history = lanlib.History()
        fit_lan(model=model, data=DataLoader(data, batch_size=8, shuffle=True), seed=seed,
                steps=8, history=history)
        runs.append(history.distortion)
    return runs, torch.equal(state, torch.get_rng_state())


CASES = [
    # 1. non-finite values in, non-finite values out
    pytest.param(lambda env: fit(inputs=with_inf(X)),
                 raises(ValueError, "inputs must be finite, but 1 of 32 values are NaN or "
                                    "infinite; clean or drop"), id="inputs-with-plus-inf"),
    pytest.param(lambda env: fit(inputs=with_inf(X, -float("inf"))),
                 raises(ValueError, "inputs must be finite"), id="inputs-with-minus-inf"),
    pytest.param(lambda env: fit(inputs=with_inf(X, float("nan"))),
                 raises(ValueError, "inputs must be finite"), id="inputs-with-nan"),
    pytest.param(lambda env: fit_lan(data=with_inf(X)),
                 raises(ValueError, "inputs must be finite"), id="fit_lan-data-with-inf"),
    pytest.param(lambda env: fit_lan(data=DataLoader(TensorDataset(with_inf(X)), batch_size=8)),
                 raises(ValueError, "inputs must be finite"), id="dataloader-batch-with-inf"),
    pytest.param(lambda env: fit(model=Poisoned(float("nan"))),
                 raises(ValueError, "the model's output on the clean inputs must be finite"),
                 id="model-outputs-nan"),
    pytest.param(lambda env: fit(model=Poisoned(-float("inf"))),
                 raises(ValueError, r"model's output on the clean inputs must be finite.*-inf "
                                    "logit"), id="model-outputs-minus-inf-logit"),
    pytest.param(lambda env: fit_lan(model=Poisoned(float("nan"))),
                 raises(ValueError, "the model's output on the clean inputs must be finite"),
                 id="fit_lan-model-outputs-nan"),
    pytest.param(lambda env: noise.constant(float("nan")),
                 raises(ValueError, "constant noise value must be finite, got nan"),
                 id="constant-noise-nan"),
    pytest.param(lambda env: noise.constant(float("inf")),
                 raises(ValueError, "must be finite, got inf"), id="constant-noise-inf"),
    pytest.param(lambda env: noise.uniform(0.0, float("inf")),
                 raises(ValueError, "high must be finite"), id="uniform-noise-inf-bound"),
    pytest.param(lambda env: noise.bootstrap(with_inf(X, float("nan"))),
                 raises(ValueError, "the bootstrap pool must be finite, but 1 of 32"),
                 id="bootstrap-pool-with-nan"),
    pytest.param(lambda env: fit(noise_=noise.bootstrap(NanDataset())),
                 raises(ValueError, "a bootstrap sample must be finite"),
                 id="bootstrap-dataset-with-nan"),
    pytest.param(lambda env: fit(noise_=lambda x, generator=None: torch.full_like(x, float("nan"))),
                 raises(ValueError, "the noise's draw must be finite"), id="custom-noise-nan"),
    pytest.param(lambda env: fit(noise_=lambda x, generator=None: 0.0),
                 raises(TypeError, "the noise must return a tensor"), id="noise-not-a-tensor"),
    pytest.param(lambda env: fit(model=Poisoned(), noise_=noise.constant(-1.0), steps=60),
                 raises(ValueError, r"objective is not finite at step 50 \(checked every 50 "
                                    r"steps\): the distortion"), id="model-nan-on-corrupted"),
    pytest.param(lambda env: fit_lan(model=Poisoned(), noise_=noise.constant(-1.0)),
                 raises(ValueError, "objective is not finite at step 3"),
                 id="fit_lan-model-nan-on-corrupted"),
    pytest.param(lambda env: fit_lan(lan=Wayward(bad_call=4, value=0.9), steps=8),
                 raises(ValueError, r"LAN's output must lie in \[0, 1\], but up to step 8"),
                 id="lan-out-of-range-at-a-middle-step"),
    pytest.param(lambda env: fit_lan(lan=Wayward(bad_call=30, value=float("nan")), steps=60),
                 raises(ValueError, r"not finite at step 50 .* the masks are NaN"),
                 id="lan-nan-at-a-middle-step"),
    pytest.param(lambda env: auroc(torch.tensor([0.9, float("nan"), 0.1, 0.3]),
                                   torch.tensor([1, 1, 0, 0])),
                 raises(ValueError, "scores contain NaN"), id="auroc-nan-scores"),
    pytest.param(lambda env: auroc(torch.rand(5), torch.tensor([1, 0, 1, 0])),
                 raises(ValueError, "must have one shape"), id="auroc-mismatched-lengths"),
    pytest.param(lambda env: perturbation_curve(reader(), X, torch.rand(8, 4), noise.uniform(),
                                                target=torch.zeros(5, dtype=torch.long)),
                 raises(ValueError, r"target must hold one class per input, shape \(8,\)"),
                 id="perturbation-curve-short-target"),
    pytest.param(lambda env: perturbation_curve(reader(), X, with_inf(X, float("nan")),
                                                noise.uniform()),
                 raises(ValueError, "importance contains NaN"),
                 id="perturbation-curve-nan-importance"),
    # 2. single-logit models: a binary classifier (sigmoid), not a softmax over one class
    pytest.param(lambda env: fit(model=reader(1), noise_=noise.constant(0.0), beta=0.05,
                                 steps=150),
                 gives(importance_of_feature_0), id="single-logit-kl"),
    pytest.param(lambda env: fit(model=reader(1), noise_=noise.constant(0.0), beta=0.05,
                                 steps=150, loss="ce"),
                 gives(importance_of_feature_0_in_class_1), id="single-logit-ce"),
    pytest.param(lambda env: fit(model=Squeezed(), noise_=noise.constant(0.0), beta=0.05,
                                 steps=150),
                 gives(importance_of_feature_0), id="single-logit-1d-output"),
    pytest.param(lambda env: (losses.kl(torch.tensor([[1.0]]), torch.tensor([[-1.0]])),
                              torch.sigmoid(torch.tensor(1.0))),
                 gives(lambda r: torch.allclose(r[0], r[1] * (r[1] / (1 - r[1])).log()
                                                + (1 - r[1]) * ((1 - r[1]) / r[1]).log())),
                 id="single-logit-kl-is-bernoulli-kl"),
    pytest.param(lambda env: perturbation_curve(reader(1), X, torch.rand(8, 4),
                                                noise.constant(0.0), steps=4)["probs"],
                 gives(lambda probs: bool((probs[:, 0] - probs[:, -1]).abs().max() > 0.1)),
                 id="single-logit-deletion-curve-moves"),
    pytest.param(lambda env: output_agreement(reader(1), X, torch.ones(8, 4),
                                              noise.constant(0.0)),
                 gives(lambda share: share < 1.0), id="single-logit-output-agreement"),
    # 3. dtypes: masks and Adam in float32, F in its own dtype
    pytest.param(lambda env: fit(model=reader(dtype=torch.bfloat16), inputs=X.bfloat16(),
                                 steps=20),
                 gives(lambda m: m.dtype == torch.float32 and float((m - 0.5).abs().max()) > 0.3),
                 id="bf16-model-and-inputs-masks-move"),
    pytest.param(lambda env: fit(inputs=X.half()),
                 gives(lambda m: m.dtype == torch.float32 and m.shape == X.shape),
                 id="fp16-inputs-fp32-model"),
    pytest.param(lambda env: fit(model=reader(dtype=torch.bfloat16)),
                 gives(lambda m: m.dtype == torch.float32), id="fp32-inputs-bf16-model"),
    pytest.param(lambda env: fit(model=reader(dtype=torch.float64), inputs=X.double()),
                 gives(lambda m: m.dtype == torch.float64), id="float64-stays-float64"),
    pytest.param(lambda env: fit_lan(model=reader(dtype=torch.bfloat16), data=X.half()),
                 gives(lambda lan: isinstance(lan, nn.Module)), id="fit_lan-bf16-model-fp16-data"),
    # 4. inputs detached; every other bad argument gets lanlib's own message
    pytest.param(leaf_inputs, gives(lambda r: r[0] is None and r[1].grad_fn is None),
                 id="leaf-inputs-requiring-grad"),
    pytest.param(lambda env: fit(inputs=X.clone().requires_grad_() * 1.0),
                 gives(lambda m: m.shape == X.shape), id="non-leaf-inputs"),
    pytest.param(lambda env: fit_lan(data=X.clone().requires_grad_() * 1.0),
                 gives(lambda lan: isinstance(lan, nn.Module)), id="fit_lan-non-leaf-data"),
    pytest.param(lambda env: fit(inputs=X[:0]),
                 raises(ValueError, r"inputs are empty \(shape \(0, 4\)\)"), id="empty-batch"),
    pytest.param(lambda env: fit(model=lambda x: x),
                 raises(TypeError, "model must be a torch.nn.Module, got function; wrap"),
                 id="plain-function-model"),
    pytest.param(lambda env: fit_lan(model=lambda x: x),
                 raises(TypeError, "model must be a torch.nn.Module"),
                 id="fit_lan-plain-function-model"),
    pytest.param(lambda env: fit(device="cuda"),
                 raises(ValueError, "'cuda' was asked for, but this machine has 0 CUDA"),
                 id="cuda-without-cuda",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
    pytest.param(lambda env: fit(device="gpu"),
                 raises(ValueError, "device 'gpu' is not a device torch knows"),
                 id="unknown-device"),
    pytest.param(lambda env: fit(seed="abc"),
                 raises(TypeError, "seed must be an integer or None, got 'abc'"), id="seed-abc"),
    pytest.param(lambda env: fit(seed=1.7),
                 raises(TypeError, "seed must be an integer or None, got 1.7"), id="seed-1.7"),
    pytest.param(lambda env: fit(seed=True),
                 raises(TypeError, "seed must be an integer or None, got True"), id="seed-true"),
    pytest.param(lambda env: fit(seed=2**64),
                 raises(ValueError, "seed must fit in 64 bits"), id="seed-too-large"),
    pytest.param(lambda env: fit_lan(seed="abc"),
                 raises(TypeError, "seed must be an integer or None"), id="fit_lan-seed-abc"),
    pytest.param(lambda env: train_classifier(reader(), (X, torch.zeros(8, dtype=torch.long)),
                                              steps=1, seed=1.7, progress=False),
                 raises(TypeError, "seed must be an integer or None"), id="train-seed-1.7"),
    pytest.param(lambda env: lanlib.seeded(1.7).__enter__(),
                 raises(TypeError, "seed must be an integer or None"), id="seeded-1.7"),
    pytest.param(lambda env: (fit(seed=np.int64(5)), fit(seed=5)),
                 gives(lambda r: torch.equal(*r)), id="numpy-integer-seed"),
    pytest.param(lambda env: fit(mask_shape=(0,)),
                 raises(ValueError, r"mask_shape sizes must be >= 1, got \(0,\)"),
                 id="mask-shape-zero"),
    pytest.param(lambda env: fit(mask_shape=(-2,)),
                 raises(ValueError, "mask_shape sizes must be >= 1"), id="mask-shape-negative"),
    pytest.param(lambda env: fit(mask_shape=4),
                 raises(TypeError, r"mask_shape must be a tuple of sizes, .* like \(4,\); got 4"),
                 id="mask-shape-int"),
    pytest.param(lambda env: fit_lan(data=Stream()),
                 raises(TypeError, "an IterableDataset .* wrap it in a DataLoader"),
                 id="iterable-dataset"),
    pytest.param(lambda env: noise.bootstrap(X.tolist()),
                 raises(TypeError, "got a list; stack it first"), id="bootstrap-list-of-lists"),
    pytest.param(lambda env: fit(beta=np.float32(0.1)),
                 gives(lambda m: m.shape == X.shape), id="beta-numpy-float32"),
    pytest.param(lambda env: fit(beta=True),
                 raises(ValueError, "beta must be a positive number, got True"), id="beta-true"),
    pytest.param(lambda env: fit(beta=np.float64("nan")),
                 raises(ValueError, "beta must be a positive number"), id="beta-numpy-nan"),
    pytest.param(lambda env: fit(steps=np.int64(2)),
                 gives(lambda m: m.shape == X.shape), id="steps-numpy-int"),
    pytest.param(lambda env: lanlib.fit_sample_masks_over_beta(reader(), X, noise.uniform(),
                                                               [0.1, True], steps=1),
                 raises(ValueError, "each beta must be a positive number, got True"),
                 id="beta-sweep-with-bool"),
    pytest.param(lambda env: fit(max_distortion=0.1),
                 raises(ValueError, "give exactly one of beta .* got both"),
                 id="beta-and-max-distortion"),
    pytest.param(lambda env: fit_lan(beta=None),
                 raises(ValueError, "give exactly one of beta .* got neither"),
                 id="fit_lan-neither-beta-nor-max-distortion"),
    pytest.param(lambda env: fit(beta=None, max_distortion=-0.1),
                 raises(ValueError, "max_distortion must be a positive number"),
                 id="max-distortion-negative"),
    pytest.param(lambda env: fit(beta=None, max_distortion=0.1, multiplier_lr=0),
                 raises(ValueError, "multiplier_lr must be a positive number"),
                 id="multiplier-lr-zero"),
    pytest.param(lambda env: fit(tv=-1.0),
                 raises(ValueError, "tv must be a number >= 0"), id="tv-negative"),
    pytest.param(lambda env: fit(tv=0.1),
                 raises(ValueError, r"tv needs a mask with spatial dimensions .* \(8, 4\)"),
                 id="tv-on-features"),
    pytest.param(lambda env: fit_lan(gates="hardconcrete"),
                 raises(ValueError, "gates must be None .* got 'hardconcrete'"),
                 id="gates-misspelt"),
    pytest.param(lambda env: noise.blur(0.0),
                 raises(ValueError, "sigma must be > 0"), id="blur-sigma-zero"),
    pytest.param(lambda env: fit(noise_=noise.blur(1.0)),
                 raises(ValueError, "blur noise needs inputs with spatial dimensions"),
                 id="blur-on-features"),
    pytest.param(lambda env: seeded_loader_runs(),
                 gives(lambda r: r[0][0] == r[0][1] and r[0][0] != r[0][2] and r[1]),
                 id="fit_lan-user-dataloader-shuffle-reproducible"),
    # 5. files
    pytest.param(lambda env: umask_mode(env, 0o022),
                 gives(lambda modes: modes == (0o644, 0o755)), id="files-umask-022"),
    pytest.param(lambda env: umask_mode(env, 0o002),
                 gives(lambda modes: modes == (0o664, 0o775)), id="files-umask-002"),
    pytest.param(unreadable_checkpoint,
                 raises(PermissionError, "may not read it .* the file is not damaged"),
                 id="unreadable-file-is-not-damaged"),
    pytest.param(lambda env: unwritable_root(env, "permission"),
                 raises(PermissionError, "cannot write the checkpoint of 'net' to"),
                 id="load-or-train-root-not-writable"),
    pytest.param(lambda env: unwritable_root(env, "file"),
                 raises(OSError, "cannot write the checkpoint of 'net' to .*a-file"),
                 id="load-or-train-root-under-a-file"),
    pytest.param(save_fails,
                 gives(lambda r: torch.all(r[0].weight == 0.5) and not r[1]
                       and "could not save it" in r[2][0]),
                 id="load-or-train-save-fails-returns-network"),
    pytest.param(concurrent_extraction,
                 gives(lambda r: r == (b"A", ["a.tar", "dest"])),
                 id="concurrent-first-extraction"),
    pytest.param(two_threads_extract, gives(lambda r: r == ([], 200, ["a.tar", "dest"])),
                 id="two-first-extractions-at-once"),
    pytest.param(wrong_cifar_cache,
                 raises(CorruptFileError, r"not a decoded CIFAR-10 \(train labels outside 0..9"),
                 id="cifar-cache-wrong-content"),
    # 6. the book's build
    pytest.param(lambda env: site_swap(env, exchange=True),
                 gives(lambda r: r == ("new", ["html"])), id="site-replaced-by-exchange"),
    pytest.param(lambda env: site_swap(env, exchange=False),
                 gives(lambda r: r == ("new", ["html"])), id="site-replaced-by-renames"),
    pytest.param(lambda env: executed_notebook(env, "interrupt"),
                 gives(lambda r: r == ("KeyboardInterrupt", "previous build")),
                 id="interrupted-execution-keeps-old-notebook"),
    pytest.param(lambda env: executed_notebook(env, "cell"),
                 gives(lambda r: r == ("BuildError", '{"cells": [], ')),
                 id="failed-cell-notebook-in-place"),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_bad_input(call, expected, tmp_path, monkeypatch):
    env = Env(tmp_path, monkeypatch)
    if expected[0] == "raises":
        _, error, match = expected
        with pytest.raises(error, match=match):
            call(env)
    else:
        result = call(env)
        assert expected[1](result), result


def test_the_table_is_long_enough():
    assert len(CASES) >= 40
