/* continuity website banner. Embed: <script src="https://DAEMON/banner.js" defer></script>
   Options on the tag: data-poll="30" (seconds), data-position="top" (default bottom), data-lang="hu".
   A shop may give it a place of its own: <div id="continuity-banner-slot"></div> (then it is not fixed).
   Wire text is only ever set with textContent, never parsed as HTML; http(s) URLs, e-mail addresses and
   phone numbers in a body become <a> elements built with the DOM (href set as a property: http(s),
   mailto: and tel: only), so a FAQ link or a number is one tap away and nothing else is a link.
   The banner never hides the shop: a spacer of its height keeps its place free at the top or the bottom of
   the page, and a focused element the banner would cover is scrolled clear (WCAG 2.4.11). Its close button
   follows its text in the tab order; Escape closes it and focus returns where it was. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.continuityBanner) return;
  window.continuityBanner = true;
  var url = new URL("banner.json", me.src).href;
  var KEY = "continuity-banner-dismissed";
  var CLOSE = {en: "Close this notice", hu: "Értesítés bezárása", sk: "Zavrieť oznámenie", pl: "Zamknij komunikat"};
  var MORE = {en: "Details", hu: "Részletek", sk: "Podrobnosti", pl: "Szczegóły"};
  var top = me.getAttribute("data-position") === "top", slot, spacer, before = null;
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
  /* Text nodes and <a> elements only: odd parts of the split are URL, address or phone candidates. */
  var MAIL = /^[^\s@<>()"']+@[^\s@<>()"']+\.[a-z]{2,}$/i;
  function fill(box, text) {
    var rest = "";
    text.split(/(https?:\/\/[^\s<>]+|[^\s@<>()"']+@[^\s@<>()"']+\.[a-z]{2,}|(?:\+|\b0)\d[\d ()\/-]{5,}\d)/i)
      .forEach(function (part, i) {
        var u = "", href = "";
        if (i % 2 && MAIL.test(part)) { u = part; href = "mailto:" + part; }
        else if (i % 2 && /^[+0]/.test(part)) { u = part; href = "tel:" + part.replace(/[^\d+]/g, ""); }
        else if (i % 2) { u = href = link(part); }
        if (!u) { rest += part; return; }
        if (rest) box.appendChild(document.createTextNode(rest));
        var a = el("a", "", u);
        a.href = href;
        if (/^http/.test(href)) a.rel = "noopener";
        box.appendChild(a);
        rest = part.slice(u.length);
      });
    if (rest) box.appendChild(document.createTextNode(rest));
    return box;
  }

  function render(doc) {
    var gone = load(), keep = {}, items = [];
    /* After restore, a banner that was shown says "working again" for a while (`resolved`, good news). */
    (doc.banners || []).concat(doc.resolved || []).forEach(function (b) {
      if (!b.locales || !Object.keys(b.locales).length) return;
      if (b.until && Date.parse(b.until) <= Date.now()) return; /* its time is over, even between polls */
      if (gone[b.id] === b.revision) keep[b.id] = b.revision; else items.push(b);
    });
    save(keep); /* forget dismissals of banners that are over */
    var sig = JSON.stringify(items.map(function (b) { return [b.id, b.revision, pick(doc, b)]; }));
    if (sig === shown) return; /* unchanged: do not make screen readers repeat it */
    shown = sig;
    var had = region.contains(document.activeElement);
    region.textContent = "";
    items.forEach(function (b) {
      var lang = pick(doc, b), t = b.locales[lang], box = el("div", b.state === "resolved" ? "cb-banner cb-resolved" : "cb-banner"), base = lang.split("-")[0];
      box.lang = lang;
      box.appendChild(el("strong", "cb-title", String(t.title || "")));
      /* The details a tap away on a phone (open at once on a wide screen): the banner stays small. */
      var more = el("details", "cb-more");
      more.open = !window.matchMedia || window.matchMedia("(min-width: 641px)").matches;
      more.appendChild(el("summary", "", MORE[lang] || MORE[base] || MORE.en));
      String(t.body || "").split(/\n\s*\n/).forEach(function (p) {
        if (p.trim()) more.appendChild(fill(el("p", "cb-body"), p.trim()));
      });
      if (more.childNodes.length > 1) box.appendChild(more);
      var x = el("button", "cb-close", "\u00d7");
      x.type = "button";
      x.setAttribute("aria-label", CLOSE[lang] || CLOSE[base] || CLOSE.en);
      x.onclick = function () { dismiss(b, doc); };
      box.onkeydown = function (e) { if (e.key === "Escape") dismiss(b, doc); };
      box.appendChild(x);
      region.appendChild(box);
    });
    if (had && !region.contains(document.activeElement)) back();
    fit();
  }
  function dismiss(b, doc) {
    var d = load();
    d[b.id] = b.revision;
    save(d);
    render(doc);
    back();
  }
  /* Focus goes back to where it was before the banner (or to the page itself), never lost to <body>. */
  function back() {
    var to = before && document.contains(before) ? before : null;
    if (to) { to.focus(); return; }
    document.body.setAttribute("tabindex", "-1");
    document.body.focus();
  }
  /* Keep the banner's space free: a spacer as tall as the banner, and scroll padding for focus. */
  function fit() {
    if (slot) return;
    var h = region.offsetHeight;
    spacer.style.height = h + "px";
    document.documentElement.style[top ? "scrollPaddingTop" : "scrollPaddingBottom"] = h ? h + 8 + "px" : "";
  }
  /* A focused element of the page the banner would cover is scrolled clear of it. */
  function clear(e) {
    var t = e.target;
    if (region.contains(t)) return;
    if (t && t.getBoundingClientRect) before = t;
    if (slot || !region.offsetHeight || !t.getBoundingClientRect) return;
    var r = t.getBoundingClientRect(), b = region.getBoundingClientRect();
    if (top && r.top < b.bottom) window.scrollBy(0, r.top - b.bottom - 8);
    else if (!top && r.bottom > b.top) window.scrollBy(0, r.bottom - b.top + 8);
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
    /* Fixed, with a spacer keeping its space free; in the shop's own slot, part of the page. */
    css.textContent =
      "#continuity-banner{position:fixed;left:0;right:0;bottom:0;z-index:2147483000;max-height:50vh;" +
      "overflow:auto;font:16px/1.45 system-ui,sans-serif}" +
      "#continuity-banner.cb-top{top:0;bottom:auto}" +
      "#continuity-banner.cb-slot{position:static;max-height:none}" +
      ".cb-banner{position:relative;padding:10px 56px 10px 16px;background:#fff4ce;color:#1f1f1f;" +
      "border-top:3px solid #a34700;box-shadow:0 -2px 8px rgba(0,0,0,.2)}" +
      ".cb-banner.cb-resolved{background:#e2f4e5;border-top-color:#1e6b30}" +
      ".cb-title{display:block}.cb-more summary{cursor:pointer;color:#1a4fd0;width:max-content}" +
      "@media (max-width:640px){#continuity-banner{max-height:40vh;font-size:15px}}" +
      ".cb-body{margin:4px 0 0;white-space:pre-line}" +
      ".cb-body a{color:#1a4fd0;overflow-wrap:anywhere}" +
      ".cb-close{position:absolute;top:6px;right:8px;width:40px;height:40px;font-size:24px;line-height:1;" +
      "background:none;border:0;color:inherit;cursor:pointer}" +
      ".cb-close:focus-visible{outline:3px solid #1a4fd0}";
    document.head.appendChild(css);
    /* The live region exists before any text arrives, so screen readers announce what appears in it. */
    slot = document.getElementById("continuity-banner-slot");
    region = el("div", slot ? "cb-slot" : top ? "cb-top" : "");
    region.id = "continuity-banner";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    if (slot) slot.appendChild(region);
    else {
      /* First in the tab order, so its close button follows its text and not the whole page; the spacer
         that keeps its place free goes where it is seen. */
      spacer = el("div", "cb-spacer");
      spacer.setAttribute("aria-hidden", "true");
      var b = document.body;
      if (top) b.insertBefore(spacer, b.firstChild); else b.appendChild(spacer);
      b.insertBefore(region, b.firstChild);
      if (window.ResizeObserver) new ResizeObserver(fit).observe(region);
      window.addEventListener("resize", fit);
    }
    document.addEventListener("focusin", clear);
    tick();
  }

  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
