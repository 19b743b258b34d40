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
    assert "$650 million" in text and "rag-src-1" in text
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


def test_like_records_feedback_with_citations(tmp_path):
    import gradio as gr

    from ui.app import build_app

    fb = tmp_path / "fb.jsonl"
    demo = build_app(FakePipeline(config=Config.from_env({}, feedback_path=str(fb))))
    fns = {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}
    *_, (history, _, records) = list(fns["chat"]("How much?", [], {}))
    like = gr.LikeData(None, {"index": 1, "value": history[1]["content"], "liked": True})
    fns["on_like"](like, history, records)
    fns["on_like"](gr.LikeData(None, {"index": 1, "value": "x", "liked": False}), history, {})
    rows = read_feedback(fb)
    assert rows[0]["vote"] == "up" and rows[0]["question"] == "How much?"
    assert rows[0]["citations"][0]["quote"].startswith("Microsoft invested")
    assert rows[1]["vote"] == "down" and rows[1]["question"] == "How much?"
