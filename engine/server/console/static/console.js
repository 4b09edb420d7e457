// treeflow console: the only script besides htmx. No inline scripts exist (the CSP forbids them).
// 1. Times: each <time datetime="...Z"> is shown in the browser's time zone; its title keeps UTC.
// 2. Confirmations live on their own pages (they work without script); nothing to do here.
// 3. A part that refreshes itself (data-refresh: the runs list, the health page) waits while
//    the keyboard's focus is inside it: the swap would drop that focus to the top of the page.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  function localTimes(root) {
    var times = (root || document).querySelectorAll("time[datetime]:not([data-local])");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var moment = new Date(el.getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        el.textContent = format.format(moment);
        el.setAttribute("data-local", "");
      }
    }
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSettle", function (event) { localTimes(event.target); });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var part = event.detail.elt;
    var focused = document.activeElement;
    if (part.hasAttribute("data-refresh") && focused !== part && part.contains(focused)) {
      event.preventDefault();  // the next refresh tries again
    }
  });
})();
