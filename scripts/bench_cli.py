"""Whole-command wall time of `rag search` and `rag ask --backend extractive`, in-process vs through a running
`rag serve`, side by side, and where the in-process (cold) start goes.

Usage: python scripts/bench_cli.py [--runs 5] [--breakdown-runs 3]

In one run it builds a temporary index of seeds/ (`rag index seeds --index-dir TMP`), starts
`rag serve --backend extractive` on a free loopback port for it and waits until it answers, then times
each command as a user runs it (a fresh `rag` process, wall clock until it exits), alternating
(a) `--local`: imports, model and index load in the command's own process, and
(b) through the server, found through TMP/serve.json as a user's command finds it.
It prints the medians and the ratio (a)/(b), checks that both print the same `--json` (timings aside),
and breaks both paths down with timers in fresh processes (medians over --breakdown-runs): Python start-up,
imports (the CLI, numpy, torch, sentence-transformers, faiss, the rest of the pipeline), index open, model
load, first query, answer; for the server path, the CLI and httpx imports, the discovery probe, the request.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEARCH = ["search", "exclusive cloud rights until 2032", "-k", "5"]
ASK = ["ask", "Who leads Microsoft AI?", "--backend", "extractive"]
COMMANDS = {"search": ("rag search", SEARCH), "ask": ("rag ask --backend extractive", ASK)}
PATHS = {"local": ("in-process (--local)", ["--local"]), "served": ("through rag serve", [])}


def rag_command() -> list[str]:
    """The `rag` console script next to this Python (what a user types), else `python -m rag`."""
    script = Path(sys.executable).with_name("rag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag"]


def clean_env(index_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        PYTHONPATH=str(ROOT), RAG_INDEX_DIR=str(index_dir), RAG_FEEDBACK_PATH=str(index_dir / "fb.jsonl"),
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
    )
    return env


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    return elapsed, proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    from rag.discovery import healthy

    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*rag_command(), "serve", "--backend", "extractive", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while not healthy(url, timeout=1.0):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"rag serve did not start:\n{log.read_text()}")
        time.sleep(0.5)
    return proc, url


# --- breakdowns, each in a fresh process ---------------------------------------------------------------
class _Laps:
    """`mark(name)` records the time since the previous mark under `name`."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = now - self._last
        self._last = now


def child_cold(index_dir: str, command: str) -> dict[str, float]:
    """Timers over the in-process path, in the order `rag ask` / `rag search` pay for it."""
    mark = _Laps()

    import rag.cli

    rag.cli.build_parser()
    mark("import the CLI + build the parser")
    import numpy  # noqa: F401

    mark("import numpy")
    import torch  # noqa: F401

    mark("import torch")
    import sentence_transformers  # noqa: F401

    mark("import sentence-transformers (+ transformers)")
    import faiss  # noqa: F401

    mark("import faiss")
    from index.embedder import load_embedder
    from rag.config import Config
    from rag.pipeline import Pipeline
    from rag.retriever import open_retriever

    mark("import the rest of the pipeline (bm25s, index, rag)")
    config = Config.from_env(index_dir=index_dir, backend="extractive")
    embedder = load_embedder(config.embed_model, config.embed_batch)
    embedder.dim  # noqa: B018 (loads the model)
    mark("load the embedding model")
    retriever = open_retriever(config, embedder=embedder)
    mark("open the index (FAISS, BM25, docstore)")
    question = (ASK if command == "ask" else SEARCH)[1]
    if command == "search":
        retriever.search(question, 5)
        mark("query: embed + hybrid search")
    else:
        pipeline = Pipeline(config, retriever)
        for _ in pipeline.stream(question, backend="extractive"):
            pass
        mark("answer: retrieve + extract + verify")
    return mark.marks


def child_remote(index_dir: str, command: str) -> dict[str, float]:
    """Timers over the client path: what a command answered by the server pays."""
    mark = _Laps()

    import rag.cli

    rag.cli.build_parser()
    mark("import the CLI + build the parser")
    from rag.config import Config
    from rag.discovery import choose_server
    from rag.remote import RemoteRag

    mark("import httpx + the client")
    url = choose_server(Config.from_env(index_dir=index_dir))
    mark("find the server (serve.json, pid, /api/health)")
    assert url, "no server found"
    client = RemoteRag(url)
    if command == "search":
        client.search(SEARCH[1], 5)
        mark("request: /api/search")
    else:
        for _ in client.stream(ASK[1], backend="extractive"):
            pass
        mark("request: /api/ask/stream")
    return mark.marks


WALL = "the breakdown process, wall clock"
OUTSIDE = "Python start-up and process exit (wall minus the stages)"


def breakdown(kind: str, command: str, index_dir: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds per stage over `runs` fresh processes, plus what the stages leave out, and the wall."""
    rows: dict[str, list[float]] = {}
    for _ in range(runs):
        wall, out = timed([sys.executable, __file__, "--child", kind, command, str(index_dir)], env)
        marks = json.loads(out.strip().splitlines()[-1])
        marks = {OUTSIDE: wall - sum(marks.values()), **marks, WALL: wall}
        for name, seconds in marks.items():
            rows.setdefault(name, []).append(seconds)
    return {name: statistics.median(values) for name, values in rows.items()}


# --- report ---------------------------------------------------------------------------------------------
def same_json(a: str, b: str) -> bool:
    def strip(text: str) -> object:
        data = json.loads(text)
        if isinstance(data, dict):
            data.pop("timings_ms", None)
        return data

    return strip(a) == strip(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per command and path (default 5)")
    ap.add_argument("--breakdown-runs", type=int, default=3, help="runs per breakdown (default 3)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, command, index_dir = args.child
        marks = (child_cold if kind == "cold" else child_remote)(index_dir, command)
        print(json.dumps(marks))
        return 0

    sys.path.insert(0, str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    index_dir = tmp / "ix"
    env = clean_env(index_dir)
    rag = rag_command()
    proc = None
    try:
        t, _ = timed([*rag, "index", str(ROOT / "seeds"), "--index-dir", str(index_dir)], env)
        print(f"index of seeds/ built in {t:.1f} s at {index_dir}")
        proc, url = start_server(env, tmp / "serve.log")
        timed([*rag, *SEARCH], env)  # the server's first query loads its embedder: not a user's wait
        print(f"rag serve --backend extractive at {url} (pid {proc.pid}); {args.runs} runs per cell\n")

        walls: dict[tuple[str, str], list[float]] = {}
        outputs: dict[tuple[str, str], str] = {}
        for _ in range(args.runs):  # alternate, so a change in the machine's load hits both paths alike
            for command, (_, argv) in COMMANDS.items():
                for path, (_, extra) in PATHS.items():
                    t, out = timed([*rag, *argv, *extra, "--json"], env)
                    walls.setdefault((command, path), []).append(t)
                    outputs[(command, path)] = out
        whole = {key: statistics.median(values) for key, values in walls.items()}

        python = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(args.runs))
        print("| command | in-process (--local) | through rag serve | ratio | same --json |")
        print("|---|---|---|---|---|")
        for command, (title, _) in COMMANDS.items():
            a, b = whole[(command, "local")], whole[(command, "served")]
            same = same_json(outputs[(command, "local")], outputs[(command, "served")])
            print(f"| `{title}` | {a:.2f} s | {b:.2f} s | {a / b:.1f}x | {'yes' if same else 'NO'} |")
        print(f"\n(medians of {args.runs} whole commands each, wall clock; `python -c pass`: {python:.3f} s)")

        for command, (title, _) in COMMANDS.items():
            for path, kind in (("local", "cold"), ("served", "remote")):
                stages = breakdown(kind, command, index_dir, env, args.breakdown_runs)
                wall = stages.pop(WALL)
                print(f"\n`{title}` {PATHS[path][0]}: where the time goes "
                      f"(medians of {args.breakdown_runs} fresh processes with timers)\n")
                print("| stage | seconds | share |")
                print("|---|---|---|")
                for stage, seconds in stages.items():
                    print(f"| {stage} | {seconds:.3f} | {seconds / wall:.0%} |")
                print(f"| **{WALL}** | **{wall:.3f}** | |")
                print(f"| (the whole command, timed above) | {whole[(command, path)]:.3f} | |")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
