"""Write an evaluation run to a folder: `results.jsonl`, `report.json`, `report.md` and PNG plots.

`report.json` holds the summary metrics, the configuration, the index manifest, package versions and
timings; `report.md` is for people: the summary with a one-sentence definition per metric, accuracy per
article and per tag, latency and accuracy plots (matplotlib, Agg backend), and every failure with the
question, the expected and the actual answer and the cited passages.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from eval.metrics import metric_definition, per_group_accuracy

PACKAGES = ("rag-chat", "sentence-transformers", "faiss-cpu", "bm25s", "numpy", "torch", "xllamacpp",
            "langchain-core")
COUNTS = ("questions", "answerable", "unanswerable", "errors")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the results ("missing" if not installed)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def read_manifest(index_dir: str | Path) -> dict[str, Any] | None:
    """The index's manifest.json (what was indexed, with which model), or None if absent or unreadable."""
    path = Path(index_dir) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_results(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_latency(records: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """Histogram of time to first token and to the final answer; False if there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {  # 0.0 ms is a measurement (a fast backend), only None means "not measured"
        name: [r["latency_ms"][key] / 1000 for r in records if r.get("latency_ms", {}).get(key) is not None]
        for name, key in (("first token", "first_token"), ("final answer", "total"))
    }
    if not any(series.values()):
        return False
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist([v for v in series.values()], bins=20, label=list(series), alpha=0.8)
    ax.set_xlabel("seconds")
    ax.set_ylabel("questions")
    ax.set_title("Latency per question")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_accuracy(groups: Mapping[str, tuple[float, int]], path: Path, title: str) -> bool:
    """Horizontal bar chart of accuracy per group (article or tag), with the question count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not groups:
        return False
    names = list(groups)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    bars = ax.barh(names, [groups[n][0] for n in names], color="#4c72b0")
    for bar, name in zip(bars, names, strict=True):
        acc, n = groups[name]
        ax.text(min(acc, 0.85) + 0.01, bar.get_y() + bar.get_height() / 2, f"{acc:.0%} of {n}", va="center")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of questions with the right outcome")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _failure(r: Mapping[str, Any]) -> list[str]:
    m = r["metrics"]
    expected = " | ".join(r["expected_answers"]) or "(decline: not in the documents)"
    if r.get("error"):
        actual = f"ERROR {r['error']}"
    elif r.get("refused"):
        actual = f"(declined) {_short(r.get('answer', ''))}"
    else:
        actual = _short(r.get("answer", ""), 600)
    lines = [f"### `{r['id']}` — {r['question']}", "",
             f"- **Expected:** {expected}" + (f" (from {', '.join(r['expected_sources'])})"
                                               if r["expected_sources"] else ""),
             f"- **Actual:** {actual}"]
    if r.get("draft") and r["draft"].strip() != str(r.get("answer", "")).strip():
        lines.append(f"- **Model draft before verification:** {_short(r['draft'], 400)}")
    if r.get("reasons"):
        lines.append(f"- **Verifier reasons:** {', '.join(map(str, r['reasons']))}"
                     + (f" (support {r['support']})" if r.get("support") else ""))
    cited = [f"  - [{c['n']}] `{c['source']}`: “{_short(c.get('quote', ''), 300)}”"
             for c in r.get("citations", [])]
    lines.append("- **Cited passages:**" + ("" if cited else " none"))
    lines.extend(cited)
    retrieved = [h["source"][:3] for h in r.get("retrieved", [])]
    scores = {k: m[k] for k in m if k.startswith(("recall@", "mrr@")) or k in ("faithfulness",
                                                                                  "citation_precision")}
    lines.append(f"- **Retrieved (article prefixes, in rank order):** {' '.join(retrieved) or 'none'}; "
                 + ", ".join(f"{k} {_fmt(v)}" for k, v in scores.items()))
    lines.append("")
    return lines


def render_markdown(report: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                    plots: Mapping[str, str]) -> str:
    """The human report: summary with definitions, per-article and per-tag accuracy, plots, failures."""
    s = report["metrics"]
    run = report["run"]
    out = [f"# Evaluation report: {run['backend']} backend, k={run['k']}", "",
           f"Dataset `{run['dataset']}` ({s['questions']} questions: {s['answerable']} answerable, "
           f"{s['unanswerable']} unanswerable); {s['errors']} errors; run {run['started']}, "
           f"{report['timings']['run_s']:.1f} s for the questions.", "",
           "## Summary", "", "| metric | value | definition |", "|---|---:|---|"]
    out += [f"| `{k}` | {_fmt(v)} | {metric_definition(k)} |" for k, v in s.items() if k not in COUNTS]
    out += ["", "## Accuracy per article", "",
            "An answerable question counts for every article in its `sources`; unanswerable ones (right "
            "outcome: declined) are grouped apart.", "",
            "| article | accuracy | questions |", "|---|---:|---:|"]
    out += [f"| `{g}` | {_fmt(a)} | {n} |" for g, (a, n) in report["per_article"].items()]
    if "per_article" in plots:
        out += ["", f"![accuracy per article]({plots['per_article']})"]
    out += ["", "## Accuracy per tag", "", "| tag | accuracy | questions |", "|---|---:|---:|"]
    out += [f"| {g} | {_fmt(a)} | {n} |" for g, (a, n) in report["per_tag"].items()]
    if "latency" in plots:
        out += ["", "## Latency", "", f"![latency distribution]({plots['latency']})"]
    failures = [r for r in records if r["metrics"]["outcome"] != "pass"]
    out += ["", f"## Failures ({len(failures)} of {len(records)})", ""]
    for r in failures:
        out += _failure(r)
    if not failures:
        out.append("None.")
    return "\n".join(out) + "\n"


def write_report(out_dir: str | Path, records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                 *, run: Mapping[str, Any], config: Mapping[str, Any], timings: Mapping[str, float],
                 index_dir: str | Path | None = None) -> dict[str, Any]:
    """Write results.jsonl, report.json, report.md and plots into `out_dir`; return the report dict.

    `run` describes the run (dataset, backend, k, started, limit); `config` is the Config as a dict.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / "results.jsonl", records)
    per_article = per_group_accuracy(records, "sources")
    per_tag = per_group_accuracy(records, "tags")
    plots: dict[str, str] = {}
    if plot_latency(records, out / "latency.png"):
        plots["latency"] = "latency.png"
    if plot_accuracy(per_article, out / "per_article.png", "Right outcome per article"):
        plots["per_article"] = "per_article.png"
    report = {
        "run": dict(run),
        "metrics": dict(summary),
        "definitions": {k: metric_definition(k) for k in summary if k not in COUNTS},
        "per_article": per_article,
        "per_tag": per_tag,
        "config": dict(config),
        "index_manifest": read_manifest(index_dir) if index_dir is not None else None,
        "versions": package_versions(),
        "timings": dict(timings),
        "files": {"results": "results.jsonl", "markdown": "report.md", **plots},
    }
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    (out / "report.json").write_text(text, encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report, records, plots), encoding="utf-8")
    return report
