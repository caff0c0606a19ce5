// The callagent console's only script: keeps the live parts of a page current.
//
// A page that has live parts names its event stream in <body data-live="/live/...">. The
// server sends a region's HTML (rendered and escaped by the server, like the page itself)
// whenever it changed; here it replaces the region's children that changed, matched by
// data-key, and leaves alone a child the operator is typing in.
"use strict";

(function () {
  const url = document.body.dataset.live;
  const state = document.getElementById("live-state");
  const problem = document.getElementById("live-problem");

  function say(text, on) {
    if (!state) return;
    state.textContent = text;
    state.classList.toggle("on", Boolean(on));
  }

  function warn(text) {
    if (!problem) return;
    problem.textContent = text;
    problem.hidden = !text;
  }

  // A child holding the focus, or a text field with something typed in it, is not replaced.
  function busy(node) {
    const active = document.activeElement;
    if (active && active !== document.body && node.contains(active)) return true;
    return Array.from(node.querySelectorAll("textarea, input[type=text]")).some((f) => f.value !== f.defaultValue);
  }

  function reconcile(region, html) {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    const old = new Map();
    for (const child of region.children) {
      if (child.dataset.key) old.set(child.dataset.key, child);
    }
    const wanted = Array.from(fresh.content.children).map((node) => {
      const before = node.dataset.key ? old.get(node.dataset.key) : undefined;
      return before && (before.isEqualNode(node) || busy(before)) ? before : node;
    });
    for (const child of Array.from(region.children)) {
      if (!wanted.includes(child)) child.remove();
    }
    wanted.forEach((node, i) => {
      if (region.children[i] !== node) region.insertBefore(node, region.children[i] || null);
    });
  }

  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("open", () => say("live", true));
  source.addEventListener("region", (event) => {
    const message = JSON.parse(event.data);
    const region = document.getElementById(message.id);
    if (region) reconcile(region, message.html);
  });
  source.addEventListener("problem", (event) => warn(JSON.parse(event.data).text));
  source.addEventListener("signed-out", () => {
    source.close();
    say("live updates off");
    warn("Your session has ended: sign in again to keep watching.");
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) say("live updates stopped: reload the page");
    else say("reconnecting…");
  });
})();
