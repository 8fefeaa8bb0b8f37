"""File plumbing shared by the loaders and by :mod:`lanlib.cache`.

One place for each job: where data lives (:func:`data_root`, the mirror), finding
and verifying a dataset file (:func:`find_file`, :func:`verify_file`), atomic
writes (:func:`atomic_write`, :func:`atomic_directory`, :func:`replace_directory`,
:func:`check_writable`), safe archive handling (:func:`safe_members`,
:func:`extract_archive`), and self-checking ``.pt`` files (:func:`save_tensor_file`,
:func:`load_tensor_file`).

Files and folders are created with the permissions the umask gives (``0644`` and
``0755`` under the usual umask ``022``), as ``open`` and ``mkdir`` would: the
temporary names they are written under never make them private to their owner.
A file that cannot be read for lack of permission raises ``PermissionError``, never
:class:`CorruptFileError` (the file is not damaged: do not delete it).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import tarfile
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
    "check_writable",
    "data_root",
    "extract_archive",
    "find_file",
    "load_tensor_file",
    "mirror_root",
    "not_found_error",
    "notice_once",
    "replace_directory",
    "safe_members",
    "save_tensor_file",
    "shown_path",
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


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as messages print it, without the folders of the machine that printed it.

    Printed output ends up in the rendered book, which must not show where it was built:
    a path inside the checkout is shown relative to it (``data/checkpoints/f.pt``), one
    inside the offline mirror or the data root as ``$LANLIB_DATA_MIRROR/...`` or
    ``$LANLIB_DATA_DIR/...``, one inside the home folder as ``~/...``.
    """
    path = Path(path).expanduser().absolute()
    bases = [(Path(__file__).resolve().parents[2], "")]
    bases += [(Path(os.environ[env]).expanduser().absolute(), f"${env}/")
              for env in (MIRROR_ENV, DATA_DIR_ENV) if os.environ.get(env)]
    bases.append((Path.home(), "~/"))
    for base, prefix in bases:
        if path.is_relative_to(base):
            return prefix + path.relative_to(base).as_posix()
    return str(path)


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


def _temporary(path: Path, make) -> Path:
    """A new, unused name next to ``path``, created by ``make(name)`` (retried on a clash)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` for writing bytes; rename it to ``path`` on success.

    On any exception inside the block the temporary file is deleted and ``path``
    is left as it was, so a reader never sees a half-written file. The file gets the
    permissions the umask gives a new file (``0644`` under umask ``022``).

    Args:
        path (str | PathLike): final file name; parent folders are created.

    Example:
        >>> with atomic_write("/tmp/lanlib-demo.bin") as f:
        ...     _ = f.write(b"data")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fds = []
    tmp = _temporary(path, lambda name: fds.append(
        os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)))
    try:
        with os.fdopen(fds[0], "wb") as f:
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

    On any exception inside the block the temporary folder is deleted. If ``path``
    appeared meanwhile (another process filled it first, e.g. two notebooks loading a
    dataset for the first time at once), that copy is kept and this one deleted: both
    callers then find a complete ``path``. The folder gets the umask's permissions.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path, lambda name: os.mkdir(name, 0o777))
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # the other process's copy won
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically (Linux ``renameat2``); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # an old kernel, or a file system without the exchange
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def replace_directory(new: Path, dest: Path) -> Path:
    """Put the folder ``new`` at ``dest`` by renaming, replacing the folder there, and delete
    the old one.

    On Linux the two are exchanged in one atomic step, so ``dest`` is always the whole
    old folder or the whole new one. Elsewhere the old folder is first renamed aside
    (``.<name>.old``); an interruption between the two renames leaves both whole.

    Args:
        new (Path): the complete new folder, on the same file system as ``dest``.
        dest (Path): where it goes.

    Returns:
        Path: ``dest``.
    """
    if not dest.exists():
        os.rename(new, dest)
        return dest
    if _exchange(new, dest):
        shutil.rmtree(new)  # now the old folder
        return dest
    old = dest.parent / f".{dest.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(dest, old)
    os.rename(new, dest)
    shutil.rmtree(old)
    return dest


def check_writable(folder: Path, what: str) -> None:
    """Raise an ``OSError`` (``PermissionError`` for a folder without write permission),
    saying what for, unless files can be created in ``folder``.

    The folder is created if needed; a file is created there and deleted, the very
    operation a later :func:`atomic_write` performs.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fds = []
        tmp = _temporary(folder / "write-test", lambda name: fds.append(
            os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
        os.close(fds[0])
        os.unlink(tmp)
    except OSError as exc:  # OSError(errno, ...) is PermissionError for EACCES, and so on
        raise OSError(
            exc.errno or errno.EACCES,
            f"cannot write {what} to {folder} ({exc.strerror or exc}); pass a writable "
            f"root= or set ${DATA_DIR_ENV} to a folder you can write",
        ) from exc


def _download(url: str, dest: Path, relpath: str) -> Path:
    print(f"lanlib: downloading {url} -> {shown_path(dest)}")
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
        PermissionError: the file may not be read by this user (it is not damaged).
        CorruptFileError: the file is truncated, is not such a file, or its content
            does not match its recorded SHA-256; the message says to delete it.
    """
    advice = "Delete it and run again to rebuild it."
    try:
        with open(path, "rb") as f:
            try:
                payload = torch.load(f, map_location="cpu", weights_only=True)
            except Exception as exc:  # RuntimeError, UnpicklingError, EOFError, ...
                raise CorruptFileError(
                    f"{path} cannot be read, it is truncated or damaged ({exc}). {advice}"
                ) from exc
    except PermissionError as exc:  # from open(): the file is fine, the user may not read it
        raise PermissionError(
            exc.errno, f"{path} exists but this user may not read it ({exc.strerror}); the "
            "file is not damaged: ask its owner to make it readable, or use another data "
            f"root (root= or ${DATA_DIR_ENV})") from exc
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
