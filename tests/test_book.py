"""lanlib.book: profiles a student can trust, glued numbers, results with provenance."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import lanlib
from lanlib import book
from lanlib.data._files import shown_path

SIZES = {"quick": {"f_steps": 800, "lan_steps": 400, "images": 10},
         "full": {"f_steps": 100_000, "lan_steps": 250_000, "images": 50}}


@pytest.fixture
def fake_gpu(monkeypatch):
    """A machine where torch reports one CUDA device (nothing is ever run on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_is_quick_on_a_gpu(fake_gpu):
    profile, device = book.resolve_profile("auto", "auto")
    assert (profile, device.type) == ("quick", "cuda")
    assert book.resolve_profile("full", "auto")[0] == "full"  # only when asked by name


def test_auto_is_quick_on_a_cpu():
    assert book.resolve_profile("auto", "cpu") == ("quick", torch.device("cpu"))


def test_setup_says_what_auto_chose_and_what_it_costs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path))
    threads = torch.get_num_threads()
    try:
        book.setup("auto", device="cpu", chapter="03_cifar10", sizes=SIZES)
        said = capsys.readouterr().out
        assert "'auto' -> 'quick'" in said and "3.5 min" in said and "profile='full'" in said
        book.setup("full", device="cpu", chapter="03_cifar10", sizes=SIZES)
        said = capsys.readouterr().out
        assert "625x the quick profile's training steps" in said
        assert "no full run on a GPU has been recorded yet" in said and "14 h (estimated" in said
    finally:
        torch.set_num_threads(threads)


def test_setup_quotes_the_last_full_run(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path))
    record = {"profile": "full", "provenance": {"wall_time_s": 2400.0, "device_name": "H200",
                                                "date": "2026-12-01"}}
    path = book.results_path("03_cifar10", profile="full")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    book.setup("full", device="cpu", chapter="03_cifar10", sizes=SIZES, threads=None)
    assert "the last recorded full run took 40 min on H200 (2026-12-01)" in capsys.readouterr().out


def test_setup_rejects_sizes_without_both_profiles():
    with pytest.raises(ValueError, match="sizes must map 'quick' and 'full'"):
        book.setup("quick", device="cpu", threads=None, sizes={"quick": {"steps": 3}})


@pytest.mark.parametrize(("value", "fmt", "text"), [
    (0.5712, None, "0.57"), (3, None, "3"), (torch.tensor(0.125), ".3f", "0.125"),
    (np.float64(0.25), ".0%", "25%"), (12_500, ",", "12,500"), ("KL", None, "KL"),
    (True, None, "True"),
])
def test_glue_prints_where_myst_nb_is_missing(value, fmt, text, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name == "myst_nb":
            raise ImportError("no myst_nb here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    assert book.glue("name", value, fmt) is None  # a cell ending in glue shows nothing
    assert capsys.readouterr().out == f"name = {text}\n"


def test_glue_hands_myst_nb_plain_text(monkeypatch):
    import myst_nb
    from myst_nb.core.variables import format_plain_text

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update(
        name=name, value=value, display=display))
    book.glue("own_better", 0.5678)
    book.glue("count", 12_345, ",")
    assert seen == {"name": "count", "value": "12,345", "display": False}
    assert format_plain_text(repr("12,345"), "") == "12,345"  # what {glue:text} shows


@pytest.mark.parametrize(("name", "value", "error"), [
    ("", 1.0, ValueError), ("a b", 1.0, ValueError), ("x", float("nan"), ValueError),
    ("x", float("inf"), ValueError), ("x", torch.ones(3), TypeError), ("x", [1, 2], TypeError),
])
def test_glue_refuses_what_a_sentence_cannot_state(name, value, error):
    with pytest.raises(error):
        book.glue(name, value)


def test_full_results_go_to_their_own_folder_with_provenance(tmp_path):
    book.setup("quick", device="cpu", threads=None, chapter=None)
    quick = book.save_results("03_cifar10", {"profile": "quick", "x": 1.0}, root=tmp_path)
    full = book.save_results("03_cifar10", {"profile": "full", "x": 2.0}, root=tmp_path)
    assert quick == tmp_path / "results" / "03_cifar10.json"
    assert full == tmp_path / "results" / "full" / "03_cifar10.json"
    record = json.loads(full.read_text())
    assert record["x"] == 2.0
    assert set(record["provenance"]) == {"date", "machine", "device", "device_name", "commit",
                                         "lanlib", "torch", "wall_time_s"}
    assert record["provenance"]["wall_time_s"] >= 0
    assert book.full_results("03_cifar10", root=tmp_path) == record


def test_results_may_not_bring_their_own_provenance(tmp_path):
    with pytest.raises(ValueError, match="written by save_results itself"):
        book.save_results("01_method", {"profile": "quick", "provenance": "mine"}, root=tmp_path)


def test_full_results_table_says_when_no_full_run_exists(tmp_path):
    text = book.full_results_table("03_cifar10", {"x": "a number"}, root=tmp_path)
    assert "No full-profile run of this chapter has been recorded" in text


def test_full_results_table_shows_both_runs(tmp_path):
    book.save_results("03_cifar10", {"profile": "full", "swap": {"own_better": 0.8125}},
                      root=tmp_path)
    text = book.full_results_table("03_cifar10", {"swap.own_better": "own mask better"},
                                   current={"swap": {"own_better": 0.5}}, root=tmp_path)
    assert "| own mask better | 0.812 | 0.5 |" in text
    assert "Full run: " in text


def test_a_damaged_full_results_file_is_named(tmp_path):
    path = book.results_path("03_cifar10", tmp_path, "full")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        book.full_results("03_cifar10", root=tmp_path)
    path.write_text(json.dumps({"profile": "quick"}))
    with pytest.raises(ValueError, match="does not hold full-profile results"):
        book.full_results("03_cifar10", root=tmp_path)


def test_printed_paths_do_not_show_the_build_machine():
    checkout = Path(lanlib.__file__).resolve().parents[1]
    assert shown_path(checkout / "data" / "checkpoints" / "f.pt") == "data/checkpoints/f.pt"
    assert shown_path(Path.home() / ".cache" / "lanlib" / "x") == "~/.cache/lanlib/x"


def test_markdown_table_escapes_pipes_and_checks_rows():
    assert book.markdown_table(["a", "b"], [["x|y", 1]]).splitlines()[-1] == "| x\\|y | 1 |"
    with pytest.raises(ValueError, match="row 0 has 1 cells, the header 2"):
        book.markdown_table(["a", "b"], [["x"]])


@pytest.mark.parametrize("page", ["README.md", "book/course.md"])
def test_pages_quote_the_timings_setup_prints(page):
    text = (Path(lanlib.__file__).resolve().parents[1] / page).read_text(encoding="utf-8")
    for chapter, timing in book.TIMINGS.items():
        rows = [line for line in text.splitlines() if line.startswith(f"| {chapter[:2]} ")]
        assert len(rows) == 1, f"{page}: expected one timing row for {chapter}, got {rows}"
        cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
        how = "measured" if timing.full_cpu_measured else "estimated"
        assert cells[1] == book._minutes(timing.quick_cpu), (page, chapter, cells)
        assert cells[2].startswith(f"{book._minutes(timing.full_cpu)} ({how}"), (page, cells)


def test_printed_paths_name_the_mirror_and_data_root_by_their_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("LANLIB_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "root"))
    assert shown_path(tmp_path / "mirror" / "a.tar.gz") == "$LANLIB_DATA_MIRROR/a.tar.gz"
    assert shown_path(tmp_path / "root" / "b.pt") == "$LANLIB_DATA_DIR/b.pt"


def test_by_profile_fills_a_row_from_each_profile():
    assert book.by_profile("{lan_steps} steps, {x}", SIZES, x="same") == [
        "400 steps, same", "250000 steps, same"]
    with pytest.raises(KeyError):
        book.by_profile("{missing}", SIZES)


def test_setup_refuses_a_chapter_that_is_not_a_name():
    with pytest.raises(ValueError, match="chapter must be the notebook's name"):
        book.setup("quick", device="cpu", threads=None, chapter=3)


@pytest.mark.parametrize(("profile", "device"), [("quick", "cpu"), ("full", "cpu"),
                                                  ("auto", "auto"), ("auto", torch.device("cpu"))])
def test_resolve_profile_gives_the_profile_asked_for_and_quick_for_auto(profile, device):
    resolved, on = book.resolve_profile(profile, device)
    assert resolved == ("quick" if profile == "auto" else profile)
    assert on == torch.device("cuda" if torch.cuda.is_available() and device == "auto" else "cpu")


@pytest.mark.parametrize(("profile", "device", "message"), [
    ("fast", "cpu", "unknown profile 'fast'; use one of 'auto', 'quick', 'full'"),
    ("Quick", "cpu", "unknown profile 'Quick'"),
    (None, "cpu", "unknown profile None"),
    ("quick", "tpu0", "device 'tpu0' is not a device torch knows"),
    ("quick", "cuda:7", "was asked for, but this machine has"),
])
def test_resolve_profile_names_what_is_wrong(profile, device, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=message):
        book.resolve_profile(profile, device)


@pytest.mark.parametrize(("name", "profile"), [
    ("../escape", "quick"), ("results/03_cifar10", "quick"), ("a\\b", "quick"), ("", "quick"),
    (".hidden", "full"), (None, "quick"), ("03_cifar10", "medium"), ("03_cifar10", None),
])
def test_results_path_refuses_a_name_or_profile_that_could_write_elsewhere(name, profile,
                                                                           tmp_path):
    with pytest.raises(ValueError, match="plain file stem|unknown profile"):
        book.results_path(name, tmp_path, profile)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_results_path_stays_in_the_results_folder_of_the_root(profile, tmp_path):
    path = book.results_path("05_imagenet", tmp_path, profile)
    folder = tmp_path / "results"
    assert path == (folder / "full" if profile == "full" else folder) / "05_imagenet.json"
    assert path.resolve().is_relative_to(folder.resolve())


@pytest.mark.parametrize(("results", "error", "message"), [
    ({"x": 1.0}, ValueError, "must contain 'profile'"),
    ({"profile": "medium"}, ValueError, r"one of \('quick', 'full'\)\), got 'medium'"),
    ({"profile": "quick", "a": {"b": [1.0, float("nan")]}}, ValueError,
     r"results\['a'\]\['b'\]\[1\] is nan, which JSON cannot hold"),
    ({"profile": "full", "auroc": float("-inf")}, ValueError, r"results\['auroc'\] is -inf"),
    ({"profile": "quick", "auroc": torch.tensor(0.9)}, TypeError, r"convert it with \.item\(\)"),
    ({"profile": "quick", "auroc": np.float32(0.9)}, TypeError, "not JSON-serialisable"),
    ({"profile": "quick", "by_k": {5: 0.1}}, TypeError, "JSON keys must be strings"),
    ([("profile", "quick")], TypeError, "results must be a mapping"),
])
def test_save_results_refuses_what_it_cannot_store_and_writes_nothing(results, error, message,
                                                                      tmp_path):
    with pytest.raises(error, match=message):
        book.save_results("03_cifar10", results, root=tmp_path)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*"))


def test_save_results_writes_the_values_back_unchanged_and_replaces_the_file(tmp_path):
    first = {"profile": "quick", "auroc": 0.8125, "curve": [0.5, 0.25], "ok": True, "n": None}
    path = book.save_results("02_mnist_grid", first, root=tmp_path)
    second = {"profile": "quick", "auroc": 0.75}
    assert book.save_results("02_mnist_grid", second, root=tmp_path) == path
    record = json.loads(path.read_text())
    assert {k: v for k, v in record.items() if k != "provenance"} == second
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
