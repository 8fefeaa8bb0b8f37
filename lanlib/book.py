"""What every chapter notebook does first and last: one setup call, and its headline numbers saved.

A chapter's ``parameters`` cell holds flat values (``profile``, ``seed``, ``device``);
the cell after it calls :func:`setup`, which rejects mistyped values, turns ``"auto"``
into a concrete profile and device, says how long the run will take, limits torch to one
thread on a CPU, seeds torch's global generator and sets the plotting defaults.

Every number the chapter's prose states about a run is computed in the notebook and
placed into the text with :func:`glue` (MyST-NB's ``{glue:text}`` role), so text and
outputs cannot disagree. At the end, the chapter saves its headline numbers, with the
run's provenance, with :func:`save_results`: ``data/results/<chapter>.json`` for the quick
profile, ``data/results/full/<chapter>.json`` (committed) for the paper-scale one, which
:func:`full_results_table` shows beside the quick run's numbers.

Example:
    >>> run = setup("quick", seed=0, device="cpu", threads=None)
    >>> run.profile, run.device, run.seed
    ('quick', device(type='cpu'), 0)
    >>> profile, device, seed = run  # or unpack it

The method chapter (``notebooks/01_method``) shows them in use.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ._version import __version__
from .data import data_root
from .data._files import atomic_write
from .loop import named_device
from .plot import use_book_style

__all__ = [
    "PROFILES", "Setup", "TIMINGS", "Timing", "by_profile", "full_results",
    "full_results_table", "glue", "markdown_table", "provenance", "resolve_profile",
    "results_path", "save_results", "setup",
]

#: The profiles every chapter offers: "quick" runs on a CPU in minutes, "full" is the
#: paper's scale and runs only when asked for by name.
PROFILES = ("quick", "full")


class Timing(NamedTuple):
    """What is known of how long one chapter takes, in minutes of wall time."""

    #: The quick profile, measured with ``make book`` on the book's CI machine (2 CPU
    #: cores, the threads the chapter asks setup for, every network trained from scratch).
    quick_cpu: float
    #: The full profile on the same CPU (papermill, ``-p device cpu``).
    full_cpu: float
    #: Whether ``full_cpu`` was measured (True) or estimated from step times (False).
    full_cpu_measured: bool


#: Every chapter's timing, by notebook name. No full profile has been timed on a GPU yet:
#: once a full run is committed under ``data/results/full/``, :func:`setup` quotes it.
TIMINGS: dict[str, Timing] = {
    "01_method": Timing(quick_cpu=0.3, full_cpu=3.7, full_cpu_measured=True),
    "02_mnist_grid": Timing(quick_cpu=4.3, full_cpu=50, full_cpu_measured=False),
    "03_cifar10": Timing(quick_cpu=3.5, full_cpu=840, full_cpu_measured=False),
    "04_newsgroups": Timing(quick_cpu=1.3, full_cpu=93, full_cpu_measured=True),
    "05_imagenet": Timing(quick_cpu=1.7, full_cpu=2700, full_cpu_measured=False),
    "06_tank_story": Timing(quick_cpu=3.9, full_cpu=35, full_cpu_measured=False),
    "07_diffmask": Timing(quick_cpu=1.4, full_cpu=15, full_cpu_measured=False),
    "08_attention": Timing(quick_cpu=0.9, full_cpu=12, full_cpu_measured=True),
    "09_rl": Timing(quick_cpu=0.8, full_cpu=180, full_cpu_measured=False),
}


def _minutes(value: float) -> str:
    """``0.3`` -> ``'0.3 min'``, ``420`` -> ``'7 h'``."""
    return f"{value:.2g} min" if value < 90 else f"{value / 60:.2g} h"


#: When and where the last :func:`setup` call ran: the provenance :func:`save_results` writes.
_run: dict[str, Any] = {}


def resolve_profile(profile: str, device: str | torch.device = "auto") -> tuple[str, torch.device]:
    """Turn the ``profile`` and ``device`` of a parameters cell into concrete values.

    Args:
        profile (str): ``"quick"`` (minutes, on any device), ``"full"`` (the paper's sizes,
            hours; only when asked for by name) or ``"auto"``, which is always ``"quick"``:
            a free Colab GPU must not start a multi-hour run without being asked.
        device (str or torch.device): ``"auto"`` (CUDA if available, else CPU), or any
            torch device string such as ``"cpu"`` or ``"cuda:0"``. Default ``"auto"``.

    Returns:
        tuple (str, torch.device): the profile, one of :data:`PROFILES`, and the device.

    Raises:
        ValueError: for an unknown profile or device, or a CUDA device without CUDA.
    """
    allowed = ("auto", *PROFILES)
    if profile not in allowed:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(map(repr, allowed))}")
    resolved = named_device(device)
    return ("quick" if profile == "auto" else profile), resolved


class Setup(NamedTuple):
    """What :func:`setup` settled: the concrete profile, the device and the seed."""

    profile: str
    device: torch.device
    seed: int


def setup(profile: str = "auto", seed: int = 0, device: str | torch.device = "auto", *,
          chapter: str | None = None, sizes: Mapping[str, Mapping[str, Any]] | None = None,
          threads: int | None = 1) -> Setup:
    """The first call of every chapter: check the parameters and set the run up.

    Args:
        profile (str): ``"quick"``, ``"full"`` or ``"auto"`` (see :func:`resolve_profile`).
        seed (int): the chapter's seed; torch's global generator is seeded with it, so
            that whatever draws from it (initial weights, dropout) repeats run to run.
        device (str or torch.device): ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        chapter (str, optional): the notebook's name, e.g. ``"03_cifar10"``. When given,
            setup prints what the run will cost before it starts: the quick profile's
            measured time, or for ``"full"`` the wall time of the last recorded full run
            (``data/results/full/<chapter>.json``) and, from ``sizes``, how many times the
            quick profile's training steps it does. It is also written into the results'
            provenance.
        sizes (mapping, optional): the chapter's ``SIZES``: ``{"quick": {...}, "full":
            {...}}``; the entries whose name ends in ``steps`` give the step factor.
        threads (int, optional): torch's intra-op threads when the device is a CPU.
            Default 1: the chapters' networks are small, and one thread is faster than
            two that compete on a shared machine. None leaves torch's choice.

    Returns:
        Setup: ``(profile, device, seed)``, a named tuple.

    Raises:
        TypeError: ``seed`` is not an integer.
        ValueError: unknown profile or device, a CUDA device without CUDA, ``threads``
            not a positive integer, or ``sizes`` without both profiles.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    asked = profile
    profile, resolved = resolve_profile(profile, device)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if chapter is not None and not (isinstance(chapter, str) and chapter):
        raise ValueError(f"chapter must be the notebook's name, e.g. '03_cifar10', got {chapter!r}")
    if sizes is not None and not (isinstance(sizes, Mapping)
                                  and all(isinstance(sizes.get(p), Mapping) for p in PROFILES)):
        raise ValueError("sizes must map 'quick' and 'full' to the chapter's settings, e.g. "
                         "{'quick': {'steps': 300}, 'full': {'steps': 10_000}}")
    if resolved.type == "cpu" and threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    use_book_style()
    _run.clear()
    _run.update(chapter=chapter, profile=profile, device=resolved, seed=seed,
                started=time.perf_counter())
    if chapter is not None:
        print(_expected_cost(chapter, asked, profile, resolved, sizes))
    return Setup(profile, resolved, seed)


def _step_factor(sizes: Mapping[str, Mapping[str, Any]] | None) -> int | None:
    """The largest ratio full/quick over the ``*steps`` entries of a chapter's SIZES."""
    if sizes is None:
        return None
    ratios = [sizes["full"][k] / sizes["quick"][k] for k in sizes["quick"]
              if k.endswith("steps") and isinstance(sizes["full"].get(k), (int, float))
              and isinstance(sizes["quick"][k], (int, float)) and sizes["quick"][k] > 0]
    return round(max(ratios)) if ratios else None


def _expected_cost(chapter: str, asked: str, profile: str, device: torch.device,
                   sizes: Mapping[str, Mapping[str, Any]] | None) -> str:
    """One paragraph: the profile chosen, and what is known of how long it takes."""
    timing = TIMINGS.get(chapter)
    chosen = f"profile {asked!r} -> {profile!r}" if asked != profile else f"profile {profile!r}"
    if profile == "quick":
        took = (f"it takes about {_minutes(timing.quick_cpu)} on a 2-core CPU"
                if timing is not None else "it has not been timed")
        return (f"{chapter}: {chosen} on {device}; {took}. The paper-scale profile runs "
                "only when asked for by name (profile='full').")
    factor = _step_factor(sizes)
    parts = [f"up to {factor}x the quick profile's training steps" if factor is not None
             else "the paper's sizes"]
    if timing is not None:
        how = "measured" if timing.full_cpu_measured else "estimated from step times"
        parts.append(f"on a 2-core CPU it takes {_minutes(timing.full_cpu)} ({how})")
    record = (full_results(chapter) or {}).get("provenance", {})
    if record.get("wall_time_s") is not None:
        parts.append(f"the last recorded full run took {_minutes(record['wall_time_s'] / 60)} "
                     f"on {record.get('device_name', 'an unnamed device')} "
                     f"({record.get('date', 'undated')})")
    else:
        parts.append("no full run on a GPU has been recorded yet")
    return f"{chapter}: {chosen} on {device}: " + "; ".join(parts) + "."


def glue(name: str, value: Any, fmt: str | None = None) -> None:
    """Place a number computed in the notebook into the chapter's prose.

    In the book, the Markdown writes ``{glue:text}`name``` where the number belongs, and
    MyST-NB puts the glued text there when it renders the page; the cell shows nothing.
    Where MyST-NB is not installed (Colab, a bare Jupyter), the cell prints
    ``name = text`` instead, so the reader still sees every number the text refers to.

    Args:
        name (str): the key the Markdown uses; unique within the chapter.
        value: a number (int, float, 0-d tensor), a bool or a string.
        fmt (str, optional): a format spec for numbers, such as ``".2f"``, ``".0%"`` or
            ``","``. Default: integers as they are, other numbers ``".2f"``.

    Returns nothing, so that a cell ending in ``glue(...)`` shows no stray value on the page.

    Raises:
        ValueError: an empty or non-identifier-like name, or a number that is NaN or
            infinite (a glued "nan" in a sentence is a bug, not a result).
        TypeError: a value that is not a number, bool or string.
    """
    if not isinstance(name, str) or not name or not name.replace("_", "a").isalnum():
        raise ValueError(f"glue names are letters, digits and underscores, got {name!r}")
    number = value
    if getattr(value, "size", None) in (1, ()) or (isinstance(value, torch.Tensor)
                                                     and value.numel() == 1):
        number = value.item()  # a one-element tensor or a numpy scalar
    if isinstance(number, (bool, str)):
        text = str(number)
    elif isinstance(number, (int, float)):
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"glue({name!r}) got {number}; a sentence cannot state it")
        spec = fmt if fmt is not None else ("" if isinstance(number, int) else ".2f")
        text = format(number, spec)
    else:
        raise TypeError(f"glue({name!r}) takes a number, bool or string, got "
                        f"{type(value).__name__}; convert it with .item() or format it first")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        print(f"{name} = {text}")
    else:
        myst_glue(name, text, display=False)  # {glue:text} strips the repr's quotes


def _check_json(value: Any, where: str) -> None:
    """Raise TypeError (ValueError for NaN/inf) naming the first value JSON cannot hold."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}, which JSON cannot hold; store None or a string")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "JSON keys must be strings")
            _check_json(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    hint = ""
    if isinstance(value, torch.Tensor) or type(value).__module__.startswith("numpy"):
        hint = "; convert it with .item() (one number) or .tolist() (several)"
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__name__}, which is not "
        f"JSON-serialisable{hint}"
    )


def results_path(notebook_name: str, root: str | os.PathLike[str] | None = None,
                 profile: str = "quick") -> Path:
    """Where :func:`save_results` writes: ``<data root>/results/<notebook_name>.json``.

    The full profile's results go to ``<data root>/results/full/<notebook_name>.json``,
    which the repository keeps (the quick ones are rewritten by every build).
    """
    if not isinstance(notebook_name, str) or not notebook_name or any(
        sep in notebook_name for sep in ("/", "\\", os.sep)
    ) or notebook_name.startswith("."):
        raise ValueError(
            f"notebook_name must be a plain file stem such as '01_method', got {notebook_name!r}"
        )
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {PROFILES}")
    folder = data_root(root) / "results"
    return (folder / "full" if profile == "full" else folder) / f"{notebook_name}.json"


def _commit() -> str | None:
    """The checkout's commit (with ``+dirty`` when files differ from it), or None."""
    checkout = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=checkout, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance() -> dict[str, Any]:
    """Where, when and by what code the current run was made, for its results file.

    Returns:
        dict: ``date`` (UTC, ISO 8601), ``machine`` (architecture and CPU cores),
        ``device`` and ``device_name`` (the GPU's name on CUDA), ``commit`` (the git commit
        of a checkout, ``+dirty`` when tracked files were changed; None outside one),
        ``lanlib`` and ``torch`` versions, and ``wall_time_s`` since :func:`setup` (None
        when setup was not called).
    """
    device = _run.get("device", torch.device("cpu"))
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()})")
    started = _run.get("started")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "device": str(device),
        "device_name": name,
        "commit": _commit(),
        "lanlib": __version__,
        "torch": torch.__version__,
        "wall_time_s": None if started is None else round(time.perf_counter() - started, 1),
    }


def save_results(
    notebook_name: str,
    results: Mapping[str, Any],
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a chapter's headline numbers, with the run's provenance, as JSON.

    The quick profile's go to ``<data root>/results/<notebook_name>.json``, the full
    profile's to ``<data root>/results/full/<notebook_name>.json`` (see
    :func:`results_path`). A ``"provenance"`` entry is added (see :func:`provenance`).
    The file is replaced atomically (written to a temporary file in the same folder,
    then renamed), so a reader never sees half of it.

    Args:
        notebook_name (str): the chapter's file stem, e.g. ``"01_method"``.
        results (mapping str -> JSON value): the numbers; must contain ``"profile"``
            (one of :data:`PROFILES`), so that quick and full results are never confused.
            Values are None, bool, int, finite float, str, lists and str-keyed mappings.
        root (str or PathLike, optional): the data root. Default:
            :func:`lanlib.data.data_root` (``$LANLIB_DATA_DIR``, else the checkout's
            ``data/``, else ``~/.cache/lanlib``).

    Returns:
        Path: the file written.

    Raises:
        TypeError: a value (named in the message) is not JSON-serialisable.
        ValueError: ``"profile"`` is missing or unknown, a float is NaN or infinite, or
            the results hold a ``"provenance"`` entry of their own.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping (dict), got {type(results).__name__}")
    if results.get("profile") not in PROFILES:
        raise ValueError(
            f"results must contain 'profile' (one of {PROFILES}), got {results.get('profile')!r}"
        )
    if "provenance" in results:
        raise ValueError("'provenance' is written by save_results itself; rename that entry")
    _check_json(results, "results")
    path = results_path(notebook_name, root, results["profile"])
    record = {**results, "provenance": provenance()}
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    with atomic_write(path) as f:  # a temporary file in the same folder, then os.replace
        f.write(text.encode("utf-8"))
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table: a chapter's deviations from the paper, or its numbers by profile.

    Cells are written with ``str``; a ``|`` inside a cell is escaped. In a notebook, show
    the result with ``IPython.display.Markdown``; a cell tagged ``remove-input`` then shows
    the book's reader the table alone.

    Example:
        >>> print(markdown_table(["setting", "paper", "ours"], [["steps", 250_000, 400]]))
        | setting | paper | ours |
        |---|---|---|
        | steps | 250000 | 400 |

    Raises:
        ValueError: a row whose length differs from the header's.
    """
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, the header {len(header)}: {row!r}")
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def by_profile(template: str, sizes: Mapping[str, Mapping[str, Any]],
               **shared: Any) -> list[str]:
    """A deviations-table row's two cells: ``template`` filled in from each profile's sizes.

    Example:
        >>> by_profile("{steps:,} steps at lr {lr:g}", {"quick": {"steps": 400},
        ...            "full": {"steps": 250_000}}, lr=5e-4)
        ['400 steps at lr 0.0005', '250,000 steps at lr 0.0005']

    Raises:
        KeyError: the template names a setting that neither the profile nor ``shared`` has.
    """
    return [template.format(**sizes[profile], **shared) for profile in PROFILES]


def full_results(notebook_name: str,
                 root: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The recorded results of the chapter's last full-profile run, or None if there is none.

    Raises:
        ValueError: the file exists but is not a JSON object of full-profile results.
    """
    path = results_path(notebook_name, root, "full")
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); restore it with git or delete "
                         "it and run the chapter with profile='full'") from exc
    if not isinstance(record, dict) or record.get("profile") != "full":
        raise ValueError(f"{path} does not hold full-profile results (its 'profile' is "
                         f"{record.get('profile') if isinstance(record, dict) else None!r})")
    return record


def full_results_table(notebook_name: str, rows: Mapping[str, str],
                       current: Mapping[str, Any] | None = None,
                       root: str | os.PathLike[str] | None = None) -> str:
    """A Markdown table of the full-profile run's numbers, beside this run's, or why not.

    Full-profile numbers never appear in a chapter's prose: this table shows them from
    the committed results file, with the run's provenance, and says so plainly when no
    full run has been recorded.

    Args:
        notebook_name (str): the chapter, e.g. ``"03_cifar10"``.
        rows (mapping str -> str): result key -> label of the row. A key may be a path
            into nested results, with dots: ``"swap.own_better"``.
        current (mapping, optional): this run's results (quick profile), shown in a
            second column.
        root: the data root (see :func:`save_results`).

    Returns:
        str: Markdown; in a notebook, show it with ``IPython.display.Markdown``.
    """
    record = full_results(notebook_name, root)
    if record is None:
        return (f"*No full-profile run of this chapter has been recorded* (no "
                f"`data/results/full/{notebook_name}.json`). Run the notebook with "
                "`profile=\"full\"` to make one; its numbers then appear here.")

    def lookup(results: Mapping[str, Any] | None, key: str) -> str:
        value: Any = results
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, float):
            return f"{value:.3g}"
        return "–" if value is None else str(value)

    header = ["", "full profile"] + (["this run"] if current is not None else [])
    rows_out = [[label, lookup(record, key)] + ([lookup(current, key)] if current is not None
                                                else []) for key, label in rows.items()]
    lines = [markdown_table(header, rows_out)]
    source = record.get("provenance", {})
    wall = source.get("wall_time_s")
    lines.append("")
    lines.append(
        f"Full run: {source.get('date', 'undated')}, {source.get('device_name', '?')}, "
        f"commit {str(source.get('commit'))[:12]}, "
        f"{'?' if wall is None else f'{wall / 60:.0f} min'}."
    )
    return "\n".join(lines)
