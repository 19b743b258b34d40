"""`rag eval`: run a gold set through the pipeline and write a report, compare two runs, or gate CI.

    rag eval --dataset eval/datasets/seeds.jsonl --out reports/run-1 [--backend local] [-k 5] [--limit N]
    rag eval ... --thresholds eval/thresholds.json [--fail-under answer_accuracy=0.8 recall@5=0.9]
    rag eval --compare reports/run-1 reports/run-2
    rag eval --suite eval/suite.json --out reports/suite [--split tune] [--corpus handbook] [--limit N]

With thresholds, the command exits 1 when a metric falls below its minimum (or above its maximum).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.config import Config
from rag.errors import ConfigError


def _metric_value(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected METRIC=VALUE, e.g. recall@5=0.9, got {text!r}") from err


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="measure answers and citations against a gold set",
        description="Run a JSONL gold set through the pipeline and write results.jsonl, report.json and "
                    "report.md (with plots) to --out; or compare two such folders with --compare.")
    p.add_argument("--dataset", default="eval/datasets/seeds.heldout.jsonl",
                   help="JSONL gold set (default: %(default)s)")
    p.add_argument("--suite", help="run every corpus of a suite file (eval/suite.json) instead of --dataset")
    p.add_argument("--split", choices=["tune", "heldout", "both"], default="both",
                   help="with --suite: which half of each gold set (default: both)")
    p.add_argument("--corpus", action="append", default=[],
                   help="with --suite: only this corpus (repeatable)")
    p.add_argument("--index-root", default=".rag-eval",
                   help="with --suite: where the corpora's indexes live")
    p.add_argument("--out", help="output folder (default reports/<timestamp>-<backend>)")
    p.add_argument("--backend", help="generator backend: local | openai | extractive (env RAG_BACKEND)")
    p.add_argument("-k", "--k", type=int, help="passages retrieved per question (env RAG_K)")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--sample", type=int, help="only N questions spread evenly over the set (keeps its mix of "
                                              "answerable and unanswerable questions; deterministic)")
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two run folders and exit")
    p.add_argument("--thresholds", help='JSON file {"min": {metric: value}, "max": {metric: value}}; '
                                        "exit 1 if the run misses one")
    p.add_argument("--fail-under", nargs="+", type=_metric_value, default=[], metavar="METRIC=VALUE",
                   help="exit 1 if a summary metric is below VALUE, e.g. answer_accuracy=0.8")
    p.add_argument("--judge-citations", action="store_true",
                   help="also score citations in the ALCE sense with the local model as an entailment judge "
                        "(eval/judged.py; about one extra model call per answer)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_command)


def load_thresholds(path: str | Path, backend: str = "") -> tuple[dict[str, float], dict[str, float]]:
    """(minimums, maximums) from a thresholds file; ConfigError if it is unreadable or malformed.

    The file is either {"min": {...}, "max": {...}} or one such section per backend name:
    {"extractive": {"min": ...}, "local": {"min": ...}}.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if "min" not in data and "max" not in data:
            if backend not in data:
                raise ConfigError(f"Thresholds file {path} has no section for backend {backend!r}; it has "
                                  f"{', '.join(k for k in data if not k.startswith('_')) or 'none'}.")
            data = data[backend]
        mins = {str(k): float(v) for k, v in data.get("min", {}).items()}
        maxs = {str(k): float(v) for k, v in data.get("max", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError) as err:
        raise ConfigError(f"Cannot use thresholds file {path} ({err}); it must be JSON like "
                          '{"min": {"recall@5": 0.9}, "max": {"false_refusal_rate": 0.1}}.') from err
    return mins, maxs


Bounds = tuple[dict[str, float], dict[str, float]]


def load_corpus_thresholds(path: str | Path, backend: str) -> dict[str, Bounds]:
    """Per-corpus (minimums, maximums) from the backend's `"corpora"` section of a thresholds file, if any.

    Example section: {"local": {"corpora": {"seeds": {"min": {"answer_accuracy": 0.8}}}}}
    """
    try:
        section = json.loads(Path(path).read_text(encoding="utf-8")).get(backend, {})
        return {name: ({str(k): float(v) for k, v in spec.get("min", {}).items()},
                       {str(k): float(v) for k, v in spec.get("max", {}).items()})
                for name, spec in section.get("corpora", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError) as err:
        raise ConfigError(f"Cannot use thresholds file {path} ({err}).") from err


def check_thresholds(summary: Mapping[str, Any], mins: Mapping[str, float],
                     maxs: Mapping[str, float] | None = None) -> list[str]:
    """Failure lines for every metric outside its bounds (a metric that was not measured fails).

    Example: check_thresholds({"recall@5": 0.7}, {"recall@5": 0.9})
    -> ["recall@5 = 0.7, below the minimum 0.9"]
    """
    failures = []
    for name, bound in mins.items():
        value = summary.get(name)
        if value is None:
            failures.append(f"{name} was not measured (minimum {bound})")
        elif value < bound:
            failures.append(f"{name} = {value}, below the minimum {bound}")
    for name, bound in (maxs or {}).items():
        value = summary.get(name)
        if value is None:
            failures.append(f"{name} was not measured (maximum {bound})")
        elif value > bound:
            failures.append(f"{name} = {value}, above the maximum {bound}")
    return failures


def _build_pipeline(config: Config) -> Any:
    from rag.pipeline import build_pipeline  # imported late: `rag eval --compare` needs no index or model

    return build_pipeline(config)


def evenly(items: list[Any], n: int | None) -> list[Any]:
    """`n` items spread evenly over `items`, in order. Example: evenly([1, 2, 3, 4, 5, 6], 3) -> [1, 3, 5]"""
    if n is None or n >= len(items):
        return items
    return [items[int(i * len(items) / max(n, 1))] for i in range(max(n, 0))]


def run_eval(config: Config, dataset: str, out: str | None, limit: int | None = None,
             progress: bool = True, judge_citations: bool = False,
             sample: int | None = None) -> tuple[Path, dict[str, Any]]:
    """Load the dataset, run it through a pipeline built from `config`, write the report; (folder, report)."""
    from eval.dataset import load_dataset
    from eval.metrics import summarize
    from eval.report import write_report
    from eval.runner import check_dataset_sources, metric_ks, run_questions

    items = load_dataset(dataset)  # a bad file aborts here, before any model loads
    if limit is not None:
        items = items[: max(limit, 0)]
    items = evenly(items, sample)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    pipeline = _build_pipeline(config)
    check_dataset_sources(pipeline, items)
    t1 = time.perf_counter()
    pipeline.warm_up(config.backend)
    t2 = time.perf_counter()
    records = run_questions(pipeline, items, k=config.k, backend=config.backend, progress=progress)
    t3 = time.perf_counter()
    summary = summarize(records, metric_ks(config.k))
    if judge_citations:
        from eval.judged import add_judged_metrics, model_entailment

        summary.update(add_judged_metrics(records, model_entailment(config)))
    folder = Path(out or f"reports/{started:%Y%m%d-%H%M%S}-{config.backend}")
    run = {"dataset": str(dataset), "backend": config.backend, "k": config.k, "limit": limit,
           "sample": sample,
           "started": started.isoformat(timespec="seconds"), "command": " ".join(sys.argv)}
    timings = {"load_s": round(t1 - t0, 2), "warm_up_s": round(t2 - t1, 2), "run_s": round(t3 - t2, 2),
               "per_question_s": round((t3 - t2) / max(len(items), 1), 3)}
    report = write_report(folder, records, summary, run=run, config=dataclasses.asdict(config),
                          timings=timings, index_dir=config.index_dir)
    return folder, report


def run_command(args: argparse.Namespace, config: Config) -> int:
    if args.compare:
        from eval.compare import compare_runs, describe, render_comparison

        a, b = args.compare
        cmp = compare_runs(a, b)
        print(render_comparison(cmp, a, b, {"a": describe(a), "b": describe(b)}), end="")
        return 0
    if args.k is not None and args.k < 1:
        raise ConfigError(f"-k must be at least 1, got {args.k}.")
    config = config.replace(backend=args.backend, k=args.k)
    mins, maxs = load_thresholds(args.thresholds, config.backend) if args.thresholds else ({}, {})
    mins.update(dict(args.fail_under))
    if args.suite:
        from eval.suite import SPLITS, run_suite

        splits = SPLITS if args.split == "both" else (args.split,)
        summary = run_suite(config, args.suite, args.out or f"reports/suite-{config.backend}", splits=splits,
                            only=args.corpus, limit=args.limit, index_root=args.index_root,
                            progress=not args.no_progress, judge_citations=args.judge_citations,
                            sample=args.sample)
        from eval.suite import render_summary

        print(render_summary(summary), end="")
        per_corpus = load_corpus_thresholds(args.thresholds, config.backend) if args.thresholds else {}
        failures = [f"{row['corpus']}-{row['split']}: {line}" for row in summary["rows"]
                    for line in check_thresholds(row, *per_corpus.get(row["corpus"], (mins, maxs)))]
        for line in failures:
            print(f"FAIL {line}", file=sys.stderr)
        return 1 if failures else 0
    folder, report = run_eval(config, args.dataset, args.out, args.limit, progress=not args.no_progress,
                              judge_citations=args.judge_citations, sample=args.sample)
    s = report["metrics"]
    keys = [k for k in s if k.startswith(("hit@", "recall@", "mrr@"))] + [
        "answer_accuracy", "citation_precision", "citation_recall", "faithfulness", "true_refusal_rate",
        "false_refusal_rate", "latency_total_ms_p50"]
    print(f"{s['questions']} questions, {s['errors']} errors; " + ", ".join(
        f"{k} {s[k]}" for k in keys if k in s))
    print(f"wrote {folder}/report.md, report.json, results.jsonl")
    failures = check_thresholds(s, mins, maxs)
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failures else 0
