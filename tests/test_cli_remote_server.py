"""`rag ask` / `rag search` through a real `rag serve --backend extractive` (a subprocess on a loopback port,
over a copy of the real seeds index, behind an access token): found through its discovery file, the same
output as in-process work on the same questions, 401 as one line, a client that imports nothing heavy,
and the file gone after shutdown.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes_ui import free_port

from rag.cli import main
from rag.discovery import healthy, read_serve_file, serve_file

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-t0ken"
HEAVY = ("torch", "faiss", "sentence_transformers", "transformers", "gradio", "numpy", "bm25s")


@dataclass
class Served:
    url: str
    proc: subprocess.Popen
    index_dir: Path
    log: Path


@pytest.fixture(scope="module")
def served(real_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("served")
    ix = base / "ix"
    shutil.copytree(real_index_dir, ix)  # its own folder: the discovery file must not reach other tests
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        PYTHONPATH=str(ROOT), RAG_INDEX_DIR=str(ix), RAG_AUTH_TOKEN=TOKEN,
        RAG_FEEDBACK_PATH=str(base / "feedback.jsonl"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
    )
    log = base / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag", "serve", "--backend", "extractive", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", proc, ix, log)
    try:
        deadline = time.time() + 240
        while not healthy(served.url, timeout=1.0):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"rag serve did not come up:\n{log.read_text()}")
            time.sleep(0.5)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def env(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    for var in [v for v in os.environ if v.startswith("RAG_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RAG_INDEX_DIR", str(served.index_dir))
    monkeypatch.setenv("RAG_AUTH_TOKEN", TOKEN)
    return served


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch, remote: bool, tty: bool = False) -> str:
    """stdout of `rag ARGV`, in-process (--local) or through the server, which must then do all the work."""
    out = Tty() if tty else io.StringIO()
    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", out)
        if remote:  # a silent fall-back to in-process work would make the comparison meaningless
            import rag.pipeline
            import rag.retriever

            def refuse(*args: object, **kwargs: object) -> None:
                raise AssertionError("worked in-process although a server is running")

            m.setattr(rag.pipeline, "build_pipeline", refuse)
            m.setattr(rag.retriever, "open_retriever", refuse)
        assert main([*argv, *([] if remote else ["--local"])]) == 0
    return out.getvalue()


def without_timings(text: str) -> dict:
    data = json.loads(text)
    assert set(data.pop("timings_ms")) >= {"retrieve", "total"}
    return data


def test_discovery_file_names_the_running_server(served):
    info = read_serve_file(served.index_dir)
    assert info is not None and info.url == served.url and info.pid == served.proc.pid
    assert Path(info.index_dir) == served.index_dir.resolve()


ASKED = [
    ("How much did Microsoft put into Inflection?", None),  # answered with citations
    ("Who won the 2022 FIFA World Cup?", None),  # declined, closest passages
    ("And how much in G42?", "How much did Microsoft put into Inflection?"),  # follow-up, rewritten
]


@pytest.mark.parametrize(("question", "earlier"), ASKED, ids=["answered", "declined", "follow-up"])
def test_ask_output_is_the_same_through_the_server(env, monkeypatch, tmp_path, question, earlier):
    argv = ["ask", question, "--backend", "extractive"]
    if earlier:
        history = tmp_path / "history.json"
        history.write_text(json.dumps([{"role": "user", "content": earlier}]))
        argv += ["--history", str(history)]
    local = run_cli([*argv, "--json"], monkeypatch, remote=False)
    remote = run_cli([*argv, "--json"], monkeypatch, remote=True)
    assert without_timings(remote) == without_timings(local)
    assert run_cli(argv, monkeypatch, remote=True) == run_cli(argv, monkeypatch, remote=False)
    live = run_cli(argv, monkeypatch, remote=True, tty=True)  # a terminal: the draft streams
    assert live == run_cli(argv, monkeypatch, remote=False, tty=True)
    assert ("(understood as: " in live) == bool(earlier)


@pytest.mark.parametrize("flags", [["--json"], []], ids=["json", "text"])
def test_search_output_is_the_same_through_the_server(env, monkeypatch, flags):
    argv = ["search", "exclusive cloud rights", "-k", "4", *flags]
    remote = run_cli(argv, monkeypatch, remote=True)
    assert remote == run_cli(argv, monkeypatch, remote=False) and remote.strip()


def test_401_without_the_token_is_one_line(env, monkeypatch, capsys):
    monkeypatch.delenv("RAG_AUTH_TOKEN")
    assert main(["ask", "How much did Microsoft put into Inflection?", "--backend", "extractive"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert env.url in err and "RAG_AUTH_TOKEN" in err and "--local" in err


@pytest.mark.parametrize("argv", [["ask", "Who leads Microsoft AI?", "--backend", "extractive", "--json"],
                                  ["search", "Grok", "--json"]], ids=["ask", "search"])
def test_client_command_imports_nothing_heavy(env, argv):
    code = (
        "import json, sys\n"
        "from rag.cli import main\n"
        f"rc = main({argv!r})\n"
        "sys.stderr.write('MODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)
    modules = json.loads(proc.stderr.split("MODULES ", 1)[1])
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    imported = {ln.split("|")[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")}
    assert "rag.remote" in imported and not imported & set(HEAVY)


def test_shutdown_removes_the_discovery_file_and_commands_work_in_process(env, capsys):
    """Last in this module: it stops the server."""
    served = env
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(30)
    assert not serve_file(served.index_dir).exists(), served.log.read_text()
    assert main(["search", "Grok", "-k", "1", "--json"]) == 0  # no server now: in-process
    assert json.loads(capsys.readouterr().out)[0]["rank"] == 1
