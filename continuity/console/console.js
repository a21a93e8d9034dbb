// The console's only script: the dashboard reloads itself every data-refresh seconds, but never while the
// person is typing or has moved focus into the page (a reload must not eat a half-filled form), and not in
// a hidden tab. Without JavaScript the "Refresh" link does the same by hand.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!seconds) { return; }
  var touched = false;
  document.addEventListener("focusin", function (e) {
    if (e.target && e.target.tagName !== "A") { touched = true; }
  });
  document.addEventListener("input", function () { touched = true; });
  window.setInterval(function () {
    if (!touched && document.visibilityState === "visible") { window.location.reload(); }
  }, seconds * 1000);
})();
