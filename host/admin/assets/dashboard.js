// Polls the running-jobs fragment; reloads once the last job ends, so
// the connection table shows its outcome.
(function () {
  var jobs = document.getElementById('jobs');
  if (!jobs) return;
  setInterval(function () {
    fetch('/fragments/jobs', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) return;
      return r.text().then(function (html) {
        var before = jobs.getAttribute('data-active');
        // The area is a live region: change it only when it changed, so a
        // screen reader announces news, not every poll.
        if (html === jobs.getAttribute('data-html')) return;
        jobs.setAttribute('data-html', html);
        jobs.innerHTML = html;
        var now = jobs.querySelector('[data-active]');
        var active = now ? now.getAttribute('data-active') : '0';
        jobs.setAttribute('data-active', active);
        if (before !== '0' && active === '0') location.reload();
      });
    });
  }, 1000);
})();
