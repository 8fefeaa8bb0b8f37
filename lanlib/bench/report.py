"""The benchmark's report: the goals, the table, the speed–quality chart and the JSON file.

- :func:`goals`: the targets of the performance issue, each with the measured number;
- :func:`table`: the human-readable report, one line per measured quantity;
- :func:`chart`: deletion area against seconds per image, one panel per network;
- :func:`write_json`: every number, written atomically.

Each reads the dict :func:`lanlib.bench.run` returns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data._files import atomic_write
from ..plot import OKABE_ITO, new_figure
from .measure import rounded

__all__ = ["chart", "goals", "table", "write_json"]

_TITLES = {"mnist": "translated MNIST", "cifar": "CIFAR-10", "imagenet": "ImageNet"}


def goals(results: dict) -> dict:
    """The targets of the performance issue, each with the measured number."""
    out = {}
    for name, tp in results.get("throughput", {}).items():
        if "256" in tp["batches"]:
            r = tp["batches"]["256"]["ratio_to_batch_1"]
            out[f"batch_256_vs_loop_at_least_50x ({name})"] = {
                "value": r, "met": r >= 50,
                "with_amp": tp.get("amp_largest_batch", {}).get("ratio_to_batch_1")}
    for name, conv in results.get("convergence", {}).items():
        best = [c["steps_to_within_1pct"] for c in conv["candidates"].values()
                if c["steps_to_within_1pct"] is not None]
        lib = conv["library_steps_to_within_1pct"]
        out[f"library_defaults_within_1pct_in_at_most_1000_steps ({name})"] = {
            "value": lib, "met": lib is not None and lib <= 1000,
            "best_candidate_steps": min(best) if best else None}
    for name, am in results.get("amortised", {}).items():
        out[f"amortised_at_least_1000x_faster_and_auc_within_10pct ({name})"] = {
            "value": {"speedup_vs_batched_sample": am["speedup_vs_batched_sample"],
                      "speedup_vs_paper_protocol": am["speedup_vs_paper_protocol"],
                      "auc_gap": am["deletion_auc_gap_relative"]},
            "met": am["speedup_vs_batched_sample"] >= 1000
            and am["deletion_auc_gap_relative"] <= 0.10}
    im = results.get("matched_time", {}).get("imagenet")
    if im:
        matched = [m for m in im if m["sample_masks_lower"] is not None]
        out["imagenet_lower_auc_than_occlusion_and_ablation_at_same_time"] = {
            "value": f"{sum(m['sample_masks_lower'] for m in matched)} of {len(matched)} "
                     "matched rivals",
            "met": bool(matched) and all(m["sample_masks_lower"] for m in matched)}
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _quality_rows(row, label: str, r: dict) -> None:
    """The quality rows of one kind of mask (:func:`lanlib.bench.options.quality`), if any."""
    if "deletion/own" not in r:
        return
    row(f"{label}: deletion, own noise", r["deletion/own"], None,
        f"blur {r['deletion/blur']}, grey {r['deletion/grey']}; insertion: own "
        f"{r['insertion/own']}, blur {r['insertion/blur']}, grey {r['insertion/grey']}")
    row(f"{label}: own_better", r["own_better"], None,
        f"distortion {r['distortion']}, replaced {r['replaced']}, total variation "
        f"{r['total_variation']}, exact 0/1 {r['exact_0_or_1']}")


def table(results: dict) -> str:
    """The human-readable report: one line per measured quantity, ratios in the last column."""
    lines = []
    meta = results["meta"]

    def head(title):
        lines.append("")
        lines.append(title)
        lines.append("-" * len(title))

    def row(name, value, ratio=None, note=""):
        lines.append(f"  {name:<62} {_fmt(value):>11} {_fmt(ratio):>9}  {note}")

    lines.append(f"lanlib.bench, setting {meta['setting']!r} on {meta['device']} "
                 f"({meta['threads']} thread(s)), torch {meta['torch']}, "
                 f"load average {meta['load_average_start']} -> {meta['load_average_end']}, "
                 f"{meta['seconds']:.0f} s")
    for name, info in results.get("subjects", {}).items():
        acc = info.get("test_accuracy", info.get("top1_on_these"))
        lines.append(f"  {name}: beta {info['beta']}, D_full {info['d_full']}, mask "
                     f"{tuple(info['mask_shape'])}, accuracy {_fmt(acc)}, "
                     f"{'loaded' if info['loaded'] else 'trained'}")
    if "throughput" in results:
        head("throughput of fit_sample_masks (masks/s; ratio = per-mask speed-up over batch 1,"
             " i.e. a loop)")
        for name, tp in results["throughput"].items():
            for b, r in tp["batches"].items():
                row(f"{name} batch {b} ({tp['steps']} steps)", r["masks_per_second"],
                    r["ratio_to_batch_1"])
            amp = tp["amp_largest_batch"]
            row(f"{name} batch {amp['batch']} with amp=True (bfloat16)", amp["masks_per_second"],
                amp["ratio_to_batch_1"])
            row(f"{name} Python loop over 16 single-sample calls", tp["loop_of_16"][
                "masks_per_second"], tp["loop_of_16"]["ratio_to_batch_1"])
        for name, tc in results.get("threads", {}).items():
            if tc:
                row(f"{name} s/step at batch 16, {list(tc['seconds_per_step'])} threads",
                    str(list(tc["seconds_per_step"].values())), tc["slowdown_with_all_threads"],
                    "ratio: slow-down with all cores")
    if "accelerations" in results:
        head("optional arguments of fit_sample_masks (masks/s; ratio to the plain call)")
        for name, ac in results["accelerations"].items():
            for v, r in ac["variants"].items():
                note = f"compiling took {r['first_call_seconds']} s" if "first_call_seconds" in r \
                    else ""
                row(f"{name} batch {ac['batch']}: {v}", r["masks_per_second"],
                    r["ratio_to_plain"], f"objective after {ac['steps']} steps {r['objective']}"
                    + (f"; {note}" if note else ""))
    if "convergence" in results:
        head("convergence of Eq. 4 (objective, lower is better; steps to within 1% of the "
             "paper's settings' value)")
        for name, c in results["convergence"].items():
            lines.append(f"  {name}: {c['reference_note']}; {c['images']} images, "
                         f"{c['eval_draws']} noise draws per evaluation")
            row(f"{name} objective at init (mask 0.5)", c["objective_at_init"])
            row(f"{name} paper settings after {c['reference_steps']} steps",
                c["reference_objective"], None, f"threshold {c['threshold']}")
            row(f"{name} steps: paper settings (lr 0.05)", c["paper_steps_to_within_1pct"])
            row(f"{name} steps: lanlib defaults (lr 0.1, constant)",
                c["library_steps_to_within_1pct"],
                None if not c["library_steps_to_within_1pct"] or not
                c["paper_steps_to_within_1pct"] else
                rounded(c["paper_steps_to_within_1pct"] / c["library_steps_to_within_1pct"], 3),
                f"ratio: fewer steps than the paper's; tried up to {c['library_max_steps']}")
            row(f"{name} lanlib defaults objective at {c['library_default_steps']} steps",
                c["library_objective_at_default_steps"])
            lib = dict(c["library_curve"])
            pap = dict(c["paper_curve"])
            for s_ in (100, 1000):
                if s_ in lib and s_ in pap:
                    row(f"{name} objective at {s_} steps: paper | lanlib defaults",
                        f"{pap[s_]} | {lib[s_]}")
            for label, cand in c["candidates"].items():
                shown = [(s, v) for s, v in cand["curve"] if s in (100, 300, 1000, 2000)
                         or cand["schedule"] != "constant"]
                finals = ", ".join(f"{s}: {v}" for s, v in shown)
                row(f"{name} steps: {label}", cand["steps_to_within_1pct"], None,
                    f"tried up to {cand['max_steps']}; objective at {finals}")
    if "amortised" in results:
        head("amortised LAN vs sample-specific masks (time per mask; ratio = speed-up of "
             "the LAN)")
        for name, a in results["amortised"].items():
            row(f"{name} LAN, one forward pass (s/mask)", a["lan_seconds_per_mask"])
            row(f"{name} sample masks, batched, {a['sample_steps']} steps (s/mask)",
                a["sample_seconds_per_mask"], a["speedup_vs_batched_sample"])
            row(f"{name} paper protocol, batch 1, 10,000 steps (s/mask, est.)",
                a["paper_protocol_seconds_per_mask"], a["speedup_vs_paper_protocol"])
            row(f"{name} deletion area: LAN", a["lan_deletion"]["deletion_auc"])
            row(f"{name} deletion area: sample masks", a["sample_deletion"]["deletion_auc"],
                None, f"relative gap of the LAN {a['deletion_auc_gap_relative']:+.1%}")
            row(f"{name} objective: LAN | sample masks",
                f"{a['lan_objective']} | {a['sample_objective']}")
    if "methods" in results:
        head("methods on the same images (s/image; deletion area, lower is better; ratio = "
             "time relative to 100-step sample masks)")
        for name, m in results["methods"].items():
            ref = next((p["seconds_per_image"] for p in m["points"]
                        if p["method"] == "lanlib sample masks"), None)
            ref = next((p["seconds_per_image"] for p in m["points"]
                        if p.get("steps") == 100), ref)
            grid = m.get("deletion_grid")
            lines.append(f"  {name}: {m['images']} images, deletion by {m['deletion_noise']}"
                         + (f", every map ranked on a {grid[0]}x{grid[1]} grid" if grid else
                            ", every map ranked at its own resolution"))
            for p in m["points"]:
                ratio = rounded(p["seconds_per_image"] / ref, 3) if ref else None
                row(f"{name} {p['method']} {p['label']}".rstrip(), p["seconds_per_image"],
                    ratio, f"area {p['deletion_auc']} ± {p['deletion_auc_sem']}")
            if m.get("extremal_perturbation_note"):
                lines.append(f"  {name}: extremal perturbation: {m['extremal_perturbation_note']}")
        for name, mt in results.get("matched_time", {}).items():
            for r in mt:
                row(f"{name} same time as {r['rival']}", r["sample_masks_auc_at_same_time"],
                    None, f"rival's area {r['rival_auc']}; sample masks lower: "
                    f"{_fmt(r['sample_masks_lower'])}")
    if "flops" in results:
        head("FLOP rate of fit_sample_masks (ratio = fraction of the matmul rate)")
        for name, f in results["flops"].items():
            row(f"{name} batch {f['batch']}: achieved FLOP/s", f["achieved_flops_per_second"],
                f["fraction_of_matmul_rate"], f"{f['flops_per_step']:.3g} FLOP per step")
            row(f"{name} matmul {f['matmul_size']}^2 FLOP/s", f["matmul_flops_per_second"])
    if "options" in results:
        head("options of fit_sample_masks (masks/s; ratio to the plain call)")
        for name, o in results["options"].items():
            lines.append(f"  {name}: speed at batch {o['batch']}, {o['speed_steps']} steps; "
                         f"quality after {o['quality_steps']} steps on {o['images']} images; "
                         f"blur sigma {o['blur_sigma']}")
            for v, r in o["options"].items():
                row(f"{name} {v}", r["masks_per_second"], r["ratio_to_plain"],
                    f"batched vs batch 1: x{_fmt(r['batching_speedup'])}")
                _quality_rows(row, f"{name} {v}", r)
    if "mask_nets" in results:
        head("mask networks (masks/s at inference, fit_lan steps/s; ratio to MLPMaskNet)")
        for name, m in results["mask_nets"].items():
            lines.append(f"  {name}: inference on {m['inference_images']} images, training "
                         f"{m['speed_steps']} steps at batch 64; quality: "
                         + (f"LANs trained {m['train_steps']} steps, on {m['images']} images"
                            if m["train_steps"] else m["quality_note"]))
            for net, r in m["nets"].items():
                row(f"{name} {net}: masks/s", r["masks_per_second"], r["inference_ratio_to_mlp"])
                row(f"{name} {net}: fit_lan steps/s", r["train_steps_per_second"],
                    r["train_ratio_to_mlp"])
                _quality_rows(row, f"{name} {net}", r)
            for v, r in m["feature_options"].items():
                row(f"{name} FeatureMaskNet {v}: fit_lan steps/s", r["train_steps_per_second"],
                    r["train_ratio_to_plain"], "ratio: to FeatureMaskNet, plain")
                _quality_rows(row, f"{name} FeatureMaskNet {v}", r)
    if "scale" in results:
        head("explain_dataset on the CPU (masks/s; ratio to 1 process, then to "
             "fit_sample_masks alone)")
        for name, sc in results["scale"].items():
            lines.append(f"  {name}: {sc['images']} images, global batch {sc['batch']}, "
                         f"{sc['steps']} steps, {sc['threads_per_process']} thread(s) per "
                         f"process; median of {sc['repeats']}")
            for p, r in sc["processes"].items():
                row(f"{name} {p} process(es)", r["masks_per_second"], r["ratio_to_1"],
                    "identical masks in 1 and 2 processes: "
                    f"{_fmt(sc['identical_masks_1_and_2_processes'])}" if p != "1" else "")
            w = sc["writing"]
            row(f"{name} fit_sample_masks alone, same batches and seeds",
                w["fit_sample_masks_masks_per_second"], 1)
            row(f"{name} explain_dataset (shards, checksums, index)",
                w["explain_dataset_masks_per_second"], rounded(1 / w["overhead_ratio"], 3),
                f"time x{_fmt(w['overhead_ratio'])}; same masks: {_fmt(w['same_masks'])}")
            row(f"{name} write one shard | verify one shard (s)",
                f"{w['write_one_shard_seconds']} | {w['verify_one_shard_seconds']}", None,
                f"{w['shard_bytes']} bytes")
    if "goals" in results:
        head("goals of the performance issue")
        for name, g in results["goals"].items():
            row(name, "met" if g["met"] else "NOT met", None, json.dumps(g["value"]))
    return "\n".join(lines)


def chart(results: dict, path: Path) -> Path | None:
    """Speed–quality chart: deletion area against seconds per image, one panel per network."""
    methods_ = results.get("methods")
    if not methods_:
        return None
    fig = new_figure((4.6 * len(methods_), 4.6))
    axes = fig.subplots(1, len(methods_), squeeze=False)[0]
    styles = {"lanlib sample masks": ("o", "-"), "lanlib amortised LAN": ("*", ""),
              "Captum Occlusion": ("s", "--"), "Captum Feature Ablation": ("D", ":"),
              "Captum Saliency": ("^", ""), "Captum Integrated Gradients": ("v", ""),
              "TorchRay extremal perturbation": ("P", ""), "random map": ("X", "")}
    colours = (*OKABE_ITO, "#000000")  # Okabe & Ito's eighth colour, black, for the random map
    handles = {}
    floor = min((p["seconds_per_image"] for m in methods_.values() for p in m["points"]
                 if p["seconds_per_image"] > 0), default=1e-4) / 3
    for ax, (name, m) in zip(axes, methods_.items(), strict=True):
        for k, (method, (marker, line)) in enumerate(styles.items()):
            pts = [p for p in m["points"] if p["method"] == method]
            if not pts:
                continue
            t = [max(p["seconds_per_image"], floor) for p in pts]
            a = [p["deletion_auc"] for p in pts]
            (handles[method],) = ax.plot(t, a, marker=marker, linestyle=line or "none",
                                         color=colours[k], label=method,
                                         markersize=7 if marker != "*" else 11)
            if method == "lanlib sample masks":
                for p, ti in zip(pts, t, strict=True):
                    ax.annotate(str(p["steps"]), (ti, p["deletion_auc"]), fontsize=7,
                                textcoords="offset points", xytext=(3, 3))
        ax.set_xscale("log")
        ax.set_xlabel("seconds per image (log scale)")
        ax.set_ylabel("deletion-curve area (lower is better)")
        ax.set_title(f"{_TITLES.get(name, name)} ({m['images']} images)")
        ax.grid(alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncols=min(len(handles), 4), fontsize="small")
    meta = results["meta"]
    fig.suptitle(f"Speed and quality of explanations on {meta['device']} "
                 f"(setting {meta['setting']}; sample-mask points labelled by steps; "
                 "random map drawn at the left edge)", fontsize="medium")
    fig.savefig(path, dpi=110)
    return path


def write_json(path: Path, results: dict) -> None:
    """Write ``results`` to ``path`` atomically (a temporary file, then a rename), readable by all.

    Args:
        path (Path): the ``.json`` file; its folder is created.
        results (dict): JSON values only (no NaN or infinity).
    """
    text = json.dumps(results, indent=1, allow_nan=False) + "\n"
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))
    os.chmod(path, 0o644)  # the temporary file was private
