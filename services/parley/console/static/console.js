// Live updates: the server pushes an event whenever something happens in the suite (Server-Sent Events);
// the page then fetches its own URL again and swaps in the new <main>. A timer does the same every few
// seconds so that waiting times keep moving when nothing happens.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  var pending = false;
  var last = 0;

  function refresh() {
    if (pending) return;
    pending = true;
    fetch(location.href, { headers: { "X-Parley-Fragment": "1" }, cache: "no-store" })
      .then(function (reply) { return reply.ok ? reply.text() : null; })
      .then(function (html) {
        if (html !== null && html !== main.innerHTML) main.innerHTML = html;
        document.body.dataset.refreshed = String(Date.now());
      })
      .catch(function () {})
      .then(function () { pending = false; last = Date.now(); });
  }

  var scheduled = false;
  function soon() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(function () { scheduled = false; refresh(); }, Math.max(100, 500 - (Date.now() - last)));
  }

  if (window.EventSource) {
    var source = new EventSource("/events");
    source.onopen = function () { live.textContent = "live"; live.className = "live on"; };
    source.onerror = function () { live.textContent = "reconnecting"; live.className = "live"; };
    source.onmessage = soon;
  }
  setInterval(refresh, 5000);
})();
