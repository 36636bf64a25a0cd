"""`write_report`: a rescoring run's report as Markdown with one PNG figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gnn.rescoring import RescoreReport


def write_report(report: RescoreReport, directory: Path) -> dict[str, str]:
    """Write ``report.md`` and ``report.png`` (score distributions now and before, per label)
    into ``directory``.

    Returns:
        dict[str, str]: ``markdown`` and ``png`` paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / "report.png"
    _plot(report, png)
    md = directory / "report.md"
    md.write_text(render_markdown(report, png.name), encoding="utf-8")
    return {"markdown": str(md), "png": str(png)}


def _fmt(x: float, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_markdown(report: RescoreReport, png_name: str = "report.png") -> str:
    """The report as Markdown (the figure linked by ``png_name``)."""
    r = report
    lines = [f"# Rescoring run `{r.run_id}`", "",
             f"- model `{r.model_version}`, graph as of {r.as_of}, scores stamped {r.scored_at}",
             f"- device `{r.device}`, {r.world_size} process(es); previous run: "
             f"`{r.previous_run or 'none'}`",
             f"- chunks: {r.chunks.get('total', 0)} in all, {r.chunks.get('written', 0)} "
             f"written by this attempt, {r.chunks.get('skipped', 0)} by an earlier one",
             f"- peak resident memory {r.peak_rss_mib:.0f} MiB", "",
             "## Counts and timings", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in r.seconds.items()]
    lines += ["", "| label | scored | high-risk now | before | new | cleared | mean abs shift "
              "| p99 abs shift | up ≥ 0.1 | down ≥ 0.1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, n in r.scored.items():
        h, s = r.high_risk[label], r.shifts[label]
        lines.append(f"| {label} | {n} | {h['now']:.0f} | {h['before']:.0f} | {h['new']:.0f} | "
                     f"{h['cleared']:.0f} | {_fmt(s['mean_abs_shift'])} | "
                     f"{_fmt(s['p99_abs_shift'])} | {s['up_by_0.1']:.0f} | "
                     f"{s['down_by_0.1']:.0f} |")
    lines += ["", f"![fraud score distribution, now and before]({png_name})", "",
              "## Accounts whose fraud score moved most", ""]
    for label, movers in r.movers.items():
        lines += [f"### {label}", ""]
        if not movers:
            lines += ["No score moved (or none was scored before).", ""]
            continue
        lines += ["| id | before | after |", "|---|---|---|"]
        lines += [f"| `{m.id}` | {_fmt(m.before)} | {_fmt(m.after)} |" for m in movers[:10]]
        lines.append("")
    new = [c for c in r.clusters if c.new_high_risk]
    lines += ["## High-risk clusters", "",
              f"{len(r.clusters)} clusters of high-risk users sharing a device, phone or "
              f"address that is not a hub; {len(new)} hold an account that was not high-risk "
              "before.", "", "| size | new high-risk | known fraud | mean fraud score | members |",
              "|---|---|---|---|---|"]
    for c in (new or r.clusters)[:15]:
        lines.append(f"| {c.size} | {c.new_high_risk} | {c.known_fraud} | "
                     f"{c.mean_fraud_score:.3f} | {', '.join(f'`{m}`' for m in c.members[:5])} |")
    return "\n".join(lines) + "\n"


def _plot(report: RescoreReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(report.distribution)
    fig, axes = plt.subplots(1, max(len(labels), 1), figsize=(5 * max(len(labels), 1), 3.5))
    for ax, label in zip(np.atleast_1d(axes), labels, strict=False):
        d = report.distribution[label]
        edges = np.asarray(d["edges"])
        mid, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        ax.bar(mid, d["now"], width=width, alpha=0.6, label="this run")
        if sum(d["before"]):
            ax.step(edges[:-1], d["before"], where="post", color="k", label="before")
        ax.set_yscale("log")
        ax.set_xlabel("fraud score")
        ax.set_ylabel("accounts")
        ax.set_title(f"{label} ({report.scored.get(label, 0)} scored)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
