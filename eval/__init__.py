"""Evaluation harness: run a gold set of questions through the pipeline and measure answers and citations.

`rag eval --dataset eval/datasets/seeds.jsonl --out reports/run-1` (see `eval.cli`). Modules: `dataset`
(JSONL gold set), `normalize` (answer matching), `metrics`, `runner`, `report`, `compare`.
"""
