/*
 * pqgate web admin client: small, framework-free, no network access beyond
 * this server. Pages work without it (forms post, pages reload); it adds:
 *   - the commit-confirmed countdown in the banner,
 *   - live dashboard counters and per-Child-SA traffic sparklines (polls
 *     /api/v1/status every 2 s; reloads the page when SAs come or go),
 *   - the live event log,
 *   - auto-submitting filter/preset selects and the typed confirmation of
 *     the factory reset,
 *   - the firmware upload with its progress bar (upload, then verify/write
 *     progress polled from /maintenance/firmware/status).
 * Data from the server is only ever put into the page with textContent or
 * setAttribute, never as HTML.
 */
'use strict';
(function () {
  var POLL_MS = 2000;
  var LOG_POLL_MS = 3000;
  var SPARK_POINTS = 30; // one minute of 2 s samples

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function fmtBytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return '–';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + ' B' : n.toFixed(n < 10 ? 2 : 1) + ' ' + u[i];
  }
  function fmtCount(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
  function fmtDuration(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return '–';
    var s = Math.max(0, Math.round(ms / 1000));
    var d = Math.floor(s / 86400); s -= d * 86400;
    var h = Math.floor(s / 3600); s -= h * 3600;
    var m = Math.floor(s / 60); s -= m * 60;
    if (d) return d + ' d ' + h + ' h';
    if (h) return h + ' h ' + m + ' min';
    if (m) return m + ' min ' + s + ' s';
    return s + ' s';
  }
  function fmtClock(sec) {
    var m = Math.floor(sec / 60), s = sec % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }

  function getJson(url) {
    return fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) throw new Error('session');
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
  }

  function notice(text) {
    var n = $('#live-notice');
    if (!n) {
      n = document.createElement('div');
      n.id = 'live-notice';
      n.className = 'flash error';
      var main = $('main');
      main.insertBefore(n, main.firstChild);
    }
    n.textContent = text;
  }

  // ---- commit-confirmed countdown ------------------------------------------
  function countdown() {
    var b = $('#pending-banner');
    if (!b) return;
    var deadline = Number(b.getAttribute('data-deadline'));
    var serverNow = Number(b.getAttribute('data-server-now'));
    if (!deadline || !serverNow) return;
    var skew = serverNow - Date.now(); // server clock minus browser clock
    var out = $('.countdown', b);
    var reloaded = false;
    function tick() {
      var left = Math.round((deadline - (Date.now() + skew)) / 1000);
      if (left > 0) { out.textContent = fmtClock(left); return; }
      out.textContent = '0:00 — rolling back';
      b.classList.add('expired');
      if (!reloaded) { reloaded = true; setTimeout(function () { location.reload(); }, 3000); }
    }
    tick();
    setInterval(tick, 1000);
  }

  // ---- dashboard ---------------------------------------------------------------
  var history = {}; // child key -> [{t, bin, bout}]

  function signatureOfPage() {
    return $all('[data-tunnel][data-health], tr[data-sa], tr[data-child]').map(function (el) {
      return el.getAttribute('data-tunnel') || el.getAttribute('data-sa') || el.getAttribute('data-child');
    }).join('|') + '#' + $all('section.tunnel[data-health]').map(function (el) { return el.getAttribute('data-health'); }).join(',');
  }
  function signatureOfModel(m) {
    var parts = [];
    m.tunnels.forEach(function (t) {
      parts.push(t.name);
      t.sas.forEach(function (sa) {
        parts.push(String(sa.id));
        sa.children.forEach(function (c) { parts.push(c.key); });
      });
    });
    return parts.join('|') + '#' + m.tunnels.map(function (t) { return t.health; }).join(',');
  }

  function drawSpark(svg, samples) {
    var rates = [];
    for (var i = 1; i < samples.length; i++) {
      var dt = (samples[i].t - samples[i - 1].t) / 1000;
      if (dt <= 0) continue;
      rates.push({ i: Math.max(0, (samples[i].bin - samples[i - 1].bin) / dt), o: Math.max(0, (samples[i].bout - samples[i - 1].bout) / dt) });
    }
    var max = 1;
    rates.forEach(function (r) { max = Math.max(max, r.i, r.o); });
    // Until the window is full the samples so far span the whole width.
    var w = 120, h = 28, step = w / Math.max(1, Math.min(SPARK_POINTS, rates.length) - 1);
    function pts(key) {
      return rates.map(function (r, k) {
        return (k * step).toFixed(1) + ',' + (h - 1 - (r[key] / max) * (h - 2)).toFixed(1);
      }).join(' ');
    }
    svg.querySelector('polyline.in').setAttribute('points', pts('i'));
    svg.querySelector('polyline.out').setAttribute('points', pts('o'));
    var last = rates[rates.length - 1];
    svg.setAttribute('aria-label', last ? 'in ' + fmtBytes(Math.round(last.i)) + '/s, out ' + fmtBytes(Math.round(last.o)) + '/s' : 'collecting traffic samples');
    svg.setAttribute('data-samples', String(rates.length));
  }

  function setField(row, name, text) {
    var el = row.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = text;
  }

  function updateDashboard(m, pageSig) {
    if (m.daemon !== 'ok') { notice('The gateway daemon does not answer: status unknown.'); return; }
    if (signatureOfModel(m) !== pageSig) { location.reload(); return; }
    var now = Date.now();
    m.tunnels.forEach(function (t) {
      t.sas.forEach(function (sa) {
        var ikeRow = document.querySelector('tr.ike[data-sa="' + sa.id + '"]');
        if (ikeRow) {
          setField(ikeRow, 'establishedAgo', fmtDuration(sa.establishedAgoMs));
          setField(ikeRow, 'nextRekey', fmtDuration(sa.nextRekeyInMs));
        }
        sa.children.forEach(function (c) {
          var row = document.querySelector('tr[data-child="' + CSS.escape(c.key) + '"]');
          if (!row) return;
          setField(row, 'bytesIn', fmtBytes(c.bytesIn));
          setField(row, 'bytesOut', fmtBytes(c.bytesOut));
          setField(row, 'packetsIn', fmtCount(c.packetsIn));
          setField(row, 'packetsOut', fmtCount(c.packetsOut));
          setField(row, 'installedAgo', fmtDuration(c.installedAgoMs));
          setField(row, 'nextRekey', fmtDuration(c.nextRekeyInMs));
          setField(row, 'reason', c.reason);
          var badge = row.querySelector('.badge[data-health]');
          if (badge && badge.getAttribute('data-health') !== c.health) {
            badge.setAttribute('data-health', c.health);
            badge.className = 'badge h-' + c.health;
            badge.textContent = c.health;
            row.className = 'child h-' + c.health;
          }
          var h = history[c.key] || (history[c.key] = []);
          if (c.bytesIn !== null && c.bytesOut !== null) h.push({ t: now, bin: c.bytesIn, bout: c.bytesOut });
          while (h.length > SPARK_POINTS + 1) h.shift(); // SPARK_POINTS rates need one more sample
          var svg = row.querySelector('svg.spark');
          if (svg) drawSpark(svg, h);
        });
      });
    });
  }

  function dashboard() {
    var d = $('#dashboard[data-poll]');
    if (!d) return;
    var url = d.getAttribute('data-poll');
    var pageSig = signatureOfPage();
    var stopped = false;
    function poll() {
      if (stopped) return;
      getJson(url).then(function (m) { updateDashboard(m, pageSig); }).catch(function (e) {
        if (e.message === 'session') { stopped = true; notice('Your session ended: log in again.'); }
        else notice('Live update failed (' + e.message + '); retrying.');
      }).then(function () { if (!stopped) setTimeout(poll, POLL_MS); });
    }
    poll();
  }

  // ---- live event log ------------------------------------------------------------
  function logs() {
    var table = $('#event-log[data-poll]');
    if (!table) return;
    var toggle = $('#live-toggle');
    var tbody = table.querySelector('tbody');
    function maxId() {
      var ids = $all('tr[data-id]', tbody).map(function (r) { return Number(r.getAttribute('data-id')); });
      return ids.length ? Math.max.apply(null, ids) : 0;
    }
    function row(e) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-id', String(e.id));
      tr.className = 'lvl-' + e.level + ' new';
      var ts = new Date(e.ts).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
      [['Time', ts], ['Level', e.level], ['Tunnel', e.tunnel || '–'], ['Message', e.message]].forEach(function (c) {
        var td = document.createElement('td');
        td.setAttribute('data-label', c[0]);
        if (c[0] === 'Level') {
          var b = document.createElement('span');
          b.className = 'badge lvl-' + e.level;
          b.textContent = c[1];
          td.appendChild(b);
        } else td.textContent = c[1];
        tr.appendChild(td);
      });
      return tr;
    }
    function poll() {
      if (!toggle || toggle.checked) {
        getJson(table.getAttribute('data-poll')).then(function (events) {
          var top = maxId();
          events.filter(function (e) { return e.id > top; }).reverse().forEach(function (e) {
            tbody.insertBefore(row(e), tbody.firstChild);
          });
          var empty = $('p.empty');
          if (empty && tbody.children.length) empty.remove();
        }).catch(function () {});
      }
      setTimeout(poll, LOG_POLL_MS);
    }
    setTimeout(poll, LOG_POLL_MS);
  }

  // ---- small behaviours -------------------------------------------------------------
  function autosubmit() {
    $all('select[data-autosubmit]').forEach(function (s) {
      s.addEventListener('change', function () { s.form.submit(); });
    });
  }
  function mustEqual() {
    $all('input[data-must-equal]').forEach(function (input) {
      var button = input.form.querySelector('button[type="submit"]');
      function check() { button.disabled = input.value.trim() !== input.getAttribute('data-must-equal'); }
      input.addEventListener('input', check);
      check();
    });
  }

  // ---- firmware upload (Maintenance): upload progress, then install progress from status polling ----
  function firmware() {
    var form = $('#firmware-form');
    if (!form) return;
    var bar = $('#firmware-progress');
    var phase = $('#firmware-phase');
    var button = $('#firmware-upload');
    function show(pct, text) {
      bar.hidden = false;
      bar.value = Math.max(0, Math.min(100, pct));
      phase.textContent = text;
    }
    function watch(id) {
      getJson(form.getAttribute('data-status')).then(function (s) {
        var p = s.progress || {};
        if (p.id !== id) { setTimeout(function () { watch(id); }, 1000); return; }
        var pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
        if (p.phase === 'verifying') show(pct, 'Verifying signatures and images… ' + pct + '%');
        else if (p.phase === 'writing') show(pct, 'Writing the inactive slot… ' + pct + '%');
        else if (p.phase === 'finishing') show(100, 'Making it the trial slot…');
        if (p.phase === 'done' || p.phase === 'failed') { window.location.reload(); return; }
        setTimeout(function () { watch(id); }, 1000);
      }).catch(function () {
        // The gateway may be rebooting into the new firmware: keep asking.
        phase.textContent = 'Waiting for the gateway…';
        setTimeout(function () { watch(id); }, 3000);
      });
    }
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var file = $('#firmware-file').files[0];
      if (!file) return;
      var reboot = $('#firmware-reboot').checked ? '1' : '0';
      var csrf = form.querySelector('input[name="_csrf"]').value;
      var xhr = new XMLHttpRequest();
      xhr.open('POST', form.getAttribute('data-upload') + '?reboot=' + reboot);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.setRequestHeader('X-CSRF-Token', csrf);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) show(Math.floor((100 * e.loaded) / e.total), 'Uploading… ' + Math.floor((100 * e.loaded) / e.total) + '%');
      };
      xhr.onload = function () {
        var r = {};
        try { r = JSON.parse(xhr.responseText); } catch (e) { r = {}; }
        if (xhr.status === 202) { show(0, 'Uploaded; verifying…'); watch(r.id); return; }
        button.disabled = false;
        phase.textContent = (r.error && r.error.message) || ('Upload failed (HTTP ' + xhr.status + ')');
      };
      xhr.onerror = function () { button.disabled = false; phase.textContent = 'Upload failed (connection lost)'; };
      button.disabled = true;
      show(0, 'Uploading…');
      xhr.send(file);
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    countdown();
    dashboard();
    logs();
    autosubmit();
    mustEqual();
    firmware();
  });
})();
