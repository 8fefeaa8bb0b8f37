"""No number about a run is typed into a chapter's prose: it is glued from the run.

Every Markdown cell of every chapter is scanned for digits after removing what may hold
them without stating a result:

- MyST roles: ``{glue:text}`name``` (the number comes from the run), ``{cite}``,
  ``{ref}``, ``{numref}``, ``{doc}``, ``{eq}``, ``{math}`` and friends;
- inline code and fenced code (but not the bodies of directives such as ``{exercise}``
  and ``{solution}``, which are prose), link targets, and math (``$...$``, ``$$...$$``): notation
  such as $L_0$, $[0, 1]$ or $\\mathbb R^{28 \\times 28}$, never a measured value;
- references into the paper and the book: Section 5.2, Appendix B, Figure 4, Eq. 4,
  Table 1, chapter 03, Exercise 2, arXiv:1706.00536, and years (2017);
- names that contain digits: CIFAR-10, EfficientNet-Lite0, L1, 03_cifar10, ``1.`` list
  markers;
- a lone 0 or 1, the ends of a mask's range ("masks near 1 mark what F ignores").

What remains must be in :data:`ALLOWED`, each entry with the reason why it is not a number
a run produced (the paper's own settings and results, facts of a dataset, the run's fixed
settings that both profiles share). Everything else must be glued.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Phrases with digits that a chapter may type, per notebook: phrase -> why it is not a
#: number of this run. Keep it short; a phrase listed here that no longer occurs fails.
ALLOWED: dict[str, dict[str, str]] = {
    "01_method": {
        "0.5 is chance": "the AUROC of a ranking that knows nothing, by definition",
    },  # end 01_method
    "02_mnist_grid": {
        "only the first 10,000 of MNIST's 60,000 training digits": "the offline mirror's size, "
        "a dataset fact",
        "Conv(10 filters, 4×4, stride 2, leaky ReLU) → Conv(20 filters, 4×4, stride 2, leaky ReLU)"
        " → FC(10, softmax)": "the paper's architecture of F (Appendix A)",
        "FC(100, leaky ReLU) → FC(784, sigmoid)": "the paper's LAN architecture (Appendix A)",
        "100,000 iterations": "the paper's training length for both networks (Appendix A)",
    },  # end 02_mnist_grid
    "03_cifar10": {
        "50,000 training and 10,000 test images": "CIFAR-10's split sizes, a dataset fact",
        "Conv(64, 2, 5×5) → Conv(64, 2, 5×5) → Conv(64, 1, 3×3) → Conv(64, 1, 3×3) → "
        "Conv(32, 2, 3×3)": "the paper's convolutions of F (Appendix B)",
        "FC(384, tanh) → FC(192, tanh) → FC(10, softmax)": "the paper's fully connected layers "
        "of F (Appendix B)",
        "FC(500, leaky ReLU) → FC(500, leaky ReLU) → FC(500, leaky ReLU) → FC(1024, sigmoid)":
        "the paper's LAN architecture (Appendix B)",
        "β = 7": "the paper's β for the LAN (Appendix B)",
        "β = 50": "the paper's β for sample-specific masks (Appendix D)",
    },  # end 03_cifar10
    "04_newsgroups": {
        "20 Newsgroups": "the dataset's own name",
        "20 groups": "the dataset's number of classes",
        "11,314 training posts and 7,532 test": "the bydate split's size, a dataset fact",
        "the paper lists the 15": "the paper's Tables 1-4 list fifteen words",
        "200 and 150 units": "the paper's DAN hidden layers (Appendix C)",
        "FC(100) and FC(1000)": "the paper's LAN architecture (Appendix C)",
        "between 20 and 80 words": "pick_post's fixed length bounds, both profiles",
    },  # end 04_newsgroups
    "05_imagenet": {
        "β = 1.5, 3 and 5": "the paper's Appendix F values of β",
        "β = 3 masks": "one of the paper's Appendix F values of β",
        "σ of 10 px at 224 px": "Fong and Vedaldi's blur setting (2017), a cited paper's",
    },  # end 05_imagenet
    "06_tank_story": {
        "of 0.9 and of 0.6": "an exercise's own settings, for the student to run",
        "0.5 is chance": "the AUROC of a ranking that knows nothing, by definition",
    },  # end 06_tank_story
    "07_diffmask": {
        "20 Newsgroups": "the dataset's name, not a result",
    },  # end 07_diffmask
    "08_attention": {
        "0.5 is chance": "the AUROC of a ranking that knows nothing, by definition",
    },  # end 08_attention
    "09_rl": {
        "10×10": "MinAtar's grid size, a fact of the game",
        "one 3×3 convolution\nwith 16 channels, a hidden layer of 128 units": "MinAtar's baseline "
        "network (Young & Tian 2019)",
        "0.5 is chance": "the AUROC of a ranking that knows nothing, by definition",
    },  # end 09_rl
}

_REMOVED = [
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),  # amsmath environments
    re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$"),  # inline math
    re.compile(r"\{[a-z:-]+\}`[^`]*`"),  # MyST roles: glue, cite, ref, numref, doc, eq, ...
    re.compile(r"`[^`\n]*`"),  # inline code
    re.compile(r"\]\([^)\s]*\)"),  # link targets
    re.compile(r"<[^>\n]*>"),  # HTML tags and autolinks
    re.compile(r"https?://\S+"),  # bare URLs
    re.compile(r"arXiv:\s*\d{4}\.\d{4,5}(v\d+)?", re.I),
    re.compile(  # references into the paper and the book
        r"\b(?:Sections?|Sec\.|§|Appendix|Appendices|Figures?|Fig\.|Eqs?\.|Equations?|Tables?|"
        r"[Cc]hapters?|Exercises?|Assignments?|[Ss]essions?|[Ss]teps? \d+ of|[Ll]ines?|"
        r"Algorithm|Theorem|Proposition|Lemma)\s*\(?[A-Z]?\d+(?:\.\d+)*(?:\s*(?:,|–|-|and|to)"
        r"\s*[A-Z]?\d+(?:\.\d+)*)*\)?"
    ),
    re.compile(r"\b(?:19|20)\d\d[a-z]?\b"),  # years, as in "Grimm et al. (2017)"
    re.compile(r"\b\w*[A-Za-z][\w-]*\d\w*"),  # names holding digits: CIFAR-10, Lite0, L1, x2
    re.compile(r"\b\d+_\w+"),  # notebook names: 03_cifar10
    re.compile(r"^\s*(?:\d+\.|#+\s*\d+(?:\.\d+)*)\s", re.M),  # list markers, numbered heads
    re.compile(r"(?<![\d.,])[01](?![\d,]|\.\d)"),  # a lone 0 or 1: the ends of [0, 1]
]


def markdown_text(path: Path) -> str:
    """The chapter's Markdown cells, joined."""
    nb = nbformat.read(path, as_version=4)
    return "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def without_code_blocks(text: str) -> str:
    """The text without fenced code; the bodies of directives (```` ```{solution} ````) stay."""
    kept, fences = [], []  # fences: the open fences, (marker, is_code), innermost last
    for line in text.splitlines():
        opening = re.match(r"\s*(`{3,}|~{3,})(.*)$", line)
        inside_code = any(code for _, code in fences)
        if opening and fences and opening.group(1).startswith(fences[-1][0]) \
                and not opening.group(2).strip():
            fences.pop()  # a closing fence
            continue
        if opening and not inside_code:
            fences.append((opening.group(1), not opening.group(2).lstrip().startswith("{")))
            continue
        if not inside_code:
            kept.append(line)
    return "\n".join(kept)


def residue(text: str, allowed: dict[str, str]) -> str:
    """The text with every allowed place for a digit removed."""
    text = without_code_blocks(text)
    for phrase in sorted(allowed, key=len, reverse=True):
        text = text.replace(phrase, " ")
    for pattern in _REMOVED:
        text = pattern.sub(" ", text)
    return text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_typed_numbers(path):
    allowed = ALLOWED.get(path.stem, {})
    typed = []
    for line in residue(markdown_text(path), allowed).splitlines():
        for match in re.finditer(r"\d+(?:[.,]\d+)*", line):
            start = max(0, match.start() - 40)
            typed.append(f"...{line[start:match.end() + 30].strip()}...")
    assert not typed, (
        f"{path.name}: {len(typed)} number(s) typed in Markdown; glue them from the run "
        "(lanlib.book.glue and {glue:text}`name`), or, if the paper or the dataset states "
        "them, add the phrase to ALLOWED with the reason:\n  " + "\n  ".join(typed)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_allow_list_is_current(path):
    text = markdown_text(path)
    for phrase, reason in ALLOWED.get(path.stem, {}).items():
        assert phrase in text, f"{path.name}: ALLOWED phrase {phrase!r} no longer occurs"
        assert len(reason.split()) >= 3, f"{path.name}: say why {phrase!r} is allowed"


def test_every_chapter_is_listed():
    assert sorted(ALLOWED) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize(("text", "left"), [
    ("The swap test gives {glue:text}`own_better` here.", ""),
    ("Section 5.2 and Appendix B, Eq. 4; Figures 4 and 5 (Grimm et al., 2017).", ""),
    ("CIFAR-10, EfficientNet-Lite0, $L_0$, `steps=400`, [x](https://a.b/1706.00536).", ""),
    ("the swap test gives 0.57", "0.57"),
    ("after 400 steps", "400"),
    ("```python\nx = 400\n```\n```{solution} ex\nIt took 400 steps.\n```", "400"),
    ("```{exercise}\nTry it.\n```\n\n```{solution} ex\nAbout 0.72.\n~~~python\nx = 3\n~~~\n```",
     "0.72"),
    ("masks near 1 mark what F ignores, near 0 what it needs; 1.5 or 10", "1.5 10"),
])
def test_scanner(text, left):
    assert re.findall(r"\d+(?:[.,]\d+)*", residue(text, {})) == left.split()
