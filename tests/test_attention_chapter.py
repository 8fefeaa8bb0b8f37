"""Chapter 08's pieces: the SDC tasks, the attention models and the chapter's scores."""

from __future__ import annotations

import torch
from torch import nn

from lanlib.chapters import attention
from lanlib.data.sdc import SDC, mnist_sdc, segment_truth, token_sdc
from lanlib.models.attention import AttentionClassifier, FocusAttention, sparsemax


def _digits(n=200):
    """Fake digits whose class is written into their first pixel (enough for the layout)."""
    classes = torch.arange(n) % 10
    images = torch.zeros(n, 1, 28, 28)
    images[:, 0, 0, 0] = classes.float()
    return images, classes


def test_mnist_sdc_label_is_the_foreground_digit():
    images, classes = _digits()
    task = mnist_sdc(images, classes, 300, segments=5, foreground=(0, 1, 2), seed=1)
    assert task.inputs.shape == (300, 5, 28, 28)
    shown = task.inputs[:, :, 0, 0].long()  # the class of every digit
    relevant = shown.gather(1, task.relevant[:, None]).squeeze(1)
    assert torch.equal(relevant, task.labels)  # foreground classes 0, 1, 2 are the labels
    others = shown[~segment_truth(task.relevant, 5)]
    assert bool((others >= 6).all())  # no distractor: neutral background classes only
    assert bool((task.distractor == -1).all())


def test_mnist_sdc_distractor_is_paired_with_the_label():
    images, classes = _digits()
    task = mnist_sdc(images, classes, 300, segments=4, distractor=1.0, seed=2)
    shown = task.inputs[:, :, 0, 0].long()
    assert bool((task.distractor != task.relevant).all())
    assert torch.equal(shown.gather(1, task.distractor[:, None]).squeeze(1), task.labels + 3)
    half = mnist_sdc(images, classes, 2000, segments=4, distractor=0.5, seed=2)
    assert 0.4 < float((half.distractor >= 0).double().mean()) < 0.6


def test_token_sdc_relevant_segment_holds_the_labels_group():
    task = token_sdc(100, segments=6, segment_length=3, classes=2, group_size=4,
                     background_size=16, distractor=1.0, seed=0)
    assert task.inputs.shape == (100, 6, 3, 24)
    tok = task.inputs.argmax(-1)
    fore = tok[torch.arange(100), task.relevant]
    assert torch.equal(fore // 4, task.labels[:, None].expand(-1, 3))
    distract = tok[torch.arange(100), task.distractor]
    assert torch.equal((distract - 8) // 4, task.labels[:, None].expand(-1, 3))
    rest = tok[~(segment_truth(task.relevant, 6) | segment_truth(task.distractor, 6))]
    assert bool((rest >= 16).all())  # neutral background tokens only


def test_sparsemax_projects_onto_the_simplex():
    z = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 3
    p = sparsemax(z)
    assert torch.allclose(p.sum(-1), torch.ones(50), atol=1e-6) and bool((p >= 0).all())
    assert bool((p == 0).any())  # sparse
    assert torch.equal(p.argmax(-1), z.argmax(-1))
    # the projection: no point of the simplex is closer (checked against random ones)
    q = torch.distributions.Dirichlet(torch.ones(7)).sample((50,))
    assert bool(((p - z).norm(dim=-1) <= (q - z).norm(dim=-1) + 1e-5).all())


def test_models_attention_sums_to_one_and_is_batch_independent():
    x = torch.rand(6, 4, 28, 28)
    for kind in ("softmax", "sparsemax"):
        net = FocusAttention((28, 28), 3, attention=kind, summary="features")
        a = net.attention(x)
        assert a.shape == (6, 4) and torch.allclose(a.sum(1), torch.ones(6), atol=1e-6)
        assert torch.allclose(net(x)[:2], net(x[:2]), atol=1e-6)
    tokens = token_sdc(5, segments=3, segment_length=2).inputs
    clf = AttentionClassifier(tokens.shape[-1], 2, dim=8, heads=2)
    assert clf(tokens).shape == (5, 2)
    assert torch.allclose(clf.attention(tokens).sum(1), torch.ones(5), atol=1e-6)
    assert clf.head_attention(tokens).shape == (5, 2, 6)


class _Reader(nn.Module):
    """Reads only segment 0's sum: a model whose relevant segment is known."""

    def attention(self, x):
        return torch.tensor([1.0, 0.0, 0.0]).expand(len(x), 3)

    def forward(self, x):
        s = x[:, 0].flatten(1).sum(1)
        return torch.stack([s, -s], 1)


def test_explanations_find_the_segment_a_model_reads():
    x = torch.rand(8, 3, 2, 2, generator=torch.Generator().manual_seed(0)) + 0.5
    relevant = torch.zeros(8, dtype=torch.long)
    scores = attention.explain_segments(_Reader(), x, x, beta=0.5, sample_steps=100,
                                        lan_steps=50, lan_hidden=8, lime_samples=16,
                                        ig_steps=4, seed=0, device="cpu")
    for name in ("attention", "LAN sample masks", "saliency", "input × gradient",
                 "integrated gradients", "LIME"):
        got = attention.score_segments(scores[name], relevant)
        assert got["auroc"] == 1.0 and got["top1"] == 1.0, name
    assert attention.score_segments(scores["attention"], relevant)["true_share"] == 1.0
    agree = attention.rank_agreement({"a": scores["input × gradient"], "b": scores["LIME"]})
    assert agree["a vs b"] > 0.5
    good = attention.deletion_auc(_Reader(), x, scores["input × gradient"], seed=0)
    bad = attention.deletion_auc(_Reader(), x, -scores["input × gradient"], seed=0)
    assert good < bad


def test_attention_report_counts_attention_outside_the_relevant_segment():
    x = torch.rand(10, 3, 2, 2) + 0.5
    relevant = torch.tensor([0] * 6 + [1] * 4)  # _Reader attends to segment 0 only
    task = SDC(x, torch.zeros(10, dtype=torch.long), relevant, torch.full((10,), -1))
    got = attention.attention_report(_Reader(), task, accurate=0.9)
    assert got["accuracy"] == 1.0 and got["accurate"]
    assert abs(got["true_share"] - 0.6) < 1e-6 and abs(got["outside"] - 0.4) < 1e-6
    assert not got["uninterpretable"]  # most of the attention is on the relevant segment
    flipped = attention.attention_report(_Reader(), task._replace(relevant=1 - relevant))
    assert flipped["uninterpretable"] and abs(flipped["outside"] - 0.6) < 1e-6
