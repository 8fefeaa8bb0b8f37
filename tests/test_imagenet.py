"""Tests of lanlib.chapters.imagenet: the top predictions with their class names."""

import pytest
import torch

from lanlib.chapters import imagenet


def test_top_k():
    best = imagenet.top_k(torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]]), "abc", k=2)
    assert [row[0][0] for row in best] == ["b", "a"] and best[0][0][1] > best[0][1][1]
    assert [len(row) for row in best] == [2, 2]
    everything = imagenet.top_k(torch.zeros(1, 3), "abc", k=3)[0]
    assert sum(p for _, p in everything) == pytest.approx(1.0)
