"""Stage 3a: the chat page (Gradio), the HTTP API and the embeddable view, served by one FastAPI app.

Nothing outside `ui` imports it; `rag serve` reaches it through the `rag.commands` entry point.
Gradio is imported only in `ui.app` and `ui.server`, so the API and feedback code run without it.
"""
