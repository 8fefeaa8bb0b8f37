"""DiffMask (lanlib.diffmask), the transformer it probes and chapter 07's task."""

import pytest
import torch
from torch import nn

from lanlib import diffmask
from lanlib.chapters import diffmask as chapter
from lanlib.models.transformer import FromStage, TransformerClassifier


def _first_position_reader():
    """F reads position 0 of three (features 0 and 1); feature 2 says "I am position 0".
    Two identity stages, so hidden states 0 and 1 are both the input."""
    stages = [nn.Identity(), nn.Identity()]
    head = nn.Linear(9, 2)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[:, :3] = torch.eye(3)[:2] * 4
        head.bias.zero_()
    x = torch.cat([torch.randn(256, 3, 2, generator=torch.Generator().manual_seed(0)),
                   torch.eye(3).expand(256, 3, 3)[..., :1]], dim=2)
    return nn.Sequential(*stages, nn.Flatten(1), head), stages, x


@pytest.mark.parametrize("target", ["input", "hidden"])
def test_probe_keeps_exactly_what_the_model_reads(target):
    model, stages, x = _first_position_reader()
    probe = diffmask.DiffMask(dim=3, layer=1, target=target)
    before = [p.detach().clone() for p in model.parameters()]
    diffmask.fit_diffmask(model, stages, probe, x, max_distortion=0.05, steps=300, lr=0.03,
                          multiplier_lr=0.05, seed=0, progress=False)
    masks = diffmask.masks(model, stages, probe, x[:32])
    assert masks.shape == (32, 3)
    # positions 1 and 2 never matter; position 0 can go only where the learned baseline
    # gives F the same output (it may learn to stand in for one class), so it is kept often
    assert masks[:, 1:].min() == 1 and (masks[:, 0] < 0.5).double().mean() > 0.3
    keep = diffmask.keep_probabilities(model, stages, probe, x[:32])
    assert keep[:, 0].mean() > 2 * keep[:, 1:].max()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.requires_grad for p in model.parameters())


def test_hidden_states_read_and_replace_by_hooks():
    model = TransformerClassifier(vocab_size=5, length=4, dim=8, heads=2, layers=2).eval()
    tokens = torch.randint(5, (3, 4), generator=torch.Generator().manual_seed(1))
    output, states = diffmask.hidden_states(model, model.stages, tokens)
    assert len(states) == 3 and all(s.shape == (3, 4, 8) for s in states)
    assert torch.allclose(output, model(tokens))
    for stage, state in enumerate(states):
        again = diffmask.replaced(model, model.stages, tokens, stage, state)
        assert torch.allclose(again, output, atol=1e-5)
        assert torch.allclose(FromStage(model, stage)(state), output, atol=1e-5)
    with pytest.raises(ValueError, match="modules ran"):
        diffmask.hidden_states(model, [nn.Linear(2, 2)], tokens)


def test_probe_rejects_bad_settings():
    with pytest.raises(ValueError, match="target"):
        diffmask.DiffMask(4, 0, target="output")
    model, stages, x = _first_position_reader()
    with pytest.raises(ValueError, match="gates"):
        diffmask.fit_diffmask(model, stages, diffmask.DiffMask(3, 0), x, max_distortion=0.1,
                              steps=1, gates=None, progress=False)
    with pytest.raises(ValueError, match="modules"):
        diffmask.fit_diffmask(model, stages[:1], diffmask.DiffMask(3, 1), x,
                              max_distortion=0.1, steps=1, progress=False)


def test_digit_queries_truth():
    data = chapter.digit_queries(200, length=8, digits=10, seed=3)
    tokens, first = data.tokens, chapter.FIRST_DIGIT
    assert tokens.shape == (200, first + 8) and bool((tokens[:, 0] == 10).all())
    m, n, x = tokens[:, 1:2], tokens[:, 2:3], tokens[:, first:]
    assert bool((m != n).all())
    assert torch.equal(data.labels, ((x == m).sum(1) > (x == n).sum(1)).long())
    assert torch.equal(data.relevant[:, first:], (x == m) | (x == n))
    assert not data.relevant[:, :first].any()
    assert torch.equal(chapter.digit_queries(200, length=8, seed=3).tokens, tokens)


def test_hindsight_counts_by_hand():
    relevant = torch.tensor([[True, True, False], [True, False, False]])
    probe = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # keeps all three relevant
    search = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # drops one of them
    out = chapter.hindsight(probe, search, relevant)
    assert out == {"rate": pytest.approx(1 / 3), "probe_kept": 1.0,
                   "search_kept": pytest.approx(2 / 3), "inputs_affected": 0.5}
    assert chapter.sequence_auroc(torch.tensor([[0.0, 0, 0, 1, 0]]),
                                  chapter.DigitQueries(None, None, torch.tensor(
                                      [[False, False, False, True, False]]))) == 1.0


def test_a_probe_of_the_wrong_width_says_so():
    embed = nn.Identity()
    model = nn.Sequential(embed, nn.Flatten(1), nn.Linear(9, 2))
    with pytest.raises(ValueError, match=r"hidden state 0 has shape \(8, 3, 3\).*\(N, L, 4\)"):
        diffmask.fit_diffmask(model, [embed], diffmask.DiffMask(dim=4, layer=0),
                              torch.randn(8, 3, 3), max_distortion=0.1, steps=2, progress=False)
