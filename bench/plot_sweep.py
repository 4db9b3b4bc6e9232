#!/usr/bin/env python3
"""Plot read100 across map sizes: numamap's read probes against absl without a lock.

Reads results.csv (and meta.json) of a numamap_compare run with the maps numamap,
numamap_tags, numamap_slots and absl_flat_nolock, mix read100, one thread, several sizes
(scripts/probe-sweep.sh). For each size and numamap variant: the ratio of its Mops/s to
absl's in the same repetition, the median over repetitions and its range. Writes
probe_sweep.png and probe_sweep.md (decisions.md D33).
"""
import argparse
import os
import statistics
import sys

# The results reader and the size labels of the main plot script, beside this one.
from plot import CEILING as REFERENCE
from plot import load, plt, size_label  # plt: headless, plot.py chose the Agg backend

VARIANTS = [
    ("numamap", "numamap (probe chosen by size, the default)", "#1f77b4", "o-"),
    ("numamap_tags", "numamap, tags forced", "#ff7f0e", "s--"),
    ("numamap_slots", "numamap, slots forced", "#2ca02c", "^--"),
]


def ratios(rows):
    """{(variant, size): [ratio per repetition]}, {(map, size): [mops]} of read100 at 1 thread."""
    by_rep = {}
    mops = {}
    for r in rows:
        if r["mix"] != "read100" or r["threads"] != 1:
            continue
        size = r["size"]
        by_rep.setdefault((size, r["rep"]), {})[r["map"]] = r["mops"]
        mops.setdefault((r["map"], size), []).append(r["mops"])
    out = {}
    for (size, _rep), maps in by_rep.items():
        ref = maps.get(REFERENCE)
        if not ref:
            continue
        for name, _label, _colour, _style in VARIANTS:
            if name in maps:
                out.setdefault((name, size), []).append(maps[name] / ref)
    return out, mops


def markdown(rat, mops, sizes, meta):
    lines = []
    if meta:
        lines.append(f"Run {meta.get('date', '?')}: `{meta.get('command', '?')}`.")
        lines.append("")
    head = "| keys | " + " | ".join(n for n, *_ in VARIANTS) + f" | {REFERENCE} Mops/s |"
    lines.append(head)
    lines.append("|" + "---|" * (len(VARIANTS) + 2))
    for s in sizes:
        cells = []
        for name, *_ in VARIANTS:
            v = rat.get((name, s))
            if v:
                cells.append(f"{statistics.median(v):.2f}x ({min(v):.2f}-{max(v):.2f})")
            else:
                cells.append("-")
        ref = mops.get((REFERENCE, s))
        ref_s = f"{statistics.median(ref):.1f}" if ref else "-"
        lines.append(f"| {size_label(s)} | " + " | ".join(cells) + f" | {ref_s} |")
    lines.append("")
    lines.append("Ratio = numamap variant / absl in the same repetition, median (range).")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="directory with results.csv and meta.json")
    ap.add_argument("--out", help="output directory (default: the results directory)")
    args = ap.parse_args()
    out = args.out or args.results
    os.makedirs(out, exist_ok=True)
    rows, meta = load(args.results)
    rat, mops = ratios(rows)
    sizes = sorted({s for (_n, s) in rat})
    if not sizes:
        print("plot_sweep.py: no read100 rows at 1 thread with " + REFERENCE, file=sys.stderr)
        return 1
    with open(os.path.join(out, "probe_sweep.md"), "w") as f:
        f.write(markdown(rat, mops, sizes, meta))
    print(f"wrote {os.path.join(out, 'probe_sweep.md')}")


    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, label, colour, style in VARIANTS:
        xs = [s for s in sizes if (name, s) in rat]
        if not xs:
            continue
        med = [statistics.median(rat[(name, s)]) for s in xs]
        lo = [m - min(rat[(name, s)]) for m, s in zip(med, xs)]
        hi = [max(rat[(name, s)]) - m for m, s in zip(med, xs)]
        ax.errorbar(xs, med, yerr=[lo, hi], fmt=style, color=colour, label=label, capsize=3,
                    linewidth=2 if name == "numamap" else 1.2)
    ax.axhline(0.8, color="grey", linestyle=":", linewidth=1)
    ax.text(sizes[0], 0.81, "issue 4 target 0.8x", color="grey", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.5)
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([size_label(s) for s in sizes])
    ax.set_xlabel("keys")
    ax.set_ylabel(f"Mops/s / {REFERENCE}")
    ax.set_title("read100, 1 thread: numamap's read probes against absl without a lock")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "probe_sweep.png")
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
