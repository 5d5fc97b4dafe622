#!/usr/bin/env python3
"""Pools the per-run ratios of several `bench/run.sh` outputs of the same code.

Each output line such as

    - static key / anonymous = 0.91 (per run: 0.91, 0.91, 0.94, 0.83, 0.91) (bar >= 0.90)

holds one paired ratio per run (the two rows measured minutes apart in the same run). A
single output's median of five such ratios moves by 5-10% between outputs on this machine,
more than some bars' margins, so this prints, for every ratio, the median of all the paired
ratios of the given outputs together, their quartiles, how many fell under the bar, and
whether the pooled median meets it. It never mixes rows of different runs: only each run's
own ratios are pooled. Exits 1 when a pooled median misses its bar, 2 on unreadable input.

    bench/pool.py bench/runs/run-27.txt bench/runs/run-28.txt ...
"""

import re
import statistics
import sys

LINE = re.compile(
    r"^- (?P<name>.+?) = [0-9.]+x? \(per run: (?P<runs>[0-9., ]+)\)(?: \((?P<note>[^)]*)\))?"
)
BAR = re.compile(r"bar (?P<op>>=|>) (?P<value>[0-9.]+)")


def quartiles(values):
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    pooled = {}
    bars = {}
    for path in paths:
        with open(path, encoding="utf-8") as output:
            found = 0
            for line in output:
                match = LINE.match(line)
                if not match:
                    continue
                found += 1
                name = match.group("name")
                runs = [float(x) for x in match.group("runs").split(",") if x.strip()]
                pooled.setdefault(name, []).extend(runs)
                bar = BAR.search(match.group("note") or "")
                if bar:
                    bars[name] = (bar.group("op"), float(bar.group("value")))
            if found == 0:
                print(f"pool: no per-run ratio in {path}", file=sys.stderr)
                return 2
    print(f"{len(paths)} outputs pooled\n")
    print("| ratio | pooled median | quartiles | paired runs | under the bar | bar | met |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    failed = 0
    for name, values in pooled.items():
        # The ratios are printed with two decimals; rounding keeps a median halfway between
        # two of them (0.58 and 1.22) from missing a bar it equals by a floating-point residue.
        median = round(statistics.median(values), 6)
        low, high = quartiles(values)
        if name in bars:
            op, value = bars[name]
            under = sum(1 for v in values if (v < value if op == ">=" else v <= value))
            met = median >= value if op == ">=" else median > value
            failed += not met
            bar_text, under_text = f"{op} {value:.2f}", str(under)
            met_text = "yes" if met else "**no**"
        else:
            bar_text, under_text, met_text = "reported", "-", "-"
        print(
            f"| {name} | {median:.3f} | {low:.2f}-{high:.2f} | {len(values)} "
            f"| {under_text} | {bar_text} | {met_text} |"
        )
    print(f"\n{failed} bar(s) not met by the pooled median")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
