"""DiffMask (lanlib.diffmask), the transformer it probes and chapter 07's task."""

import pytest
import torch
from torch import nn

from lanlib import diffmask
from lanlib.chapters import diffmask as chapter
from lanlib.loop import History
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
    torch.manual_seed(0)  # the probe's initial weights
    probe = diffmask.DiffMask(dim=3, layer=1, target=target)
    before = [p.detach().clone() for p in model.parameters()]
    diffmask.fit_diffmask(model, stages, probe, x, max_distortion=0.05, steps=1000, lr=0.03,
                          seed=0, progress=False)
    masks = diffmask.masks(model, stages, probe, x[:32])
    assert masks.shape == (32, 3)
    # positions 1 and 2 never matter (all dropped); position 0 can go only where the baseline
    # gives F the same output (it may learn to stand in for one class), so it is kept often
    assert (masks[:, 1:] > 0.5).all() and (masks[:, 0] < 0.5).double().mean() > 0.3
    keep = diffmask.keep_probabilities(model, stages, probe, x[:32])
    assert keep[:, 0].mean() > 2 * keep[:, 1:].mean()
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


class _FlagReader(nn.Module):
    """Logit ``4 * sum_i value_i * flag_i`` over positions ``(N, L, 4)`` (value, flag, two
    noise features): F reads the flagged positions only, which position those are
    changing from input to input."""

    def forward(self, x):
        total = (x[..., 0] * x[..., 1]).sum(1)
        return torch.stack([torch.zeros_like(total), 4 * total], dim=1)


def _flagged(n, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, 4, generator=gen)
    x[..., 1] = (torch.rand(n, 12, generator=gen) < 0.5).float()
    return x


def test_probe_drops_the_positions_the_model_ignores():
    """The failure this guards against: gates that start half closed, with λ ascended as
    exp(ρ), kept every position here (the divergence far above m at the start drove all
    gates open, where they saturated). Dropping an unflagged position costs nothing."""
    stage = nn.Identity()
    model = nn.Sequential(stage, _FlagReader())
    torch.manual_seed(0)  # the probe's initial weights
    probe = diffmask.DiffMask(dim=4, layer=0, target="input")
    history = History()
    diffmask.fit_diffmask(model, [stage], probe, _flagged(4000, 10), max_distortion=0.05,
                          steps=800, lr=3e-3, batch_size=128, seed=0, progress=False,
                          history=history)
    x = _flagged(500, 1)
    flagged = x[..., 1] > 0.5
    dropped = diffmask.masks(model, [stage], probe, x) > 0.5
    assert dropped[~flagged].double().mean() > 0.95  # what F ignores goes
    assert dropped[flagged].double().mean() < 0.02  # what F reads stays
    assert min(history.multiplier) >= 0


def test_probe_reads_states_of_different_widths():
    probe = diffmask.DiffMask([3, 5], layer=1, target="input")
    assert probe.baseline.shape == (3,)
    logits = probe([torch.randn(2, 4, 3), torch.randn(2, 4, 5)])
    assert logits.shape == (2, 4, 1)
    with pytest.raises(ValueError, match="one per"):
        diffmask.DiffMask([3, 5, 7], layer=1)
    with pytest.raises(ValueError, match=r"hidden state 1 has shape"):
        probe([torch.randn(2, 4, 3), torch.randn(2, 4, 3)])


def test_swapping_other_digits_never_changes_the_label():
    data = chapter.digit_queries(300, length=8, seed=4)
    for every in (False, True):
        tokens, labels, has = chapter.swap_digits(data, 10, relevant=False, every=every, seed=1)
        assert torch.equal(labels, data.labels)
        assert torch.equal(tokens[:, :chapter.FIRST_DIGIT], data.tokens[:, :chapter.FIRST_DIGIT])
        changed = (tokens != data.tokens).sum(1)
        assert bool((changed[has] >= 1).all()) and bool((changed[~has] == 0).all())
        if not every:
            assert int(changed.max()) == 1
    tokens, labels, _ = chapter.swap_digits(data, 10, relevant=True, every=True, seed=1)
    x = tokens[:, chapter.FIRST_DIGIT:]
    assert not bool(((x == tokens[:, 1:2]) | (x == tokens[:, 2:3])).any())  # no m, n left
    assert bool((labels == 0).all())  # zero occurrences each: m is not more frequent


def test_dan_words_is_the_dan_on_its_counts():
    from lanlib.data.newsgroups import BagOfWords, Vocabulary
    from lanlib.models.dan import DAN

    tokens = [["a", "b", "a"], ["c"], ["a", "b", "c", "d", "e"]]
    vocab = Vocabulary.build(tokens, max_size=4)
    bags = BagOfWords.from_tokens(tokens, vocab, torch.tensor([0, 1, 0]))
    dan = DAN(len(vocab), num_classes=3, embedding_dim=6, hidden=(8, 5)).eval()
    words, docs = chapter.word_positions(bags, length=3)
    assert docs.tolist() == [0, 1]  # the third post has more than 3 distinct words
    model = chapter.DANWords(dan).eval()
    with torch.no_grad():
        assert torch.allclose(model(words), dan(bags.dense(docs)), atol=1e-6)
        _, states = diffmask.hidden_states(model, model.stages, words)
    assert [s.shape[-1] for s in states] == [7, 15]
    deleted = chapter.delete_words(words, torch.tensor([[0.0, 2, 1], [5, 0, 0]]),
                                   torch.tensor([1, 1]))
    assert deleted[0, :, 1].tolist() == [0.0, words[0, 1, 1].item(), words[0, 2, 1].item()]
    assert deleted[1, :, 1].tolist() == [0.0, 0.0, 0.0]  # padding is never chosen
    with torch.no_grad():
        gone = model(deleted[1:])
        assert torch.allclose(gone, dan(torch.zeros(1, len(vocab))), atol=1e-6)


def test_top_overlap_by_hand():
    words = torch.tensor([[[1.0, 1], [2, 1], [3, 1], [0, 0]]])
    a = torch.tensor([[3.0, 2, 1, 9]])  # padding's score is ignored
    b = torch.tensor([[1.0, 2, 3, 9]])
    assert chapter.top_overlap(a, b, words, k=2) == 0.5
    assert chapter.top_overlap(a, a, words, k=5) == 1.0
    assert chapter.at_words(torch.tensor([[10.0, 11, 12, 13]]), words).tolist() == [
        [11.0, 12, 13, 10]]
