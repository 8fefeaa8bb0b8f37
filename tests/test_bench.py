"""The benchmark runs end to end in its smoke setting and reports every row; fit's speed options.

Timings depend on the machine: checked are that the reported rates and ratios follow from
the measured times, and the orderings that no load can turn (an MLP's forward pass against
a U-Net's, one LAN pass against hundreds of fit steps). The quality numbers are
checked where the smoke setting already decides them (the total-variation prior smooths,
gates give exact 0s and 1s, the blur fill is the blur option's own noise).
"""

import itertools
import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

import lanlib
from lanlib import bench, noise
from lanlib.bench import measure, options, quality, report, speed


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    results = bench.main(["--setting", "smoke", "--out", str(out), "--quiet"])
    return results, out


def test_smoke_writes_the_json_and_the_chart(smoke):
    results, out = smoke
    stored = json.loads(out.read_text())
    assert stored["meta"]["setting"] == "smoke"
    assert set(stored) >= {"meta", "subjects", "throughput", "accelerations", "convergence",
                           "amortised", "methods", "matched_time", "flops", "options",
                           "mask_nets", "scale", "goals"}
    assert out.with_suffix(".png").is_file()
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write left nothing behind


def test_smoke_has_every_row(smoke):
    results, _ = smoke
    assert set(results["subjects"]) == {"mnist", "cifar", "imagenet"}
    for name in ("mnist", "cifar"):
        batches = results["throughput"][name]["batches"]
        assert list(batches) == ["1", "16", "64", "256"]
        assert results["throughput"][name]["amp_largest_batch"]["masks_per_second"] > 0
        assert results["throughput"][name]["loop_of_16"]["masks_per_second"] > 0
        assert batches["1"]["ratio_to_batch_1"] == 1
        assert all(row["masks_per_second"] > 0 for row in batches.values())
        variants = results["accelerations"][name]["variants"]
        assert {"plain", "channels_last", "amp_bf16", *speed.NAIVE} <= set(variants)
        for naive in speed.NAIVE:  # the same computation as fit_sample_masks, only slower
            assert variants[naive]["objective"] == pytest.approx(variants["plain"]["objective"],
                                                                 abs=1e-4)
        conv = results["convergence"][name]
        assert conv["paper_curve"] and conv["library_curve"] and conv["candidates"]
        assert "not the paper's 10000" in conv["reference_note"]
    amortised = results["amortised"]["mnist"]
    for key in ("lan_seconds_per_mask", "sample_seconds_per_mask",
                "paper_protocol_seconds_per_mask", "deletion_auc_gap_relative"):
        assert amortised[key] is not None
    for name in ("mnist", "cifar", "imagenet"):
        found = {p["method"] for p in results["methods"][name]["points"]}
        assert {"lanlib sample masks", "Captum Saliency", "Captum Integrated Gradients",
                "Captum Occlusion", "Captum Feature Ablation", "random map"} <= found
    assert "lanlib amortised LAN" in {p["method"] for p in results["methods"]["mnist"]["points"]}
    imagenet = results["methods"]["imagenet"]
    assert ("TorchRay extremal perturbation" in {p["method"] for p in imagenet["points"]}
            or imagenet["extremal_perturbation_note"])
    flops = results["flops"]["cifar"]
    assert flops["flops_per_step"] > 0 and flops["fraction_of_matmul_rate"] > 0
    assert any("50x" in g for g in results["goals"])


def test_table_names_every_section(smoke):
    text = report.table(smoke[0])
    for title in ("throughput", "optional arguments", "convergence", "amortised", "methods",
                  "FLOP rate", "options of fit_sample_masks", "mask networks",
                  "explain_dataset on the CPU", "goals"):
        assert title in text


def test_smoke_has_the_scale_rows(smoke):
    """explain_dataset ran in 1 and 2 processes (torchrun, Gloo) and wrote the same masks."""
    results, _ = smoke
    sc = results["scale"]["mnist"]
    assert list(sc["processes"]) == ["1", "2"]
    for row in sc["processes"].values():
        assert all(math.isfinite(row[k]) and row[k] > 0
                   for k in ("seconds", "masks_per_second", "ratio_to_1"))
    assert sc["processes"]["1"]["ratio_to_1"] == 1
    assert sc["identical_masks_1_and_2_processes"] is True
    writing = sc["writing"]
    for key in ("fit_sample_masks_seconds", "explain_dataset_seconds", "overhead_ratio",
                "write_one_shard_seconds", "verify_one_shard_seconds"):
        assert math.isfinite(writing[key]) and writing[key] > 0, key
    assert writing["same_masks"] is True and writing["verified"] is True
    assert writing["shard_bytes"] > sc["batch"] * 28 * 28 * 4  # float32 masks and a header


QUALITY = ("deletion/own", "deletion/blur", "deletion/grey", "insertion/own", "insertion/blur",
           "insertion/grey", "own_better", "distortion", "replaced", "total_variation",
           "exact_0_or_1")


def _quality_is_sound(row):
    assert all(math.isfinite(row[k]) for k in QUALITY), row
    for k in QUALITY:
        if k not in ("distortion", "total_variation"):
            assert 0 <= row[k] <= 1, (k, row[k])


def test_smoke_has_a_row_per_option_of_fit_sample_masks(smoke):
    results, _ = smoke
    for name in ("mnist", "cifar"):
        rows = results["options"][name]["options"]
        assert list(rows) == list(options.OPTIONS)
        for row in rows.values():
            assert math.isfinite(row["masks_per_second"]) and row["masks_per_second"] > 0
            assert math.isfinite(row["batching_speedup"]) and row["batching_speedup"] > 0
            _quality_is_sound(row)
        assert rows["plain"]["ratio_to_plain"] == 1
        # each option is what it says: the settings hold it, and only it
        assert set(rows["tv"]["settings"]) == {"noise", "beta", "tv"}
        assert set(rows["max_distortion"]["settings"]) == {"noise", "max_distortion"}
        assert rows["blur"]["settings"]["noise"].startswith("blur(")
        assert rows["hard_concrete"]["settings"]["gates"] == "hard_concrete"
        # the blur option's own noise is the blur fill: the same deletion curve
        assert rows["blur"]["deletion/own"] == rows["blur"]["deletion/blur"]
        # same noise draws, a smoothness prior added: smoother masks
        assert rows["tv"]["total_variation"] < rows["plain"]["total_variation"]
        # sigmoid masks are never exactly 0 or 1
        assert rows["plain"]["exact_0_or_1"] == 0
    # deterministic hard-concrete gates are (here on the MNIST network, whose D_full sets a
    # beta large enough for 30 steps to move the logits past the gates' clipping points)
    assert results["options"]["mnist"]["options"]["hard_concrete"]["exact_0_or_1"] > 0


def test_smoke_has_a_row_per_mask_network_and_lan_option(smoke):
    results, _ = smoke
    for name in ("mnist", "cifar"):
        m = results["mask_nets"][name]
        assert list(m["nets"]) == list(options.NETS)
        assert list(m["feature_options"]) == list(options.OPTIONS[1:])
        for row in (*m["nets"].values(), *m["feature_options"].values()):
            assert math.isfinite(row["train_steps_per_second"])
            assert row["train_steps_per_second"] > 0
        nets = m["nets"]
        assert nets["MLPMaskNet"]["inference_ratio_to_mlp"] == 1
        # one small matrix product per mask against a stack of convolutions at every pixel
        assert nets["MLPMaskNet"]["masks_per_second"] > nets["UNetMaskNet"]["masks_per_second"]
    trained = results["mask_nets"]["mnist"]
    assert trained["train_steps"] == 3
    for row in (*trained["nets"].values(), *trained["feature_options"].values()):
        _quality_is_sound(row)
        assert row["loaded"] is False  # the smoke setting trains in a scratch folder
    for row in trained["nets"].values():
        assert row["exact_0_or_1"] == 0  # sigmoid outputs
    assert "deletion/own" not in results["mask_nets"]["cifar"]["nets"]["UNetMaskNet"]
    assert results["mask_nets"]["cifar"]["quality_note"]


def test_unknown_setting_is_rejected():
    with pytest.raises(ValueError, match="unknown setting"):
        bench.run("huge")
    with pytest.raises(SystemExit):
        bench.main(["--out", "x.txt"])


def test_the_command_line_answers_help():
    done = subprocess.run([sys.executable, "-m", "lanlib.bench", "--help"], capture_output=True,
                          text=True, check=True)
    assert "--setting {full,quick,smoke}" in done.stdout


def test_smoke_trains_in_a_scratch_folder(smoke):
    results, _ = smoke
    assert not any(info["loaded"] for name, info in results["subjects"].items()
                   if name != "imagenet")
    assert results["amortised"]["mnist"]["lan"]["loaded"] is False


def test_unknown_device_subject_or_section_is_rejected():
    with pytest.raises(ValueError, match="is not a device torch knows"):
        bench.run("smoke", "tpu:x")
    with pytest.raises(ValueError, match="unknown subjects"):
        bench.run("smoke", "cpu", subjects=["svhn"])
    with pytest.raises(ValueError, match="unknown sections"):
        bench.run("smoke", "cpu", sections=["speed"])


def test_rounded_keeps_significant_digits():
    assert measure.rounded(123.456) == 123.5
    assert measure.rounded(0.00123456, 3) == 0.00123
    assert measure.rounded(0.0) == 0.0 and measure.rounded(float("inf")) == float("inf")


def test_matched_time_interpolates_in_log_time():
    points = [
        {"method": "lanlib sample masks", "seconds_per_image": 1.0, "deletion_auc": 0.4},
        {"method": "lanlib sample masks", "seconds_per_image": 100.0, "deletion_auc": 0.2},
        {"method": "Captum Occlusion", "label": "a", "seconds_per_image": 10.0,
         "deletion_auc": 0.25},
        {"method": "Captum Occlusion", "label": "b", "seconds_per_image": 0.1,
         "deletion_auc": 0.5},
        {"method": "Captum Occlusion", "label": "c", "seconds_per_image": 1000.0,
         "deletion_auc": 0.1},
    ]
    rows = quality.matched_time(points, ["Captum Occlusion"])
    assert rows[0]["sample_masks_auc_at_same_time"] == pytest.approx(0.3)
    assert rows[0]["sample_masks_lower"] is False
    assert rows[1]["sample_masks_auc_at_same_time"] is None  # faster than any snapshot
    assert rows[2]["sample_masks_auc_at_same_time"] == pytest.approx(0.2)


def test_checkpoints_and_steps_to_threshold():
    assert quality.checkpoints(300) == [1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300]
    assert quality.steps_to([(1, 3.0), (10, 1.0), (100, 0.5)], 1.0) == 10
    assert quality.steps_to([(1, 3.0)], 1.0) is None


# ------------------------------------------------------------ fit_sample_masks speed options


@pytest.fixture(scope="module")
def conv_task():
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3))
    x = torch.rand(6, 3, 8, 8, generator=gen)
    return model, x


def test_callback_sees_every_step_and_the_final_masks(conv_task):
    model, x = conv_task
    seen = []
    masks = lanlib.fit_sample_masks(model, x, noise.uniform(), beta=0.5, steps=7, seed=0,
                                    progress=False, callback=lambda s, m: seen.append((s, m)))
    assert [s for s, _ in seen] == list(range(1, 8))
    torch.testing.assert_close(seen[-1][1], masks)


def test_decaying_schedules_end_with_a_tiny_step(conv_task):
    model, x = conv_task
    for schedule in ("cosine", "linear"):
        seen = []
        lanlib.fit_sample_masks(model, x, noise.uniform(), beta=0.5, steps=50, lr=0.1, seed=0,
                                progress=False, schedule=schedule,
                                callback=lambda s, m, seen=seen: seen.append(m))
        assert (seen[-1] - seen[-2]).abs().max() < 1e-3 < (seen[1] - seen[0]).abs().max()
    with pytest.raises(ValueError, match="schedule must be one of"):
        lanlib.fit_sample_masks(model, x, noise.uniform(), beta=0.5, steps=2, progress=False,
                                schedule="step")


def test_channels_last_and_amp_give_nearly_the_same_masks(conv_task):
    model, x = conv_task
    kwargs = dict(beta=0.5, steps=20, seed=0, progress=False, mask_shape=(1, 8, 8))
    plain = lanlib.fit_sample_masks(model, x, noise.uniform(), **kwargs)
    last = lanlib.fit_sample_masks(model, x, noise.uniform(), channels_last=True, **kwargs)
    torch.testing.assert_close(last, plain, atol=1e-4, rtol=0)
    amp = lanlib.fit_sample_masks(model, x, noise.uniform(), amp=True, **kwargs)
    assert amp.dtype == torch.float32
    assert (amp - plain).abs().mean() < 0.05
    with pytest.raises(ValueError, match="amp must be"):
        lanlib.fit_sample_masks(model, x, noise.uniform(), amp="yes", **kwargs)
    with pytest.raises(TypeError, match="compile must be"):
        lanlib.fit_sample_masks(model, x, noise.uniform(), compile="fast", **kwargs)


@pytest.mark.parametrize("option", [{"tv": 0.05}, {"max_distortion": 0.01}])
def test_each_option_fits_the_rows_of_a_batch_as_if_alone(conv_task, option):
    """One batched call, and each row is what a call on that row alone gives.

    Blur noise is deterministic, so the batched and the single fits see the same
    corruption; the total-variation term and the constraint's multipliers are per row.
    Coupled rows (one multiplier or one prior for the batch) would differ by about as
    much as the masks move (> 0.05); what remains is rounding (batched and single
    convolutions sum in another order) that Adam's normalised steps enlarge where the
    prior's gradient is the sign of a near-zero difference: measured 4e-4 after 30 steps.
    """
    model, x = conv_task
    kwargs = dict(steps=30, seed=0, progress=False, mask_shape=(1, 8, 8),
                  **({"beta": 0.5} if "tv" in option else {}), **option)
    blur = noise.blur(1.5)
    batched = lanlib.fit_sample_masks(model, x, blur, **kwargs)
    alone = torch.cat([lanlib.fit_sample_masks(model, x[i:i + 1], blur, **kwargs)
                       for i in range(len(x))])
    torch.testing.assert_close(batched, alone, atol=2e-3, rtol=0)
    assert (batched - 0.5).abs().max() > 0.05  # the masks moved: the check is not vacuous


def _near(value, expected):
    """Equal up to the rounding of reported numbers (four significant digits, ratios three)."""
    return value == pytest.approx(expected, rel=0.01)


def test_smoke_ratios_and_rates_follow_from_its_measurements(smoke):
    """The reported rates and ratios are the measured times' (the right way up), and the
    orderings no load can turn hold: one LAN pass against hundreds of fit steps."""
    results, _ = smoke
    for name in ("mnist", "cifar"):
        tp = results["throughput"][name]
        one = tp["batches"]["1"]["masks_per_second"]
        for batch, row in tp["batches"].items():
            assert _near(row["masks_per_second"], int(batch) / row["seconds"]), (name, batch)
            assert _near(row["seconds_per_mask_step"], row["seconds"] / (int(batch) * tp["steps"]))
            assert _near(row["ratio_to_batch_1"], row["masks_per_second"] / one), (name, batch)
        rows = results["options"][name]["options"]
        for row in rows.values():
            assert _near(row["ratio_to_plain"],
                         row["masks_per_second"] / rows["plain"]["masks_per_second"])
            assert _near(row["batching_speedup"],
                         row["masks_per_second"] / row["batch_1_masks_per_second"])
        nets = results["mask_nets"][name]["nets"]
        for row in nets.values():
            assert _near(row["inference_ratio_to_mlp"],
                         row["masks_per_second"] / nets["MLPMaskNet"]["masks_per_second"])
    sc = results["scale"]["mnist"]
    for processes, row in sc["processes"].items():
        assert _near(row["masks_per_second"], sc["images"] / row["seconds"]), processes
        assert _near(row["ratio_to_1"], sc["processes"]["1"]["seconds"] / row["seconds"])
    writing = sc["writing"]
    assert _near(writing["overhead_ratio"],
                 writing["explain_dataset_seconds"] / writing["fit_sample_masks_seconds"])
    am = results["amortised"]["mnist"]
    assert _near(am["speedup_vs_batched_sample"],
                 am["sample_seconds_per_mask"] / am["lan_seconds_per_mask"])
    gap = (am["lan_deletion"]["deletion_auc"] - am["sample_deletion"]["deletion_auc"]) / (
        am["sample_deletion"]["deletion_auc"])
    assert am["deletion_auc_gap_relative"] == pytest.approx(gap, abs=2e-3)
    # one forward pass of a LAN beats hundreds of steps of a fit, and those, batched, beat
    # the paper's ten thousand steps at batch 1, by far more than any load can change
    assert am["speedup_vs_batched_sample"] > 10
    assert am["paper_protocol_seconds_per_mask"] > 10 * am["sample_seconds_per_mask"]


def test_smoke_convergence_curves_fall_and_are_read_right(smoke):
    """"Steps to within 1 %" is read off each curve; on MNIST every curve falls at each
    checkpoint (on the CIFAR network the smoke setting's objective, about 1e-7, is noise)."""
    results, _ = smoke
    for name in ("mnist", "cifar"):
        conv = results["convergence"][name]
        reference = conv["paper_curve"][-1][1]
        assert _near(conv["reference_objective"], reference)
        assert _near(conv["threshold"], reference + 0.01 * abs(reference))
        curves = {"paper": conv["paper_curve"], "library": conv["library_curve"],
                  **{label: c["curve"] for label, c in conv["candidates"].items()}}
        for label, curve in curves.items():
            steps, values = zip(*curve, strict=True)
            assert list(steps) == sorted(set(steps)), (name, label)
            if name == "mnist":
                assert all(b < a for a, b in itertools.pairwise(values)), (label, values)
                assert conv["objective_at_init"] > values[0]  # the first steps help
        assert conv["paper_steps_to_within_1pct"] == quality.steps_to(conv["paper_curve"],
                                                                      conv["threshold"])
        assert conv["library_steps_to_within_1pct"] == quality.steps_to(conv["library_curve"],
                                                                        conv["threshold"])
