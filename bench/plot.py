#!/usr/bin/python3
"""bench/plot.py - turn numamap_compare's results into PNG plots and a Markdown table.

usage: /usr/bin/python3 bench/plot.py RESULTS_DIR [--out OUT_DIR]

RESULTS_DIR holds results.csv and meta.json as numamap_compare writes them. OUT_DIR (default:
RESULTS_DIR) receives
  throughput_<size>.png   Mops/s by thread count, one panel per workload mix
  ratio_<size>.png        numamap / peer throughput per mix, at 1 thread and at the most threads
  latency_<size>.png      p50 / p99 / p99.9 of sampled operations at the most threads
  bytes_per_entry.png     resident bytes per entry after prefill, per map and size
  targets.png             the issue-4 throughput targets: ratio per repetition and of the medians
  table.md                the same numbers as Markdown tables, and the issue-4 targets
Each number is the median over the repetitions of a cell. Needs matplotlib (Debian:
python3-matplotlib); runs headless.
"""

import argparse
import csv
import json
import os
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

NUMAMAP = "numamap"
CEILING = "absl_flat_nolock"
CONCURRENT_PEERS = ["tbb_chm", "libcuckoo", "std_shared_mutex"]
MAP_ORDER = [NUMAMAP, "tbb_chm", "libcuckoo", "std_shared_mutex", CEILING]
COLORS = {
    NUMAMAP: "#d62728",
    "tbb_chm": "#1f77b4",
    "libcuckoo": "#2ca02c",
    "std_shared_mutex": "#9467bd",
    CEILING: "#7f7f7f",
}
MEMORY_MIXES = ("read100", "read99", "read95", "read95_zipf")
MIX_ORDER = ["read100", "read99", "read95", "mixed50", "los50", "los83", "los95", "churn",
             "read95_zipf", "read95_str"]


def size_label(n):
    if n % 1000000 == 0:
        return f"{n // 1000000}M"
    if n % 1000 == 0:
        return f"{n // 1000}K"
    return str(n)


def load(results_dir):
    rows = []
    with open(os.path.join(results_dir, "results.csv"), newline="") as f:
        for r in csv.DictReader(f):
            for k in ("size", "threads", "rep", "ops", "samples"):
                r[k] = int(r[k])
            for k in ("seconds", "mops", "p50_ns", "p99_ns", "p999_ns", "load_p50_ns",
                      "load_p99_ns", "load_p999_ns", "rss_bytes_per_entry",
                      "alloc_bytes_per_entry", "prefill_s", "cpu_share"):
                r[k] = float(r.get(k) or 0)
            # Absent in results from before the column existed: unknown, as when unpinned.
            r["handoff_ns"] = float(r.get("handoff_ns") or -1)
            rows.append(r)
    meta = {}
    source_path = os.path.join(results_dir, "source.txt")
    if os.path.exists(source_path):
        with open(source_path) as f:
            meta["source"] = "; ".join(line.strip() for line in f if line.strip())
    meta_path = os.path.join(results_dir, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta.update(json.load(f))
    return rows, meta


def aggregate(rows):
    """(map, mix, size, threads) -> medians over the repetitions."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["map"], r["mix"], r["size"], r["threads"])].append(r)
    out = {}
    for key, rs in groups.items():
        agg = {"reps": len(rs), "check": "ok" if all(r["check"] == "ok" for r in rs) else "FAILED"}
        for k in ("mops", "p50_ns", "p99_ns", "p999_ns", "load_p50_ns", "load_p99_ns",
                  "load_p999_ns", "rss_bytes_per_entry", "alloc_bytes_per_entry", "cpu_share"):
            agg[k] = statistics.median(r[k] for r in rs)
        agg["mops_min"] = min(r["mops"] for r in rs)
        agg["mops_max"] = max(r["mops"] for r in rs)
        agg["mops_by_rep"] = {r["rep"]: r["mops"] for r in rs}
        agg["handoff_by_rep"] = {r["rep"]: r["handoff_ns"] for r in rs if r["handoff_ns"] >= 0}
        agg["handoff_ns"] = list(agg["handoff_by_rep"].values())
        out[key] = agg
    return out


def ordered(items, order):
    known = [x for x in order if x in items]
    return known + sorted(x for x in items if x not in order)


def plot_throughput(agg, maps, mixes, size, out_dir):
    cells = [m for m in mixes if any(k[1] == m and k[2] == size for k in agg)]
    if not cells:
        return None
    cols = min(4, len(cells))
    nrows = (len(cells) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), squeeze=False)
    for ax, mix in zip(axes.flat, cells):
        for m in maps:
            pts = sorted((k[3], v) for k, v in agg.items() if k[0] == m and k[1] == mix and k[2] == size)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[1]["mops"] for p in pts]
            lo = [p[1]["mops"] - p[1]["mops_min"] for p in pts]
            hi = [p[1]["mops_max"] - p[1]["mops"] for p in pts]
            style = dict(color=COLORS.get(m), label=m, marker="o", capsize=3)
            if m == CEILING:
                style.update(marker="*", markersize=11, linestyle="none")
            ax.errorbar(xs, ys, yerr=[lo, hi], **style)
        ax.set_title(f"{mix}, {size_label(size)} keys")
        ax.set_xlabel("threads")
        ax.set_ylabel("Mops/s (median, min-max)")
        ax.set_ylim(bottom=0)
        threads = sorted({k[3] for k in agg if k[2] == size})
        ax.set_xticks(threads)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(cells):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path = os.path.join(out_dir, f"throughput_{size_label(size)}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_ratio(agg, maps, mixes, size, out_dir):
    if NUMAMAP not in maps:
        return None
    threads_here = sorted({k[3] for k in agg if k[2] == size and k[0] == NUMAMAP})
    if not threads_here:
        return None
    panels = sorted({threads_here[0], threads_here[-1]})
    peers = [m for m in maps if m != NUMAMAP]
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 4), squeeze=False)
    for ax, t in zip(axes.flat, panels):
        mix_here = [m for m in mixes if (NUMAMAP, m, size, t) in agg]
        width = 0.8 / max(1, len(peers))
        for j, p in enumerate(peers):
            xs, ys = [], []
            for i, mix in enumerate(mix_here):
                if (p, mix, size, t) in agg and agg[(p, mix, size, t)]["mops"] > 0:
                    xs.append(i + (j - (len(peers) - 1) / 2) * width)
                    ys.append(agg[(NUMAMAP, mix, size, t)]["mops"] / agg[(p, mix, size, t)]["mops"])
            if xs:
                # Bars grow from 1x: up where numamap is faster, down where it is slower.
                ax.bar(xs, [y - 1 for y in ys], width, bottom=1, color=COLORS.get(p),
                       label=f"numamap / {p}")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}x"))
        ax.set_xticks(range(len(mix_here)))
        ax.set_xticklabels(mix_here, rotation=35, ha="right")
        ax.set_ylabel("numamap / peer (log scale)")
        ax.set_title(f"numamap / peer, {size_label(size)} keys, {t} thread{'s' if t > 1 else ''}")
        ax.grid(axis="y", alpha=0.3, which="major")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    path = os.path.join(out_dir, f"ratio_{size_label(size)}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_latency(agg, maps, mixes, size, out_dir):
    threads_here = sorted({k[3] for k in agg if k[2] == size})
    if not threads_here:
        return None
    t = threads_here[-1]
    mix_here = [m for m in mixes if any(k[1] == m and k[2] == size and k[3] == t for k in agg)]
    maps_here = [m for m in maps if any(k[0] == m and k[2] == size and k[3] == t for k in agg)]
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.2), squeeze=False)
    width = 0.8 / max(1, len(maps_here))
    for ax, (col, title) in zip(axes.flat, [("p50_ns", "p50"), ("p99_ns", "p99"), ("p999_ns", "p99.9")]):
        for j, m in enumerate(maps_here):
            xs, ys = [], []
            for i, mix in enumerate(mix_here):
                v = agg.get((m, mix, size, t))
                if v:
                    xs.append(i + (j - (len(maps_here) - 1) / 2) * width)
                    ys.append(max(v[col], 1.0))
            ax.bar(xs, ys, width, color=COLORS.get(m), label=m)
        ax.set_yscale("log")
        ax.set_xticks(range(len(mix_here)))
        ax.set_xticklabels(mix_here, rotation=35, ha="right")
        ax.set_ylabel("ns per operation (sampled 1 in 64)")
        ax.set_title(f"{title} latency, {size_label(size)} keys, {t} thread{'s' if t > 1 else ''}")
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, f"latency_{size_label(size)}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def bytes_per_entry(agg, maps, sizes):
    """map -> size -> median resident bytes per entry over the uint64-key read-mix cells.

    Read mixes build all maps once per cell, one after the other, in a fresh process, with
    nothing freed in between: their RSS deltas are the clean ones.
    """
    out = defaultdict(dict)
    for m in maps:
        for n in sizes:
            vals = [v["rss_bytes_per_entry"] for k, v in agg.items()
                    if k[0] == m and k[2] == n and k[1] in MEMORY_MIXES]
            if vals:
                out[m][n] = statistics.median(vals)
    return out


def plot_bytes(bpe, maps, sizes, out_dir):
    sizes = [n for n in sizes if n >= 100000] or sizes
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(maps))
    for j, m in enumerate(maps):
        xs, ys = [], []
        for i, n in enumerate(sizes):
            if n in bpe.get(m, {}):
                xs.append(i + (j - (len(maps) - 1) / 2) * width)
                ys.append(bpe[m][n])
        ax.bar(xs, ys, width, color=COLORS.get(m), label=m)
    ax.axhline(48, color="black", linestyle="--", linewidth=0.8, label="target: 48 B")
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels([f"{size_label(n)} keys" for n in sizes])
    ax.set_ylabel("resident bytes per entry (RSS delta)")
    ax.set_title("memory after prefill, uint64 -> uint64")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "bytes_per_entry.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_targets(agg, out_dir):
    """The throughput targets: per target, each repetition's paired ratio (dots), the ratio
    of the medians (bar) and the wanted ratio (tick), on one log axis."""
    rows = []
    for desc, mix, size, t, ref, want in THROUGHPUT_TARGETS:
        tr = target_ratio(agg, mix, size, t, ref)
        if tr is not None:
            ref_label = "absl, no lock" if ref == "ceiling" else "best peer"
            rows.append((f"{mix}, {size_label(size)}, {t} thr\nvs {ref_label}", want, tr[3], tr[4]))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.4))
    ys = list(range(len(rows)))[::-1]
    for y, (label, want, r, per_rep) in zip(ys, rows):
        met = r >= want
        ax.barh(y, r, height=0.5, color="#d62728" if met else "#f4a3a3", alpha=0.8)
        ax.plot(per_rep, [y] * len(per_rep), "o", color="black", markersize=3.5, alpha=0.7)
        ax.plot([want, want], [y - 0.35, y + 0.35], color="black", linewidth=2)
    ax.set_yticks(ys)
    ax.set_yticklabels([r[0] for r in rows], fontsize=8)
    ax.set_xscale("log")
    shown = [x for _, want, r, per_rep in rows for x in (want, r, *per_rep)]
    lo, hi = min(shown), max(shown)
    ax.set_xlim(lo / 1.3, hi * 1.3)
    ax.set_xticks([x for x in (0.125, 0.25, 0.5, 0.8, 1, 1.2, 2, 4, 8, 16) if lo / 1.3 <= x <= hi * 1.3])
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("numamap / reference (bar: ratio of the medians; dots: each repetition; "
                  "black tick: target)", fontsize=8)
    ax.set_title("issue-4 throughput targets (pale bar: not met in this run)")
    ax.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout()
    path = os.path.join(out_dir, "targets.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def best_peer(agg, mix, size, t, key="mops", lowest=False):
    cands = [(agg[(p, mix, size, t)][key], p) for p in CONCURRENT_PEERS if (p, mix, size, t) in agg]
    if not cands:
        return None, None
    return (min(cands) if lowest else max(cands))


def paired_ratios(nm, ref):
    """numamap / reference per repetition, for the repetitions both ran (the maps of one
    repetition run back to back, so a slow spell of the machine mostly hits both)."""
    a, b = nm["mops_by_rep"], ref["mops_by_rep"]
    return [a[k] / b[k] for k in sorted(a) if k in b and b[k] > 0]


# The VM's two hand-off states (docs/benchmarks.md, "Noise"): a token passed between the
# two pinned threads took 25-55 ns in one and 150 ns and more in the other. A run's state is
# its handoff_ns, measured right after it.
FAST_HANDOFF_NS = 100
SLOW_HANDOFF_NS = 150


def handoff_state(ns):
    if ns is None:
        return None
    if ns < FAST_HANDOFF_NS:
        return "fast"
    if ns > SLOW_HANDOFF_NS:
        return "slow"
    return None


def pair_states(nm, ref):
    """How many of the repetitions that both maps ran had both runs in the fast hand-off
    state, both in the slow one, and the rest (the two in different states, or either one
    between the two or not measured): a ratio from a pair in different states says more
    about the VM than about the maps."""
    a, b = nm["handoff_by_rep"], ref["handoff_by_rep"]
    reps = sorted(k for k in nm["mops_by_rep"] if k in ref["mops_by_rep"])
    if not reps:
        return "-"
    fast = slow = 0
    for k in reps:
        sa, sb = handoff_state(a.get(k)), handoff_state(b.get(k))
        if sa is not None and sa == sb:
            fast += sa == "fast"
            slow += sa == "slow"
    return f"{fast}, {slow}, {len(reps) - fast - slow}"


def spread(ratios, want):
    """The paired ratios' range, their median and in how many the target was met. The
    median of the pairs can differ from the ratio of the medians when the maps' runs fell
    into the VM's two hand-off states in different numbers: each map's median then comes
    from another state."""
    if not ratios:
        return "-"
    met = sum(r >= want for r in ratios)
    return (f"{min(ratios):.2f}-{max(ratios):.2f}x, median {statistics.median(ratios):.2f}x, "
            f"{met} of {len(ratios)}")


# The throughput targets of issue 4: (description, mix, size, threads, reference, wanted
# ratio); reference "ceiling" is absl without a lock, "peer" the best concurrent peer.
# bench/compare.cpp's is_target_cell() lists the same cells (they get --target-reps).
THROUGHPUT_TARGETS = [
    ("read100 vs no-lock absl (ceiling)", "read100", 100000, 1, "ceiling", 0.8),
    ("read100 vs no-lock absl (ceiling)", "read100", 10000000, 1, "ceiling", 0.8),
    ("read99 vs best concurrent peer", "read99", 100000, 2, "peer", 2.0),
    ("read95 vs best concurrent peer", "read95", 100000, 2, "peer", 2.0),
    ("read95_zipf vs best concurrent peer", "read95_zipf", 100000, 2, "peer", 2.0),
    ("los83 vs best concurrent peer", "los83", 100000, 2, "peer", 1.2),
    ("mixed50 vs best concurrent peer", "mixed50", 100000, 2, "peer", 1.0),
    ("churn vs best concurrent peer", "churn", 100000, 2, "peer", 1.0),
]


def target_ratio(agg, mix, size, t, ref):
    """(numamap's medians, reference value, reference name, ratio of the medians, per-rep
    ratios, the pairs' hand-off states) for one throughput target, or None when the cell
    was not measured."""
    nm = agg.get((NUMAMAP, mix, size, t))
    if ref == "ceiling":
        rv = agg.get((CEILING, mix, size, t))
        ref_val, ref_name = (rv["mops"], CEILING) if rv else (None, None)
    else:
        ref_val, ref_name = best_peer(agg, mix, size, t)
    if not nm or not ref_val:
        return None
    ref_agg = agg[(ref_name, mix, size, t)]
    return (nm, ref_val, ref_name, nm["mops"] / ref_val, paired_ratios(nm, ref_agg),
            pair_states(nm, ref_agg))


def targets(agg, bpe):
    """The issue-4 targets: (target, cell, numamap, reference, ratio, per-rep spread, the
    pairs' hand-off states, wanted, met). The verdict reads the ratio of the medians; the
    spread shows how far one repetition's ratio moved, and in how many repetitions it met
    the target; the states, in how many repetitions both maps ran in the same state."""
    out = []
    for desc, mix, size, t, ref, want in THROUGHPUT_TARGETS:
        cell = f"{mix}, {size_label(size)}, {t} thr"
        tr = target_ratio(agg, mix, size, t, ref)
        if tr is None:
            out.append((desc, cell, "-", "-", "-", "-", "-", f">= {want}x", "not measured"))
            continue
        nm, ref_val, ref_name, r, per_rep, states = tr
        out.append((desc, cell, f"{nm['mops']:.2f} Mops/s", f"{ref_val:.2f} ({ref_name})", f"{r:.2f}x",
                    spread(per_rep, want), states, f">= {want}x", "met" if r >= want else "NOT met"))
    b = bpe.get(NUMAMAP, {}).get(10000000)
    out.append(("bytes per entry after prefill", "10M keys", fmt(b), "-", "-", "-", "-", "<= 48 B (aim 32)",
                "not measured" if b is None else ("met" if b <= 48 else "NOT met")))
    nm = agg.get((NUMAMAP, "read95", 100000, 2))
    ref, ref_name = best_peer(agg, "read95", 100000, 2, key="load_p99_ns", lowest=True)
    if nm and ref:
        r = nm["load_p99_ns"] / ref if ref > 0 else float("inf")
        out.append(("load p99 latency vs best peer", "read95, 100K, 2 thr", f"{nm['load_p99_ns']:.0f} ns",
                    f"{ref:.0f} ns ({ref_name})", f"{r:.2f}x", "-", "-", "<= 1.0x",
                    "met" if nm["load_p99_ns"] <= ref else "NOT met"))
    else:
        out.append(("load p99 latency vs best peer", "read95, 100K, 2 thr", "-", "-", "-", "-", "-",
                    "<= 1.0x", "not measured"))
    return out


def markdown(agg, maps, mixes, sizes, bpe, meta):
    lines = []
    if meta:
        tr = meta.get("target_reps")
        target_reps = f" ({tr} in the cells the targets read)" if tr and tr != meta.get("reps") else ""
        if "source" in meta:
            lines.append(f"Source: {meta['source']}.")
            lines.append("")
        lines.append(f"Run {meta.get('date', '?')} ({meta.get('mode', '?')}): `{meta.get('command', '')}` on "
                     f"{meta.get('cpu_model', '?')}, {meta.get('cpus', '?')} cpus, {meta.get('memory', '?')}; "
                     f"{meta.get('compiler', '?')} {meta.get('build_type', '')} `{meta.get('flags', '')}`; "
                     f"{meta.get('seconds_per_run', '?')} s per run, median of {meta.get('reps', '?')} "
                     f"interleaved repetitions{target_reps}. Not built: {meta.get('skipped', 'none')}.")
        lines.append("")
    if NUMAMAP in maps:
        lines.append("### Targets (issue 4)")
        lines.append("")
        lines.append("| target | cell | numamap | reference | ratio | per repetition: range, median, met in "
                     "| pairs' hand-off: fast, slow, other | wanted | |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for t in targets(agg, bpe):
            lines.append("| " + " | ".join(t) + " |")
        lines.append("")
    for n in sizes:
        threads = sorted({k[3] for k in agg if k[2] == n})
        if not threads:
            continue
        lines.append(f"### Throughput, {size_label(n)} keys (Mops/s, median)")
        lines.append("")
        head = "| mix | threads | " + " | ".join(maps) + (" | numamap / best peer" if NUMAMAP in maps else "")
        lines.append(head + " | cpu share | hand-off ns |")
        lines.append("|---|---|" + "---|" * len(maps) + ("---|" if NUMAMAP in maps else "") + "---|---|")
        for mix in mixes:
            for t in threads:
                if not any((m, mix, n, t) in agg for m in maps):
                    continue
                cells = []
                for m in maps:
                    v = agg.get((m, mix, n, t))
                    cells.append("-" if not v else fmt(v["mops"], 2) + ("" if v["check"] == "ok" else " (check FAILED)"))
                row = f"| {mix} | {t} | " + " | ".join(cells) + " |"
                if NUMAMAP in maps:
                    nm = agg.get((NUMAMAP, mix, n, t))
                    ref, ref_name = best_peer(agg, mix, n, t)
                    row += (f" {nm['mops'] / ref:.2f}x ({ref_name}) |" if nm and ref else " - |")
                shares = [agg[(m, mix, n, t)]["cpu_share"] for m in maps if (m, mix, n, t) in agg]
                row += f" {statistics.median(shares):.2f} |"
                handoffs = [h for m in maps if (m, mix, n, t) in agg for h in agg[(m, mix, n, t)]["handoff_ns"]]
                row += f" {statistics.median(handoffs):.0f} |" if handoffs else " - |"
                lines.append(row)
        lines.append("")
        t = threads[-1]
        lines.append(f"### Latency, {size_label(n)} keys, {t} thread{'s' if t > 1 else ''} "
                     "(ns, sampled 1 op in 64: p50 / p99 / p99.9)")
        lines.append("")
        lines.append("| mix | " + " | ".join(maps) + " |")
        lines.append("|---|" + "---|" * len(maps))
        for mix in mixes:
            if not any((m, mix, n, t) in agg for m in maps):
                continue
            cells = []
            for m in maps:
                v = agg.get((m, mix, n, t))
                cells.append("-" if not v else f"{v['p50_ns']:.0f} / {v['p99_ns']:.0f} / {v['p999_ns']:.0f}")
            lines.append(f"| {mix} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("### Resident bytes per entry after prefill (uint64 -> uint64, RSS delta, median over the read-mix cells)")
    lines.append("")
    lines.append("| map | " + " | ".join(f"{size_label(n)} keys" for n in sizes) + " |")
    lines.append("|---|" + "---|" * len(sizes))
    for m in maps:
        lines.append(f"| {m} | " + " | ".join(fmt(bpe.get(m, {}).get(n)) for n in sizes) + " |")
    lines.append("")
    lines.append("cpu share: CPU time the worker threads got divided by their wall time (median over the "
                 "maps of a cell); below 1.0 other processes ran on the same cpus during the run.")
    lines.append("")
    lines.append("hand-off ns: how long one cache line took to pass from worker 0's cpu to worker 1's, "
                 "measured after each run (median over the cell's runs). On a virtual machine it shows "
                 "where the host ran the two vCPUs; mixes whose threads write the same lines run "
                 "slower when it is high.")
    lines.append("")
    lines.append("At 1K keys the RSS delta is dominated by page granularity and by memory the allocator "
                 "reuses; read bytes per entry from 100K keys up.")
    lines.append("")
    return "\n".join(lines)


def update_doc(path, text):
    begin, end = "<!-- BEGIN table.md -->", "<!-- END table.md -->"
    with open(path) as f:
        doc = f.read()
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        print(f"plot.py: {path} has no {begin} ... {end} block; not updated", file=sys.stderr)
        return
    # The tables' headings are ###; inside the document they sit one level lower.
    body = "\n".join("#" + line if line.startswith("### ") else line for line in text.splitlines())
    with open(path, "w") as f:
        f.write(doc[:i + len(begin)] + "\n" + body.rstrip() + "\n" + doc[j:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="directory with results.csv and meta.json")
    ap.add_argument("--out", help="output directory (default: the results directory)")
    ap.add_argument("--doc", help="a Markdown file whose block between the markers "
                    "'<!-- BEGIN table.md -->' and '<!-- END table.md -->' is replaced by the table")
    args = ap.parse_args()
    out_dir = args.out or args.results
    os.makedirs(out_dir, exist_ok=True)
    rows, meta = load(args.results)
    if not rows:
        print("plot.py: no rows in results.csv", file=sys.stderr)
        return 1
    agg = aggregate(rows)
    maps = ordered({k[0] for k in agg}, MAP_ORDER)
    mixes = ordered({k[1] for k in agg}, MIX_ORDER)
    sizes = sorted({k[2] for k in agg})
    written = []
    for n in sizes:
        written += [plot_throughput(agg, maps, mixes, n, out_dir), plot_ratio(agg, maps, mixes, n, out_dir),
                    plot_latency(agg, maps, mixes, n, out_dir)]
    bpe = bytes_per_entry(agg, maps, sizes)
    written.append(plot_bytes(bpe, maps, sizes, out_dir))
    if NUMAMAP in maps:
        written.append(plot_targets(agg, out_dir))
    table = os.path.join(out_dir, "table.md")
    with open(table, "w") as f:
        f.write(markdown(agg, maps, mixes, sizes, bpe, meta))
    written.append(table)
    if args.doc:
        update_doc(args.doc, open(table).read())
        written.append(args.doc)
    for w in written:
        if w:
            print("wrote", w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
