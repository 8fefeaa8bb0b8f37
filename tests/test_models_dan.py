"""Tests of the Deep Averaging Network of the 20 Newsgroups chapter."""

import pytest
import torch

import lanlib
from lanlib.models.dan import DAN


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is faster, and far faster on a busy shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_dan_averages_embeddings_and_is_scale_invariant():
    torch.manual_seed(0)
    dan = DAN(vocab_size=5, num_classes=3, embedding_dim=4, hidden=(8, 6)).eval()
    counts = torch.tensor([[2.0, 0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    expected = (2 * dan.embedding[0] + dan.embedding[2] + dan.embedding[4]) / 4
    assert torch.allclose(dan.average(counts)[0], expected)
    assert torch.equal(dan.average(counts)[1], torch.zeros(4))  # empty document: no NaN
    assert dan(counts).shape == (2, 3)
    assert torch.allclose(dan(counts[:1]), dan(0.5 * counts[:1]), atol=1e-6)
    assert not torch.allclose(dan(counts[:1]), dan(0.1 * counts[:1]))  # length below 1


def test_gradient_times_input_sums_to_zero():
    """Scale invariance (Euler): sum_i x_i dF/dx_i = 0 for documents longer than one word."""
    torch.manual_seed(0)
    dan = DAN(vocab_size=6, num_classes=2).eval()
    x = torch.tensor([[3.0, 1.0, 0.0, 2.0, 0.0, 1.0]], requires_grad=True)
    dan(x)[0, 1].backward()
    assert (x.grad * x).sum().abs() < 1e-5


def test_dan_learns_which_word_marks_the_class():
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((256, 10), 0.5), generator=g)
    y = (x[:, 3] > x[:, 7]).long()
    torch.manual_seed(0)
    dan = DAN(vocab_size=10, num_classes=2, embedding_dim=8, hidden=(16, 16), dropout=0.1)
    lanlib.train.train_classifier(dan, (x, y), steps=300, lr=1e-2, batch_size=32, seed=0,
                                  progress=False)
    assert lanlib.train.accuracy(dan, x, y) > 0.9


def test_dan_rejects_bad_shapes_and_settings():
    with pytest.raises(ValueError, match="count vectors"):
        DAN(vocab_size=4)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="dropout"):
        DAN(vocab_size=4, dropout=1.0)
