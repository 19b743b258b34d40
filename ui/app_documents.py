"""The page's Documents panel: upload files and see them indexed, list, remove, re-index (`ui.uploads`).

`documents_panel(uploads, event_args)` adds the components inside the current `gr.Blocks` and wires
them; checks (setting, signed-in, type, size, content) are `ui.uploads`'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from index.loaders import SUPPORTED_SUFFIXES
from rag.errors import RagError
from ui.documents_api import signed_in
from ui.uploads import Uploads


def documents_panel(uploads: Uploads, event_args: dict[str, Any]) -> None:
    """Components and events of the Documents panel (call inside a gr.Blocks)."""

    def upload_files(files: list[str] | None, request: gr.Request):
        """Index uploaded files one by one, saying how far it got."""
        why = uploads.allowed(signed_in(request.headers, request.cookies))
        if why:
            yield why, gr.skip()
            return
        if not files:
            yield "No file was received.", gr.skip()
            return
        rep: dict[str, Any] = {}
        for i, path in enumerate(files, 1):
            name = Path(path).name
            yield f"Indexing {name} ({i} of {len(files)})…", gr.skip()
            try:
                rep = uploads.add(name, Path(path).read_bytes())
            except RagError as err:
                yield f"⚠️ {err}", gr.skip()
                return
        names = [u["name"] for u in uploads.list()]
        yield (
            f"Done: {rep['documents']} documents, {rep['chunks']} passages indexed "
            f"({rep['seconds']} s). Ask away.",
            gr.update(choices=names, value=None),
        )

    def remove_file(name: str | None, request: gr.Request):
        why = uploads.allowed(signed_in(request.headers, request.cookies))
        if why or not name:
            return why or "Pick a document first.", gr.skip()
        try:
            rep = uploads.remove(name)
        except RagError as err:
            return f"⚠️ {err}", gr.skip()
        names = [u["name"] for u in uploads.list()]
        return f"Removed {name}: {rep['documents']} documents indexed.", gr.update(choices=names, value=None)

    def reindex_all(request: gr.Request):
        why = uploads.allowed(signed_in(request.headers, request.cookies))
        if why:
            return why
        rep = uploads.reindex()
        return f"Re-indexed: {rep['documents']} documents, {rep['chunks']} passages ({rep['seconds']} s)."

    with gr.Accordion("Documents", open=False, elem_id="rag-documents"):
        doc_files = gr.File(
            label=f"Add documents ({', '.join(SUPPORTED_SUFFIXES)}; "
            f"up to {uploads.max_bytes // (1024 * 1024)} MB each)",
            file_count="multiple",
            file_types=list(SUPPORTED_SUFFIXES),
            type="filepath",
            height=110,
            elem_id="rag-doc-upload",
        )
        doc_status = gr.Markdown("", elem_id="rag-doc-status")
        doc_list = gr.Dropdown(
            label="Uploaded documents",
            choices=[u["name"] for u in uploads.list()],
            value=None,
            elem_id="rag-doc-list",
        )
        with gr.Row():
            remove_btn = gr.Button("Remove", size="sm", variant="stop")
            reindex_btn = gr.Button("Re-index everything", size="sm")

    doc_files.upload(upload_files, doc_files, [doc_status, doc_list], **event_args)
    remove_btn.click(remove_file, doc_list, [doc_status, doc_list], **event_args)
    reindex_btn.click(reindex_all, None, doc_status, **event_args)
