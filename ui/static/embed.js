/*
 * <rag-chat> — puts the document chat into any page (a wiki, an intranet portal).
 *
 *   <script src="http://rag.example:7860/embed.js" defer></script>
 *   <rag-chat src="http://rag.example:7860"></rag-chat>
 *
 * Attributes: src (server URL; default: where this script came from), token (access token when the
 * server sets RAG_AUTH_TOKEN), min-height / max-height in px (defaults 460 / 1200), title.
 * It renders an iframe of <src>/embed/ and sizes it to the chat's height, which the embed view
 * reports with postMessage({type: "rag-chat:height", height}). The server must allow the embedding
 * page's origin (RAG_ALLOWED_ORIGINS), or it refuses to be framed.
 */
(function () {
  "use strict";
  if (window.customElements === undefined || customElements.get("rag-chat")) return;
  var scriptOrigin = "";
  try {
    if (document.currentScript && document.currentScript.src) scriptOrigin = new URL(document.currentScript.src).origin;
  } catch (e) { /* keep "" */ }

  function num(v, d) { var n = parseInt(v, 10); return isNaN(n) ? d : n; }

  class RagChat extends HTMLElement {
    static get observedAttributes() { return ["src", "token", "min-height", "max-height", "title"]; }

    constructor() {
      super();
      this._root = this.attachShadow({ mode: "open" });
      this._onMessage = this._onMessage.bind(this);
    }

    connectedCallback() { this._render(); window.addEventListener("message", this._onMessage); }
    disconnectedCallback() { window.removeEventListener("message", this._onMessage); }
    attributeChangedCallback() { if (this.isConnected) this._render(); }

    get base() { return (this.getAttribute("src") || scriptOrigin || "").replace(/\/+$/, ""); }

    _render() {
      var url = this.base + "/embed/";
      var token = this.getAttribute("token");
      if (token) url += "?token=" + encodeURIComponent(token);
      var min = num(this.getAttribute("min-height"), 460);
      this._root.innerHTML =
        "<style>:host{display:block;width:100%;max-width:100%}" +
        "iframe{display:block;width:100%;border:0;border-radius:10px;" +
        "box-shadow:0 1px 4px rgba(0,0,0,.12);background:#fff;transition:height .15s}</style>";
      var frame = document.createElement("iframe");
      frame.src = url;
      frame.title = this.getAttribute("title") || "Ask the documents";
      frame.setAttribute("loading", "lazy");
      frame.setAttribute("allow", "clipboard-write");
      frame.style.height = min + "px";
      this._root.appendChild(frame);
      this._frame = frame;
    }

    _onMessage(event) {
      if (!this._frame || event.source !== this._frame.contentWindow) return;
      var data = event.data || {};
      if (data.type !== "rag-chat:height" || typeof data.height !== "number") return;
      var min = num(this.getAttribute("min-height"), 460);
      var max = num(this.getAttribute("max-height"), 1200);
      var h = Math.max(min, Math.min(max, Math.ceil(data.height)));
      this._frame.style.height = h + "px";
      this.dispatchEvent(new CustomEvent("rag-chat:resize", { detail: { height: h } }));
    }
  }

  customElements.define("rag-chat", RagChat);
})();
