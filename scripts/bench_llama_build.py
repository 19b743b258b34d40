"""Prompt and generation speed of the installed xllamacpp against the prebuilt PyPI wheel, side by side.

Usage: python scripts/bench_llama_build.py [--model qwen2.5-coder-1.5b] [--rounds 2] [--prompts 6]
                                           [--threads 2] [--batch 64] [--answers N]

`make install` rebuilds xllamacpp for the machine's CPU (scripts/install-llama-native.sh). This script puts
the prebuilt wheel of the same version into a temporary folder, then runs the same measurement in a child
process per build, alternating builds for --rounds rounds so that both see the same machine state: each
child loads the model and completes --prompts prompts of about 250 tokens (passages of seeds/, no prompt
cache, 8 generated tokens), and llama.cpp's own timings give prompt and generation tokens per second. It
prints the medians per build and the ratio installed / prebuilt. With --answers N it then runs
scripts/bench_answer.py (N tuning questions per corpus, the whole pipeline) under each build in turn and
prints both rows: sources, first token and verified answer. Needs the package registry (pip download).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _child(model: str, threads: int, batch: int, prompts: int) -> None:
    import xllamacpp as xl

    from rag.config import Config
    from rag.generators.model_files import resolve_model_path

    config = Config.from_env()
    params = xl.CommonParams()
    params.model.path = str(resolve_model_path(model, config.cache_dir))
    params.n_ctx = 2048
    params.n_batch = params.n_ubatch = batch
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.sampling.temp = 0.0
    params.verbosity = -1
    server = xl.Server(params)
    words = " ".join(p.read_text() for p in sorted((ROOT / "seeds").iterdir()) if p.is_file()).split()
    out = {"isa": [s.strip() for s in xl.get_system_info().split("|") if "AVX512 =" in s or "AVX2 =" in s],
           "prompt": [], "gen": []}
    for i in range(prompts + 1):
        start = (i * 997) % max(1, len(words) - 200)
        # The leading number makes every prompt new, so nothing comes from the prompt cache.
        text = f"{i}. " + " ".join(words[start:start + 190])
        body = {"prompt": text, "n_predict": 8, "temperature": 0, "cache_prompt": False}
        r = server.handle_completions(body)
        if i == 0:
            continue  # warm-up: first-touch page faults of the weights
        if r["timings"]["prompt_n"] < 100:  # a prompt this short would measure overhead, not speed
            raise SystemExit(f"only {r['timings']['prompt_n']} prompt tokens: is seeds/ empty?")
        out["prompt"].append(r["timings"]["prompt_per_second"])
        out["gen"].append(r["timings"]["predicted_per_second"])
    print(json.dumps(out))


def _prebuilt(folder: Path) -> Path:
    import importlib.metadata as md

    version = md.version("xllamacpp")
    wheels = folder / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    f"xllamacpp=={version}", "-d", str(wheels)], check=True)
    site = folder / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                    *map(str, wheels.glob("*.whl"))], check=True)
    return site


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--answers", type=int, default=0, help="also bench_answer.py with N questions per corpus")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.model, args.threads, args.batch, args.prompts)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        site = _prebuilt(Path(tmp))
        builds = {"installed": {}, "prebuilt wheel": {"PYTHONPATH": str(site)}}
        results: dict[str, dict[str, list[float]]] = {name: {"prompt": [], "gen": []} for name in builds}
        isa: dict[str, str] = {}
        for _ in range(args.rounds):
            for name, extra in builds.items():
                child = subprocess.run(
                    [sys.executable, __file__, "--child", "--model", args.model,
                     "--threads", str(args.threads), "--batch", str(args.batch),
                     "--prompts", str(args.prompts)],
                    env={**os.environ, **extra}, capture_output=True, text=True, check=True)
                row = json.loads(child.stdout.strip().splitlines()[-1])
                isa[name] = ", ".join(row["isa"])
                results[name]["prompt"] += row["prompt"]
                results[name]["gen"] += row["gen"]
        answers: dict[str, str] = {}
        for name, extra in builds.items() if args.answers else ():
            child = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "bench_answer.py"), "--models", args.model,
                 "--per-corpus", str(args.answers)],
                env={**os.environ, **extra}, capture_output=True, text=True, check=True)
            lines = child.stdout.strip().splitlines()
            answers[name] = lines[-1].split(None, 1)[1] if lines else child.stderr[-300:]
            answers["header"] = next((x for x in lines if x.startswith("model")), "").split(None, 1)[-1]
    base = {k: statistics.median(v) for k, v in results["prebuilt wheel"].items()}
    print(f"{args.model}, {args.threads} threads, batch {args.batch}, "
          f"{args.rounds} rounds x {args.prompts} prompts")
    print(f"{'build':<16} {'prompt tok/s p50':>17} {'gen tok/s p50':>14} {'ratio prompt/gen':>17}  isa")
    for name, r in results.items():
        p, g = statistics.median(r["prompt"]), statistics.median(r["gen"])
        ratio = f"{p / base['prompt']:>8.2f} / {g / base['gen']:.2f}"
        print(f"{name:<16} {p:>17.1f} {g:>14.1f} {ratio}  {isa[name]}")
    if answers:
        print(f"\nwhole pipeline, {args.answers} tuning questions per corpus (scripts/bench_answer.py):")
        print(f"{'build':<16} {answers.pop('header')}")
        for name, row in answers.items():
            print(f"{name:<16} {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
