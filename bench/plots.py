"""The plots of one run (gnuplot, Debian's gnuplot-nox): goodput against the limit per cost,
latency and goodput under overload, the share of a burst served by burst size."""

import shutil
import subprocess

from procs import BenchError


def plots(bench, out_dir, stamp):
    if shutil.which("gnuplot") is None:
        raise BenchError("gnuplot missing (Debian: gnuplot-nox)")
    data = bench.tmp / "plot"
    data.mkdir(exist_ok=True)
    made = []
    # Throughput: ratio to the limit per scenario and cost.
    scen = [s for s in dict.fromkeys(r["scenario"] for r in bench.rows)
            if not s.startswith("limit")]
    costs = sorted({r["cost"] for r in bench.rows})
    if scen and costs:
        with open(data / "tp.dat", "w") as f:
            for s in scen:
                vals = []
                for c in costs:
                    r = next((x for x in bench.rows if x["scenario"] == s and x["cost"] == c),
                             None)
                    vals.append(f"{100 * r['ratio']:.1f}" if r and r.get("ratio") else "NaN")
                label = s.replace(" (", "\\n(").replace('"', "")
                f.write(f'"{label}" ' + " ".join(vals) + "\n")
        png = out_dir / f"{stamp}-throughput.png"
        gp = ["set terminal pngcairo size 1000,560 font ',10'" if has_pngcairo()
              else "set terminal png size 1000,560",
              f"set output '{png}'", "set style data histogram",
              "set style histogram cluster gap 1", "set style fill solid 0.8 border -1",
              "set ylabel 'goodput, % of the raw bcrypt limit'", "set yrange [0:*]",
              "set grid ytics", "set key outside right top", "set xtics font ',8'",
              "set bmargin 5", "set xrange [-0.6:*]",
              f"set title 'Closed-loop goodput relative to the limit ({stamp})'",
              "plot " + ", ".join(f"'{data / 'tp.dat'}' using {i + 2}:xtic(1) title 'cost {c}'"
                                  for i, c in enumerate(costs))]
        gnuplot(gp)
        made.append(png)
    if bench.overload:
        labels = list(dict.fromkeys(r["label"] for r in bench.overload))
        for lab in labels:
            with open(data / f"ov-{lab}.dat", "w") as f:
                for r in bench.overload:
                    if r["label"] == lab:
                        f.write(f"{r['factor']} {r['p50_ms'] if r['ok'] else 'NaN'} "
                                f"{r['p99_ms'] if r['ok'] else 'NaN'} {100 * r['ratio']:.1f} "
                                f"{100 * r['shed_share']:.1f} {100 * r['error_share']:.1f}\n")
        term = ("set terminal pngcairo size 1000,500 font ',10'" if has_pngcairo()
                else "set terminal png size 1000,500")
        png = out_dir / f"{stamp}-overload.png"
        gp = [term, f"set output '{png}'", "set multiplot layout 1,2",
              "set logscale x 2", "set xlabel 'offered load (× limit)'", "set grid",
              "set logscale y", "set ylabel 'latency of successes, ms'",
              "set title 'p50 / p99 latency'", "set key below maxrows 2",
              "plot " + ", ".join(
                  f"'{data / f'ov-{lab}.dat'}' using 1:3 with linespoints title '{lab} p99', "
                  f"'{data / f'ov-{lab}.dat'}' using 1:2 with linespoints dt 2 title '{lab} p50'"
                  for lab in labels),
              "unset logscale y", "set yrange [0:*]", "set ylabel '% of offered / of limit'",
              "set title 'goodput (% of limit), shed and errors (% of offered)'",
              "plot " + ", ".join(
                  f"'{data / f'ov-{lab}.dat'}' using 1:4 with linespoints title '{lab} goodput', "
                  f"'{data / f'ov-{lab}.dat'}' using 1:5 with linespoints dt 2 "
                  f"title '{lab} shed', "
                  f"'{data / f'ov-{lab}.dat'}' using 1:6 with linespoints dt 3 "
                  f"title '{lab} errors'" for lab in labels),
              "unset multiplot"]
        gnuplot(gp)
        made.append(png)
    if bench.bursts:
        series = sorted({(b["app"], b["cost"]) for b in bench.bursts})
        for app, cost in series:
            with open(data / f"burst-{app}-{cost}.dat", "w") as f:
                for b in bench.bursts:
                    if (b["app"], b["cost"]) == (app, cost):
                        f.write(f"{b['burst'] / b['fits']:.3f} {100 * b['served']:.1f}\n")
        png = out_dir / f"{stamp}-bursts.png"
        gp = [terminal(1000, 500), f"set output '{png}'", "set grid", "set key below",
              "set xlabel 'burst size / the burst the cores finish within the deadline'",
              "set ylabel '% of the burst served'", "set yrange [0:105]",
              "set arrow from 1, graph 0 to 1, graph 1 nohead dt 2",
              f"set title 'Bursts ({stamp})'",
              "plot " + ", ".join(f"'{data / f'burst-{app}-{cost}.dat'}' using 1:2 with "
                                  f"linespoints title '{app} cost {cost}'"
                                  for app, cost in series)]
        gnuplot(gp)
        made.append(png)
    return made


def terminal(width, height):
    return (f"set terminal pngcairo size {width},{height} font ',10'" if has_pngcairo()
            else f"set terminal png size {width},{height}")


_PNGCAIRO = None


def has_pngcairo():
    global _PNGCAIRO
    if _PNGCAIRO is None:
        out = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
        _PNGCAIRO = "pngcairo" in (out.stdout + out.stderr)
    return _PNGCAIRO


def gnuplot(lines):
    r = subprocess.run(["gnuplot"], input="\n".join(lines) + "\n", capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise BenchError(f"gnuplot failed: {r.stderr.strip()}")
