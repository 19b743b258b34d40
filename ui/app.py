"""The chat page as a Gradio 6 `Blocks`: `build_app(pipeline) -> gr.Blocks`, separate from serving.

The page: questions appear at once (queued ones marked with their place in line) and are answered in
order by one worker per tab; the draft streams greyed as a draft and is replaced in place by the
verified answer; Stop (or Esc) ends the answer being written, Clear ends everything and stays clear.
Each answer keeps its own sources panel ([n] in any answer shows that answer's passage), its source
list, Copy (plain text) and 👍/👎 (recorded with the final answer, its citations and the conversation
id). Gradio's API keeps `/chat` (message, history) -> (history, sources) for `gradio_client`.
Logic lives in `ui.chat`, `ui.conversation`, `ui.render`; this module only wires components. Styling
and the page script are `ui/static/page.css` and `page.js`, passed when the app is mounted (Gradio 6).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr

from ui import history, render
from ui.app_documents import documents_panel
from ui.chat import ChatHandler, PipelineLike, message_text, note_html
from ui.conversation import DONE, ERROR, RUNNING, Conversation, Sessions, take_back_last
from ui.feedback import normalize_vote, record_feedback
from ui.gate import GenerationGate
from ui.uploads import Uploads

log = logging.getLogger("ui.app")
STATIC = Path(__file__).parent / "static"

EXAMPLES = [
    "How much did Microsoft invest in Inflection?",
    "Which cloud provider has exclusive rights for OpenAI until 2032?",
    "Who leads Microsoft AI?",
    "Why is Microsoft diversifying beyond OpenAI?",
]

PAGE_CSS = (STATIC / "page.css").read_text(encoding="utf-8")

# The embed view: no vh-based sizes (the iframe follows the content; vh would feed back), less padding.
EMBED_CSS = (
    PAGE_CSS
    + """
.gradio-container {padding: 0 !important}
.gradio-container .main.app {padding: 6px !important}
.rag-embed {gap: 10px !important}
.rag-embed #rag-chat {height: 380px !important}
.rag-embed #rag-sources {max-height: none}
"""
)

# Gradio 6 pads `.main.app` (32px each side; the chat was 326 of 390 px on a phone). Gradio scopes the
# `css=` rules inside @media to its own `.contain`, below that element, so this one goes in the head.
PHONE_STYLE = """<style>
@media (max-width: 640px) {
  .gradio-container .main.app {padding-left: 6px !important; padding-right: 6px !important}
}
</style>
"""
PAGE_HEAD = PHONE_STYLE + "<script>\n" + (STATIC / "page.js").read_text(encoding="utf-8") + "\n</script>\n"

# In the embed view, report the page height to the embedding page (ui/static/embed.js sizes the iframe).
EMBED_HEAD = (
    PAGE_HEAD
    + """
<script>
(function () {
  if (window.parent === window) return;
  var last = 0, watched = null;
  function report() {
    // The content's height, not the document's: the document is never shorter than the iframe itself.
    var c = document.querySelector('.rag-embed');
    if (!c) return;
    if (c !== watched) { watched = c; new ResizeObserver(report).observe(c); }
    var h = Math.ceil(c.getBoundingClientRect().bottom + window.scrollY + 24);
    if (Math.abs(h - last) <= 2) return;
    last = h;
    window.parent.postMessage({type: 'rag-chat:height', height: h}, '*');
  }
  window.addEventListener('load', report);
  setInterval(report, 1000);
})();
</script>
"""
)

STOPPED_NOTE = "Stopped. Ask again, or send another question."


def page_theme() -> gr.themes.Base:
    """Gradio's default look with system fonts: no font downloads, so it renders the same offline."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def _key(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", "") or "")


def build_app(
    pipeline: PipelineLike, *, embed: bool = False, gate: GenerationGate | None = None
) -> gr.Blocks:
    """The chat page for `pipeline`; `embed=True` drops the page chrome for iframes.

    Example: demo = build_app(build_pipeline(Config.from_env())); gr.mount_gradio_app(app, demo, "/",
    css=PAGE_CSS, head=PAGE_HEAD)
    """
    cfg = pipeline.config
    handler = ChatHandler(pipeline, gate)
    feedback_path = getattr(cfg, "feedback_path", ".rag/feedback.jsonl")
    gen_limit = max(1, int(getattr(cfg, "concurrency", 1)))
    sessions = Sessions()
    stores: dict[str, dict[str, Any]] = {}  # each tab's copy of its browser store
    uploads = Uploads(pipeline)
    show_docs = not embed and uploads.mode != "off" and hasattr(pipeline, "retriever")
    origin = "embed" if embed else "chat"

    def enqueue(sent: str, request: gr.Request):
        """Show the question at once (`sent` is "<nonce>\n<question>", so a repeat is a new event)."""
        conv = sessions.get(_key(request))
        text = (sent or "").split("\n", 1)[-1] if "\n" in (sent or "") else ""
        if text.strip():
            conv.add(text)
        return conv

    def answer_queue(conv: Conversation):
        """Answer `conv`'s queued questions in order (the caller holds the worker claim)."""
        finished = False
        try:
            yield conv.messages(), gr.skip(), gr.update(submit_btn=False, stop_btn="Stop")
            # take_next sees every question added before it, and releases the worker only when none is
            # left, under the conversation's lock: a question is either taken here or claims the worker.
            while (ex := conv.take_next()) is not None:
                turns = conv.history_before(ex, handler.max_turns)
                steps = handler.run(ex, turns)  # a generator: closed on Stop
                for panel in steps:
                    if ex.status not in (RUNNING, DONE, ERROR):
                        steps.close()  # stopped or cleared: the model stops, the page already says so
                        break
                    yield conv.messages(), gr.skip() if panel is None else panel, gr.skip()
                yield conv.messages(), gr.skip(), gr.skip()
            finished = True
        finally:
            if not finished:  # Gradio gave up on this call: free the conversation for the next one
                conv.stop(note_html(STOPPED_NOTE))
                conv.release_worker()
        # another call may have claimed the worker meanwhile: then it owns the buttons
        yield (
            conv.messages(),
            gr.skip(),
            gr.skip() if conv.busy() else gr.update(submit_btn="Ask", stop_btn=False),
        )

    def persist(key: str, conv: Conversation) -> tuple[dict[str, Any], Any]:
        """Save `conv` into this tab's store (kept in the browser): the store and the list's update."""
        store = stores[key] = history.save(stores.get(key), conv)
        listed = history.choices(store)
        return store, gr.update(
            choices=listed, value=conv.id if any(i == conv.id for _, i in listed) else None
        )

    def ask(sent: str, request: gr.Request):
        """Add the question, then answer this tab's queue in order, unless a worker already does."""
        conv = enqueue(sent, request)
        if not conv.claim_worker():
            yield conv.messages(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        for update in answer_queue(conv):
            yield *update, gr.skip(), gr.skip()
        yield (gr.skip(), gr.skip(), gr.skip(), *persist(_key(request), conv))

    def restore(store: dict[str, Any] | None, request: gr.Request):
        """On page load: the conversation the browser kept, and the list of earlier ones."""
        key = _key(request)
        stores[key] = store if isinstance(store, dict) else history.empty_store()
        conv = sessions.get(key)
        with conv.lock:  # a question sent before the page finished loading wins over the stored one
            if not conv.exchanges:
                conv = sessions.put(key, history.current(stores[key]))
        return show_conversation(conv, key)

    def show_conversation(conv: Conversation, key: str):
        last = next((e.panel for e in reversed(conv.exchanges) if e.panel), "") or render.empty_panel()
        store, listing = persist(key, conv)
        return conv.messages(), last, store, listing, conv.title

    def new_conversation(request: gr.Request):
        key = _key(request)
        persist(key, sessions.get(key))
        return show_conversation(sessions.put(key, Conversation()), key)

    def open_conversation(conv_id: str, request: gr.Request):
        key = _key(request)
        persist(key, sessions.get(key))
        return show_conversation(sessions.put(key, history.pick(stores.get(key), conv_id or "")), key)

    def rename_conversation(title: str, request: gr.Request):
        key = _key(request)
        conv = sessions.get(key)
        conv.title = (title or "").strip()[:80] or conv.title
        return persist(key, conv)

    def delete_conversation(request: gr.Request):
        key = _key(request)
        stores[key] = history.remove(stores.get(key), sessions.get(key).id)
        return show_conversation(sessions.put(key, Conversation()), key)

    def export_conversation(request: gr.Request):
        conv = sessions.get(_key(request))
        out = Path(tempfile.mkdtemp(prefix="rag-chat-")) / "conversation.md"
        out.write_text(history.to_markdown(conv), encoding="utf-8")
        return gr.update(value=str(out), visible=True)

    def regenerate(request: gr.Request):
        """Ask the last question again (its answer is replaced)."""
        conv = sessions.get(_key(request))
        ex = take_back_last(conv)
        if ex is None:
            return gr.skip(), gr.skip()
        return conv.messages(), f"{time.time_ns()}\n{ex.question}"

    def edit_last(request: gr.Request):
        """Put the last question back into the box to edit and resend (its answer is dropped)."""
        conv = sessions.get(_key(request))
        ex = take_back_last(conv)
        return (gr.skip(), gr.skip()) if ex is None else (conv.messages(), ex.question)

    def stop(request: gr.Request):
        conv = sessions.get(_key(request))
        conv.stop(note_html(STOPPED_NOTE))
        return conv.messages()

    def clear(request: gr.Request):
        """Stop everything and forget this conversation (also in the browser's list)."""
        key = _key(request)
        conv = sessions.get(key)
        conv.clear()
        stores[key] = history.remove(stores.get(key), conv.id)
        return [], render.empty_panel(), gr.update(submit_btn="Ask", stop_btn=False), *persist(key, conv)

    def show(value: str, request: gr.Request) -> Any:
        """The sources panel of one answer (a click on [n] in an older answer)."""
        ex = sessions.get(_key(request)).find((value or "").split("|")[0])
        return ex.panel if ex is not None and ex.panel else gr.skip()

    def vote(value: str, request: gr.Request):
        """A vote on a final answer, recorded with its citations and the conversation id; shown."""
        conv = sessions.get(_key(request))
        parts = (value or "").split("|")
        ex = conv.find(parts[0]) if parts else None
        if ex is None or ex.status != DONE or ex.record is None or len(parts) < 2:
            return gr.skip()
        try:
            ex.vote = normalize_vote(parts[1])
        except ValueError:
            return gr.skip()
        rec = ex.record
        record_feedback(
            feedback_path,
            vote=ex.vote,
            question=rec.get("question", ex.question),
            answer=rec.get("answer", ex.answer),
            citations=rec.get("citations", []),
            backend=rec.get("backend", ""),
            origin=origin,
            conversation_id=conv.id,
            message_id=ex.id,
        )
        ex.html = ex.html.replace(
            '<div class="rag-tools">',
            f'<div class="rag-tools"><span class="rag-voted">Thanks, your vote ({ex.vote}) '
            "was recorded.</span>",
            1,
        )
        for kind in ("up", "down"):  # the vote controls go: one vote per answer
            ex.html = _drop_vote_link(ex.html, kind)
        return conv.messages()

    def unload(request: gr.Request) -> None:
        sessions.drop(_key(request))
        stores.pop(_key(request), None)

    def pick_example(evt: gr.SelectData) -> str:
        value = evt.value if isinstance(evt.value, dict) else {}
        return f"{time.time_ns()}\n{value.get('text', '')}"

    def chat_api(message: str, history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        """Answer `message` after `history` (Gradio chat messages): the new history and the sources panel."""
        messages: list[dict[str, Any]] = list(history or [])
        panel = render.empty_panel()
        for up in handler.respond(message_text(message), messages):
            messages = up.messages
            panel = up.sources_html if up.sources_html is not None else panel
        return messages, panel

    worker: dict[str, Any] = {
        "concurrency_id": "chat",
        # Every tab's question shows at once; generation itself is limited by the gate.
        "concurrency_limit": max(16, gen_limit + 4),
        "show_progress": "hidden",
        "api_visibility": "private",
    }

    with gr.Blocks(title="Ask the documents", analytics_enabled=False, fill_width=embed) as demo:
        if not embed:
            gr.Markdown(
                "# Ask the documents\nAnswers are written from the indexed articles and cite them: "
                "click a [n] to see the passage.",
                elem_id="rag-header",
            )
        with gr.Row(equal_height=False, elem_classes=["rag-embed"] if embed else None):
            with gr.Column(scale=3, min_width=280):
                chatbot = gr.Chatbot(
                    label="Chat",
                    elem_id="rag-chat",
                    height=380 if embed else 540,
                    examples=[{"text": q} for q in EXAMPLES],
                    placeholder="Ask about the documents, or pick an example:",
                    feedback_options=None,  # our own 👍/👎, on final answers only
                    buttons=[],  # our own Copy: plain text and sources, not the raw HTML
                    render_markdown=False,  # our HTML, built by ui.sanitize: a document's Markdown stays text
                    layout="bubble",
                )
                box = gr.Textbox(
                    label="Question",
                    placeholder="Ask about the documents…",
                    show_label=False,
                    lines=1,
                    max_lines=6,
                    submit_btn="Ask",
                    stop_btn=False,
                    autofocus=not embed,
                    elem_id="rag-input",
                )
                with gr.Row(elem_id="rag-actions"):
                    regen_btn = gr.Button("Regenerate", size="sm", variant="secondary", scale=0)
                    edit_btn = gr.Button("Edit last question", size="sm", variant="secondary", scale=0)
                with gr.Accordion("Conversations", open=False, elem_id="rag-conversations"):
                    conv_list = gr.Dropdown(
                        label="Earlier conversations", choices=[], value=None, elem_id="rag-conv-list"
                    )
                    conv_title = gr.Textbox(label="Title", max_lines=1, elem_id="rag-conv-title")
                    with gr.Row():
                        new_btn = gr.Button("New", size="sm", elem_id="rag-conv-new")
                        rename_btn = gr.Button("Rename", size="sm", elem_id="rag-conv-rename")
                        delete_btn = gr.Button("Delete", size="sm", variant="stop", elem_id="rag-conv-delete")
                        export_btn = gr.Button("Export as Markdown", size="sm", elem_id="rag-conv-export")
                    export_file = gr.File(
                        label="Export", visible=False, interactive=False, height=80, elem_id="rag-conv-file"
                    )
                if show_docs:
                    documents_panel(uploads, worker)
            with gr.Column(scale=2, min_width=280):
                sources = gr.HTML(render.empty_panel(), elem_id="rag-sources", padding=False)
        # Kept in the browser's localStorage; the secret only keeps other sites' scripts from reading it
        # as plain JSON, it is not a protection against the user's own browser.
        store = gr.BrowserState(
            history.empty_store(),
            storage_key="rag-chat-conversations" + ("-embed" if embed else ""),
            secret="rag-chat:" + str(getattr(cfg, "index_dir", "")),
        )

        # Page-script channels: a question between the box and the queue, [n] clicks, votes.
        pending = gr.Textbox(visible="hidden", elem_id="rag-pending")
        show_box = gr.Textbox(visible="hidden", elem_id="rag-show")
        vote_box = gr.Textbox(visible="hidden", elem_id="rag-vote")
        private: dict[str, Any] = {"queue": False, "api_visibility": "private"}
        # Taking the question runs in the browser: a server round trip could wipe what is typed meanwhile.
        # Each question is its own event (a nonce makes a repeated question a change too), with no
        # `.then` chain: Gradio skips a chained step while its previous run is pending, which dropped
        # questions sent in quick succession.
        take = (
            f"(t) => [(t || '').trim().length > {handler.max_chars} ? t : '', Date.now() + '\\n' + (t || '')]"
        )
        box.submit(None, box, [box, pending], js=take, trigger_mode="multiple", **private)
        chatbot.example_select(pick_example, None, pending, trigger_mode="multiple", **private)
        pending.change(
            ask, pending, [chatbot, sources, box, store, conv_list], trigger_mode="multiple", **worker
        )
        shown = [chatbot, sources, store, conv_list, conv_title]
        demo.load(restore, store, shown, **private)
        new_btn.click(new_conversation, None, shown, **private)
        conv_list.input(open_conversation, conv_list, shown, **private)
        rename_btn.click(rename_conversation, conv_title, [store, conv_list], **private)
        delete_btn.click(delete_conversation, None, shown, **private)
        export_btn.click(export_conversation, None, export_file, **private)
        regen_btn.click(regenerate, None, [chatbot, pending], **private)
        edit_btn.click(edit_last, None, [chatbot, box], **private)
        box.stop(stop, None, chatbot, **private)
        chatbot.clear(clear, None, [chatbot, sources, box, store, conv_list], **private)
        show_box.change(show, show_box, sources, trigger_mode="multiple", **private)
        vote_box.change(vote, vote_box, chatbot, trigger_mode="multiple", **private)
        demo.unload(unload)
        gr.api(chat_api, api_name="chat", concurrency_id="chat", concurrency_limit=gen_limit + 4)
    return demo


def _drop_vote_link(html: str, kind: str) -> str:
    """`html` without the 👍 or 👎 link of a final answer (after a vote)."""
    start = html.find(f'data-vote="{kind}"')
    if start < 0:
        return html
    open_at = html.rfind("<a ", 0, start)
    close_at = html.find("</a>", start)
    return html if open_at < 0 or close_at < 0 else html[:open_at] + html[close_at + 4 :]


__all__ = ["EMBED_CSS", "EMBED_HEAD", "PAGE_CSS", "PAGE_HEAD", "Conversation", "build_app", "page_theme"]
