"""`rag ask` / `rag search` through a running server, with fakes: which server is chosen (discovery file,
explicit URL, --local, stale pid), the same output as in-process work, errors as one line, and a client
path that imports nothing heavy.

Two fake servers: the real API router (`ui.api`) and access guard (`ui.middleware`) over the scripted
`FakePipeline`, on loopback with uvicorn; and `Canned`, a stdlib server with scripted replies, for what a
real server will not do on demand (cut the connection mid-answer, answer as something else).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fakes_ui import FakePipeline, ServerThread, free_port

from rag.cli import main
from rag.cmd_ask import render
from rag.cmd_index import print_hits
from rag.config import Config
from rag.discovery import (
    choose_server,
    own_process,
    read_serve_file,
    remove_serve_file,
    serve_file,
    write_serve_file,
)
from rag.records import answer_from_json, answer_to_json, hit_from_json, hit_to_json

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How much did Microsoft invest?"
HEAVY = ("torch", "faiss", "sentence_transformers", "transformers", "gradio", "numpy", "bm25s", "fastapi",
         "uvicorn", "rag.pipeline", "rag.retriever", "index.embedder", "index.store_faiss")


@pytest.fixture
def ix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment whose index folder exists but holds no index (in-process work fails at once)."""
    for var in [v for v in os.environ if v.startswith("RAG_")]:
        monkeypatch.delenv(var)
    folder = tmp_path / "ix"
    folder.mkdir()
    monkeypatch.setenv("RAG_INDEX_DIR", str(folder))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake-hash")
    return folder


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# --- a scripted stdlib server -----------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    chunks: tuple[bytes, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False  # drop the connection before the body is complete


class Canned:
    """Loopback HTTP/1.1 server answering each path with a `Reply`; records the requests it got."""

    def __init__(self, replies: dict[str, Reply]) -> None:
        self.replies = replies
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                self._reply()

            def do_POST(self) -> None:
                self._reply()

            def _reply(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size) if size else b""
                path = self.path.split("?")[0]
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                r = outer.replies.get(path, Reply(404, (b'{"error": "NotFound", "detail": "Not Found"}',)))
                self.send_response(r.status)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for c in r.chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                    self.wfile.flush()
                if r.cut:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"0\r\n\r\n")

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def api_calls(self) -> list[str]:
        return [p for p, _, _ in self.requests if not p.startswith("/api/health")]

    def __enter__(self) -> Canned:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        return None  # a connection cut on purpose is not news; the default prints a traceback


HEALTHY = {"/api/health": Reply(200, (b'{"status": "ok"}',))}


def ndjson(*events: tuple[str, dict]) -> tuple[bytes, ...]:
    return tuple(json.dumps({"event": e, "data": d}).encode() + b"\n" for e, d in events)


def fake_answer_json() -> dict:
    return next(answer_to_json(e.answer) for e in FakePipeline().stream(QUESTION) if hasattr(e, "answer"))


def answering() -> dict[str, Reply]:
    return {**HEALTHY, "/api/ask/stream": Reply(200, ndjson(("final", fake_answer_json())))}


# --- the real API router over the scripted pipeline --------------------------------------------------
@pytest.fixture
def api() -> Iterator[tuple[str, FakePipeline]]:
    from fastapi import FastAPI

    from ui.api import build_router
    from ui.middleware import Guard

    fake = FakePipeline(config=Config.from_env({}, max_question_chars=200))
    app = FastAPI()
    app.include_router(build_router(fake))
    app.add_middleware(Guard, token="t0ken")
    with ServerThread(app) as url:
        yield url, fake


# --- records survive the trip ------------------------------------------------------------------------
def test_answer_and_hits_round_trip_through_json():
    for event in FakePipeline().stream(QUESTION):
        answer = getattr(event, "answer", None)
    data = answer_to_json(answer)
    back = answer_from_json(data)
    assert answer_to_json(back) == data
    assert dataclasses.replace(back, retrieved=answer.retrieved) == answer  # hits: no doc_id in the shape
    assert [(h.chunk.id, h.rank, h.scores) for h in back.retrieved] == [
        (h.chunk.id, h.rank, h.scores) for h in answer.retrieved
    ]
    rewritten = answer_from_json({**data, "standalone_question": "What did Microsoft pay for its G42 stake?"})
    assert rewritten.standalone_question == "What did Microsoft pay for its G42 stake?"
    hit = answer.retrieved[1]
    assert hit_to_json(hit_from_json(hit_to_json(hit))) == hit_to_json(hit)
    data["reasons"] = ["off_topic", "a_reason_from_a_newer_server"]
    assert [r.value for r in answer_from_json(data).reasons] == ["off_topic"]


# --- the discovery file ------------------------------------------------------------------------------
def test_serve_file_written_read_and_removed_only_by_its_owner(tmp_path):
    write_serve_file(tmp_path, "http://127.0.0.1:7860/")
    info = read_serve_file(tmp_path)
    assert info is not None and info.url == "http://127.0.0.1:7860" and info.pid == os.getpid()
    assert info.index_dir == str(tmp_path.resolve()) and info.started.endswith("+00:00")
    assert info.host == socket.gethostname()
    remove_serve_file(tmp_path, pid=info.pid + 1)  # another server's shutdown leaves ours alone
    assert serve_file(tmp_path).exists()
    remove_serve_file(tmp_path)
    assert not serve_file(tmp_path).exists() and list(tmp_path.iterdir()) == []


def test_own_process():
    assert own_process(os.getpid()) is True
    assert own_process(dead_pid()) is False
    assert own_process(0) is False
    if os.geteuid() != 0:
        assert own_process(1) is None  # init: alive, someone else's


def test_discovered_server_is_used(ix, capsys):
    with Canned(answering()) as srv:
        write_serve_file(ix, srv.url)
        assert choose_server(Config.from_env()) == srv.url
        assert main(["ask", QUESTION, "--json"]) == 0
        assert srv.api_calls() == ["/api/ask/stream?format=ndjson"]
    assert json.loads(capsys.readouterr().out)["answer"] == fake_answer_json()["answer"]


def test_stale_pid_is_ignored_and_its_file_removed(ix, capsys):
    with Canned(answering()) as srv:
        write_serve_file(ix, srv.url, pid=dead_pid())
        assert main(["ask", QUESTION]) == 1
        assert srv.requests == []
    assert "rag index" in one_line_error(capsys)  # worked in-process: no index there
    assert not serve_file(ix).exists()


def test_unhealthy_or_foreign_announcements_are_ignored(ix, tmp_path):
    with Canned({}) as srv:  # alive and ours, but /api/health does not answer 200
        write_serve_file(ix, srv.url)
        assert choose_server(Config.from_env()) is None
        assert serve_file(ix).exists()  # it may be starting: not stale
    with Canned(HEALTHY) as srv:  # a copy of another index folder's file
        write_serve_file(tmp_path / "elsewhere", srv.url)
        serve_file(ix).write_bytes(serve_file(tmp_path / "elsewhere").read_bytes())
        assert choose_server(Config.from_env()) is None
    if os.geteuid() != 0:  # a file naming someone else's process is never trusted
        write_serve_file(ix, "http://127.0.0.1:9", pid=1)
        assert choose_server(Config.from_env()) is None and serve_file(ix).exists()
    with Canned(HEALTHY) as srv:  # another machine's server, in a shared folder: its pid means nothing here
        write_serve_file(ix, srv.url, pid=dead_pid())
        data = json.loads(serve_file(ix).read_text())
        serve_file(ix).write_text(json.dumps({**data, "host": "another-machine"}))
        assert choose_server(Config.from_env()) is None and serve_file(ix).exists()


def test_slow_health_falls_back_quickly(ix):
    with socket.socket() as s:  # accepts connections (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        write_serve_file(ix, f"http://127.0.0.1:{s.getsockname()[1]}")
        start = time.perf_counter()
        assert choose_server(Config.from_env()) is None
        assert time.perf_counter() - start < 1.5


def test_explicit_url_wins_over_the_discovery_file(ix, monkeypatch, capsys):
    with Canned(answering()) as announced, Canned(answering()) as named:
        write_serve_file(ix, announced.url)
        monkeypatch.setenv("RAG_SERVER_URL", named.url + "/")
        assert main(["ask", QUESTION]) == 0
        assert named.api_calls() and announced.requests == []
        monkeypatch.delenv("RAG_SERVER_URL")
        assert main(["ask", QUESTION, "--server", named.url]) == 0
        assert len(named.api_calls()) == 2 and announced.requests == []


@pytest.mark.parametrize(
    ("ask", "search"),
    [(["--local"], ["--local"]), (["--server", "off"], ["--server", "off"]),
     (["--llm-model", "/x.gguf"], ["--store", "faiss"])],
    ids=["local", "off", "own-pipeline-flags"],
)
def test_in_process_forced(ix, monkeypatch, capsys, ask, search):
    with Canned(answering()) as srv:
        write_serve_file(ix, srv.url)
        monkeypatch.setenv("RAG_SERVER_URL", srv.url)
        assert main(["ask", QUESTION, *ask]) == 1
        assert "rag index" in one_line_error(capsys)  # worked in-process: no index there
        assert main(["search", "Microsoft", *search]) == 1
        assert "rag index" in one_line_error(capsys)
        assert srv.requests == []


def test_server_env_off_forces_in_process(ix, monkeypatch, capsys):
    with Canned(answering()) as srv:
        write_serve_file(ix, srv.url)
        monkeypatch.setenv("RAG_SERVER_URL", "OFF")
        assert main(["search", "Microsoft"]) == 1
        assert srv.requests == []
    assert "rag index" in one_line_error(capsys)


def test_server_url_that_is_not_a_url(ix, monkeypatch, capsys):
    monkeypatch.setenv("RAG_SERVER_URL", "localhost:7860")
    assert main(["search", "Microsoft"]) == 2
    assert "http://HOST:PORT" in one_line_error(capsys)


# --- same output as in-process work ------------------------------------------------------------------
@pytest.mark.parametrize("flags", [["--json"], ["--no-stream"], []], ids=["json", "text", "default"])
def test_ask_output_equals_in_process(ix, api, monkeypatch, capsys, flags):
    url, fake = api
    monkeypatch.setenv("RAG_AUTH_TOKEN", "t0ken")
    expected = io.StringIO()
    render(FakePipeline().stream(QUESTION), as_json="--json" in flags, stream="--no-stream" not in flags,
           out=expected)
    assert main(["ask", QUESTION, "--server", url, *flags]) == 0
    assert capsys.readouterr().out == expected.getvalue()
    assert fake.calls[-1]["k"] is None and fake.calls[-1]["backend"] is None  # the server's own settings


@pytest.mark.parametrize("flags", [["--json"], []], ids=["json", "text"])
def test_search_output_equals_in_process(ix, api, monkeypatch, capsys, flags):
    url, fake = api
    monkeypatch.setenv("RAG_AUTH_TOKEN", "t0ken")
    print_hits(fake.search("cloud", k=2), as_json=bool(flags))
    expected = capsys.readouterr().out
    assert main(["search", "cloud", "-k", "2", "--server", url, *flags]) == 0
    assert capsys.readouterr().out == expected and expected


def test_settings_given_here_are_sent(ix, api, monkeypatch, capsys):
    url, fake = api
    monkeypatch.setenv("RAG_AUTH_TOKEN", "t0ken")
    monkeypatch.setenv("RAG_K", "1")
    history = ix.parent / "h.json"
    history.write_text(json.dumps([{"role": "user", "content": "Who leads Microsoft AI?"}]))
    assert main(["ask", QUESTION, "--server", url, "--history", str(history), "--json"]) == 0
    call = fake.calls[-1]
    assert call["k"] == 1 and [t.content for t in call["history"]] == ["Who leads Microsoft AI?"]
    assert len(json.loads(capsys.readouterr().out)["retrieved"]) == 1


# --- errors: one line, naming the fix, the in-process exit codes -------------------------------------
def test_401_without_credentials(ix, api, capsys):
    url, _ = api
    assert main(["ask", QUESTION, "--server", url]) == 2
    err = one_line_error(capsys)
    assert "needs credentials" in err and "RAG_AUTH_TOKEN" in err and "--local" in err
    assert main(["search", "cloud", "--server", url]) == 2
    assert "RAG_AUTH_TOKEN" in one_line_error(capsys)


def test_401_with_wrong_credentials(ix, api, monkeypatch, capsys):
    url, _ = api
    monkeypatch.setenv("RAG_AUTH_TOKEN", "wrong")
    assert main(["ask", QUESTION, "--server", url]) == 2
    assert "refused the credentials" in one_line_error(capsys)


def test_server_errors_keep_in_process_classes(ix, api, monkeypatch, capsys):
    url, _ = api
    monkeypatch.setenv("RAG_AUTH_TOKEN", "t0ken")
    assert main(["ask", "backend-down please", "--server", url]) == 1  # error event mid-stream
    assert "The model backend is unreachable" in one_line_error(capsys)
    assert main(["ask", "x" * 500, "--server", url]) == 2  # 413
    assert "limit is 200" in one_line_error(capsys)
    assert main(["ask", QUESTION, "--backend", "openai", "--server", url]) == 2  # not offered there
    err = one_line_error(capsys)
    assert "not offered" in err and "--local" in err


def test_busy_server(ix, monkeypatch, capsys):
    from fastapi import FastAPI

    from ui.api import build_router
    from ui.gate import GenerationGate

    fake = FakePipeline(config=Config.from_env({}, queue_max=0), token_delay=0.5)
    gate = GenerationGate.from_config(fake.config)
    app = FastAPI()
    app.include_router(build_router(fake, gate))
    with ServerThread(app) as url:
        holder = threading.Thread(target=main, args=(["ask", QUESTION, "--server", url],), daemon=True)
        holder.start()
        deadline = time.time() + 10
        while not any(lane["active"] for lane in gate.stats()["lanes"].values()) and time.time() < deadline:
            time.sleep(0.02)
        assert main(["ask", QUESTION, "--server", url]) == 1
        holder.join(10)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "is busy (HTTP 503). Retry in" in err[0] and "--local" in err[0]


def test_connection_refused(ix, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["ask", QUESTION, "--server", url]) == 1
    err = one_line_error(capsys)
    assert "Cannot reach the rag serve" in err and "--local" in err and "rag serve" in err


def test_connection_cut_mid_answer(ix, capsys):
    sources = {"standalone_question": QUESTION, "retrieved": fake_answer_json()["retrieved"]}
    events = ndjson(("sources", sources), ("token", {"text": "Micro"}))
    replies = {"/api/ask/stream": Reply(200, events, cut=True)}
    with Canned(replies) as srv:
        assert main(["ask", QUESTION, "--server", srv.url]) == 1
    err = one_line_error(capsys)
    assert "broke mid-answer" in err and "--local" in err


def test_something_else_at_that_address(ix, capsys):
    with Canned({"/api/ask/stream": Reply(200, (b"<html>hello</html>\n",))}) as srv:
        assert main(["ask", QUESTION, "--server", srv.url]) == 2
        assert "not as a rag serve does" in one_line_error(capsys)
    with Canned({}) as srv:  # 404 everywhere
        assert main(["search", "x", "--server", srv.url]) == 2
        assert "has no rag API" in one_line_error(capsys)


# --- the client path stays light ---------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["ask", QUESTION, "--json"], ["search", "cloud", "--json"]],
                         ids=["ask", "search"])
def test_client_path_imports_nothing_heavy(ix, api, argv):
    url, _ = api
    write_serve_file(ix, url)  # found by discovery, as a user's command would
    code = (
        "import json, sys\n"
        "from rag.cli import main\n"
        f"rc = main({argv!r})\n"
        "sys.stderr.write('MODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_AUTH_TOKEN": "t0ken"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)  # it answered (through the server: there is no index here)
    modules = json.loads(proc.stderr.split("MODULES ", 1)[1])
    loaded = [m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY]
    assert loaded == [], f"the client path imported {sorted({m.split('.')[0] for m in loaded})}"
    assert "httpx" in modules and "rag.remote" in modules
