"""What ``mishards bench`` hands back: a text table, ``results.json`` and a recall-vs-QPS PNG (one curve per
index; ``--compare`` overlays the curves of another run's JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mishards_tools.connection import ToolError


def table(run: dict[str, Any]) -> str:
    """Pure: one line per (index, parameter value)."""
    threads = [str(t) for t in run["threads"]]
    head = (f"{'index':<10} {'param':<14} {'recall@' + str(run['k']):>9} "
            + " ".join(f"{'q/s nq=1 x' + t:>13}" for t in threads)
            + f" {'p50 ms':>8} {'p99 ms':>8} {'q/s nq=' + str(run['batch_nq']):>12} {'build s':>8}")
    lines = [f"{run['dataset']}: {run['rows']:,} x {run['dimension']} ({run['distance']}), {run['queries']} queries, "
             f"k={run['k']}, endpoint {run['endpoint']}", head, "-" * len(head)]
    for p in run["points"]:
        param = f"{p['param']}={p['value']}" if p["param"] else "-"
        lines.append(f"{p['index']:<10} {param:<14} {p['recall']:>9.4f} "
                     + " ".join(f"{p['qps_nq1'].get(t, 0.0):>13,.0f}" for t in threads)
                     + f" {p['p50_ms']:>8.2f} {p['p99_ms']:>8.2f} {p['qps_batched']:>12,.0f} "
                     f"{p['build_seconds']:>8.1f}")
    for index, why in run.get("failures", {}).items():
        lines.append(f"{index:<10} failed: {why}")
    return "\n".join(lines)


def curves(run: dict[str, Any]) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Pure: per index, (recall, nq=1 QPS at the most threads, batched QPS), ordered by recall."""
    top = str(max(run["threads"]))
    out: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for index in dict.fromkeys(p["index"] for p in run["points"]):
        pts = sorted((p for p in run["points"] if p["index"] == index), key=lambda p: p["recall"])
        out[index] = ([p["recall"] for p in pts], [p["qps_nq1"][top] for p in pts],
                      [p["qps_batched"] for p in pts])
    return out


def read_run(path: Path) -> dict[str, Any]:
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ToolError(f"--compare {path}: not a readable results.json ({exc})") from exc
    if not isinstance(run, dict) or not isinstance(run.get("points"), list) or "threads" not in run:
        raise ToolError(f"--compare {path}: not a results.json of mishards bench")
    return run


def write_json(run: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(run, indent=1, sort_keys=True) + "\n")
    return path


def plot(runs: list[dict[str, Any]], out: Path) -> Path:
    """recall (x) vs QPS (y, log), nq=1 solid with markers and batched dashed; a compared run in lighter lines.
    The PNG's ``Description`` text lists the curves (``LABEL: INDEX nq=...``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # an optional extra
        raise ToolError("the plot needs matplotlib: pip install 'mishards[tools]'") from exc
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    indexes = list(dict.fromkeys(i for run in runs for i in curves(run)))
    drawn: list[str] = []
    for n, run in enumerate(runs):
        alpha, marker = (1.0, "o") if n == 0 else (0.55, "s")
        top = max(run["threads"])
        for index, (rec, nq1, batched) in curves(run).items():
            color = colors[indexes.index(index) % len(colors)]
            label = f"{run['label']}: {index}"
            ax.plot(rec, nq1, marker=marker, color=color, alpha=alpha, label=f"{label} nq=1 x{top}",
                    linestyle="-" if n == 0 else ":")
            ax.plot(rec, batched, marker=marker, color=color, alpha=alpha * 0.7, linestyle="--",
                    label=f"{label} nq={run['batch_nq']}", markersize=3)
            drawn += [f"{label} nq=1 x{top}", f"{label} nq={run['batch_nq']}"]
    first = runs[0]
    ax.set_xlabel(f"recall@{first['k']}")
    ax.set_ylabel("queries per second")
    ax.set_yscale("log")
    ax.set_title(f"{first['dataset']} ({first['rows']:,} x {first['dimension']}, {first['distance']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = out / "plot.png"
    # the curves drawn, as the legend names them, also in the PNG's text (tEXt "Description")
    fig.savefig(path, format="png", metadata={"Title": ax.get_title(), "Description": "; ".join(drawn)})
    plt.close(fig)
    return path
