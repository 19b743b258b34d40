"""The chat page as a Gradio 6 `Blocks`: `build_app(pipeline) -> gr.Blocks`, separate from serving.

The page: a chat whose answer streams in and is replaced by the verified answer, a sources panel
(retrieved passages at once, then the cited quotes highlighted, each readable in its full document),
example questions on an empty chat, thumbs up/down recorded to `Config.feedback_path`.
Gradio's API exposes the chat as `/chat` (message, history) for `gradio_client`.
Logic lives in `ui.chat` and `ui.render`; this module only wires components. Styling and the small
script for citation links are `PAGE_CSS` / `PAGE_HEAD`, passed when the app is mounted (Gradio 6).
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from ui import render
from ui.chat import ChatHandler, PipelineLike, message_text
from ui.feedback import normalize_vote, record_feedback
from ui.gate import GenerationGate

log = logging.getLogger("ui.app")

EXAMPLES = [
    "How much did Microsoft invest in Inflection?",
    "Which cloud provider has exclusive rights for OpenAI until 2032?",
    "Who leads Microsoft AI?",
    "Why is Microsoft diversifying beyond OpenAI?",
]

PAGE_CSS = """
#rag-header h1 {margin: 0 0 .2em; font-size: 1.5em}
#rag-header p {margin: 0; color: var(--body-text-color-subdued)}
#rag-sources {max-height: 78vh; overflow-y: auto}
.rag-sources h3 {margin: 0 0 .4em; font-size: 1.05em}
.rag-status {margin: .2em 0 .6em; color: var(--body-text-color-subdued); font-size: .9em}
.rag-src {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .55em .75em;
  margin: .5em 0; background: var(--background-fill-secondary); transition: box-shadow .3s}
.rag-src.rag-flash {box-shadow: 0 0 0 3px var(--color-accent)}
.rag-src-head {display: flex; gap: .5em; align-items: baseline; flex-wrap: wrap}
.rag-n {background: var(--color-accent); color: #fff; border-radius: 999px; min-width: 1.6em;
  text-align: center; font-weight: 600; font-size: .8em; padding: 0 .35em}
.rag-title {font-weight: 600}
.rag-file {color: var(--body-text-color-subdued); font-size: .78em; font-family: var(--font-mono)}
.rag-quote {margin: .45em 0; padding: 0 0 0 .7em; border-left: 3px solid var(--border-color-accent);
  font-size: .9em; white-space: pre-wrap; overflow-wrap: anywhere}
.rag-quote mark, .rag-doc mark {background: #fde68a; color: #111; border-radius: 2px}
.rag-full summary, .rag-others summary {cursor: pointer; font-size: .88em; color: var(--link-text-color)}
.rag-doc {max-height: 320px; overflow-y: auto; white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: .85em; padding: .5em; margin-top: .4em; position: relative;
  border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--background-fill-primary)}
a.rag-cite {text-decoration: none; font-weight: 700; font-size: .85em; cursor: pointer;
  color: var(--color-accent) !important}
.rag-note {color: var(--body-text-color-subdued); font-style: italic}
@media (max-width: 640px) {
  .gradio-container {padding-left: 8px !important; padding-right: 8px !important}
  #rag-chat {height: 58vh !important}
  #rag-sources {max-height: none}
  #rag-header h1 {font-size: 1.2em}
}
"""

# The embed view: no vh-based sizes (the iframe follows the content; vh would feed back), less padding.
EMBED_CSS = (
    PAGE_CSS
    + """
.gradio-container {padding: 8px 10px !important}
.rag-embed #rag-chat {height: 380px !important}
.rag-embed #rag-sources {max-height: none}
"""
)

# Clicking [n] scrolls to source n and flashes it; opening a full document scrolls to the passage.
PAGE_HEAD = """
<script>
(function () {
  function flash(el) {
    el.classList.add('rag-flash');
    setTimeout(function () { el.classList.remove('rag-flash'); }, 1500);
  }
  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a.rag-cite, a[href^="#rag-src-"]');
    if (!a) return;
    var id = (a.getAttribute('href') || '').replace('#', '');
    var el = document.getElementById(id);
    if (!el) return;
    e.preventDefault(); e.stopPropagation();
    el.scrollIntoView({behavior: 'smooth', block: 'start'});
    flash(el);
  }, true);
  document.addEventListener('toggle', function (e) {
    var d = e.target;
    if (!d.classList || !d.classList.contains('rag-full') || !d.open) return;
    var box = d.querySelector('.rag-doc'), m = box && box.querySelector('mark');
    if (m) box.scrollTop = Math.max(0, m.offsetTop - 40);
  }, true);
})();
</script>
"""

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


def page_theme() -> gr.themes.Base:
    """Gradio's default look with system fonts: no font downloads, so it renders the same offline."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


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

    def chat(message: Any, history: list[dict[str, Any]] | None, records: dict[str, Any] | None):
        """Answer `message` given the earlier `history`; streams (chat, sources panel, vote records)."""
        records = dict(records or {})
        for up in handler.respond(message_text(message), history or []):
            if up.record is not None:
                records[str(len(up.messages) - 1)] = up.record
            yield (
                up.messages,
                gr.skip() if up.sources_html is None else up.sources_html,
                records if up.done else gr.skip(),
            )

    def on_like(evt: gr.LikeData, history: list[dict[str, Any]], records: dict[str, Any] | None) -> None:
        idx = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        try:
            vote = normalize_vote(evt.liked)
        except ValueError:
            return  # an un-vote or custom option: nothing to record
        rec = (records or {}).get(str(idx))
        if rec is None:  # e.g. a conversation restored without records: fall back to the visible text
            question = next(
                (
                    message_text(m["content"])
                    for m in reversed(history[: int(idx)])
                    if m.get("role") == "user"
                ),
                "",
            )
            rec = {
                "question": question,
                "answer": render.plain_text(message_text(evt.value)),
                "citations": [],
            }
        record_feedback(
            feedback_path,
            vote=vote,
            question=rec.get("question", ""),
            answer=rec.get("answer", ""),
            citations=rec.get("citations", []),
            backend=rec.get("backend", ""),
            origin="embed" if embed else "chat",
        )
        gr.Info("Thanks, your feedback was recorded.")

    def pick_example(evt: gr.SelectData) -> str:
        value = evt.value if isinstance(evt.value, dict) else {}
        return str(value.get("text", ""))

    with gr.Blocks(title="Ask the documents", analytics_enabled=False, fill_width=embed) as demo:
        if not embed:
            gr.Markdown(
                "# Ask the documents\nAnswers are written from the indexed articles and cite them: "
                "click a [n] to see the passage.",
                elem_id="rag-header",
            )
        records = gr.State({})
        with gr.Row(equal_height=False, elem_classes=["rag-embed"] if embed else None):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label="Chat",
                    elem_id="rag-chat",
                    height=380 if embed else 540,
                    examples=[{"text": q} for q in EXAMPLES],
                    placeholder="Ask about the documents, or pick an example:",
                    feedback_options=("Like", "Dislike"),
                    buttons=["copy"],
                    layout="bubble",
                )
                box = gr.Textbox(
                    label="Question",
                    placeholder="Ask about the documents…",
                    show_label=False,
                    lines=1,
                    max_lines=6,
                    submit_btn="Ask",
                    autofocus=not embed,
                    elem_id="rag-input",
                )
            with gr.Column(scale=2, min_width=300):
                sources = gr.HTML(render.empty_panel(), elem_id="rag-sources", padding=False)

        # `pending` holds a question between the box and the answer: taking it out of the box is instant
        # (queue=False), and a question sent while another is answered is deferred, not dropped or wiped.
        pending = gr.Textbox(visible=False, elem_id="rag-pending")
        outputs = [chatbot, sources, records]
        inputs = [pending, chatbot, records]
        # Chat handlers beyond the generation limit still run: they show their sources, then wait at the gate.
        limit = gen_limit + 4
        chat_args: dict[str, Any] = {
            "concurrency_id": "chat",
            "concurrency_limit": limit,
            "show_progress": "minimal",
            "trigger_mode": "always_last",
        }
        # Taking the question runs in the browser: a server round trip could wipe what is typed meanwhile.
        take = f"(t) => (t || '').trim().length > {handler.max_chars} ? [t, t] : ['', t]"
        box.submit(None, box, [box, pending], js=take, queue=False, api_visibility="private").then(
            chat, inputs, outputs, api_name="chat", **chat_args
        )
        chatbot.example_select(pick_example, None, pending, queue=False, api_visibility="private").then(
            chat, inputs, outputs, api_visibility="private", **chat_args
        )
        chatbot.like(on_like, [chatbot, records], None, queue=False, api_visibility="private")
        chatbot.clear(
            lambda: (render.empty_panel(), {}),
            None,
            [sources, records],
            queue=False,
            api_visibility="private",
        )
    return demo
