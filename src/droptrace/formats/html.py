"""`droptrace report FILE --html OUT`: one page to look at instead of tables to read.

Self-contained: plotly.js (from the plotly package, PyPI) is inlined once, so the page opens with
no network. It shows drops per time bucket stacked by reason, the report's tables (each reason
with its one-line explanation), and for `--stack` recordings the drop stacks as an icicle chart
(a flame graph turned on its side: callers left, the dropping function and the reason right).
"""
from __future__ import annotations

import html
from typing import Any, Dict, List, Sequence, Tuple

from ..errors import DroptraceError

Stacks = Dict[Tuple[str, ...], int]  # frames outermost first, the reason as the leaf -> drops
REASONS_SHOWN = 12  # stacked series; the rest of the reasons are one "other" series
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222 }
h1 { font-size: 1.5em } h2 { font-size: 1.15em; margin-top: 2em }
table { border-collapse: collapse; margin: .5em 0 } th, td { padding: 3px 10px; text-align: left }
th { border-bottom: 2px solid #999 } td { border-bottom: 1px solid #ddd; vertical-align: top }
td.n { text-align: right; font-variant-numeric: tabular-nums } td.why { color: #555 }
.note { color: #666 }
"""


def require() -> None:
    """Fail now, in one line, if plotly is missing."""
    _plotly()


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise DroptraceError("report --html needs plotly: pip install 'droptrace[report]'") from None
    return go, get_plotlyjs


def _table(rows: Sequence[Dict[str, Any]], label: str, explain: bool = False) -> str:
    from ..explain import summary

    head = f"<tr><th>drops</th><th>share</th><th>{html.escape(label)}</th>"
    head += "<th>what it means</th></tr>" if explain else "</tr>"
    body = []
    for r in rows:
        cells = (f"<td class=n>{r['count']}</td><td class=n>{r['share'] * 100:.1f}%</td>"
                 f"<td>{html.escape(str(r[label]))}</td>")
        if explain:
            cells += f"<td class=why>{html.escape(summary(str(r[label])) or '')}</td>"
        body.append(f"<tr>{cells}</tr>")
    return f"<table id=\"{html.escape(label)}s\">{head}{''.join(body)}</table>"


def _over_time(go: Any, summary: Dict[str, Any]) -> Any:
    buckets = summary["over_time"]
    totals: Dict[str, int] = {}
    for b in buckets:
        for reason, n in b["by_reason"].items():
            totals[reason] = totals.get(reason, 0) + n
    shown = [r for r, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:REASONS_SHOWN]]
    x = [b["start"] for b in buckets]
    fig = go.Figure()
    for reason in shown:
        fig.add_bar(name=reason, x=x, y=[b["by_reason"].get(reason, 0) for b in buckets])
    if len(totals) > len(shown):
        fig.add_bar(name="other", x=x, y=[sum(n for r, n in b["by_reason"].items() if r not in shown)
                                          for b in buckets])
    fig.update_layout(barmode="stack", height=380, margin=dict(l=50, r=20, t=10, b=40),
                      xaxis_title=f"time ({summary['bucket_seconds']} s buckets)", yaxis_title="drops",
                      legend_title_text="reason")
    return fig


def _icicle(go: Any, stacks: Stacks) -> Any:
    ids, labels, parents, values = ["all"], ["all drops"], [""], [sum(stacks.values())]
    sums: Dict[Tuple[str, ...], int] = {}
    for path, n in stacks.items():
        for i in range(1, len(path) + 1):
            sums[path[:i]] = sums.get(path[:i], 0) + n
    for path, n in sums.items():
        ids.append("/".join(path))
        labels.append(path[-1])
        parents.append("/".join(path[:-1]) if len(path) > 1 else "all")
        values.append(n)
    fig = go.Figure(go.Icicle(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                              tiling=dict(orientation="h")))
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def page(summary: Dict[str, Any], stacks: Stacks, path: str) -> str:
    """The whole page for a report summary (commands/report.py's) and its folded stacks."""
    go, plotlyjs = _plotly()

    def div(fig: Any, div_id: str) -> str:
        return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           config={"displaylogo": False, "responsive": True})

    span = f", {summary['first']} .. {summary['last']}" if summary["first"] else ""
    parts: List[str] = [f"<h1>droptrace report</h1><p>{html.escape(path)}: {summary['total']} drops"
                        f"{html.escape(span)}</p>"]
    if summary.get("lost"):
        parts.append(f"<p class=note>and {summary['lost']} more drops lost while recording (ring buffer "
                     "full): the counts are of what was recorded</p>")
    if summary["over_time"]:
        parts += ["<h2>Drops over time, by reason</h2>", div(_over_time(go, summary), "over-time")]
    for key, label, title, explain in (("by_reason", "reason", "Reasons", True),
                                       ("by_location", "location", "Drop locations", False),
                                       ("by_flow", "flow", "Flows", False),
                                       ("by_interface", "interface", "Namespaces and interfaces", False)):
        if summary[key]:
            parts += [f"<h2>{title}</h2>", _table(summary[key], label, explain)]
    parts.append("<h2>Drop stacks</h2>")
    if stacks:
        parts.append("<p class=note>Callers on the left, the dropping function and the reason on the "
                     "right; click a frame to zoom.</p>")
        parts.append(div(_icicle(go, stacks), "stacks"))
    else:
        parts.append("<p class=note>This recording has no stacks: record with --stack.</p>")
    return ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>droptrace report: {html.escape(path)}</title><style>{STYLE}</style>"
            f"<script>{plotlyjs()}</script></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")
