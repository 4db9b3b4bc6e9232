#!/usr/bin/python3
"""bench/plot_map_bench.py - draw numamap_map_bench's results: throughput per operation.

usage: /usr/bin/python3 bench/plot_map_bench.py MAP_BENCH_JSON [--out PNG]

MAP_BENCH_JSON is what `numamap_map_bench --benchmark_out=FILE --benchmark_out_format=json`
writes (Google Benchmark's JSON). The plot has one group of bars per operation (load_hit,
load_miss, store_existing, ...) and one bar per map size and thread count, the height the
run's items per second over all threads (for range_per_entry, entries visited per second),
on a log scale: the operations span three orders of magnitude. PNG defaults to map_bench.png
beside the JSON. Exits 1 when the file holds no benchmark of the form
NAME/size:N/real_time/threads:T. Needs matplotlib (Debian: python3-matplotlib); headless.
"""

import argparse
import json
import os
import re
import sys

# The size labels of the main plot script, beside this one; plt: headless, plot.py chose
# the Agg backend.
from plot import plt, size_label

NAME = re.compile(r"^(?P<op>[A-Za-z_]+)/size:(?P<size>\d+)/real_time/threads:(?P<threads>\d+)$")


def read(path):
    """[(op, size, threads, items_per_second)] in the file's order, and its context."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    rows = []
    for b in doc.get("benchmarks", []):
        # Aggregates (mean, median, ...) of --benchmark_repetitions carry their run_type;
        # only the runs themselves are drawn.
        if b.get("run_type", "iteration") != "iteration":
            continue
        m = NAME.match(b.get("run_name", b.get("name", "")))
        if not m or "items_per_second" not in b:
            continue
        rows.append((m["op"], int(m["size"]), int(m["threads"]), float(b["items_per_second"])))
    return rows, doc.get("context", {})


def plot(rows, context, out):
    ops = list(dict.fromkeys(r[0] for r in rows))
    series = sorted({(r[1], r[2]) for r in rows})
    value = {}
    for op, size, threads, ips in rows:
        value.setdefault((op, size, threads), []).append(ips)
    width = 0.8 / len(series)
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(ops)), 4.8))
    for k, (size, threads) in enumerate(series):
        xs, ys = [], []
        for i, op in enumerate(ops):
            v = value.get((op, size, threads))
            if v:
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(max(v) / 1e6)  # one run per line unless repeated: the best
        ax.bar(xs, ys, width, color=cmap(k % 10),
               label=f"{size_label(size)} keys, {threads} thread{'s' if threads > 1 else ''}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(ops)))
    ax.set_xticklabels(ops, rotation=25, ha="right")
    ax.set_ylabel("M operations / s, all threads (log)")
    when = context.get("date", "")
    ax.set_title(f"numamap_map_bench: one operation at a time {when}".strip(), fontsize=10)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="numamap_map_bench's --benchmark_out JSON file")
    ap.add_argument("--out", help="the PNG to write (default: map_bench.png beside the JSON)")
    args = ap.parse_args()
    try:
        rows, context = read(args.json)
    except (OSError, ValueError) as e:
        print(f"plot_map_bench.py: cannot read {args.json}: {e}", file=sys.stderr)
        return 1
    if not rows:
        print(f"plot_map_bench.py: {args.json} holds no NAME/size:N/real_time/threads:T "
              "benchmark with items_per_second", file=sys.stderr)
        return 1
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.json)), "map_bench.png")
    plot(rows, context, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
