"""Several corpora at once: index each one, run its tuning and held-out gold sets, tabulate per corpus.

`eval/suite.json` names each corpus, the folders it is indexed from and its two gold-set halves. Each corpus
gets its own index under `--index-root` (default `.rag-eval/<name>`, git-ignored; incremental, so a second
run re-embeds nothing), and each (corpus, split) its own report folder `<out>/<corpus>-<split>/`. The
summary (`<out>/summary.md`, `summary.json`) has one row per corpus and split.
Not covered: the metrics themselves (eval/metrics.py) and calibration (scripts/calibrate.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.dataset import DatasetError
from rag.config import Config

SPLITS = ("tune", "heldout")
COLUMNS = ("questions", "answer_accuracy", "true_refusal_rate", "false_refusal_rate",
           "cited_source_precision", "judged_citation_precision", "judged_citation_recall", "hit@5",
           "latency_first_token_ms_p50", "latency_total_ms_p50")


@dataclass(frozen=True)
class Corpus:
    name: str
    paths: tuple[str, ...]
    datasets: dict[str, str]  # split -> JSONL path


def load_suite(path: str | Path) -> list[Corpus]:
    """The corpora of a suite file; DatasetError naming the problem when it is malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        root = Path(path).resolve().parent.parent  # eval/suite.json names paths from the repository root
        corpora = [Corpus(name, tuple(_locate(p, root) for p in spec["paths"]),
                          {s: _locate(spec[s], root) for s in SPLITS if s in spec})
                   for name, spec in data.items() if not name.startswith("_")]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetError(
            f"Cannot read the suite {path} ({err}); it must be JSON like "
            '{"name": {"paths": ["folder"], "tune": "a.jsonl", "heldout": "b.jsonl"}}.') from err
    if not corpora:
        raise DatasetError(f"The suite {path} names no corpus.")
    return corpora


def _locate(name: str, root: Path) -> str:
    """A suite path as given when it exists from here, else from the repository root."""
    return name if Path(name).exists() or not (root / name).exists() else str(root / name)


def ensure_index(corpus: Corpus, config: Config, root: str | Path) -> Config:
    """Index the corpus into `<root>/<name>` (only what changed) and return the config that reads it."""
    from index.builder import build_index
    from index.embedder import load_embedder

    index_dir = Path(root) / corpus.name
    build_index(list(corpus.paths), index_dir, load_embedder(config.embed_model),
                chunk_tokens=config.chunk_tokens, chunk_overlap=config.chunk_overlap, progress=False)
    return config.replace(index_dir=str(index_dir))


def run_suite(config: Config, suite: str | Path, out: str | Path, *, splits: Sequence[str] = SPLITS,
              only: Sequence[str] = (), limit: int | None = None, index_root: str | Path = ".rag-eval",
              progress: bool = True, judge_citations: bool = False,
              sample: int | None = None) -> dict[str, Any]:
    """Run every (corpus, split) of the suite; write per-run reports and the summary; return the summary."""
    from eval.cli import run_eval

    corpora = [c for c in load_suite(suite) if not only or c.name in only]
    unknown = sorted(set(only) - {c.name for c in load_suite(suite)})
    if unknown:
        raise DatasetError(f"No corpus named {', '.join(unknown)} in {suite}.")
    out = Path(out)
    rows: list[dict[str, Any]] = []
    for corpus in corpora:
        corpus_config = ensure_index(corpus, config, index_root)
        for split in splits:
            if split not in corpus.datasets:
                continue
            folder, report = run_eval(corpus_config, corpus.datasets[split],
                                      str(out / f"{corpus.name}-{split}"), limit, progress=progress,
                                      judge_citations=judge_citations, sample=sample)
            metrics = report["metrics"]
            rows.append({"corpus": corpus.name, "split": split, "report": str(folder), **metrics})
    summary = {"backend": config.backend, "llm_model": config.llm_model, "min_support": config.min_support,
               "min_relevance": config.min_relevance, "judge": config.judge, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(render_summary(summary), encoding="utf-8")
    return summary


def render_summary(summary: dict[str, Any]) -> str:
    """A Markdown table, one row per corpus and split."""
    head = ["corpus", "split", *COLUMNS]
    lines = [f"# Evaluation suite: backend `{summary['backend']}`", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary["rows"]:
        cells = [row["corpus"], row["split"]] + [_cell(row.get(c)) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}" if value <= 1.0 else f"{value:.0f}"
    return str(value)
