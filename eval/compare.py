"""Compare two evaluation runs (`rag eval --compare A B`): metrics that moved, questions that changed outcome.

Reads `report.json` and `results.jsonl` from each folder. Lower-is-better metrics (latencies, false
refusals, errors) are marked better when they fall. Questions are matched by `id`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError

LOWER_IS_BETTER = ("latency_", "false_refusal_rate", "error_rate", "errors")
COUNTS = {"questions", "answerable", "unanswerable"}


class RunFolderError(RagError):
    """A folder given to --compare is not the output of `rag eval --out`."""

    exit_code = 2


@dataclass
class Comparison:
    """What changed from run A to run B."""

    # (metric, value in A, value in B, "better" | "worse" | "changed")
    moved: list[tuple[str, float | None, float | None, str]] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # failed or errored in A, pass in B
    broken: list[str] = field(default_factory=list)  # passed in A, not in B
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    questions: dict[str, str] = field(default_factory=dict)  # id -> question text


def load_run(folder: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(report.json, {id: result record}) of a run folder; RunFolderError if it is not one."""
    path = Path(folder)
    try:
        report = json.loads((path / "report.json").read_text(encoding="utf-8"))
        lines = (path / "results.jsonl").read_text(encoding="utf-8").splitlines()
        results = {r["id"]: r for r in map(json.loads, filter(None, lines))}
    except (OSError, ValueError, KeyError) as err:
        raise RunFolderError(f"{path} is not an evaluation run folder ({err}); pass folders written by "
                           "`rag eval --out`.") from err
    return report, results


def verdict(name: str, a: float | None, b: float | None) -> str:
    """"better", "worse" or "changed". Example: verdict("latency_total_ms_p50", 900.0, 700.0) -> "better"."""
    if a is None or b is None:
        return "changed"
    lower = name.startswith(LOWER_IS_BETTER) or name in LOWER_IS_BETTER
    return "better" if (b < a) == lower else "worse"


def compare_runs(a: str | Path, b: str | Path, tolerance: float = 1e-9) -> Comparison:
    """Metrics that differ by more than `tolerance`, and per-question outcome changes from A to B."""
    report_a, results_a = load_run(a)
    report_b, results_b = load_run(b)
    cmp = Comparison()
    ma, mb = report_a.get("metrics", {}), report_b.get("metrics", {})
    for name in [*ma, *(k for k in mb if k not in ma)]:
        va, vb = ma.get(name), mb.get(name)
        if name in COUNTS and va == vb:
            continue
        if va is None and vb is None:
            continue
        if va is None or vb is None or abs(float(vb) - float(va)) > tolerance:
            cmp.moved.append((name, va, vb, verdict(name, va, vb)))
    for qid in results_a.keys() & results_b.keys():
        oa = results_a[qid]["metrics"]["outcome"]
        ob = results_b[qid]["metrics"]["outcome"]
        if oa != "pass" and ob == "pass":
            cmp.fixed.append(qid)
        elif oa == "pass" and ob != "pass":
            cmp.broken.append(qid)
    cmp.only_a = sorted(results_a.keys() - results_b.keys())
    cmp.only_b = sorted(results_b.keys() - results_a.keys())
    cmp.fixed.sort()
    cmp.broken.sort()
    cmp.questions = {q: r["question"] for q, r in {**results_a, **results_b}.items()}
    return cmp


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def render_comparison(cmp: Comparison, a: str, b: str, runs: Mapping[str, str] | None = None) -> str:
    """Markdown text of a comparison."""
    out = [f"# {a} → {b}", ""]
    if runs:
        out += [f"- A: {runs.get('a', a)}", f"- B: {runs.get('b', b)}", ""]
    out += ["## Metrics that moved", ""]
    if cmp.moved:
        out += ["| metric | A | B | change | |", "|---|---:|---:|---:|---|"]
        for name, va, vb, word in cmp.moved:
            delta = "" if va is None or vb is None else f"{float(vb) - float(va):+.4g}"
            out.append(f"| `{name}` | {_num(va)} | {_num(vb)} | {delta} | {word} |")
    else:
        out.append("None.")
    sections = (("Fixed (right in B, not in A)", cmp.fixed), ("Broken (right in A, not in B)", cmp.broken),
                ("Only in A", cmp.only_a), ("Only in B", cmp.only_b))
    for title, ids in sections:
        out += ["", f"## {title}: {len(ids)}", ""]
        out += [f"- `{q}` {cmp.questions.get(q, '')}" for q in ids] or ["None."]
    return "\n".join(out) + "\n"


def describe(folder: str | Path) -> str:
    """One line naming a run: backend, k, dataset and start time from its report.json."""
    report, _ = load_run(folder)
    run = report.get("run", {})
    return (f"{folder}: backend {run.get('backend')}, k={run.get('k')}, {run.get('dataset')}, "
            f"{run.get('started')}")
