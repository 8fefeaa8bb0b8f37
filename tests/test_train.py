"""Tests of the classifier training loop."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import lanlib
from lanlib.train import accuracy, predict, train_classifier


def _data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 1] - x[:, 2] > 0).long()


def test_training_learns_a_linear_rule_and_is_reproducible():
    x, y = _data()
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # same initial weights both times
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
        history = lanlib.History()
        state = torch.random.get_rng_state()
        train_classifier(model, (x, y), steps=150, lr=1e-2, seed=0, progress=False,
                         history=history)
        assert torch.equal(torch.random.get_rng_state(), state), "global RNG state changed"
        runs.append(history.loss)
        assert not model.training
    assert runs[0] == runs[1]
    assert accuracy(model, *_data(seed=1)) > 0.95
    assert predict(model, x[:5]).shape == (5, 2)


def test_training_accepts_datasets_and_augmentation():
    x, y = _data(64)
    seen = []

    def augment(batch, generator):
        seen.append(batch.shape)
        return batch + 0.01 * torch.randn(batch.shape, generator=generator)

    train_classifier(nn.Linear(4, 2), TensorDataset(x, y), steps=3, batch_size=16,
                     augment=augment, seed=0, progress=False)
    assert seen == [torch.Size([16, 4])] * 3


@pytest.mark.parametrize("data, message", [
    (torch.rand(8, 4), "pass \\(inputs, labels\\)"),
    ((torch.rand(8, 4), torch.zeros(7, dtype=torch.long)), "8 inputs but 7 labels"),
    (TensorDataset(torch.rand(8, 4)), "must yield \\(input, label\\) pairs"),
])
def test_training_rejects_data_without_labels(data, message):
    with pytest.raises(ValueError, match=message):
        train_classifier(nn.Linear(4, 2), data, steps=1, progress=False)
