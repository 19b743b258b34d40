/*
 * The chat page's own behaviour (inlined into the page head by ui/app.py; no framework, no network
 * except our own /api/document):
 * - [n] in any answer shows THAT answer's source n (asks the server for that answer's panel if the
 *   panel shows another one), scrolls to it and flashes it; "Back to the chat" returns.
 * - "Read it in the full document" fetches the document a page at a time and inserts it as text
 *   (textContent: a document's markup is never parsed), the passage marked.
 * - Copy puts plain text and the source list on the clipboard; 👍/👎 are sent to the server.
 * - Esc stops the answer being written. Screen-reader labels of messages are their plain text.
 * Gradio's chat sanitiser drops data-* attributes, so links carry what they need in their href
 * (#rag-src-<answer>-<n>, #rag-vote-<answer>-<up|down>).
 * Gradio components are reached through hidden textboxes (#rag-show, #rag-vote): setting the value
 * and an input event is how a page script triggers a Gradio event.
 */
(function () {
  "use strict";
  function flash(el) {
    el.classList.add("rag-flash");
    setTimeout(function () { el.classList.remove("rag-flash"); }, 1500);
  }
  function send(id, value) {
    var el = document.querySelector("#" + id + " textarea, #" + id + " input");
    if (!el) return false;
    el.value = value;
    el.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }
  function waitFor(id, ms, done) {
    var t0 = Date.now();
    (function poll() {
      var el = document.getElementById(id);
      if (el) return done(el);
      if (Date.now() - t0 < ms) setTimeout(poll, 50);
    })();
  }
  function showSource(msg, n) {
    var id = "rag-src-" + msg + "-" + n;
    var go = function (el) {
      el.scrollIntoView({ behavior: "smooth", block: "start" });
      flash(el);
    };
    var el = document.getElementById(id);
    if (el) return go(el);
    send("rag-show", msg + "|" + Date.now());  // the panel shows another answer: ask for this one's
    waitFor(id, 5000, go);
  }
  function plainAnswer(bubble) {
    var ans = bubble.querySelector(".rag-answer");
    var text = ans ? ans.innerText.trim() : "";
    var items = bubble.querySelectorAll(".rag-srclist li");
    if (items.length) {
      text += "\n\nSources:";
      items.forEach(function (li) { text += "\n" + li.innerText.trim(); });
    }
    return text;
  }
  function copy(text, link) {
    var done = function () { link.textContent = "Copied"; setTimeout(function () { link.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else { fallbackCopy(text); done(); }
  }
  function fallbackCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text; ta.style.position = "fixed"; ta.style.left = "-9999px";
    document.body.appendChild(ta); ta.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    ta.remove();
  }

  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.rag-cite, a.rag-copy, a.rag-vote, a.rag-back, a.rag-page");
    if (!a) return;
    e.preventDefault(); e.stopPropagation();
    var parts = (a.getAttribute("href") || "").split("-");  // #rag-<kind>-<answer>-<n|vote>
    if (a.classList.contains("rag-cite")) return showSource(parts[2], parts[3]);
    if (a.classList.contains("rag-back")) {
      var chat = document.getElementById("rag-chat");
      if (chat) chat.scrollIntoView({ behavior: "smooth", block: "start" });
      return;
    }
    if (a.classList.contains("rag-copy")) {
      window.__ragCopied = plainAnswer(a.closest(".message, .message-row") || a.parentNode.parentNode);
      return copy(window.__ragCopied, a);
    }
    if (a.classList.contains("rag-vote")) {
      a.parentNode.querySelectorAll(".rag-vote").forEach(function (b) { b.classList.add("rag-sending"); });
      return send("rag-vote", parts[2] + "|" + parts[3] + "|" + Date.now());
    }
    if (a.classList.contains("rag-page")) return loadDoc(a.closest("details.rag-full"), +a.dataset.page);
  }, true);

  // The full document, a page at a time, as text; bidi overrides dropped as ui/sanitize.py does.
  function unbidi(t) { return t.replace(/[\u202a-\u202e\u2066-\u2069\u200e\u200f]/g, ""); }
  function loadDoc(d, page) {
    if (!d) return;
    var box = d.querySelector(".rag-doc");
    var start = +d.dataset.start, end = +d.dataset.end;
    var q = "source=" + encodeURIComponent(d.dataset.source || "") + "&at=" + start;
    if (page !== undefined && page !== null) q += "&page=" + page;
    box.textContent = "Loading…";
    fetch("/api/document?" + q, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error(String(r.status))); })
      .then(function (j) {
        box.textContent = "";
        var t = j.text, a = Math.max(0, start - j.offset), b = Math.min(t.length, end - j.offset), mark = null;
        if (b > a) {
          box.appendChild(document.createTextNode(unbidi(t.slice(0, a))));
          mark = document.createElement("mark");
          mark.textContent = unbidi(t.slice(a, b));
          box.appendChild(mark);
          box.appendChild(document.createTextNode(unbidi(t.slice(b))));
        } else {
          box.appendChild(document.createTextNode(unbidi(t)));
        }
        if (j.pages > 1) {
          var nav = document.createElement("div");
          nav.className = "rag-pages";
          var mk = function (p, label) {
            var l = document.createElement("a");
            l.className = "rag-page"; l.href = "#page"; l.dataset.page = p; l.textContent = label;
            nav.appendChild(l);
          };
          if (j.page > 0) mk(j.page - 1, "← previous page");
          nav.appendChild(document.createTextNode(" page " + (j.page + 1) + " of " + j.pages + " "));
          if (j.page < j.pages - 1) mk(j.page + 1, "next page →");
          box.appendChild(nav);
        }
        box.scrollTop = mark ? Math.max(0, mark.offsetTop - 40) : 0;
      })
      .catch(function (err) { box.textContent = "The document could not be loaded (" + err.message + ")."; });
  }
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (!d.classList || !d.classList.contains("rag-full") || !d.open) return;
    if (!d.dataset.loaded) { d.dataset.loaded = "1"; loadDoc(d); }
  }, true);

  // Esc stops the answer being written (the same as the Stop button).
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var stop = Array.prototype.find.call(document.querySelectorAll("#rag-input button"), function (b) {
      return b.textContent.trim() === "Stop" && b.offsetParent !== null;
    });
    if (stop) { e.preventDefault(); stop.click(); }
  });

  // Gradio labels each message with its raw value (our HTML); give screen readers the text instead.
  // The label we set is remembered: text that itself contains "<" must not be rewritten forever.
  function fixLabels(root) {
    root.querySelectorAll("#rag-chat [aria-label*='<']").forEach(function (el) {
      var label = el.getAttribute("aria-label") || "";
      if (label === el.__ragLabel) return;
      var who = label.split(":")[0];
      el.__ragLabel = who + ": " + el.innerText.replace(/\s+/g, " ").trim().slice(0, 2000);
      el.setAttribute("aria-label", el.__ragLabel);
    });
  }
  new MutationObserver(function () { fixLabels(document); })
    .observe(document.documentElement, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-label"] });
})();
