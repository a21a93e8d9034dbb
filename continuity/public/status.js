/* continuity status page: updates the page's news in place every minute and when the reader comes back to
   the tab, instead of a <meta refresh> that reloads the whole page under the reader (WCAG 2.2.1). Same origin
   only (the page's CSP allows nothing else); without JavaScript the page is complete and the reader reloads
   it. A round is skipped while focus is inside the part that would be replaced, so nobody loses their place. */
(function () {
  "use strict";
  var me = document.currentScript;
  var every = Math.max(15, +(me && me.getAttribute("data-refresh")) || 60) * 1000;
  var auto = document.getElementById("cb-auto");
  if (auto) auto.hidden = false;

  function swap(fresh, id) {
    var now = document.getElementById(id), next = fresh.getElementById(id);
    if (!now || !next || now.contains(document.activeElement)) return;
    if (now.isEqualNode(next)) return;
    /* nodes of the server's own (autoescaped) page, adopted as nodes: nothing is parsed from a string here */
    now.replaceChildren.apply(now, Array.prototype.map.call(next.childNodes, function (n) {
      return document.importNode(n, true);
    }));
  }
  function refresh() {
    return fetch(location.href, {cache: "no-cache", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        swap(fresh, "live");
        swap(fresh, "updated");
      })
      .catch(function () { /* offline for a moment: keep what is shown */ });
  }
  function tick() { refresh().then(function () { setTimeout(tick, every); }); }
  setTimeout(tick, every);
  /* a reader coming back to the tab (a phone unlocked, another tab left) sees the news at once */
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") refresh();
  });
})();
