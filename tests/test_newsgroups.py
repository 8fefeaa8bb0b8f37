"""Tests of chapter 04's pieces: the bag of words (lanlib.data.newsgroups) and the word
scores, tables and figures of lanlib.chapters.newsgroups."""

import math

import pytest
import torch
from torch import nn

from lanlib.chapters import newsgroups as ch
from lanlib.data.newsgroups import UNK, BagOfWords, Vocabulary, stop_words, tokenize

# ----------------------------------------------------------------------------- bag of words


def test_tokenize_lowercases_drops_stop_words_numbers_and_single_letters():
    stop = stop_words()
    assert {"the", "and", "is"} <= stop and len(stop) >= 300
    assert tokenize("The X11 server IS slow, 1993 a b 486DX!", stop) == [
        "x11", "server", "slow", "486dx"]
    assert stop_words(extra=["Server"]) >= {"server"}


def test_vocabulary_ranks_by_count_then_alphabet_and_maps_unknown_to_zero():
    docs = [["b", "a", "c", "c"], ["a", "d"], ["zz"]]
    vocab = Vocabulary.build(docs, max_size=2)
    assert vocab.words == [UNK, "a", "c"]  # a:2, c:2 (tie -> alphabetical), then b, d, zz
    assert vocab.encode(["c", "b", "a"]) == [2, 0, 1]
    assert vocab.lookup(torch.tensor([1, 0])) == ["a", UNK]
    assert "a" in vocab and "b" not in vocab
    assert Vocabulary.build(docs, min_count=2).words == [UNK, "a", "c"]
    with pytest.raises(ValueError, match="reserved"):
        Vocabulary([UNK])


def test_bag_of_words_counts_unknown_words_and_serves_rows():
    vocab = Vocabulary(["a", "b"])
    bags = BagOfWords.from_tokens([["a", "a", "x"], [], ["b", "y", "z"]], vocab,
                                  labels=[1, 0, 1])
    expected = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 1.0]])
    assert torch.equal(bags.dense(), expected)
    assert torch.equal(bags.dense([2, 0]), expected[[2, 0]])
    row, label = bags[-1]
    assert torch.equal(row, expected[2]) and int(label) == 1
    assert bags.lengths().tolist() == [3.0, 0.0, 3.0]
    assert bags.distinct().tolist() == [2, 0, 2]
    assert bags.document_frequency().tolist() == [2.0, 1.0, 1.0]
    with pytest.raises(IndexError):
        bags[3]
    unlabelled = BagOfWords.from_tokens([["a"]], vocab)
    assert torch.equal(unlabelled[0], torch.tensor([0.0, 1.0, 0.0]))


# ----------------------------------------------------------------------------- scores


def test_tfidf_weighs_rare_words_up():
    counts = torch.tensor([[1.0, 1.0, 0.0]])
    weights = ch.tfidf(counts, torch.tensor([10.0, 1.0, 3.0]), n_documents=10)
    assert weights[0, 1] > weights[0, 0] > 0 and weights[0, 2] == 0
    assert math.isclose(float(weights[0, 0]), math.log(11 / 11) + 1)


def test_top_words_can_be_limited_to_present_words():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.7]])
    counts = torch.tensor([[0.0, 1.0, 2.0, 0.0]])
    assert ch.top_words(scores, 2).tolist() == [[0, 3]]
    assert ch.top_words(scores, 3, counts).tolist() == [[2, 1, -1]]


def test_delete_top_words_removes_only_present_words():
    counts = torch.tensor([[3.0, 0.0, 1.0, 2.0], [1.0, 1.0, 0.0, 0.0]])
    scores = torch.tensor([[0.1, 9.0, 0.5, 0.3], [0.0, 1.0, 5.0, 5.0]])
    out = ch.delete_top_words(counts, scores, 2)
    assert out.tolist() == [[3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert counts[0, 0] == 3.0  # the input is not modified


class _Summer(nn.Module):
    """Predicts class 1 when the count of word 1 exceeds that of word 0, else class 0."""

    def forward(self, x):
        return torch.stack([x[:, 0], x[:, 1]], dim=1) * 10


def test_deletion_flip_rate_rewards_the_decisive_word():
    model = _Summer()
    counts = torch.tensor([[1.0, 2.0, 5.0], [3.0, 1.0, 5.0]])  # predictions 1 and 0
    decisive = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])  # the winning word first
    useless = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # word 2 does nothing
    good = ch.deletion_flip_rate(model, counts, decisive, ks=(1, 2), batch_size=1)
    bad = ch.deletion_flip_rate(model, counts, useless, ks=(1,))
    assert good["flip_rate"] == {1: 1.0, 2: 1.0}
    assert bad["flip_rate"] == {1: 0.0} and bad["prob_drop"][1] == pytest.approx(0.0)
    assert good["prob_drop"][1] > 0.4


def test_rank_agreement_compares_only_present_words():
    counts = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    a = torch.tensor([[3.0, 2.0, 1.0, 100.0], [1.0, 2.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 2.0, 3.0, -100.0], [2.0, 1.0, 0.0, 0.0]])
    out = ch.rank_agreement(a, b, counts, k=1)
    assert out["spearman"][0].item() == pytest.approx(-1.0)
    assert math.isnan(out["spearman"][1].item())  # two words: too few for a correlation
    assert out["overlap"].tolist() == [0.0, 0.0]
    assert ch.rank_agreement(a, a, counts, k=2)["overlap"].tolist() == [1.0, 1.0]


def test_rank_agreement_handles_ties_and_constant_scorings():
    counts = torch.ones(1, 4)
    a = torch.tensor([[1.0, 2.0, 2.0, 3.0]])  # mid-ranks 1, 2.5, 2.5, 4
    assert ch.rank_agreement(a, 2 * a, counts)["spearman"].item() == pytest.approx(1.0)
    constant = ch.rank_agreement(a, torch.zeros(1, 4), counts)
    assert math.isnan(constant["spearman"].item())


def test_ahead_at_names_the_k_where_the_first_ranking_is_higher():
    assert ch.ahead_at({1: 0.3, 3: 0.5}, {1: 0.1, 3: 0.4}) == "at every k"
    assert ch.ahead_at({1: 0.1, 3: 0.4}, {1: 0.1, 3: 0.5}) == "at no k"  # a tie is not ahead
    assert ch.ahead_at({1: 0.1, 3: 0.6, 10: 0.9}, {1: 0.2, 3: 0.5, 10: 0.8}) == (
        "only at k = 3, 10")
    with pytest.raises(ValueError, match="no flip rates"):
        ch.ahead_at({}, {})


def test_accuracy_by_group_is_nan_for_an_empty_group():
    acc = ch.accuracy_by_group(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 1]), 3)
    assert acc[:2].tolist() == [1.0, 0.5] and math.isnan(acc[2].item())


def test_class_top_words_counts_documents_per_class():
    top = torch.tensor([[1, 2], [2, 3], [4, -1]])
    out = ch.class_top_words(top, torch.tensor([0, 0, 1]), num_classes=3, n=2)
    assert out == [[(2, 2), (1, 1)], [(4, 1)], []]


def test_pick_post_prefers_correct_posts_of_the_right_length():
    labels = torch.tensor([2, 2, 2, 2, 0])
    predictions = torch.tensor([0, 2, 2, 1, 0])
    tokens = [["w"] * 30, ["w"] * 5, ["w"] * 40, ["w"] * 50, ["w"] * 30]
    assert ch.pick_post(range(5), 2, labels, predictions, tokens) == 2
    assert ch.pick_post([3, 1, 0], 2, labels, predictions, tokens) == 1  # correct beats length
    assert ch.pick_post([3, 0], 2, labels, predictions, tokens) == 3  # first of the group
    with pytest.raises(ValueError, match="group 1"):
        ch.pick_post(range(5), 1, labels, predictions, tokens)


def test_predict_bags_matches_a_dense_forward_pass():
    torch.manual_seed(0)
    vocab = Vocabulary(["a", "b"])
    bags = BagOfWords.from_tokens([["a"], ["b", "b"], ["a", "c"]], vocab)
    model = nn.Linear(3, 2).train()
    assert torch.allclose(ch.predict_bags(model, bags, batch_size=2), model(bags.dense()))
    assert model.training  # its mode is restored


# ----------------------------------------------------------------------------- HTML


def test_tables_escape_and_highlight():
    html = ch.top_words_table(["rocket", "<b>", "orbit"], ["orbit", "nasa"], scores=[0.9, 0.8],
                              caption="doc & co", vocab=Vocabulary(["rocket", "orbit"]))
    assert "&lt;b&gt;" in html and "<b>" not in html and "doc &amp; co" in html
    assert html.count(ch.HIGHLIGHT_STYLE) == 1 + 1 + 1  # orbit in doc, in list, in legend
    assert "1 of 2 in the document" in html
    table = ch.class_words_table({"sci.space": [("orbit", 3)]}, caption="c",
                                 total={"sci.space": 5})
    assert "orbit" in table and "(5 docs)" in table and "<caption" in table
    assert "0.25" in ch.class_words_table({"lan": [("orbit", 0.25)]})


def test_post_table_lists_the_top_words_of_the_whole_vocabulary():
    vocab = Vocabulary(["orbit", "rocket", "bike"])
    scores = torch.tensor([0.0, 0.2, 0.1, 0.9])  # <unk>, orbit, rocket, bike
    html = ch.post_table(["orbit", "moon"], scores, vocab, k=2, caption="post 7")
    assert "bike" in html and "0.90" in html and "0.20" in html and "rocket" not in html
    assert "1 of 2 in the document" in html and "post 7" in html


# ----------------------------------------------------------------------------- figures


def test_plot_accuracy_by_group_draws_one_bar_per_group():
    fig = ch.plot_accuracy_by_group(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]),
                                    ["a", "b", "c"])
    ax = fig.axes[0]
    assert [p.get_width() for p in ax.patches] == [1.0, 1.0, 0.5]
    assert ax.lines[0].get_xdata()[0] == pytest.approx(0.75)


def test_plot_flip_rates_draws_one_line_per_method():
    fig = ch.plot_flip_rates({"lan": {1: 0.2, 3: 0.4}, "random": {"1": 0.1, "3": 0.2}})
    assert len(fig.axes[0].lines) == 2


def test_plot_importance_by_presence_draws_two_histograms():
    importance = torch.tensor([[0.5, 0.01, 0.2], [0.001, 0.3, 0.0]])
    counts = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    fig = ch.plot_importance_by_presence(importance, counts, title="t")
    assert len(fig.axes[0].patches) == 2 and fig.axes[0].get_title() == "t"


def test_plot_rank_agreement_draws_one_outline_per_pair_and_skips_nan():
    agreement = {"a vs b": {"spearman": torch.tensor([0.5, float("nan"), -0.2])},
                 "a vs c": {"spearman": torch.tensor([0.1, 0.9, 0.3])}}
    fig = ch.plot_rank_agreement(agreement)
    assert len(fig.axes[0].patches) == 2 and len(fig.legends) == 1
