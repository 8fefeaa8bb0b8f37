"""Tests of lanlib.data: real loading from the offline mirror, integrity checks, translated MNIST.

Every test uses a fresh data root under ``tmp_path``, so nothing is written into the
repository. Tests that read the real datasets need the offline mirror (``$LANLIB_DATA_MIRROR``
or ``../shared/datasets`` next to the checkout), one compares with scikit-learn: without
them these tests are skipped, and under continuous integration (``CI`` set, as GitHub
Actions does) they fail, saying what is missing and how to get it, unless the job declares the
requirement missing (``tests/_requirements.py``).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lanlib import data
from lanlib.data import (
    CorruptFileError,
    DataNotFoundError,
    UnsafeArchiveError,
    _checksums,
    _files,
    cifar,
    mnist,
    newsgroups,
)
from tests._requirements import unavailable

MIRROR = Path(
    os.environ.get("LANLIB_DATA_MIRROR")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CORNER = (16, 16, 12, 12)  # bottom-right 12x12 corner of a 28x28 canvas


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty data root, no mirror, and a fresh record of one-time notes."""
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LANLIB_DATA_MIRROR", raising=False)
    monkeypatch.setattr(_files, "_NOTICES", set())
    return tmp_path / "data"


def checked_mirror(folder: Path) -> Path:
    """``folder`` if it holds a dataset mirror, else skip (fail under CI) saying how to get one."""
    if not (folder / "SHA256SUMS").is_file():
        unavailable(f"offline dataset mirror not found at {folder}: set LANLIB_DATA_MIRROR to "
                    "a folder holding SHA256SUMS and the archives, or put that folder at "
                    "../shared/datasets beside the checkout (make test then uses it)",
                    what="mirror")
    return folder


@pytest.fixture
def mirror_dir():
    return checked_mirror(MIRROR)


@pytest.fixture
def mirror(root, mirror_dir, monkeypatch):
    """The data root of ``root``, with LANLIB_DATA_MIRROR pointing at the real mirror."""
    monkeypatch.setenv("LANLIB_DATA_MIRROR", str(mirror_dir))
    return mirror_dir


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders left behind by atomic writes."""
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]


# --- data root and mirror ---------------------------------------------------------


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "env"))
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv("LANLIB_DATA_DIR")
    checkout_data = Path(_files.__file__).resolve().parents[2] / "data"
    if (checkout_data / "README.md").is_file():
        assert data.data_root() == checkout_data
    monkeypatch.setattr(_files, "__file__", str(tmp_path / "site" / "lanlib" / "data" / "x.py"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_root() == tmp_path / "home" / ".cache" / "lanlib"


def test_missing_files_name_every_path(root, tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError) as info:
        data.load_mnist("test", download=False)
    message = str(info.value)
    assert str(root / "mnist" / "t10k-images-idx3-ubyte.gz") in message
    assert "LANLIB_DATA_MIRROR is not set" in message
    assert "download=False" in message
    monkeypatch.setenv("LANLIB_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    with pytest.raises(DataNotFoundError, match="empty-mirror/mnist/t10k-images"):
        data.load_mnist("test", download=False)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: data.load_mnist("validation"), ValueError),
        (lambda: data.load_cifar10("val"), ValueError),
        (lambda: data.load_newsgroups("all"), ValueError),
        (lambda: data.load_newsgroups(remove=("headers", "signature")), ValueError),
        (lambda: data.load_newsgroups(remove="headers"), TypeError),
        (lambda: data.load_imagenet_samples(size=0), ValueError),
    ],
)
def test_bad_arguments(root, call, error):
    with pytest.raises(error):
        call()


# --- checksums, downloads, atomic writes, archives -------------------------------


def test_mnist_from_mirror(mirror, root, capsys):
    images, labels = data.load_mnist("test")
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() == 0 and images.max() == 1
    assert labels.dtype == torch.int64
    assert labels.bincount().tolist() == MNIST_TEST_COUNTS
    train_images, train_labels = data.load_mnist("train")
    data.load_mnist("train")
    assert train_images.shape == (10_000, 1, 28, 28) and train_labels.shape == (10_000,)
    assert capsys.readouterr().out.count("first 10,000 of the 60,000") == 1
    assert not root.exists()  # the mirror is read in place


def test_local_copy_wins_over_mirror(root, mirror_dir):
    (root / "mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mirror_dir / "mnist" / name, root / "mnist" / name)
    images, labels = data.load_mnist("test", download=False)
    assert labels.bincount().tolist() == MNIST_TEST_COUNTS


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_file_is_reported(root, mirror_dir, damage):
    good = (mirror_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    bad = bytearray(good[: len(good) // 2] if damage == "truncate" else good)
    if damage == "flip":
        bad[len(bad) // 2] ^= 0xFF
    target = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.parent.mkdir(parents=True)
    shutil.copy(mirror_dir / "mnist" / "t10k-images-idx3-ubyte.gz", target.parent)
    target.write_bytes(bytes(bad))
    with pytest.raises(CorruptFileError) as info:
        data.load_mnist("test", download=False)
    message = str(info.value)
    assert str(target) in message
    assert "expected sha256: f7ae60f92e00" in message
    assert f"({len(bad):,} bytes)" in message
    assert "Delete it" in message


def test_download_is_verified_and_atomic(root, mirror_dir, tmp_path, monkeypatch):
    bad_server = tmp_path / "bad-server"
    bad_server.mkdir()
    good = (mirror_dir / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (bad_server / "t10k-images-idx3-ubyte.gz").write_bytes(good[:-10])
    monkeypatch.setattr(mnist, "MNIST_URLS", (bad_server.as_uri() + "/",))
    with pytest.raises(DataNotFoundError, match="not a known version") as info:
        data.load_mnist("test")
    assert str(root / "mnist" / "t10k-images-idx3-ubyte.gz") in str(info.value)
    assert leftovers(root) == [] and not list((root / "mnist").glob("*.gz"))

    urls = (bad_server.as_uri() + "/", (mirror_dir / "mnist").as_uri() + "/")
    monkeypatch.setattr(mnist, "MNIST_URLS", urls)
    images, labels = data.load_mnist("test")
    assert labels.bincount().tolist() == MNIST_TEST_COUNTS
    assert (root / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes() == good
    assert leftovers(root) == []


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    with _files.atomic_write(target) as f:
        f.write(b"old")
    with pytest.raises(RuntimeError), _files.atomic_write(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def make_tar(path: Path, members: dict[str, bytes | tuple[str, str]]) -> Path:
    """Write a tar.gz; a value is file content, or ("sym"|"hard", link target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, value in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(value, tuple):
                info.type = tarfile.SYMTYPE if value[0] == "sym" else tarfile.LNKTYPE
                info.linkname = value[1]
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return path


@pytest.mark.parametrize(
    "evil",
    [
        {"../evil": b"x"},
        {"ok/../../evil": b"x"},
        {"/tmp/evil": b"x"},
        {"link": ("sym", "/etc/passwd")},
        {"hard": ("hard", "../evil")},
    ],
)
def test_unsafe_archive_is_rejected(tmp_path, evil):
    archive = make_tar(tmp_path / "a.tar.gz", {"good/file.txt": b"fine", **evil})
    dest = tmp_path / "out" / "dest"
    with pytest.raises(UnsafeArchiveError, match="unsafe"):
        _files.extract_archive(archive, dest)
    assert not dest.exists() and not (tmp_path / "evil").exists()
    assert leftovers(tmp_path) == []


def test_safe_archive_is_extracted(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", {"top/a.txt": b"A", "top/sub/b.txt": b"B"})
    dest = _files.extract_archive(archive, tmp_path / "dest")
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"B"


# --- CIFAR-10 ------------------------------------------------------------------


@pytest.fixture
def tiny_cifar(root, monkeypatch):
    """A 2-images-per-class ImageFolder archive in the data root, accepted by the registry.

    Each image is a flat grey whose level encodes its class (class c -> 20 * c + 10).
    """
    from PIL import Image

    members = {}
    for split in ("train", "test"):
        for label, name in enumerate(data.CIFAR10_CLASSES):
            for index in range(2):
                buffer = io.BytesIO()
                Image.new("RGB", (32, 32), (20 * label + 10,) * 3).save(buffer, "JPEG")
                members[f"cifar10/{split}/{name}/{index:04d}.jpg"] = buffer.getvalue()
    root.mkdir(parents=True)
    archive = make_tar(root / "cifar10-imagefolder.tar.gz", members)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(_checksums.KNOWN_SHA256, archive.name, (_checksums.Known(digest, "test"),))
    return archive


def test_cifar_from_archive_decodes_once(tiny_cifar, root, monkeypatch, capsys):
    images, labels = data.load_cifar10("train")
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [c for c in range(10) for _ in range(2)]
    levels = images.mean(dim=(1, 2, 3)) * 255
    assert torch.allclose(levels, 20 * labels.float() + 10, atol=2)
    assert "decoding" in capsys.readouterr().out

    def no_decoding(archive):
        raise AssertionError("decoded twice")

    monkeypatch.setattr(cifar, "_decode_archive", no_decoding)
    tiny_cifar.unlink()
    test_images, test_labels = data.load_cifar10("test", download=False)
    assert test_images.shape == (20, 3, 32, 32) and test_labels.bincount().tolist() == [2] * 10


def test_cifar_damaged_cache_is_reported(tiny_cifar, root):
    data.load_cifar10("test")
    cache = root / "cifar10-imagefolder-decoded.pt"
    cache.write_bytes(cache.read_bytes()[:1000])
    with pytest.raises(CorruptFileError, match="(?s)truncated or damaged.*Delete it"):
        data.load_cifar10("test")


def test_cifar_missing(root):
    with pytest.raises(DataNotFoundError, match="cifar10-imagefolder.tar.gz"):
        data.load_cifar10("test", download=False)


def test_cifar_from_real_mirror(mirror, root):
    images, labels = data.load_cifar10("train")
    assert images.shape == (50_000, 3, 32, 32) and images.dtype == torch.float32
    assert labels.bincount().tolist() == [5000] * 10
    images, labels = data.load_cifar10("test")
    assert images.shape == (10_000, 3, 32, 32)
    assert labels.bincount().tolist() == [1000] * 10
    assert images.min() >= 0 and images.max() <= 1 and 0.4 < images.mean() < 0.55


# --- 20 Newsgroups -------------------------------------------------------------------


def test_strippers():
    post = (
        "From: a@b.c\nSubject: hi\n\nIn article <1@x>, bob writes:\n> quoted\n| also quoted\n"
        "My own text.\nMore text.\n\n--\nJane Doe, ACME\n"
    )
    assert newsgroups.strip_headers(post).startswith("In article")
    assert newsgroups.strip_headers("no blank line") == ""
    assert newsgroups.strip_quotes(newsgroups.strip_headers(post)).startswith("My own text.")
    assert newsgroups.strip_footer("Body\nmore\n-----\nsig line") == "Body\nmore"
    assert newsgroups.strip_footer("single line") == "single line"


def test_newsgroups_from_mirror(mirror, root, monkeypatch):
    texts, labels, names = data.load_newsgroups("train")
    assert len(texts) == 11_314 and labels.shape == (11_314,) and labels.dtype == torch.int64
    assert len(names) == 20 and names == sorted(names) and names[0] == "alt.atheism"
    assert labels.bincount().tolist()[:3] == [480, 584, 591]
    assert (root / "20news-bydate" / "20news-bydate-test").is_dir()  # extracted once

    monkeypatch.delenv("LANLIB_DATA_MIRROR")  # the extracted copy suffices now
    raw, test_labels, _ = data.load_newsgroups("test", remove=())
    assert len(raw) == 7_532 and test_labels.bincount().sum() == 7_532
    assert raw[0].startswith("From: ")
    stripped, _, _ = data.load_newsgroups("test")
    assert not stripped[0].startswith("From: ")
    try:  # same results as scikit-learn's own heuristics (private functions)
        from sklearn.datasets._twenty_newsgroups import (
            strip_newsgroup_footer,
            strip_newsgroup_header,
            strip_newsgroup_quoting,
        )
    except ImportError:
        unavailable("scikit-learn is not installed, so the strippers cannot be compared with "
                    "its own: pip install -e '.[data]' (or pip install scikit-learn)",
                    what="sklearn")
    expected = [
        strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(text)))
        for text in raw
    ]
    assert stripped == expected


# --- ImageNet samples -------------------------------------------------------------


def test_imagenet_samples_from_mirror(mirror, root):
    images, labels, names = data.load_imagenet_samples(size=64)
    assert images.shape == (20, 3, 64, 64) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert names[0] == "imagenet_00_243" and labels[0] == 243 and labels.dtype == torch.int64
    assert [int(name.split("_")[-1]) for name in names] == labels.tolist()
    assert data.imagenet_class_names()[243] == "bull mastiff"


def test_imagenet_class_names():
    names = data.imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench"


def test_imagenet_fallback_photos(root, capsys):
    images, labels, names = data.load_imagenet_samples(size=32)
    assert {"china", "flower"} <= set(names) and len(set(names)) == len(names)
    assert images.shape == (len(names), 3, 32, 32)
    classes = data.imagenet_class_names()
    shown = {name: classes[int(y)] for name, y in zip(names, labels, strict=True) if y >= 0}
    assert shown["china"] == "palace" and labels[names.index("flower")] == -1
    if "chelsea" in names:  # scikit-image's photos
        assert shown["chelsea"] == "tabby" and shown["coffee"] == "espresso"
        assert labels[names.index("astronaut")] == labels[names.index("rocket")] == -1
    assert "not found" in capsys.readouterr().out


def test_package_photos():
    photos, names = data.package_photos(48)
    assert photos.shape == (len(names), 3, 48, 48) and names[:2] == ["china", "flower"]
    assert float(photos.min()) >= 0 and float(photos.max()) <= 1


def test_imagenet_partial_set_is_an_error(root, mirror_dir):
    (root / "imagenet-samples").mkdir(parents=True)
    shutil.copy(mirror_dir / "imagenet-samples" / "imagenet_00_243.jpg", root / "imagenet-samples")
    with pytest.raises(DataNotFoundError, match="imagenet_01_559.jpg"):
        data.load_imagenet_samples()


# --- translated MNIST -------------------------------------------------------------


def test_translate_places_digit_where_asked():
    images = torch.rand(3, 1, 28, 28)
    positions = torch.tensor([[0, 0], [16, 16], [5, 9]])
    canvases, used = data.translate_digits(images, positions)
    small = F.interpolate(images, size=(12, 12), mode="bilinear", antialias=True)
    assert torch.equal(used, positions)
    for i, (r, c) in enumerate(positions.tolist()):
        assert torch.equal(canvases[i, :, r : r + 12, c : c + 12], small[i])
        outside = canvases[i].clone()
        outside[:, r : r + 12, c : c + 12] = 0
        assert outside.abs().sum() == 0
    one, _ = data.translate_digits(images, (5, 9), canvas_size=40, digit_size=20)
    assert one.shape == (3, 1, 40, 40) and one[:, :, 5:25, 9:29].abs().sum() > 0


def test_translate_respects_exclusion_and_seed():
    images = torch.rand(2000, 1, 28, 28) * 0.9 + 0.1  # no zero pixel: ink fills the box
    canvases, positions = data.translate_digits(images, exclude=CORNER, seed=3)
    assert canvases[:, :, 16:, 16:].abs().sum() == 0
    rows, cols = positions.unbind(1)
    assert not ((rows + 12 > 16) & (cols + 12 > 16)).any()
    assert len({tuple(p) for p in positions.tolist()}) == len(
        data.allowed_positions(28, 12, CORNER)
    )
    assert canvases.min() >= 0 and canvases.max() <= 1

    again, same = data.translate_digits(images, exclude=CORNER, seed=3)
    assert torch.equal(again, canvases) and torch.equal(same, positions)
    _, other = data.translate_digits(images, exclude=CORNER, seed=4)
    assert not torch.equal(other, positions)
    _, from_generator = data.translate_digits(
        images, exclude=CORNER, seed=torch.Generator().manual_seed(3)
    )
    assert torch.equal(from_generator, positions)


def test_allowed_positions_count():
    assert len(data.allowed_positions(28, 12)) == 17 * 17
    assert len(data.allowed_positions(28, 12, CORNER)) == 17 * 17 - 12 * 12


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"digit_size": 30}, ValueError, "larger than the canvas"),
        ({"exclude": (20, 20, 12, 12)}, ValueError, "outside the 28x28 canvas"),
        ({"exclude": (0, 0, 28)}, ValueError, "four ints"),
        ({"exclude": (0, 0, 28, 28)}, ValueError, "no position"),
        ({"positions": (16, 16), "exclude": CORNER}, ValueError, "over exclude"),
        ({"positions": (17, 0)}, ValueError, "off the 28-pixel canvas"),
        ({"positions": torch.zeros(4, 2)}, TypeError, "ints"),
        ({"positions": torch.zeros(3, 2, dtype=torch.long)}, ValueError, "shape"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_translate_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.translate_digits(torch.rand(4, 1, 28, 28), **kwargs)


def test_translate_needs_nchw_float():
    with pytest.raises(ValueError, match="unsqueeze"):
        data.translate_digits(torch.rand(4, 28, 28))
    with pytest.raises(TypeError, match="floating"):
        data.translate_digits(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))


def test_load_translated_mnist(mirror, root):
    images, labels, positions = data.load_translated_mnist("test", n=200, exclude=CORNER, seed=0)
    assert (
        images.shape == (200, 1, 28, 28) and labels.shape == (200,) and positions.shape == (200, 2)
    )
    assert images[:, :, 16:, 16:].abs().sum() == 0 and images.max() > 0.9


# --- what a missing requirement does ------------------------------------------------


@pytest.mark.parametrize(("ci", "declared", "fails"), [
    (None, "", False), ("", "", False), ("false", "", False), ("0", "", False),
    ("true", "", True), ("1", "", True), ("true", "sklearn", True),
    ("true", "sklearn, mirror", False)])
def test_a_missing_requirement_skips_but_fails_under_ci(ci, declared, fails, monkeypatch):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("LANLIB_CI_MAY_LACK", declared)
    outcome = pytest.fail.Exception if fails else pytest.skip.Exception
    with pytest.raises(outcome, match="the mirror is missing"):
        unavailable("the mirror is missing", what="mirror")


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception),
                                             (None, pytest.skip.Exception)])
def test_a_missing_mirror_says_how_to_get_one(ci, outcome, monkeypatch, tmp_path):
    monkeypatch.delenv("LANLIB_CI_MAY_LACK", raising=False)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=f"not found at {tmp_path}: set LANLIB_DATA_MIRROR"):
        checked_mirror(tmp_path)
    (tmp_path / "SHA256SUMS").write_text("")
    assert checked_mirror(tmp_path) == tmp_path
