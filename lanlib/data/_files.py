"""File plumbing shared by the loaders and by :mod:`lanlib.cache`.

One place for each job: where data lives (:func:`data_root`, the mirror), finding
and verifying a dataset file (:func:`find_file`, :func:`verify_file`), atomic
writes (:func:`atomic_write`, :func:`atomic_directory`), safe archive handling
(:func:`safe_members`, :func:`extract_archive`), and self-checking ``.pt`` files
(:func:`save_tensor_file`, :func:`load_tensor_file`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import torch

from ._checksums import KNOWN_SHA256

__all__ = [
    "CorruptFileError",
    "DataNotFoundError",
    "UnsafeArchiveError",
    "atomic_directory",
    "atomic_write",
    "candidate_paths",
    "check_split",
    "data_root",
    "extract_archive",
    "find_file",
    "load_tensor_file",
    "mirror_root",
    "not_found_error",
    "notice_once",
    "safe_members",
    "save_tensor_file",
    "verify_file",
]

DATA_DIR_ENV = "LANLIB_DATA_DIR"
MIRROR_ENV = "LANLIB_DATA_MIRROR"
_TENSOR_FILE_FORMAT = "lanlib-tensors-1"
_CHUNK = 1 << 20
_NOTICES: set[str] = set()


class DataNotFoundError(FileNotFoundError):
    """A dataset file is neither in the data root nor in the mirror, and no download worked."""


class CorruptFileError(OSError):
    """A file exists but is truncated, damaged or not the expected version."""


class UnsafeArchiveError(ValueError):
    """An archive member is a link, an absolute path or escapes the target folder."""


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder where lanlib keeps datasets, decoded caches and checkpoints.

    Args:
        root (str | PathLike | None): explicit folder; wins if given. Default None.

    Returns:
        Path: ``root`` if given; else ``$LANLIB_DATA_DIR`` if set; else the
        repository's ``data/`` folder when lanlib runs from a checkout (the folder
        next to the ``lanlib`` package, recognised by its ``README.md``); else
        ``~/.cache/lanlib``. The folder is not created here; writers create it.

    Example:
        >>> data_root("/tmp/lanlib-data")
        PosixPath('/tmp/lanlib-data')
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    checkout_data = Path(__file__).resolve().parents[2] / "data"
    if (checkout_data / "README.md").is_file():
        return checkout_data
    return Path.home() / ".cache" / "lanlib"


def mirror_root() -> Path | None:
    """Return the offline mirror folder named by ``$LANLIB_DATA_MIRROR``, or None if unset."""
    env = os.environ.get(MIRROR_ENV)
    return Path(env).expanduser() if env else None


def candidate_paths(relpath: str, root: Path) -> list[Path]:
    """Return where ``relpath`` is looked for, in order: the data root, then the mirror."""
    mirror = mirror_root()
    return [root / relpath] + ([mirror / relpath] if mirror is not None else [])


def check_split(split: str, allowed: Sequence[str] = ("train", "test")) -> None:
    """Raise ValueError unless ``split`` is one of ``allowed``."""
    if split not in allowed:
        choices = " or ".join(repr(s) for s in allowed)
        raise ValueError(f"split must be {choices}, got {split!r}")


def notice_once(message: str) -> None:
    """Print ``message`` (prefixed ``lanlib:``) the first time it is seen in this process."""
    if message not in _NOTICES:
        _NOTICES.add(message)
        print(f"lanlib: {message}")


def _check_digest(relpath: str, digest: str, size: int, where: str) -> None:
    for known in KNOWN_SHA256[relpath]:
        if known.sha256 == digest:
            if known.note:
                notice_once(known.note)
            return
    expected = " or ".join(f"{k.sha256} ({k.origin})" for k in KNOWN_SHA256[relpath])
    raise CorruptFileError(
        f"{where} is not a known version of '{relpath}': it is truncated, damaged or "
        f"a different file.\n  expected sha256: {expected}\n  got sha256:      "
        f"{digest} ({size:,} bytes)\nDelete it and run again to fetch a fresh copy "
        f"(from ${MIRROR_ENV} or by download); if it is the mirror's copy, repair the "
        "mirror (check it with `sha256sum -c SHA256SUMS` there)."
    )


def verify_file(path: Path, relpath: str) -> None:
    """Check ``path`` against the known SHA-256 digests of ``relpath``.

    If the matching registry entry has a note, it is printed once per process.

    Args:
        path (Path): the file to check.
        relpath (str): its key in the registry, e.g. ``"mnist/t10k-labels-idx1-ubyte.gz"``.

    Raises:
        CorruptFileError: naming the file, the expected and the actual digest.
    """
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    _check_digest(relpath, hasher.hexdigest(), path.stat().st_size, str(path))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` for writing bytes; rename it to ``path`` on success.

    On any exception inside the block the temporary file is deleted and ``path``
    is left as it was, so a reader never sees a half-written file.

    Args:
        path (str | PathLike): final file name; parent folders are created.

    Example:
        >>> with atomic_write("/tmp/lanlib-demo.bin") as f:
        ...     _ = f.write(b"data")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a new temporary folder next to ``path``; rename it to ``path`` on success.

    On any exception inside the block the temporary folder is deleted.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _download(url: str, dest: Path, relpath: str) -> Path:
    print(f"lanlib: downloading {url} -> {dest}")
    with urllib.request.urlopen(url, timeout=60) as response, atomic_write(dest) as out:
        hasher, size = hashlib.sha256(), 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            hasher.update(chunk)
            size += len(chunk)
        _check_digest(relpath, hasher.hexdigest(), size, f"the download from {url}")
    return dest


def not_found_error(
    relpath: str, root: Path, download_note: str, downloadable: bool = True
) -> DataNotFoundError:
    """Build the error for a missing file: every path looked at, and how to provide it."""
    looked = [f"  {root / relpath}  (data root)"]
    mirror = mirror_root()
    looked.append(
        f"  {mirror / relpath}  (${MIRROR_ENV})"
        if mirror is not None
        else f"  (no mirror: ${MIRROR_ENV} is not set)"
    )
    ways = [
        f"set ${MIRROR_ENV} to a folder that holds '{relpath}' (layout in data/README.md)",
        f"place the file at {root / relpath}",
    ]
    if downloadable:
        ways.append("run on a machine with internet access with download=True")
    return DataNotFoundError(
        f"cannot find '{relpath}'. Looked for:\n" + "\n".join(looked) + "\n"
        f"Download: {download_note}.\nTo provide it, do one of: " + "; or ".join(ways) + "."
    )


def find_file(relpath: str, root: Path, *, urls: Sequence[str] = (), download: bool = True) -> Path:
    """Return a verified copy of a dataset file: data root first, then the mirror, then download.

    Args:
        relpath (str): path relative to the data root, a key of the checksum registry.
        root (Path): the data root (see :func:`data_root`).
        urls (Sequence[str]): download URLs to try in order; the file is saved
            atomically at ``root / relpath`` and verified before it is renamed.
            Default ``()``: no download.
        download (bool): whether downloading is allowed. Default True.

    Returns:
        Path: the verified file (the mirror's copy is used in place, not copied).

    Raises:
        CorruptFileError: a file was found but fails its checksum.
        DataNotFoundError: nothing found; the message names every path looked at.
    """
    for path in candidate_paths(relpath, root):
        if path.is_file():
            verify_file(path, relpath)
            return path
    if not download:
        raise not_found_error(relpath, root, "not attempted (download=False)")
    if not urls:
        raise not_found_error(relpath, root, "no source is known for this file", False)
    failures = []
    for url in urls:
        try:
            return _download(url, root / relpath, relpath)
        except OSError as exc:  # URLError, HTTP errors, timeouts, CorruptFileError
            failures.append(f"{url}: {exc}")
    raise not_found_error(relpath, root, "failed (" + "; ".join(failures) + ")")


def safe_members(tar: tarfile.TarFile, archive: Path) -> Iterator[tarfile.TarInfo]:
    """Iterate over the members of ``tar``, refusing anything that could write outside a folder.

    Raises:
        UnsafeArchiveError: for a link, device or other special member, an absolute
            path, or a path with a ``..`` component.
    """
    for member in tar:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            kind = "link" if member.issym() or member.islnk() else "member"
            raise UnsafeArchiveError(
                f"{archive} contains an unsafe {kind} {member.name!r} (absolute path, '..' "
                "or not a plain file/folder); refusing to read it. Replace the archive "
                "with a trusted copy."
            )
        yield member


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract a tar archive into the new folder ``dest``, safely and atomically.

    Each member is checked with :func:`safe_members` before anything of it is
    written; only folders and plain file contents are created (no links,
    permissions or owners from the archive). Everything goes to a temporary folder
    that becomes ``dest`` only once the whole archive is out.

    Returns:
        Path: ``dest``.
    """
    with atomic_directory(dest) as tmp, tarfile.open(archive) as tar:
        for member in safe_members(tar, archive):
            target = tmp / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
    return dest


def _tensors_digest(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> str:
    hasher = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        hasher.update(f"\n{key}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return hasher.hexdigest()


def save_tensor_file(
    path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Save named tensors plus JSON-like metadata atomically, with a SHA-256 of the content.

    Args:
        path (Path): destination ``.pt`` file.
        tensors (Mapping[str, Tensor]): e.g. a ``state_dict``; stored on the CPU.
        meta (Mapping[str, Any]): plain JSON values only (dict, list, str, int,
            float, bool, None), so that ``torch.load(weights_only=True)`` reads it.

    Raises:
        TypeError: a value in ``tensors`` is not a tensor.
    """
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"entry {key!r} is a {type(value).__name__}, not a tensor")
    payload = {
        "format": _TENSOR_FILE_FORMAT,
        "meta": dict(meta),
        "tensors": {key: value.detach().cpu() for key, value in tensors.items()},
        "sha256": _tensors_digest(tensors, meta),
    }
    with atomic_write(path) as f:
        torch.save(payload, f)


def load_tensor_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by :func:`save_tensor_file` (``weights_only=True``) and verify it.

    Returns:
        tuple[dict[str, Tensor], dict]: the tensors (on the CPU) and the metadata.

    Raises:
        CorruptFileError: the file cannot be read, is not such a file, or its content
            does not match its recorded SHA-256; the message says to delete it.
    """
    advice = "Delete it and run again to rebuild it."
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CorruptFileError(
            f"{path} cannot be read, it is truncated or damaged ({exc}). {advice}"
        ) from exc
    if (
        not isinstance(payload, dict)
        or payload.get("format") != _TENSOR_FILE_FORMAT
        or not {"meta", "tensors", "sha256"} <= payload.keys()
    ):
        raise CorruptFileError(
            f"{path} is not a lanlib tensor file ({_TENSOR_FILE_FORMAT}). {advice}"
        )
    digest = _tensors_digest(payload["tensors"], payload["meta"])
    if digest != payload["sha256"]:
        raise CorruptFileError(
            f"{path} is damaged: its content has sha256 {digest}, but {payload['sha256']} "
            f"was recorded when it was saved. {advice}"
        )
    return payload["tensors"], payload["meta"]
