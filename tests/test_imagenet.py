"""Tests of lanlib.chapters.imagenet: the photos, the top predictions, and the method comparison."""

import os
from pathlib import Path

import pytest
import torch

import lanlib
from lanlib.chapters import imagenet
from lanlib.data import _files, imagenet_class_names, package_photos
from lanlib.data.imagenet import PACKAGE_PHOTO_LABELS
from tests._requirements import unavailable

MIRROR = Path(os.environ.get("LANLIB_DATA_MIRROR")
              or Path(__file__).resolve().parents[2] / "shared" / "datasets")


@pytest.fixture
def no_mirror(tmp_path, monkeypatch):
    """An empty data root and no mirror: the ImageNet sample photos are not found."""
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LANLIB_DATA_MIRROR", raising=False)
    monkeypatch.setattr(_files, "_NOTICES", set())


def test_top_k():
    best = imagenet.top_k(torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]]), "abc", k=2)
    assert [row[0][0] for row in best] == ["b", "a"] and best[0][0][1] > best[0][1][1]
    assert [len(row) for row in best] == [2, 2]
    everything = imagenet.top_k(torch.zeros(1, 3), "abc", k=3)[0]
    assert sum(p for _, p in everything) == pytest.approx(1.0)


def test_photos_without_the_mirror_are_the_package_photos_once(no_mirror, capsys):
    photos = imagenet.load_photos(32)
    _, package_names = package_photos(8)
    assert photos.names == package_names and len(set(photos.names)) == len(photos.names)
    assert photos.images.shape == (len(package_names), 3, 32, 32)
    assert not photos.imagenet.any()
    assert photos.labels.tolist() == [PACKAGE_PHOTO_LABELS.get(n, -1) for n in package_names]
    assert "not found" in capsys.readouterr().out


def test_photos_with_the_mirror_are_the_samples_then_the_package_photos(tmp_path, monkeypatch):
    if not (MIRROR / "SHA256SUMS").is_file():
        unavailable(f"offline dataset mirror not found at {MIRROR} (set LANLIB_DATA_MIRROR)",
                    what="mirror")
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LANLIB_DATA_MIRROR", str(MIRROR))
    photos = imagenet.load_photos(32)
    _, package_names = package_photos(8)
    samples = int(photos.imagenet.sum())
    assert samples == 20 and photos.imagenet[:samples].all()
    assert photos.names[samples:] == package_names
    assert photos.names[0] == "bull mastiff" == imagenet_class_names()[int(photos.labels[0])]
    assert len(photos.images) == len(photos.labels) == samples + len(package_names)


def test_package_photo_labels_are_classes_of_shipped_photos():
    names = imagenet_class_names()
    assert {n: names[c] for n, c in PACKAGE_PHOTO_LABELS.items()} == {
        "china": "palace", "chelsea": "tabby", "coffee": "espresso"}
    assert set(PACKAGE_PHOTO_LABELS) <= {"china", "flower", "astronaut", "chelsea", "coffee",
                                         "rocket"}


def test_captum_options_cost_about_grid_squared_passes():
    options = imagenet.captum_options(224, 16, 50, 4)
    assert options["occlusion"] == {"window": 28, "stride": 14}  # (224 - 28) / 14 + 1 = 15
    assert options["feature_ablation"] == {"patch": 14}  # 16 x 16 squares
    assert options["integrated_gradients"] == {"n_steps": 50, "internal_batch_size": 4}


def test_method_scores_add_each_methods_own_fill_and_time():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    maps = {"a": lanlib.attribute(model, x, "saliency"),
            "b": lanlib.attribute(model, x, "random", generator=torch.Generator().manual_seed(1))}
    fills = {"grey": lanlib.noise.constant(0.5), "blur": lanlib.noise.blur(1.0)}
    scores = imagenet.method_scores(model, x, maps, fills, {"a": "grey", "b": "blur"}, steps=4,
                                    seed=0)
    assert scores["a"] == {**lanlib.metrics.faithfulness(model, x, maps["a"].maps, fills,
                                                         steps=4, seed=0),
                           "deletion/own": scores["a"]["deletion/grey"],
                           "insertion/own": scores["a"]["insertion/grey"],
                           "seconds_per_image": maps["a"].seconds_per_image}
    assert scores["b"]["deletion/own"] == scores["b"]["deletion/blur"]
