"""Tests of translated MNIST's stream and grid placement (lanlib.data.translated)."""

import itertools

import pytest
import torch

from lanlib.data import (
    TranslatedStream,
    place_everywhere,
    shrink_digits,
    translate_digits,
    translated_loader,
)


def test_stream_is_seeded_fresh_and_respects_the_excluded_region():
    images = torch.rand(20, 1, 28, 28)
    labels = torch.arange(20)
    kwargs = dict(batch_size=8, exclude=(16, 16, 12, 12), seed=5)
    first, again = (list(itertools.islice(TranslatedStream(images, labels, **kwargs), 3))
                    for _ in range(2))
    for (x, y), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert x.shape == (8, 1, 28, 28)
        assert x[:, :, 16:, 16:].abs().sum() == 0  # never any ink in the bottom-right corner
    assert not torch.equal(first[0][0], first[1][0])  # fresh placements every batch


def test_stream_needs_one_label_per_image_and_the_loader_keeps_its_batches():
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        TranslatedStream(torch.rand(5, 1, 28, 28), torch.arange(4))
    images, labels = torch.rand(10, 1, 28, 28), torch.arange(10)
    x, y = next(iter(translated_loader(images, labels, 4, seed=2)))
    x2, y2 = next(iter(TranslatedStream(images, labels, 4, seed=2)))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_shrinking_first_then_placing_equals_translating_the_frames():
    images = torch.rand(4, 1, 28, 28)
    small = shrink_digits(images, 12)
    assert small.shape == (4, 1, 12, 12)
    direct, _ = translate_digits(images, (3, 7))
    placed, _ = translate_digits(small, (3, 7))  # a same-size resize is the identity
    torch.testing.assert_close(placed, direct)


def test_place_everywhere_puts_each_digit_at_each_corner():
    digits = torch.ones(3, 1, 7, 7) * torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
    corners = torch.tensor([[0, 0], [21, 21], [5, 9]])
    canvases = place_everywhere(digits, corners)
    assert canvases.shape == (3, 3, 1, 28, 28)
    assert canvases[2, 1, 0, 5:12, 9:16].eq(2.0).all()
    assert canvases[2, 1].sum() == 2.0 * 49
