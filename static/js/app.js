// Nimbus dashboard glue between htmx and the page. The Content-Security-Policy
// forbids inline script, so everything interactive lives here: the CSRF
// header on htmx requests, the modal <dialog>, toasts announced by the server
// through HX-Trigger, the collapsible navigation and the dropdown menus.
// Every page also works without this file: links and forms fall back to full
// page loads.
(function () {
  'use strict';

  document.documentElement.classList.add('js');

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  // CSRF: every htmx request carries the session's token in a header; the
  // server checks it on every state-changing method.
  document.addEventListener('htmx:configRequest', function (evt) {
    var token = csrfToken();
    if (token) evt.detail.headers['X-CSRF-Token'] = token;
  });

  // ---- Toasts --------------------------------------------------------------

  var TOAST_MS = 6000;

  function toast(message, level) {
    var region = document.getElementById('toasts');
    if (!region || !message) return;
    var el = document.createElement('div');
    el.className = 'toast toast-' + (level === 'error' ? 'error' : level === 'info' ? 'info' : 'success');
    el.setAttribute('role', level === 'error' ? 'alert' : 'status');
    var text = document.createElement('span');
    text.className = 'toast-text';
    text.textContent = String(message); // never innerHTML: the message may quote user input
    var close = document.createElement('button');
    close.type = 'button';
    close.className = 'toast-close';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '\u00d7';
    close.addEventListener('click', function () { el.remove(); });
    el.appendChild(text);
    el.appendChild(close);
    region.appendChild(el);
    window.setTimeout(function () { el.classList.add('toast-leaving'); }, TOAST_MS - 400);
    window.setTimeout(function () { el.remove(); }, TOAST_MS);
  }

  // The server sends HX-Trigger: {"nimbus:toast": {"message": "...", "level": "success"}}.
  document.addEventListener('nimbus:toast', function (evt) {
    var d = evt.detail || {};
    toast(d.message, d.level);
  });

  document.addEventListener('htmx:responseError', function (evt) {
    var xhr = evt.detail && evt.detail.xhr;
    // 4xx answers carry their own message (a toast or an inline error);
    // only say something for failures the server could not explain.
    if (xhr && xhr.status >= 500 && !xhr.getResponseHeader('HX-Trigger')) {
      toast('The server could not complete the request (' + xhr.status + '). Try again.', 'error');
    }
  });
  document.addEventListener('htmx:sendError', function () {
    toast('The server could not be reached. Check your connection and try again.', 'error');
  });

  // ---- Modal dialog ----------------------------------------------------------

  var opener = null;

  function modal() { return document.getElementById('modal'); }

  function openModal() {
    var dlg = modal();
    if (!dlg) return;
    if (!dlg.open) dlg.showModal();
    var first = dlg.querySelector('[aria-invalid="true"], input:not([type=hidden]), select, textarea, button[type=submit]');
    if (first) first.focus();
  }

  function closeModal() {
    var dlg = modal();
    if (dlg && dlg.open) dlg.close();
  }

  document.addEventListener('htmx:beforeRequest', function (evt) {
    var elt = evt.detail && evt.detail.elt;
    if (elt && elt.getAttribute && elt.getAttribute('hx-target') === '#modal-body') opener = elt;
  });

  document.addEventListener('htmx:afterSwap', function (evt) {
    var target = evt.detail && evt.detail.target;
    if (target && target.id === 'modal-body') openModal();
  });

  // After a form inside the dialog is re-rendered with errors, focus the first
  // field that needs attention.
  document.addEventListener('htmx:afterSettle', function (evt) {
    var dlg = modal();
    if (!dlg || !dlg.open) return;
    var bad = dlg.querySelector('[aria-invalid="true"], .alert-error');
    if (bad) {
      if (bad.classList.contains('alert-error')) bad.setAttribute('tabindex', '-1');
      bad.focus();
    }
  });

  document.addEventListener('nimbus:modal-close', closeModal);

  document.addEventListener('click', function (evt) {
    var t = evt.target;
    if (!(t instanceof Element)) return;
    var closer = t.closest('[data-close-modal]');
    if (closer && closer.closest('dialog')) {
      evt.preventDefault();
      closeModal();
      return;
    }
    // A click on the backdrop (the dialog element itself, outside its box) closes it.
    var dlg = modal();
    if (dlg && t === dlg) {
      var r = dlg.getBoundingClientRect();
      var inside = evt.clientX >= r.left && evt.clientX <= r.right && evt.clientY >= r.top && evt.clientY <= r.bottom;
      if (!inside) closeModal();
    }
  });

  document.addEventListener('close', function (evt) {
    if (evt.target !== modal()) return;
    var body = document.getElementById('modal-body');
    if (body) body.replaceChildren();
    if (opener && document.body.contains(opener)) opener.focus();
    opener = null;
  }, true);

  // ---- Navigation and dropdowns ---------------------------------------------

  document.addEventListener('click', function (evt) {
    var t = evt.target;
    if (!(t instanceof Element)) return;
    var toggle = t.closest('.nav-toggle');
    if (toggle) {
      var open = document.body.classList.toggle('nav-open');
      toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
      return;
    }
    // Close open dropdowns when clicking elsewhere.
    document.querySelectorAll('details.dropdown[open]').forEach(function (d) {
      if (!d.contains(t)) d.removeAttribute('open');
    });
  });

  document.addEventListener('keydown', function (evt) {
    if (evt.key !== 'Escape') return;
    document.querySelectorAll('details.dropdown[open]').forEach(function (d) {
      d.removeAttribute('open');
      var s = d.querySelector('summary');
      if (s) s.focus();
    });
  });

  // ---- Image upload progress and key downloads ------------------------------

  // htmx reports an upload's progress on the form; the bar sits inside it.
  document.addEventListener('htmx:xhr:progress', function (evt) {
    var form = evt.target;
    if (!(form instanceof Element) || !form.matches('form[data-upload]')) return;
    var bar = form.querySelector('progress.upload-progress');
    var d = evt.detail || {};
    if (!bar || !d.lengthComputable || !d.total) return;
    bar.hidden = false;
    bar.value = Math.round((d.loaded / d.total) * 100);
  });

  // A form that answers with a download (a generated key pair's private key)
  // is a plain post: the page stays. Close the dialog and reload the list.
  document.addEventListener('submit', function (evt) {
    var form = evt.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-download')) return;
    if (!form.closest('dialog')) return;
    window.setTimeout(function () {
      closeModal();
      toast('The private key is downloading. Keep it safe: it is not stored anywhere.', 'info');
      if (window.htmx) window.htmx.ajax('GET', window.location.pathname, { target: '#main', swap: 'innerHTML' });
    }, 500);
  });
  // A key pair generated in the launch dialog: its private key downloads
  // once, as the Key pairs page's does, from the text the answer carries.
  document.addEventListener('htmx:load', function (evt) {
    var root = evt.detail && evt.detail.elt;
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll('textarea[data-autodownload]').forEach(function (ta) {
      ta.removeAttribute('data-autodownload');
      var a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([ta.value], { type: 'application/x-pem-file' }));
      a.download = ta.getAttribute('data-file') || 'key.pem';
      document.body.appendChild(a);
      a.click();
      a.remove();
      window.setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
    });
  });
  // ---- Live updates ---------------------------------------------------------
  // The server pushes fragments over /live (htmx ws extension on <body>):
  // instance rows and badges swap in place by id, host badges too, and
  // toasts arrive through #live-toast; the network topology is fetched
  // again when the server says one of its networks, routers or ports
  // changed. The socket is told which page the tab shows (tabs and sorting
  // change it without a reload). When a row has
  // no place on the page yet (a new instance), when the server says messages
  // were lost (#live-resync), or when the socket comes back after a break,
  // the page's live regions are fetched again, so nothing missed stays
  // stale. Without the socket every page still works and polls.

  var socket = null;

  function live() { return document.body.getAttribute('data-live') === 'connected'; }

  function sayPage() {
    if (socket) socket.send(JSON.stringify({ page: window.location.pathname + window.location.search }));
  }

  // The regions a reload would change; each is fetched and swapped whole.
  var LIVE_REGIONS = ['#instances-table', '#instance-badges', '#hypervisors-table', '#services-table', '#agents-table', '#topology'];

  var refreshTimer = 0;
  function refreshLive() {
    if (!window.htmx) return;
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(function () {
      var url = window.location.pathname + window.location.search;
      LIVE_REGIONS.forEach(function (sel) {
        if (document.querySelector(sel)) {
          window.htmx.ajax('GET', url, { target: sel, select: sel, swap: 'outerHTML' });
        }
      });
      refreshTab();
    }, 100);
  }

  // An instance page's open tab (overview facts, console log) follows its
  // badges.
  function refreshTab() {
    var panel = document.getElementById('tab-panel');
    if (!panel || !window.htmx) return;
    var tab = new URLSearchParams(window.location.search).get('tab') || 'overview';
    if (tab !== 'overview' && tab !== 'log') return;
    window.htmx.ajax('GET', window.location.pathname + window.location.search,
      { target: '#tab-panel', select: '#tab-panel', swap: 'outerHTML' });
  }

  document.body.addEventListener('htmx:oobErrorNoTarget', function (evt) {
    var el = evt.detail && evt.detail.content;
    if (el && el.id && el.id.indexOf('instance-') === 0 && el.getAttribute('hx-swap-oob') !== 'delete' &&
        document.getElementById('instances-table')) refreshLive();
  });
  // Picking an item closes its row's Actions menu at once, as a native menu
  // does: the answer or a live update then never finds it open.
  document.addEventListener('click', function (evt) {
    var item = evt.target instanceof Element && evt.target.closest('details.row-menu .menu-item');
    if (!item) return;
    var menu = item.closest('details.row-menu');
    window.setTimeout(function () { menu.removeAttribute('open'); }, 0);
  });
  // A row swapped in while its Actions menu is open keeps the menu open
  // (and the focus in it), so a live update never snatches the menu from
  // under the pointer or the keyboard.
  var refocusRow = '';
  document.body.addEventListener('htmx:oobBeforeSwap', function (evt) {
    var d = evt.detail;
    var old = d && d.target;
    var menu = old && old.querySelector && old.querySelector('details.row-menu[open]');
    if (!menu) return;
    var next = d.fragment && d.fragment.querySelector && d.fragment.querySelector('details.row-menu');
    if (next) next.setAttribute('open', '');
    if (menu.contains(document.activeElement)) refocusRow = old.id;
  });
  document.body.addEventListener('htmx:oobAfterSwap', function (evt) {
    var target = evt.detail && evt.detail.target;
    if (!target) return;
    if (refocusRow && target.id === refocusRow) {
      var summary = document.querySelector('#' + CSS.escape(refocusRow) + ' details.row-menu > summary');
      if (summary) summary.focus();
      refocusRow = '';
    }
    if (target.id === 'live-resync') refreshLive();
    if (target.id === 'instance-badges' || (target.parentNode && target.parentNode.id === 'instance-badges')) refreshTab();
    if (target.id === 'live-toast') {
      var line = target.querySelector('[data-level]');
      if (line) toast(line.textContent, line.getAttribute('data-level'));
      target.replaceChildren();
    }
  });

  // While the socket is up it carries what these elements poll for: skip
  // their polls (they resume by themselves when the socket drops).
  var COVERED = 'tr[id^="instance-"], #console-log, #tab-panel > .panel-body';
  document.body.addEventListener('htmx:confirm', function (evt) {
    var elt = evt.detail && evt.detail.elt;
    // Polls carry no triggering event; clicks and form submits do.
    if (live() && elt && elt.matches && elt.matches(COVERED) && !evt.detail.triggeringEvent) {
      evt.preventDefault();
    }
  });

  var opened = false;
  document.body.addEventListener('htmx:wsOpen', function (evt) {
    socket = evt.detail && evt.detail.socketWrapper;
    document.body.setAttribute('data-live', 'connected');
    sayPage();
    if (opened) refreshLive();
    opened = true;
  });
  document.body.addEventListener('htmx:wsClose', function () {
    document.body.setAttribute('data-live', 'disconnected');
  });
  document.body.addEventListener('htmx:pushedIntoHistory', sayPage);
  document.body.addEventListener('htmx:replacedInHistory', sayPage);
  window.addEventListener('popstate', function () { window.setTimeout(sayPage, 0); });
})();
