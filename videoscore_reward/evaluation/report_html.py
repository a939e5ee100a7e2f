"""The compare report as one self-contained HTML file: inline CSS, PNGs embedded as base64, no
scripts and nothing fetched, so it opens anywhere (a browser, a CI artifact, the app's tab)."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from .tables import REWARD

if TYPE_CHECKING:
    from .compare import Comparison

_STYLE = """
.vs-report { font-family: system-ui, sans-serif; max-width: 1340px; margin: 0 auto; color: #222; }
.vs-report table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
.vs-report th, .vs-report td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
.vs-report th:first-child, .vs-report td:first-child { text-align: left; }
.vs-report .vs-fell { color: #b00020; font-weight: 600; }
.vs-report .vs-rose { color: #1b7f3b; font-weight: 600; }
.vs-report .vs-verdict { padding: 0.6em 1em; border-radius: 6px; margin: 1em 0; }
.vs-report .vs-hacking { background: #fde8e8; border: 1px solid #b00020; }
.vs-report .vs-ok { background: #e8f5ec; border: 1px solid #1b7f3b; }
.vs-report .vs-plots { display: flex; flex-wrap: wrap; gap: 12px; }
.vs-report figure { margin: 0; }
.vs-report img { width: 640px; max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(value) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _image(path: str | os.PathLike, alt: str, **data: str) -> str:
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    attributes = "".join(f' data-{k}="{escape(v)}"' for k, v in data.items())
    return (f'<figure{attributes}><img class="vs-plot" alt="{escape(alt)}" '
            f'src="data:image/png;base64,{encoded}"></figure>')


def _shift_rows(comparison: "Comparison") -> str:
    rows = []
    for column, s in comparison.shifts.items():
        significant = s.significant(comparison.alpha)
        style = ("vs-rose" if s.diff > 0 else "vs-fell") if significant else ""
        ci = f"[{_number(s.ci95[0])}, {_number(s.ci95[1])}]"
        rows.append(
            f'<tr data-column="{escape(column)}"><td>{escape(column)}</td><td>{_number(s.mean_a)}</td>'
            f'<td>{_number(s.mean_b)}</td><td class="{style}">{s.diff:+.3f}</td><td>{ci}</td>'
            f"<td>{_p(s.p_value)}</td><td>{'yes' if significant else 'no'}</td></tr>"
        )
    return "".join(rows)


def _prompt_table(entries: list[dict], key: str, columns: list[str], names: tuple[str, str]) -> str:
    if not entries:
        return "<p>None.</p>"
    head = "".join(f"<th>{escape(c)} change</th>" for c in columns)
    body = "".join(
        f"<tr><td>{escape(str(e[key]))}</td><td>{e['reward_a']:.3f}</td><td>{e['reward_b']:.3f}</td>"
        + "".join(f"<td>{e['change'][c]:+.3f}</td>" for c in columns)
        + "</tr>"
        for e in entries
    )
    return (f"<table><tr><th>{escape(key)}</th><th>reward {escape(names[0])}</th><th>reward {escape(names[1])}</th>{head}</tr>"
            f"{body}</table>")


def compare_fragment(comparison: "Comparison", images: Mapping[str, str | os.PathLike]) -> str:
    """The report as an HTML fragment (a styled <div>), for embedding in a page such as the app's.

    images: PNG paths by column name (every aspect and "reward"), plus "per prompt" when paired.
    """
    a, b = (escape(n) for n in comparison.run_names)
    if comparison.flags:
        verdict = ('<div class="vs-verdict vs-hacking" id="vs-verdict"><strong>Possible reward hacking:</strong><ul>'
                   + "".join(f"<li>{escape(flag)}</li>" for flag in comparison.flags) + "</ul></div>")
    else:
        verdict = ('<div class="vs-verdict vs-ok" id="vs-verdict">No aspect fell significantly while the reward rose '
                   f"(alpha = {comparison.alpha}).</div>")
    pairing = (f"paired by {escape(comparison.key)} over {len(comparison.per_prompt)} {escape(comparison.key)}s in both runs "
               "(Wilcoxon signed-rank test, bootstrap interval over prompts)"
               if comparison.paired else "unpaired (Mann-Whitney U test, bootstrap interval over rows)")
    columns = [*comparison.aspects, REWARD]
    aspect_plots = "".join(_image(images[c], f"{c}: {a} vs {b}", aspect=c) for c in comparison.aspects)
    other_plots = _image(images[REWARD], f"reward: {a} vs {b}", column=REWARD)
    if "per prompt" in images:
        other_plots += _image(images["per prompt"], "per-prompt reward", column="per prompt")
    parts = [
        f"<style>{_STYLE}</style>",
        '<div class="vs-report">',
        f"<h1>{a} &rarr; {b}</h1>",
        f"<p>Change from <strong>{a}</strong> to <strong>{b}</strong>, {pairing}.</p>",
        verdict,
        "<h2>Mean shift per aspect</h2>",
        f"<table id=\"vs-shifts\"><tr><th>column</th><th>mean {a}</th><th>mean {b}</th><th>change</th>"
        f"<th>95% CI</th><th>p</th><th>p &lt; {comparison.alpha}</th></tr>{_shift_rows(comparison)}</table>",
    ]
    if comparison.paired:
        parts += [
            f"<h2>{escape(comparison.key.capitalize())}s that gained most</h2>", _prompt_table(comparison.gained, comparison.key, columns, comparison.run_names),
            f"<h2>{escape(comparison.key.capitalize())}s that lost most</h2>", _prompt_table(comparison.lost, comparison.key, columns, comparison.run_names),
        ]
    parts += [
        "<h2>Distributions per aspect</h2>", f'<div class="vs-plots" id="vs-aspect-plots">{aspect_plots}</div>',
        "<h2>Reward</h2>", f'<div class="vs-plots">{other_plots}</div>',
    ]
    parts += [f"<p><em>Note: {escape(note)}</em></p>" for note in comparison.notes]
    parts.append("</div>")
    return "\n".join(parts)


def compare_html(comparison: "Comparison", images: Mapping[str, str | os.PathLike]) -> str:
    """The report as a whole HTML document (see `compare_fragment`)."""
    title = escape(" vs ".join(comparison.run_names))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>compare: {title}</title></head>\n'
            f"<body>\n{compare_fragment(comparison, images)}\n</body></html>\n")
