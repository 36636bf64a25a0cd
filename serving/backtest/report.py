"""The backtest report: Markdown tables and three PNGs in one directory.

``backtest.md`` holds decisions, money, default rate per grade, thin-file and province groups
and the reasons that rest on location alone, for one policy or two side by side with their
deltas; ``decisions.png``, ``grades.png`` and ``fairness.png`` beside it draw the same numbers
(the style of the drift and rescore reports).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from serving.backtest.history import THIN_FILE_DAYS
from serving.backtest.location_reasons import ReasonInputs
from serving.backtest.replay import Replay, Totals, totals_by
from serving.policy import DECISIONS

ALL: Final = "all"
_COLOURS: Final = {"approve": "#27ae60", "review": "#e67e22", "decline": "#c0392b"}


@dataclass(frozen=True)
class BacktestRun:
    """One backtest: its replays and where they came from.

    Args:
        command (str): the command line that made it.
        store (str): the store read (backend and instance).
        replays (Sequence[tuple[str, Replay]]): ``(label, replay)``, the policy under test
            first, the one it is compared with second.
        location_reasons (Sequence[ReasonInputs]): reasons that rest on location alone.
        unscored (int): applications without scores, left out.
        model_version (str, optional): the model that scored what had no stored verdict.
            (default: ``None``)
    """

    command: str
    store: str
    replays: Sequence[tuple[str, Replay]]
    location_reasons: Sequence[ReasonInputs] = field(default_factory=tuple)
    unscored: int = 0
    model_version: str | None = None

    @property
    def main(self) -> Replay:
        return self.replays[0][1]


def _by_product(r: Replay) -> dict[str, Totals]:
    return {ALL: Totals.of(r), **totals_by(r, r.history.product)}


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1%}"


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _delta_pct(a: float, b: float) -> str:
    return "–" if math.isnan(a) or math.isnan(b) else f"{(a - b) * 100:+.1f} pp"


def _delta_money(a: float, b: float) -> str:
    return f"{a - b:+,.0f}"


def render_backtest_markdown(run: BacktestRun, images: dict[str, str]) -> str:
    """The report (module docstring)."""
    r = run.main
    h = r.history
    sources = {s: int((r.source == s).sum()) for s in ("verdict", "model")}
    lines = ["# Policy backtest", "", f"Command: `{run.command}`", "",
             f"Store: {run.store}; outcomes as of "
             f"{np.datetime64(h.as_of, 's')} UTC; a funded loan's outcome counts once it is "
             f"{h.maturity_days} days old.", ""]
    for label, rep in run.replays:
        lines.append(f"- **{label}**: policy `{rep.policy.version}`"
                     + (f" ({rep.policy.description})" if rep.policy.description else ""))
    lines += ["", f"Applications replayed: {len(r):,} ({sources['verdict']:,} on their stored "
              f"verdict's scores, {sources['model']:,} scored by "
              f"`{run.model_version or 'the model'}` as of their own time)"
              + (f"; {run.unscored:,} without scores left out" if run.unscored else "") + ".",
              "", "Every decision is `serving.policy.decide`, the service's own. Exposure is "
              "the amount of an approval; expected loss is pd × exposure (loss given default "
              "1); realised loss is the amount less what was repaid, on approved loans that "
              "defaulted, among those the incumbent funded whose outcome is known (*known*); "
              "a loan the incumbent did not fund has no outcome whatever this policy decides. "
              "Default rates are of the known approvals: observed, and the mean pd the model "
              "gave the same loans.", ""]
    lines += _decision_section(run, images)
    lines += _grade_section(run, images)
    lines += _fairness_section(run, images)
    lines += _location_section(run)
    early = int((r.approved & ~h.mature & h.defaulted).sum())
    lines += ["## Not counted in realised numbers", "",
              f"- {int((r.approved & ~h.mature).sum()):,} approvals less than "
              f"{h.maturity_days} days old at the end (outcome not known yet; {early:,} of them "
              "already defaulted).",
              f"- {int((r.approved & h.mature & ~h.funded).sum()):,} older approvals the "
              "incumbent did not fund (no repayment: no outcome).", ""]
    return "\n".join(lines)


def _decision_section(run: BacktestRun, images: dict[str, str]) -> list[str]:
    lines = ["## Decisions and money per product", ""]
    head = ("| product | applications | approve | review | decline | limits granted | "
            "exposure | expected loss | known | defaults | default rate (obs. / exp.) | "
            "expected loss (known) | realised loss |")
    for label, rep in run.replays:
        if len(run.replays) > 1:
            lines += [f"**{label}** (`{rep.policy.version}`)", ""]
        lines += [head, "|---|" + "---:|" * 12]
        for product, t in _by_product(rep).items():
            lines.append(
                f"| {product} | {t.applications:,} | {_pct(t.rate('approve'))} | "
                f"{_pct(t.rate('review'))} | {_pct(t.rate('decline'))} | {_money(t.limits)} | "
                f"{_money(t.exposure)} | {_money(t.expected_loss)} | {t.known:,} | "
                f"{t.defaults:,} | {_pct(t.default_rate)} / {_pct(t.expected_default_rate)} | "
                f"{_money(t.known_expected_loss)} | {_money(t.realised_loss)} |")
        lines.append("")
    if len(run.replays) > 1:
        (la, a), (lb, b) = run.replays[0], run.replays[1]
        ta, tb = _by_product(a), _by_product(b)
        lines += [f"### {la} against {lb}", "",
                  "| product | approve | Δ | review | Δ | decline | Δ | limits granted | Δ | "
                  "expected loss | Δ | realised loss | Δ | default rate | Δ |",
                  "|---|" + "---:|" * 16]
        for product in ta:
            x, y = ta[product], tb[product]
            cells = []
            for d in DECISIONS:
                cells += [f"{_pct(x.rate(d))} / {_pct(y.rate(d))}",
                          _delta_pct(x.rate(d), y.rate(d))]
            for name in ("limits", "expected_loss", "realised_loss"):
                u, v = getattr(x, name), getattr(y, name)
                cells += [f"{_money(u)} / {_money(v)}", _delta_money(u, v)]
            cells += [f"{_pct(x.default_rate)} / {_pct(y.default_rate)}",
                      _delta_pct(x.default_rate, y.default_rate)]
            lines.append(f"| {product} | " + " | ".join(cells) + " |")
        lines += ["", f"Decisions that change ({la} in rows, {lb} in columns):", "",
                  "| | " + " | ".join(DECISIONS) + " |", "|---|---:|---:|---:|"]
        for d in DECISIONS:
            lines.append(f"| {d} | " + " | ".join(
                f"{int(((a.decision == d) & (b.decision == e)).sum()):,}" for e in DECISIONS)
                + " |")
        lines.append("")
    if "decisions" in images:
        lines += [f"![Decisions and losses per product]({images['decisions']})", ""]
    return lines


def _grade_section(run: BacktestRun, images: dict[str, str]) -> list[str]:
    lines = ["## Default rate per grade", "",
             "Approvals per credit grade; observed default rate of the known ones against the "
             "mean pd of the same loans.", ""]
    for label, rep in run.replays:
        if len(run.replays) > 1:
            lines += [f"**{label}**", ""]
        lines += ["| grade | approvals | limits granted | known | defaults | observed | mean pd |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        by = totals_by(rep, rep.grade)
        for g in rep.policy.grades:
            t = by.get(g.name)
            if t is None:
                continue
            lines.append(f"| {g.name} (pd < {g.max_pd:g}) | {t.approve:,} | {_money(t.limits)} | "
                         f"{t.known:,} | {t.defaults:,} | {_pct(t.default_rate)} | "
                         f"{_pct(t.expected_default_rate)} |")
        lines.append("")
    if "grades" in images:
        lines += [f"![Default rate per grade]({images['grades']})", ""]
    return lines


def _group_rows(rep: Replay, key: np.ndarray, other: Replay | None) -> list[str]:
    rows = []
    base = totals_by(other, key) if other is not None else {}
    for name, t in sorted(totals_by(rep, key).items(), key=lambda kv: -kv[1].applications):
        cells = [name, f"{t.applications:,}", _pct(t.rate("approve"))]
        if other is not None:
            cells.append(_delta_pct(t.rate("approve"), base[name].rate("approve")))
        cells += [_pct(t.rate("decline")), f"{t.known:,}", f"{t.defaults:,}",
                  _pct(t.default_rate), _pct(t.expected_default_rate)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _fairness_section(run: BacktestRun, images: dict[str, str]) -> list[str]:
    r = run.main
    other = run.replays[1][1] if len(run.replays) > 1 else None
    h = r.history
    head = "| group | applications | approve |" + (" Δ approve |" if other else "") + \
        " decline | known | defaults | default rate | mean pd |"
    rule = "|---|" + "---:|" * (8 if other else 7)
    thin = r.policy.thin_file
    tenure = np.where(h.thin_file, f"tenure < {THIN_FILE_DAYS} days", f"tenure ≥ {THIN_FILE_DAYS} days")
    policy_thin = np.where(r.policy_thin, "thin-file (policy rule)", "not thin-file (policy rule)")
    lines = ["## Thin-file applicants", "",
             f"Two definitions: tenure below {THIN_FILE_DAYS} days at the application (issue 17; "
             "from the applicant's sign-up time in the store), and the policy's own rule "
             f"(tenure ≤ {thin.max_tenure_days} days or ≤ {thin.max_orders} orders, from the "
             "features the decision read), which caps the limit at `thin_file_max_limit`.",
             "", head, rule, *_group_rows(r, tenure, other), *_group_rows(r, policy_thin, other),
             "", "## Home province", "",
             "From the applicant's declared home city (`graph.province_of`, GB/T 2260 provinces); "
             "coordinates are not read. `unknown`: a city the gazetteer does not hold, or none.",
             "", head, rule, *_group_rows(r, h.province, other), ""]
    if "fairness" in images:
        lines += [f"![Approval and default rate per province and thin-file group]"
                  f"({images['fairness']})", ""]
    return lines


def _location_section(run: BacktestRun) -> list[str]:
    lines = ["## Reasons that rest on location alone", "",
             "Reason codes every input of which is location-derived (distances from the usual "
             "login place and home, whether they are known, the logins the usual place is "
             "drawn from), over every rule and explanation family that gives them "
             "(`serving.backtest.location_reasons`):", "",
             "| code | inputs | given by | approvals sent to review by it here |",
             "|---|---|---|---:|"]
    main = run.main.main_reason
    for reason in run.location_reasons:
        lines.append(f"| `{reason.code}` | {', '.join(f'`{f}`' for f in sorted(reason.features))}"
                     f" | {', '.join(reason.sources)} | {int((main == reason.code).sum()):,} |")
    lines += ["", "An approval goes to review when such a reason is its strongest fraud reason "
              "(`FRAUD_MAIN_REASON`); a verdict that reviewed on it names it only in its "
              "message, so reviews from stored verdicts are not attributed here.", ""]
    counts = sorted(((c, int((main == c).sum())) for c in set(main.tolist()) if c),
                    key=lambda kv: (-kv[1], kv[0]))
    if counts:
        flagged = {reason.code for reason in run.location_reasons}
        lines += ["Every strongest fraud reason that sent an approval to review here:", "",
                  "| reason | reviews | location alone |", "|---|---:|---|"]
        lines += [f"| `{c}` | {n:,} | {'yes' if c in flagged else ''} |" for c, n in counts]
        lines.append("")
    return lines


def _plot_decisions(run: BacktestRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    products = list(_by_product(run.main))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(run.replays)
    x = np.arange(len(products))
    for k, (label, rep) in enumerate(run.replays):
        t = _by_product(rep)
        bottom = np.zeros(len(products))
        for d in DECISIONS:
            v = np.asarray([t[p].rate(d) for p in products])
            axes[0].bar(x + k * width, v, width, bottom=bottom, color=_COLOURS[d],
                        alpha=1.0 if k == 0 else 0.55, edgecolor="white",
                        label=d if k == 0 else None)
            bottom += v
        el = [t[p].known_expected_loss for p in products]
        real = [t[p].realised_loss for p in products]
        axes[1].bar(x + k * width - width / 4, el, width / 2, color="#7f8c8d",
                    alpha=1.0 if k == 0 else 0.55, label=f"expected ({label})")
        axes[1].bar(x + k * width + width / 4, real, width / 2, color="#c0392b",
                    alpha=1.0 if k == 0 else 0.55, label=f"realised ({label})")
    for ax in axes:
        ax.set_xticks(x + width * (len(run.replays) - 1) / 2, products, fontsize=8)
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("share of applications")
    axes[0].set_title("decisions" + (" (faded: " + run.replays[1][0] + ")"
                                     if len(run.replays) > 1 else ""), fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].set_title("loss on known approvals", fontsize=10)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_grades(run: BacktestRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grades = [g.name for g in run.main.policy.grades]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / (2 * len(run.replays))
    x = np.arange(len(grades))
    for k, (label, rep) in enumerate(run.replays):
        by = totals_by(rep, rep.grade)
        obs = [by[g].default_rate if g in by else np.nan for g in grades]
        exp = [by[g].expected_default_rate if g in by else np.nan for g in grades]
        ax.bar(x + 2 * k * width, obs, width, color="#c0392b", alpha=1.0 if k == 0 else 0.55,
               label=f"observed ({label})")
        ax.bar(x + (2 * k + 1) * width, exp, width, color="#7f8c8d",
               alpha=1.0 if k == 0 else 0.55, label=f"mean pd ({label})")
    ax.set_xticks(x + width * (2 * len(run.replays) - 1) / 2, grades)
    ax.set_ylabel("default rate of known approvals")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_fairness(run: BacktestRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = run.main
    h = r.history
    groups = {f"tenure < {THIN_FILE_DAYS} d": h.thin_file,
              f"tenure ≥ {THIN_FILE_DAYS} d": ~h.thin_file,
              "thin-file (policy)": r.policy_thin, "not thin-file (policy)": ~r.policy_thin}
    by = sorted(totals_by(r, h.province).items(), key=lambda kv: -kv[1].applications)
    names = [*groups, *(p for p, _ in by)]
    totals = [*(Totals.of(r, g) for g in groups.values()), *(t for _, t in by)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.28 * len(names) + 1.2), sharey=True)
    y = np.arange(len(names))[::-1]
    axes[0].barh(y, [t.rate("approve") for t in totals], color="#27ae60")
    axes[0].set_xlabel("approval rate")
    axes[1].barh(y, [t.default_rate for t in totals], color="#c0392b")
    axes[1].axvline(Totals.of(r).default_rate, color="#7f8c8d", ls="--", lw=1)
    axes[1].set_xlabel("default rate of known approvals (dashed: all)")
    axes[0].set_yticks(y, names, fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_backtest_report(run: BacktestRun, out_dir: Path) -> Path:
    """Write ``backtest.md`` and its PNGs into ``out_dir`` (made if missing).

    Returns:
        Path: the Markdown file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {name: plot(run, out_dir / f"{name}.png").name for name, plot in (
        ("decisions", _plot_decisions), ("grades", _plot_grades),
        ("fairness", _plot_fairness))}
    doc = out_dir / "backtest.md"
    doc.write_text(render_backtest_markdown(run, images), encoding="utf-8")
    return doc
