/* continuity website banner. Embed: <script src="https://DAEMON/banner.js" defer></script>
   Options on the tag: data-poll="30" (seconds), data-position="top" (default bottom), data-lang="hu".
   Wire text is only ever set with textContent, never parsed as HTML; http(s) URLs in a body become <a>
   elements built with the DOM (href set as a property), so a FAQ link is clickable and nothing else is. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.continuityBanner) return;
  window.continuityBanner = true;
  var url = new URL("banner.json", me.src).href;
  var KEY = "continuity-banner-dismissed";
  var CLOSE = {en: "Close this notice", hu: "Értesítés bezárása", sk: "Zavrieť oznámenie", pl: "Zamknij komunikat"};
  var poll = +me.getAttribute("data-poll") || 0;
  var memory = {}, shown = "", region;

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return memory; }
  }
  function save(d) {
    memory = d;
    try { localStorage.setItem(KEY, JSON.stringify(d)); } catch (e) { /* private mode: remember per page */ }
  }
  function pick(doc, b) {
    var want = (me.getAttribute("data-lang") || document.documentElement.lang || "").toLowerCase();
    var tries = [want, want.split("-")[0], doc.default_locale, b.default_locale];
    for (var i = 0; i < tries.length; i++) if (tries[i] && b.locales[tries[i]]) return tries[i];
    return Object.keys(b.locales)[0];
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  /* A URL without the sentence's trailing punctuation (")" only if it opened none); "" unless http(s). */
  function link(u) {
    while (/[.,;:!?'"]$/.test(u) || (/\)$/.test(u) && u.split(")").length > u.split("(").length)) u = u.slice(0, -1);
    try { if (/^https?:\/\//i.test(u) && /^https?:$/.test(new URL(u).protocol)) return u; } catch (e) { /* no URL */ }
    return "";
  }
  /* Text nodes and <a> elements only: odd parts of the split are URL candidates. */
  function fill(box, text) {
    var rest = "";
    text.split(/(https?:\/\/[^\s<>]+)/i).forEach(function (part, i) {
      var u = i % 2 ? link(part) : "";
      if (!u) { rest += part; return; }
      if (rest) box.appendChild(document.createTextNode(rest));
      var a = el("a", "", u);
      a.href = u;
      a.rel = "noopener";
      box.appendChild(a);
      rest = part.slice(u.length);
    });
    if (rest) box.appendChild(document.createTextNode(rest));
    return box;
  }

  function render(doc) {
    var gone = load(), keep = {}, items = [];
    (doc.banners || []).forEach(function (b) {
      if (!b.locales || !Object.keys(b.locales).length) return;
      if (gone[b.id] === b.revision) keep[b.id] = b.revision; else items.push(b);
    });
    save(keep); /* forget dismissals of banners that are over */
    var sig = JSON.stringify(items.map(function (b) { return [b.id, b.revision, pick(doc, b)]; }));
    if (sig === shown) return; /* unchanged: do not make screen readers repeat it */
    shown = sig;
    region.textContent = "";
    items.forEach(function (b) {
      var lang = pick(doc, b), t = b.locales[lang], box = el("div", "cb-banner");
      box.lang = lang;
      box.appendChild(el("strong", "cb-title", String(t.title || "")));
      String(t.body || "").split(/\n\s*\n/).forEach(function (p) {
        if (p.trim()) box.appendChild(fill(el("p", "cb-body"), p.trim()));
      });
      var x = el("button", "cb-close", "\u00d7");
      x.type = "button";
      x.setAttribute("aria-label", CLOSE[lang] || CLOSE[lang.split("-")[0]] || CLOSE.en);
      x.onclick = function () {
        var d = load();
        d[b.id] = b.revision;
        save(d);
        render(doc);
      };
      box.appendChild(x);
      region.appendChild(box);
    });
  }

  function tick() {
    fetch(url, {cache: "no-cache", credentials: "omit"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        if (!doc) return;
        if (!poll) poll = doc.poll_seconds;
        render(doc);
      })
      .catch(function () { /* daemon unreachable: keep what is shown, try again later */ })
      .then(function () { setTimeout(tick, Math.max(1, poll || 30) * 1000); });
  }

  function start() {
    var css = document.createElement("style");
    /* A fixed overlay: the page never moves when a banner comes or goes (no layout shift). */
    css.textContent =
      "#continuity-banner{position:fixed;left:0;right:0;bottom:0;z-index:2147483000;max-height:50vh;" +
      "overflow:auto;font:16px/1.45 system-ui,sans-serif}" +
      "#continuity-banner.cb-top{top:0;bottom:auto}" +
      ".cb-banner{position:relative;padding:12px 56px 12px 16px;background:#fff4ce;color:#1f1f1f;" +
      "border-top:3px solid #a34700;box-shadow:0 -2px 8px rgba(0,0,0,.2)}" +
      ".cb-body{margin:4px 0 0;white-space:pre-line}" +
      ".cb-body a{color:#1a4fd0;overflow-wrap:anywhere}" +
      ".cb-close{position:absolute;top:6px;right:8px;width:40px;height:40px;font-size:24px;line-height:1;" +
      "background:none;border:0;color:inherit;cursor:pointer}" +
      ".cb-close:focus-visible{outline:3px solid #1a4fd0}";
    document.head.appendChild(css);
    /* The live region exists before any text arrives, so screen readers announce what appears in it. */
    region = el("div", me.getAttribute("data-position") === "top" ? "cb-top" : "");
    region.id = "continuity-banner";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    document.body.appendChild(region);
    tick();
  }

  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
