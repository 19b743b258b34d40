"""The Gradio wiring: the chat answers through Gradio's own API (`gradio_client`), likes are recorded.

Runs a real uvicorn on loopback with the scripted pipeline; the real-pipeline variant is in
tests/test_api_server.py.
"""

from __future__ import annotations

import pytest
from fakes_ui import FakePipeline, ServerThread

from rag.config import Config
from ui.feedback import read_feedback
from ui.server import build_server

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    fb = tmp_path_factory.mktemp("fb") / "feedback.jsonl"
    config = Config.from_env({}, max_question_chars=200, feedback_path=str(fb))
    with ServerThread(build_server(FakePipeline(config=config), env={})) as url:
        yield url, fb


def test_gradio_client_chat(served):
    from gradio_client import Client

    url, _ = served
    c = Client(url + "/", verbose=False)
    history, sources = c.predict("How much did Microsoft invest?", [], api_name="/chat")
    assert history[-1]["role"] == "assistant"
    text = history[-1]["content"] if isinstance(history[-1]["content"], str) else str(history[-1]["content"])
    assert "$650 million" in text and "rag-src-m-1" in text
    assert "<mark>" in sources
    # a follow-up with the returned history
    history2, _ = c.predict("And who leads it?", history, api_name="/chat")
    assert len(history2) == 4


def test_gradio_client_friendly_error(served):
    from gradio_client import Client

    url, _ = served
    history, _ = Client(url + "/", verbose=False).predict("x" * 500, [], api_name="/chat")
    assert "limit is 200" in str(history[-1]["content"])


def test_embed_view_is_served(served):
    import httpx

    url, _ = served
    r = httpx.get(url + "/embed/")
    assert r.status_code == 200 and "rag-chat:height" in r.text
    assert httpx.get(url + "/embed", follow_redirects=False).status_code in (302, 307)


def _fns(demo):
    return {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}


class Req:
    """The part of gr.Request the page handlers read."""

    def __init__(self, session: str) -> None:
        self.session_hash = session


def test_vote_records_final_answer_citations_and_conversation(tmp_path):
    from ui.app import build_app

    fb = tmp_path / "fb.jsonl"
    demo = build_app(FakePipeline(config=Config.from_env({}, feedback_path=str(fb))))
    fns, req = _fns(demo), Req("s1")
    first = list(fns["ask"]("1\nHow much?", req))
    shown = [u[0] for u in first if isinstance(u[0], list)]
    assert "Queued" in shown[0][-1]["content"] and "rag-done" in shown[-1][-1]["content"]
    store = first[-1][3]  # the last update saves the conversation for the browser
    assert store["items"][0]["title"] == "How much?" and store["current"] == store["items"][0]["id"]
    done = fns["ask"]("2\n", req).__next__()[0]
    html = done[-1]["content"]
    assert "rag-done" in html and 'data-vote="up"' in html
    msg_id = html.split('data-msg="')[1].split('"')[0]
    assert fns["vote"]("nosuch|up|1", req) is not None  # unknown answer: nothing recorded
    after = fns["vote"](f"{msg_id}|up|1", req)
    assert "was recorded" in after[-1]["content"] and 'data-vote="up"' not in after[-1]["content"]
    rows = read_feedback(fb)
    assert len(rows) == 1 and rows[0]["vote"] == "up" and rows[0]["question"] == "How much?"
    assert rows[0]["answer"] == "Microsoft invested $650 million [1]."
    assert rows[0]["citations"][0]["quote"].startswith("Microsoft invested")
    assert rows[0]["conversation_id"] and rows[0]["message_id"] == msg_id


def test_old_answer_keeps_its_own_panel():
    from ui.app import build_app

    demo = build_app(FakePipeline())
    fns, req = _fns(demo), Req("s2")
    for q in ("How much?", "please refuse this"):
        list(fns["ask"]("1\n" + q, req))
    first = fns["ask"]("2\n", req).__next__()[0][1]["content"]
    msg_id = first.split('data-msg="')[1].split('"')[0]
    panel = fns["show"](f"{msg_id}|123", req)
    assert f'id="rag-src-{msg_id}-1"' in panel and "<mark>" in panel


def test_clear_stops_and_stays_cleared():
    from ui.app import build_app

    demo = build_app(FakePipeline(token_delay=0.01))
    fns, req = _fns(demo), Req("s3")
    steps = fns["ask"]("1\nHow much?", req)
    next(steps), next(steps)
    assert len(next(fns["ask"]("2\nAnd more?", req))[0]) == 4  # shown at once, queued
    cleared, *_ = fns["clear"](req)
    rest = list(steps)
    assert cleared == [] and all(not r[0] for r in rest if isinstance(r[0], list))
    assert next(fns["ask"]("3\n", req))[0] == []
