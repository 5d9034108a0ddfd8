/*
 * keygate ui.js: the shared, dependency-free components of keygate's browser
 * front ends (the web console and the customer portal). A classic script
 * (load it with `defer`, before the app's own script); everything lives on
 * one global object, window.KG:
 *
 *   KG.api            fetch wrapper: JSON in and out, envelope unwrapping, CSRF
 *                     header on every non-GET, errors as KG.APIError
 *                     {code, status, message, requestId}; a 401 calls
 *                     onUnauthorized (see KG.api.configure)
 *   KG.h, KG.svg      element builders (textContent only, never HTML strings)
 *   KG.text           untrusted text, isolated (<bdi>) with invisible and
 *                     control characters shown as U+XXXX
 *   KG.formatDateTime, KG.formatDate, KG.relativeTime, KG.time,
 *   KG.formatNumber, KG.formatDuration, KG.plural
 *   KG.modal, KG.confirm   <dialog> helpers (a confirm dialog names the thing)
 *   KG.rawKeyReveal   shows a raw key once, copy button, masked after 10 s
 *   KG.sparkline, KG.stackedBarChart   SVG charts with text alternatives
 *   KG.toast          one polite live region (role="status") for feedback
 *   KG.pagedTable     a table paged by opaque cursors (Previous/Next)
 *   key pages' pieces KG.formatWindow, KG.describeLimits, KG.describeCredits,
 *                     KG.statusBadge, KG.expiryBadge, KG.formErrors,
 *                     KG.markInvalid, KG.radioChoice, KG.expiryFieldset,
 *                     KG.revealInDialog (a dialog turned into a key's reveal)
 *   usage             KG.usagePoints, KG.USAGE_SERIES, KG.loadSparklines (a
 *                     table's sparklines), KG.usagePanel (hourly/daily chart)
 *   app plumbing      KG.apiBase, KG.startApp (boot: view, toasts, skip link,
 *                     API base, hash changes), KG.views (view sequence and
 *                     heading focus), KG.hashRoute, KG.forgetSession,
 *                     KG.signOutButton
 *   page pieces       KG.muted, KG.keyHref, KG.pageHead, KG.crumbs, KG.panel,
 *                     KG.notFoundPage, KG.codeList, KG.detailRow,
 *                     KG.keyLifeRows, KG.submitting (a form's busy submit),
 *                     KG.gather, KG.checkKeyName, KG.KEY_ID_RE
 *   key pages         KG.keyView (load, Rotate/Revoke, refocus), KG.revokeKey,
 *                     KG.rotateDialog, KG.createKeyDialog
 *
 * The pages run under a strict CSP (no inline script or style): nothing here
 * sets a style attribute, uses innerHTML, eval or inline handlers.
 */
(function () {
  'use strict';

  const KG = {};
  window.KG = KG;

  // ---------------------------------------------------------------- ids

  let uidCounter = 0;
  /** A document-unique id, e.g. KG.uid('dlg') → "dlg-7". */
  KG.uid = (prefix = 'kg') => `${prefix}-${++uidCounter}`;

  // ---------------------------------------------------------------- element builders

  const PROPS = new Set(['value', 'checked', 'selected', 'indeterminate', 'defaultValue', 'defaultChecked']);
  const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href']);
  const FORBIDDEN = new Set(['style', 'innerhtml', 'outerhtml', 'srcdoc']);

  function appendChild(el, child) {
    if (child == null || child === false || child === true) return;
    if (Array.isArray(child)) {
      for (const c of child) appendChild(el, c);
      return;
    }
    if (child instanceof Node) {
      el.appendChild(child);
      return;
    }
    el.appendChild(document.createTextNode(String(child)));
  }

  function build(el, attrs, children) {
    const props = [];
    if (attrs) {
      for (const [name, v] of Object.entries(attrs)) {
        const lower = name.toLowerCase();
        if (FORBIDDEN.has(lower)) throw new Error(`KG.h: the "${name}" attribute is not allowed`);
        if (lower.startsWith('on')) {
          if (typeof v !== 'function') throw new Error(`KG.h: "${name}" must be a function`);
          el.addEventListener(lower.slice(2), v);
          continue;
        }
        if (lower.startsWith('aria-') && typeof v === 'boolean') {
          el.setAttribute(name, String(v));
          continue;
        }
        if (v == null || v === false) continue;
        if (name === 'class' || name === 'className') {
          const cls = Array.isArray(v) ? v.filter(Boolean).join(' ') : String(v);
          if (cls) el.setAttribute('class', cls);
          continue;
        }
        if (name === 'dataset') {
          for (const [k, dv] of Object.entries(v)) if (dv != null) el.dataset[k] = String(dv);
          continue;
        }
        if (name === 'text') {
          el.textContent = String(v);
          continue;
        }
        if (PROPS.has(name)) {
          props.push([name, v]);
          continue;
        }
        if (URL_ATTRS.has(lower) && /^\s*(javascript|data|vbscript):/i.test(String(v))) {
          throw new Error(`KG.h: refusing a script URL in "${name}"`);
        }
        el.setAttribute(name, v === true ? '' : String(v));
      }
    }
    appendChild(el, children);
    // Properties last: a <select>'s value needs its options first.
    for (const [n, v] of props) el[n] = v;
    return el;
  }

  /**
   * h('a', {href: '#/keys', class: 'link', onclick: fn}, 'text', node, [more])
   * builds an HTML element. Strings become text nodes; null/false children are
   * skipped; boolean attributes are set when true; aria-* booleans become
   * "true"/"false"; `value`, `checked` and `selected` are set as properties.
   */
  KG.h = function h(tag, attrs, ...children) {
    return build(document.createElement(tag), attrs, children);
  };

  const SVG_NS = 'http://www.w3.org/2000/svg';
  /** KG.svg('rect', {x: 1, y: 2, width: 3, height: 4, class: 'bar'}) builds an SVG element. */
  KG.svg = function svg(tag, attrs, ...children) {
    return build(document.createElementNS(SVG_NS, tag), attrs, children);
  };

  const h = KG.h;

  /** KG.append(el, ...children): like el.append, with KG.h's rules (null and false skipped, arrays flattened). */
  KG.append = (el, ...children) => {
    appendChild(el, children);
    return el;
  };
  /** KG.replace(el, ...children): like el.replaceChildren, with KG.h's rules. */
  KG.replace = (el, ...children) => {
    el.replaceChildren();
    appendChild(el, children);
    return el;
  };

  // ---------------------------------------------------------------- untrusted text

  // Characters that show as nothing, or as a space that is not one, or that
  // reorder the text around them: control (Cc), format (Cf: zero-width,
  // bidirectional overrides, soft hyphen), line and paragraph separators,
  // unusual spaces and the Hangul and Braille blanks.
  const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000\u115F\u1160\u3164\uFFA0\u2800]/u;
  const HIDDEN_ALL = new RegExp(HIDDEN.source, 'gu');

  KG.codePoint = (ch) => 'U+' + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0');

  /** hasHiddenChars reports whether a string holds a character KG.text would mark. */
  KG.hasHiddenChars = (s) => HIDDEN.test(String(s ?? ''));

  /**
   * KG.text(value) is untrusted text as a node: a <bdi> (so right-to-left or
   * override characters cannot reorder what surrounds it) whose invisible
   * characters are shown as a marked "U+202E". {multiline: true} keeps line
   * feeds (for pretty-printed JSON).
   */
  KG.text = function text(value, { multiline = false, className = '' } = {}) {
    const s = value == null ? '' : String(value);
    const el = h('bdi', { class: ['ut', className] });
    if (!HIDDEN.test(s)) {
      el.textContent = s;
      return el;
    }
    let last = 0;
    for (const m of s.matchAll(HIDDEN_ALL)) {
      const ch = m[0];
      if (multiline && (ch === '\n' || ch === '\r')) continue;
      if (m.index > last) el.append(s.slice(last, m.index));
      el.append(h('span', { class: 'invis', title: `Invisible character ${KG.codePoint(ch)}` }, KG.codePoint(ch)));
      last = m.index + ch.length;
    }
    if (last < s.length) el.append(s.slice(last));
    return el;
  };

  /** KG.plainText(value) is untrusted text as a string with its invisible characters written as U+XXXX. */
  KG.plainText = (value) => String(value ?? '').replace(HIDDEN_ALL, (ch) => `[${KG.codePoint(ch)}]`);

  // ---------------------------------------------------------------- JSON

  // Numbers JavaScript cannot hold exactly (a 20-digit integer in metadata)
  // or writes differently (1.0) are kept as their source text, so metadata
  // shows and round-trips byte for byte where the browser supports it.
  const hasRawJSON = typeof JSON.rawJSON === 'function';
  function reviveNumber(key, value, context) {
    if (typeof value === 'number' && context && typeof context.source === 'string' && context.source !== String(value)) {
      return JSON.rawJSON(context.source);
    }
    return value;
  }
  /** KG.parseJSON(text) parses JSON, keeping numbers exactly (see above). */
  KG.parseJSON = (text) => (hasRawJSON ? JSON.parse(text, reviveNumber) : JSON.parse(text));
  /** KG.isRawNumber(v) reports whether v is an exact number kept as text by KG.parseJSON. */
  KG.isRawNumber = (v) => v !== null && typeof v === 'object' && typeof v.rawJSON === 'string' && (!JSON.isRawJSON || JSON.isRawJSON(v));
  /** KG.num(v) is v as a number (a kept number is read approximately). */
  KG.num = (v) => (KG.isRawNumber(v) ? Number(v.rawJSON) : Number(v) || 0);
  /** KG.isPlainObject(v): a JSON object, not an array, null or kept number. */
  KG.isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !KG.isRawNumber(v);

  // ---------------------------------------------------------------- API

  /** An error of the API, or of reaching it: {code, status, message, requestId}. */
  class APIError extends Error {
    constructor(message, { code = 'internal', status = 0, requestId = '' } = {}) {
      super(message);
      this.name = 'APIError';
      this.code = code;
      this.status = status;
      this.requestId = requestId;
    }
  }
  KG.APIError = APIError;

  const CODE_BY_STATUS = {
    400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict',
    413: 'payload_too_large', 429: 'rate_limited', 500: 'internal', 502: 'unavailable', 503: 'unavailable', 504: 'unavailable',
  };

  const apiConfig = {
    base: '/console/api',
    csrfHeader: 'X-Keygate-CSRF',
    csrfToken: '',
    onUnauthorized: null,
  };

  function buildURL(path, query) {
    let url = apiConfig.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v == null || v === '' || v === false) continue;
        params.append(k, v === true ? 'true' : String(v));
      }
      const qs = params.toString();
      if (qs) url += (url.includes('?') ? '&' : '?') + qs;
    }
    return url;
  }

  /**
   * KG.api.request(method, path, {query, body, csrf, allowUnauthorized})
   * calls base + path and resolves to {data, nextCursor, message, warnings,
   * status}, or rejects with a KG.APIError whose message is plain words from
   * the server's envelope. A non-GET sends Content-Type: application/json and
   * the CSRF header (the token set with setCsrfToken, or opts.csrf). A 401
   * calls onUnauthorized(err) first (unless allowUnauthorized), and the error
   * then carries sessionEnded = true.
   */
  async function request(method, path, opts = {}) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET' && method !== 'HEAD') {
      headers['Content-Type'] = 'application/json';
      headers[apiConfig.csrfHeader] = opts.csrf ?? apiConfig.csrfToken;
      if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
    }
    let res;
    try {
      res = await fetch(buildURL(path, opts.query), init);
    } catch {
      throw new APIError('Could not reach the keygate server. Check your connection, then try again.', { code: 'network' });
    }
    let text = '';
    try {
      text = await res.text();
    } catch {
      text = '';
    }
    let env = null;
    if (text) {
      try {
        env = KG.parseJSON(text);
      } catch {
        env = null;
      }
    }
    const requestId = res.headers.get('X-Request-Id') || '';
    if (!env || typeof env !== 'object' || typeof env.success !== 'boolean') {
      const words = res.ok
        ? 'The server sent an answer this page cannot read.'
        : `The server answered with an error (HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}).`;
      const err = new APIError(words, { code: CODE_BY_STATUS[res.status] || 'internal', status: res.status, requestId });
      if (res.status === 401) notifyUnauthorized(err, opts);
      throw err;
    }
    if (!env.success || !res.ok) {
      const e = env.error && typeof env.error === 'object' ? env.error : {};
      const err = new APIError(
        typeof e.message === 'string' && e.message ? e.message : `The request failed (HTTP ${res.status}).`,
        { code: e.code || CODE_BY_STATUS[res.status] || 'internal', status: res.status, requestId: e.requestId || requestId },
      );
      if (err.code === 'unauthorized' || res.status === 401) notifyUnauthorized(err, opts);
      throw err;
    }
    return {
      data: env.data,
      nextCursor: typeof env.nextCursor === 'string' ? env.nextCursor : '',
      message: typeof env.message === 'string' ? env.message : '',
      warnings: Array.isArray(env.warnings) ? env.warnings.map(String) : [],
      status: res.status,
    };
  }

  function notifyUnauthorized(err, opts) {
    if (opts.allowUnauthorized || typeof apiConfig.onUnauthorized !== 'function') return;
    err.sessionEnded = true;
    try {
      apiConfig.onUnauthorized(err);
    } catch (e) {
      // The handler's own failure must not hide the API error.
      setTimeout(() => { throw e; });
    }
  }

  KG.api = {
    /** configure({base, csrfHeader, onUnauthorized}) */
    configure(opts) {
      Object.assign(apiConfig, opts);
    },
    setCsrfToken(token) {
      apiConfig.csrfToken = token ? String(token) : '';
    },
    request,
    get: (path, query, opts = {}) => request('GET', path, { ...opts, query }),
    post: (path, body, opts = {}) => request('POST', path, { ...opts, body }),
    put: (path, body, opts = {}) => request('PUT', path, { ...opts, body }),
    patch: (path, body, opts = {}) => request('PATCH', path, { ...opts, body }),
    del: (path, opts = {}) => request('DELETE', path, opts),
    url: buildURL,
  };

  /** KG.errorMessage(err) is an error in plain words. */
  KG.errorMessage = function errorMessage(err) {
    if (err instanceof APIError) {
      const m = String(err.message || '');
      // "this key is unknown" reads as a sentence; "name: want 1-128 characters" names a field.
      return /^[a-z][\w.[\]]*: /.test(m) ? m : m.charAt(0).toUpperCase() + m.slice(1);
    }
    return `Something went wrong in this page: ${err && err.message ? err.message : String(err)}`;
  };

  /**
   * KG.errorBox(err, {retry, title}) is an alert box with the error's message,
   * its request id, and a "Try again" button when retry is given.
   */
  KG.errorBox = function errorBox(err, { retry, title } = {}) {
    const box = h('div', { class: 'notice notice-error', role: 'alert' });
    if (title) box.append(h('p', { class: 'notice-title' }, title));
    box.append(h('p', null, KG.errorMessage(err)));
    if (err && err.requestId) box.append(h('p', { class: 'muted small' }, 'Request id: ', h('code', null, err.requestId)));
    if (retry) box.append(h('p', null, h('button', { type: 'button', class: 'btn', onclick: retry }, 'Try again')));
    return box;
  };

  /** KG.notice(kind, ...content): an info/ok/warn box (not a live region). */
  KG.notice = (kind, ...content) => h('div', { class: `notice notice-${kind}` }, ...content);

  /** KG.loading(text) is a "Loading…" paragraph. */
  KG.loading = (text = 'Loading…') => h('p', { class: 'loading' }, text);

  /** KG.setBusy(el, busy) sets aria-busy. */
  KG.setBusy = (el, busy) => el.setAttribute('aria-busy', busy ? 'true' : 'false');

  // ---------------------------------------------------------------- formatting

  const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
  const dateFmtUTC = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
  const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const numFmt = new Intl.NumberFormat();

  /** KG.parseDate(v): a Date, or null for null/empty/invalid. */
  KG.parseDate = function parseDate(v) {
    if (v == null || v === '') return null;
    const d = v instanceof Date ? v : new Date(v);
    return Number.isNaN(d.getTime()) ? null : d;
  };

  KG.formatDateTime = (v, fallback = '—') => {
    const d = KG.parseDate(v);
    return d ? dateTimeFmt.format(d) : fallback;
  };
  KG.formatDate = (v, fallback = '—', { utc = false } = {}) => {
    const d = KG.parseDate(v);
    return d ? (utc ? dateFmtUTC : dateFmt).format(d) : fallback;
  };

  const REL_UNITS = [
    ['year', 365 * 86400], ['month', 30 * 86400], ['week', 7 * 86400], ['day', 86400],
    ['hour', 3600], ['minute', 60], ['second', 1],
  ];
  /** KG.relativeTime(v): "5 minutes ago", "in 3 days", "now". */
  KG.relativeTime = function relativeTime(v, now = Date.now()) {
    const d = KG.parseDate(v);
    if (!d) return '—';
    const secs = (d.getTime() - now) / 1000;
    const abs = Math.abs(secs);
    if (abs < 45) return relFmt.format(0, 'second');
    for (const [unit, size] of REL_UNITS) {
      if (abs >= size || unit === 'second') return relFmt.format(Math.round(secs / size), unit);
    }
    return relFmt.format(0, 'second');
  };

  /**
   * KG.time(v, {mode}) is a <time datetime> element: mode "datetime"
   * (default), "date" or "relative"; the exact time is its title.
   */
  KG.time = function time(v, { mode = 'datetime', fallback = '—' } = {}) {
    const d = KG.parseDate(v);
    if (!d) return h('span', { class: 'muted' }, fallback);
    const text = mode === 'relative' ? KG.relativeTime(d) : mode === 'date' ? dateFmt.format(d) : dateTimeFmt.format(d);
    return h('time', { datetime: d.toISOString(), title: `${dateTimeFmt.format(d)} (${d.toISOString()})` }, text);
  };

  /** KG.formatNumber(n): 1,234 (kept exact numbers as given). */
  KG.formatNumber = (n) => (KG.isRawNumber(n) ? n.rawJSON : numFmt.format(Number(n) || 0));

  /** KG.plural(2, 'key') → "2 keys"; KG.plural(1, 'entry', 'entries') → "1 entry". */
  KG.plural = (n, one, many = one + 's') => `${KG.formatNumber(n)} ${Number(n) === 1 ? one : many}`;

  const DURATION_UNITS = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  /** KG.formatDuration(seconds): "1 day", "15 minutes", "90 seconds", "none". */
  KG.formatDuration = function formatDuration(seconds) {
    const s = Math.round(Number(seconds) || 0);
    if (s <= 0) return 'none';
    for (const [unit, size] of DURATION_UNITS) {
      if (s % size === 0) return KG.plural(s / size, unit);
    }
    return KG.plural(s, 'second');
  };

  /** KG.json(v, indent): JSON text (kept exact numbers included). */
  KG.json = (v, indent) => {
    try {
      return JSON.stringify(v, null, indent);
    } catch {
      return String(v);
    }
  };

  // ---------------------------------------------------------------- small pieces

  /** KG.badge(text, kind): kind is ok, warn, danger, muted or info. */
  KG.badge = (text, kind = 'muted') => h('span', { class: `badge badge-${kind}` }, text);

  /** KG.srOnly(text): text for screen readers only. */
  KG.srOnly = (text) => h('span', { class: 'sr-only' }, text);

  /**
   * KG.field({label, control, hint, id}) is a labelled form row: <label for>,
   * the control (given an id if it has none) and an optional hint tied to it
   * with aria-describedby.
   */
  KG.field = function field({ label, control, hint, className = '' }) {
    if (!control.id) control.id = KG.uid('f');
    const row = h('div', { class: ['field', className] }, h('label', { for: control.id }, label), control);
    if (hint) {
      const hintEl = h('p', { class: 'hint', id: control.id + '-hint' }, hint);
      addDescribedBy(control, hintEl.id);
      row.append(hintEl);
    }
    return row;
  };

  function addDescribedBy(el, id) {
    const cur = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    if (!cur.includes(id)) cur.push(id);
    el.setAttribute('aria-describedby', cur.join(' '));
  }
  KG.addDescribedBy = addDescribedBy;

  // ---------------------------------------------------------------- toast

  let toastRegion = null;
  let toastHome = null;
  let toastTimer = 0;

  function topModal(except) {
    const open = [...document.querySelectorAll('dialog[open]')].filter((d) => d !== except && isModal(d));
    return open.length ? open[open.length - 1] : null;
  }
  function isModal(d) {
    try {
      return d.matches(':modal');
    } catch {
      return true;
    }
  }
  function homeOfToasts() {
    return toastHome && toastHome.isConnected ? toastHome : document.body;
  }

  /**
   * KG.mountToasts(parent) creates the one live region for feedback
   * (role="status", data-testid="toast") in parent; it must exist before the
   * first message so that screen readers announce it. KG.toast creates it in
   * <body> if nobody mounted it. While a modal dialog is open (the rest of
   * the page is inert then) the region moves into it, and back when it closes.
   */
  KG.mountToasts = function mountToasts(parent = document.body) {
    toastHome = parent;
    if (toastRegion && toastRegion.isConnected) return toastRegion;
    toastRegion = h('div', { class: 'toast-region', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true', 'data-testid': 'toast' });
    parent.append(toastRegion);
    return toastRegion;
  };

  /** KG.toast(message, {kind: 'info'|'ok'|'error', timeout}) shows one message, replacing the last. */
  KG.toast = function toast(message, { kind = 'info', timeout = 8000 } = {}) {
    const region = toastRegion && toastRegion.isConnected ? toastRegion : KG.mountToasts(homeOfToasts());
    clearTimeout(toastTimer);
    const show = () => {
      region.replaceChildren(h('p', { class: `toast toast-${kind}` }, message));
      if (timeout > 0) toastTimer = setTimeout(() => region.replaceChildren(), timeout);
    };
    const target = topModal() || homeOfToasts();
    if (region.parentNode !== target) {
      // A live region announces changes, not its own insertion: move it
      // empty, then fill it.
      region.replaceChildren();
      target.append(region);
      toastTimer = setTimeout(show, 50);
    } else {
      show();
    }
  };

  /** Moves the toast region out of a dialog about to close. */
  function rehomeToasts(closing) {
    if (toastRegion && closing.contains(toastRegion)) (topModal(closing) || homeOfToasts()).append(toastRegion);
  }

  /** KG.toastError(err): an error as a toast, unless the session ended (handled elsewhere). */
  KG.toastError = (err, prefix = '') => {
    if (err && err.sessionEnded) return;
    KG.toast(prefix + KG.errorMessage(err), { kind: 'error', timeout: 12000 });
  };

  // ---------------------------------------------------------------- dialogs

  /**
   * KG.modal({title, describedBy, className}) opens a modal <dialog
   * aria-labelledby> and returns a controller:
   *   dialog, body, heading        elements
   *   setTitle(text)
   *   setGuard(async () => bool)   asked before Escape or requestClose closes it
   *   requestClose()               close, if the guard agrees
   *   close()                      close now
   *   closed                       a promise resolved once it has closed
   * The dialog is removed from the document when it closes, and focus goes
   * back where it was.
   */
  KG.modal = function modal({ title, className = '', testid } = {}) {
    const titleId = KG.uid('dlg-title');
    const heading = h('h2', { id: titleId, class: 'dialog-title' }, title);
    const body = h('div', { class: 'dialog-body' });
    const dialog = h('dialog', { class: ['dialog', className], 'aria-labelledby': titleId, 'data-testid': testid }, heading, body);
    const opener = document.activeElement;
    let guard = null;
    let asking = false;
    let resolveClosed;
    const closed = new Promise((r) => { resolveClosed = r; });

    const ctl = {
      dialog,
      body,
      heading,
      closed,
      setTitle(text) {
        heading.textContent = text;
      },
      setGuard(fn) {
        guard = fn;
      },
      async requestClose() {
        if (asking || !dialog.open) return false;
        if (guard) {
          asking = true;
          let ok = false;
          try {
            ok = await guard();
          } finally {
            asking = false;
          }
          if (!ok) return false;
        }
        ctl.close();
        return true;
      },
      close() {
        if (dialog.open) dialog.close();
      },
    };

    dialog.addEventListener('cancel', (ev) => {
      if (ev.target !== dialog) return;
      if (guard) {
        ev.preventDefault();
        ctl.requestClose();
      }
    });
    dialog.addEventListener('close', (ev) => {
      if (ev.target !== dialog) return;
      rehomeToasts(dialog);
      dialog.remove();
      if (opener && opener instanceof HTMLElement && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolveClosed();
    });
    document.body.append(dialog);
    dialog.showModal();
    return ctl;
  };

  /**
   * KG.confirm({title, message, okLabel, cancelLabel, danger}) asks in an
   * in-page dialog and resolves true for OK, false for Cancel or Escape. The
   * message (text or nodes) should name the thing it acts on. Buttons carry
   * data-testid confirm-ok and confirm-cancel.
   */
  KG.confirm = function confirm({ title = 'Are you sure?', message = '', okLabel = 'OK', cancelLabel = 'Cancel', danger = false } = {}) {
    return new Promise((resolve) => {
      let result = false;
      const m = KG.modal({ title, className: 'dialog-small', testid: 'confirm-dialog' });
      const msgId = KG.uid('dlg-msg');
      m.dialog.setAttribute('aria-describedby', msgId);
      m.dialog.setAttribute('role', 'alertdialog');
      const cancel = h('button', { type: 'button', class: 'btn', 'data-testid': 'confirm-cancel', onclick: () => m.close() }, cancelLabel);
      const ok = h('button', {
        type: 'button',
        class: ['btn', danger ? 'btn-danger' : 'btn-primary'],
        'data-testid': 'confirm-ok',
        onclick: () => {
          result = true;
          m.close();
        },
      }, okLabel);
      m.body.append(h('p', { id: msgId, class: 'confirm-message' }, message), h('div', { class: 'dialog-actions' }, cancel, ok));
      m.closed.then(() => resolve(result));
      (danger ? cancel : ok).focus();
    });
  };

  // ---------------------------------------------------------------- raw key reveal

  /**
   * KG.takeRawKey(obj) returns obj.key (the raw key of a create or rotate
   * answer) and deletes it from obj, so that only the reveal holds it.
   */
  KG.takeRawKey = function takeRawKey(obj) {
    if (!obj || typeof obj !== 'object') return '';
    const raw = typeof obj.key === 'string' ? obj.key : '';
    delete obj.key;
    return raw;
  };

  /**
   * KG.rawKeyReveal(rawKey, {maskAfterSeconds = 10, label}) shows a raw key
   * once: a read-only field (data-testid="raw-key") and a Copy button
   * (data-testid="copy-key") that writes it to the clipboard and says
   * "Copied". After maskAfterSeconds the field shows bullets and a note that
   * the key is hidden, and the component drops its only reference to the key.
   * destroy() does that at once and removes the element (call it when the
   * dialog holding it closes). Returns {element, destroy, mask, isMasked}.
   */
  KG.rawKeyReveal = function rawKeyReveal(rawKey, { maskAfterSeconds = 10, label = 'Your new API key', onMask } = {}) {
    let secret = String(rawKey || '');
    rawKey = null; // eslint-disable-line no-param-reassign
    let masked = false;
    let left = Math.max(1, Math.round(maskAfterSeconds));

    const inputId = KG.uid('raw-key');
    const noteId = KG.uid('raw-key-note');
    const input = h('input', {
      id: inputId,
      type: 'text',
      class: 'raw-key',
      readonly: true,
      autocomplete: 'off',
      autocapitalize: 'off',
      spellcheck: 'false',
      'data-testid': 'raw-key',
      'aria-describedby': noteId,
    });
    input.value = secret; // the property only: never an attribute in the markup
    input.addEventListener('focus', () => input.select());

    const copyBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'copy-key' }, 'Copy');
    const countdown = h('span', { class: 'reveal-countdown' });
    const note = h('p', { id: noteId, class: 'reveal-note' },
      'This is the only time this key is shown: copy it now and keep it somewhere safe. ', countdown);
    const element = h('div', { class: 'reveal' },
      h('label', { for: inputId }, label),
      h('div', { class: 'reveal-row' }, input, copyBtn),
      note);

    const tick = () => {
      countdown.textContent = `It will be hidden in ${KG.plural(left, 'second')}.`;
    };
    tick();
    const interval = setInterval(() => {
      left -= 1;
      if (left <= 0) mask();
      else tick();
    }, 1000);

    copyBtn.addEventListener('click', async () => {
      if (masked || !secret) return;
      try {
        if (!navigator.clipboard || typeof navigator.clipboard.writeText !== 'function') throw new Error('no clipboard');
        await navigator.clipboard.writeText(secret);
        if (!masked) copyBtn.textContent = 'Copied';
        KG.toast('Copied', { kind: 'ok' });
      } catch {
        if (!masked) {
          input.focus();
          input.select();
        }
        KG.toast('The browser did not allow copying: the key is selected in its field, press Ctrl+C (⌘C on a Mac) to copy it.', { kind: 'error' });
      }
    });

    function mask() {
      if (masked) return;
      masked = true;
      secret = null;
      clearInterval(interval);
      input.value = '•'.repeat(32);
      input.classList.add('is-masked');
      copyBtn.disabled = true;
      copyBtn.textContent = 'Copy';
      element.classList.add('is-masked');
      note.replaceChildren('Key hidden: you can no longer see it. If you did not copy it, revoke this key and make a new one.');
      if (typeof onMask === 'function') onMask();
    }

    return {
      element,
      mask,
      isMasked: () => masked,
      destroy() {
        mask();
        input.value = '';
        element.remove();
      },
    };
  };

  // ---------------------------------------------------------------- charts

  /**
   * KG.sparkline(values, {label, width, height}) is a small line chart
   * (<svg role="img" aria-label=label data-testid="sparkline">).
   */
  KG.sparkline = function sparkline(values, { label = '', width = 120, height = 28, testid = 'sparkline' } = {}) {
    const vals = values.map((v) => Math.max(0, Number(v) || 0));
    const svgEl = KG.svg('svg', {
      class: 'sparkline', viewBox: `0 0 ${width} ${height}`, width, height,
      role: 'img', 'aria-label': label, 'data-testid': testid, focusable: 'false',
    });
    if (!vals.length) return svgEl;
    const max = Math.max(1, ...vals);
    const n = vals.length;
    const step = n > 1 ? (width - 2) / (n - 1) : 0;
    const y = (v) => (height - 2 - (v / max) * (height - 4)).toFixed(1);
    let d = '';
    vals.forEach((v, i) => {
      d += `${i ? 'L' : 'M'}${(1 + i * step).toFixed(1)} ${y(v)} `;
    });
    const lastX = (1 + (n - 1) * step).toFixed(1);
    svgEl.append(
      KG.svg('path', { class: 'spark-area', d: `${d}L${lastX} ${height - 1} L1 ${height - 1} Z` }),
      KG.svg('path', { class: 'spark-line', d: d.trim(), fill: 'none' }),
    );
    return svgEl;
  };

  function niceStep(raw) {
    if (raw <= 0) return 1;
    const mag = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) {
      const s = m * mag;
      if (s >= raw && Number.isInteger(s)) return s;
    }
    return Math.ceil(raw);
  }

  /**
   * KG.stackedBarChart({title, series, points, summary, xTitle, yTitle,
   * formatTick, formatPoint, testid}) is a <figure> holding an SVG stacked
   * bar chart with axis labels, a legend with totals, and the numbers as a
   * table in a <details>.
   *   series: [{key, label, className}]   bottom to top
   *   points: [{start: Date, values: {key: n}}]
   *   formatTick(date, i) → short x label; formatPoint(date) → full label
   */
  KG.stackedBarChart = function stackedBarChart({
    title, series, points, summary = '', xTitle = 'Time', yTitle = 'Requests',
    formatTick = (d) => KG.formatDate(d), formatPoint = (d) => KG.formatDateTime(d),
    testid = 'usage-chart', emptyText = 'No requests in this period.',
  }) {
    const W = 720;
    const H = 260;
    const m = { l: 56, r: 10, t: 14, b: 46 };
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    const totals = points.map((p) => series.reduce((s, se) => s + (Number(p.values[se.key]) || 0), 0));
    const maxTotal = Math.max(0, ...totals);
    const step = niceStep(Math.max(1, maxTotal) / 4);
    const yMax = step * 4;
    const yOf = (v) => m.t + ph - (v / yMax) * ph;

    const captionId = KG.uid('chart-cap');
    const summaryId = KG.uid('chart-sum');
    const svgEl = KG.svg('svg', {
      class: 'chart-svg', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${captionId} ${summaryId}`, focusable: 'false',
    });

    // Y grid and labels.
    for (let i = 0; i <= 4; i++) {
      const v = step * i;
      const yy = yOf(v);
      svgEl.append(
        KG.svg('line', { class: i === 0 ? 'axis' : 'grid', x1: m.l, x2: W - m.r, y1: yy, y2: yy }),
        KG.svg('text', { class: 'tick', x: m.l - 6, y: yy + 4, 'text-anchor': 'end' }, KG.formatNumber(v)),
      );
    }
    svgEl.append(KG.svg('text', { class: 'axis-title', x: 12, y: m.t + ph / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${m.t + ph / 2})` }, yTitle));
    svgEl.append(KG.svg('text', { class: 'axis-title', x: m.l + pw / 2, y: H - 4, 'text-anchor': 'middle' }, xTitle));

    // Bars.
    const n = Math.max(1, points.length);
    const slot = pw / n;
    const bw = Math.max(1, Math.min(28, slot * 0.72));
    const tickEvery = Math.max(1, Math.ceil(n / 8));
    points.forEach((p, i) => {
      const x = m.l + i * slot + (slot - bw) / 2;
      const g = KG.svg('g', { class: 'bar' });
      const parts = series.map((se) => `${KG.formatNumber(Number(p.values[se.key]) || 0)} ${se.label.toLowerCase()}`);
      g.append(KG.svg('title', null, `${formatPoint(p.start)}: ${parts.join(', ')}`));
      let acc = 0;
      for (const se of series) {
        const v = Number(p.values[se.key]) || 0;
        if (v <= 0) continue;
        const y1 = yOf(acc);
        const y2 = yOf(acc + v);
        g.append(KG.svg('rect', { class: `bar-seg ${se.className}`, x: x.toFixed(2), y: y2.toFixed(2), width: bw.toFixed(2), height: Math.max(0.5, y1 - y2).toFixed(2) }));
        acc += v;
      }
      // An invisible full-height target so the tooltip shows on empty bars too.
      g.append(KG.svg('rect', { class: 'bar-hit', x: (m.l + i * slot).toFixed(2), y: m.t, width: slot.toFixed(2), height: ph, fill: 'transparent' }));
      svgEl.append(g);
      if (i % tickEvery === 0) {
        const cx = m.l + i * slot + slot / 2;
        svgEl.append(
          KG.svg('line', { class: 'axis', x1: cx, x2: cx, y1: m.t + ph, y2: m.t + ph + 4 }),
          KG.svg('text', { class: 'tick', x: cx, y: m.t + ph + 17, 'text-anchor': 'middle' }, formatTick(p.start, i)),
        );
      }
    });

    // Legend with totals.
    const legend = h('ul', { class: 'legend' });
    for (const se of series) {
      const total = points.reduce((s, p) => s + (Number(p.values[se.key]) || 0), 0);
      const sw = KG.svg('svg', { class: 'swatch', width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true', focusable: 'false' },
        KG.svg('rect', { class: se.className, x: 0, y: 0, width: 12, height: 12, rx: 2 }));
      legend.append(h('li', null, sw, ` ${se.label}: `, h('strong', null, KG.formatNumber(total))));
    }

    // The numbers as a table.
    const table = h('table', { class: 'table table-compact' },
      h('caption', { class: 'sr-only' }, `${title}: the numbers`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, xTitle), series.map((se) => h('th', { scope: 'col', class: 'num' }, se.label)), h('th', { scope: 'col', class: 'num' }, 'Total'))),
      h('tbody', null, points.map((p, i) => h('tr', null,
        h('th', { scope: 'row' }, formatPoint(p.start)),
        series.map((se) => h('td', { class: 'num' }, KG.formatNumber(Number(p.values[se.key]) || 0))),
        h('td', { class: 'num' }, KG.formatNumber(totals[i]))))));

    const scrollId = KG.uid('chart-scroll');
    return h('figure', { class: 'chart', 'data-testid': testid },
      h('figcaption', { id: captionId, class: 'chart-title' }, title),
      h('p', { id: summaryId, class: 'chart-summary' }, maxTotal === 0 ? `${emptyText} ${summary}`.trim() : summary),
      h('div', { class: 'chart-scroll', id: scrollId, tabindex: '0', role: 'region', 'aria-labelledby': captionId }, svgEl),
      legend,
      h('details', { class: 'chart-table' }, h('summary', null, 'Show the numbers as a table'), h('div', { class: 'table-wrap' }, table)));
  };

  // ---------------------------------------------------------------- paged table

  /**
   * KG.pagedTable({caption, columns, load, rowAttrs, tableAttrs, emptyText,
   * onPage, pageSizeHint}) is a table paged by opaque cursors:
   *   columns: [{header, render(item) → node|string, className, rowHeader}]
   *   load(cursor) → Promise<{items, nextCursor}>   ('' is the first page)
   *   rowAttrs(item) → attributes of the item's <tr>
   *   onPage(items, rows) after a page shows (e.g. to fetch more per row)
   *   cardLabels: true gives each <td> data-label="<its column's header>",
   *     for a stylesheet that shows rows as cards on narrow screens
   * It keeps a stack of the cursors behind the current page, for "Previous
   * page". Returns {element, reload(), reset(), table}.
   */
  KG.pagedTable = function pagedTable({ caption, columns, load, rowAttrs, tableAttrs, emptyText = 'Nothing to show.', onPage, captionVisible = false, cardLabels = false }) {
    const captionId = KG.uid('tbl-cap');
    const tbody = h('tbody');
    const table = h('table', { class: 'table', ...(tableAttrs || {}) },
      h('caption', { id: captionId, class: captionVisible ? 'table-caption' : 'sr-only' }, caption),
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.className }, c.header)))),
      tbody);
    const wrap = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': captionId }, table);
    const status = h('div', { class: 'table-status' });
    const prev = h('button', { type: 'button', class: 'btn' }, 'Previous page');
    const next = h('button', { type: 'button', class: 'btn' }, 'Next page');
    const pageInfo = h('span', { class: 'page-info' });
    const pager = h('div', { class: 'pager', hidden: true }, prev, pageInfo, next);
    const element = h('div', { class: 'paged', 'aria-busy': 'false' }, status, wrap, pager);

    let stack = [];
    let cursor = '';
    let nextCursor = '';
    let seq = 0;

    const messageRow = (content, cls) => h('tr', { class: cls }, h('td', { colspan: String(columns.length) }, content));

    async function show({ focus = false } = {}) {
      const my = ++seq;
      KG.setBusy(element, true);
      prev.disabled = true;
      next.disabled = true;
      status.replaceChildren();
      tbody.replaceChildren(messageRow(KG.loading(), 'row-loading'));
      try {
        const page = await load(cursor);
        if (my !== seq) return;
        const items = Array.isArray(page.items) ? page.items : [];
        nextCursor = page.nextCursor || '';
        const rows = items.map((item) => {
          const tr = h('tr', rowAttrs ? rowAttrs(item) : null);
          for (const c of columns) {
            const label = cardLabels && !c.rowHeader && typeof c.header === 'string' ? c.header : null;
            const cell = c.rowHeader ? h('th', { scope: 'row', class: c.className }) : h('td', { class: c.className, 'data-label': label });
            appendChild(cell, c.render(item));
            tr.append(cell);
          }
          return tr;
        });
        if (rows.length) tbody.replaceChildren(...rows);
        else tbody.replaceChildren(messageRow(stack.length ? 'No more rows.' : emptyText, 'row-empty'));
        pageInfo.textContent = `Page ${stack.length + 1}`;
        prev.disabled = stack.length === 0;
        next.disabled = !nextCursor;
        pager.hidden = stack.length === 0 && !nextCursor;
        KG.setBusy(element, false);
        if (focus) wrap.focus();
        if (onPage) onPage(items, rows);
      } catch (err) {
        if (my !== seq) return;
        tbody.replaceChildren(messageRow(h('span', { class: 'muted' }, 'Could not load this page.'), 'row-error'));
        status.replaceChildren(KG.errorBox(err, { retry: () => show() }));
        prev.disabled = stack.length === 0;
        next.disabled = true;
        pager.hidden = stack.length === 0;
        KG.setBusy(element, false);
      }
    }

    prev.addEventListener('click', () => {
      if (!stack.length) return;
      cursor = stack.pop();
      show({ focus: true });
    });
    next.addEventListener('click', () => {
      if (!nextCursor) return;
      stack.push(cursor);
      cursor = nextCursor;
      show({ focus: true });
    });

    return {
      element,
      table,
      reload: () => show(),
      reset() {
        stack = [];
        cursor = '';
        return show();
      },
    };
  };
  // ---------------------------------------------------------------- keys: shared pieces

  // What the console's and the portal's key pages both show: limits, credits,
  // status, expiry, the usage series, the create and rotate forms' parts and
  // the reveal of a new key in its dialog.

  const DAY_MS = 86400000;
  KG.DAY_MS = DAY_MS;

  /** KG.formatWindow(60) → "minute", (900) → "15 minutes": the "per …" of a rate limit. */
  KG.formatWindow = function formatWindow(seconds) {
    const s = Number(seconds) || 0;
    const names = { 1: 'second', 60: 'minute', 3600: 'hour', 86400: 'day' };
    return names[s] || KG.formatDuration(s);
  };

  /**
   * KG.describeLimits(list, {names}) → "window: 100 per 15 minutes; …", or
   * "no rate limit"; names: false leaves the limits' names out.
   */
  KG.describeLimits = function describeLimits(list, { names = true } = {}) {
    if (!Array.isArray(list) || !list.length) return 'no rate limit';
    return list.map((l) => `${names ? `${l.name}: ` : ''}${KG.formatNumber(l.limit)} per ${KG.formatWindow(l.windowSeconds)}`).join('; ');
  };

  /** KG.describeRefill({interval, amount, refillDay}) → "refilled to 1,000 every month on day 1". */
  KG.describeRefill = function describeRefill(r) {
    if (!r) return '';
    const every = r.interval === 'daily' ? 'every day' : r.interval === 'monthly' ? `every month${r.refillDay ? ` on day ${r.refillDay}` : ''}` : String(r.interval || '');
    return `refilled to ${KG.formatNumber(r.amount)} ${every}`;
  };

  /** KG.describeCredits(credits) → "500 remaining, refilled to …", or "unlimited" for null. */
  KG.describeCredits = function describeCredits(c) {
    if (!c) return 'unlimited';
    const parts = [];
    if (c.remaining != null) parts.push(`${KG.formatNumber(c.remaining)} remaining`);
    if (c.amount != null && !c.refill) parts.push(`${KG.formatNumber(c.amount)} ${c.interval || ''}`.trim());
    if (c.refill) parts.push(KG.describeRefill(c.refill));
    return parts.join(', ') || 'limited';
  };

  /** KG.statusBadge('active'|'revoked'|'expired'). */
  KG.statusBadge = function statusBadge(status) {
    const kind = status === 'active' ? 'ok' : status === 'revoked' ? 'danger' : 'muted';
    return KG.badge(String(status || 'unknown'), kind);
  };

  const startOfDay = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();

  /** KG.expiryBadge(key): a warning badge for an active key that expires within 7 days, else null. */
  KG.expiryBadge = function expiryBadge(key) {
    const exp = KG.parseDate(key.expiresAt);
    if (!exp || key.status !== 'active') return null;
    const left = exp.getTime() - Date.now();
    if (left <= 0 || left >= 7 * DAY_MS) return null;
    const days = Math.round((startOfDay(exp) - startOfDay(new Date())) / DAY_MS);
    return KG.badge(days <= 0 ? 'expires today' : `expires in ${KG.plural(days, 'day')}`, 'warn');
  };

  /** KG.safeId(s): s with every character but letters, digits, _ and - written as _ (for element ids). */
  KG.safeId = (s) => String(s).replace(/[^A-Za-z0-9_-]/g, '_');

  /** KG.dateInputValue(date) → "2025-03-01", the value of an <input type=date>, local time. */
  KG.dateInputValue = function dateInputValue(d) {
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  };

  /**
   * KG.formErrors() is a form's error area: {el, clear(), show(messages),
   * check(problems, invalid)} where messages is a list of strings (the first
   * one announced) or an error. check marks the controls of invalid
   * ([[control, bad], …], KG.markInvalid), shows the problems and focuses the
   * first bad control ({focus: false}: not), and says whether there were none.
   */
  KG.formErrors = function formErrors() {
    const el = h('div', { class: 'form-error' });
    return {
      el,
      clear: () => KG.replace(el),
      check(problems, invalid, { focus = true } = {}) {
        KG.markInvalid(invalid);
        if (!problems.length) return true;
        this.show(problems);
        const first = invalid.find(([, bad]) => bad);
        if (focus && first) first[0].focus();
        return false;
      },
      show(what) {
        if (Array.isArray(what)) {
          KG.replace(el, KG.notice('error',
            h('p', { class: 'notice-title', role: 'alert' }, what.length === 1 ? what[0] : 'Please fix these fields:'),
            what.length > 1 ? h('ul', null, what.map((m) => h('li', null, m))) : null));
        } else {
          KG.replace(el, KG.errorBox(what));
        }
      },
    };
  };

  /** KG.markInvalid([[control, bad], …]) sets or removes aria-invalid. */
  KG.markInvalid = function markInvalid(controls) {
    for (const [c, bad] of controls) {
      if (bad) c.setAttribute('aria-invalid', 'true');
      else c.removeAttribute('aria-invalid');
    }
  };

  /** KG.radioChoice(name, id, value, label, checked, extra) → {input, el}: a radio with its label. */
  KG.radioChoice = function radioChoice(name, id, value, label, checked, extra) {
    const input = h('input', { type: 'radio', name, id, value, checked: !!checked });
    return { input, el: h('div', { class: 'choice' }, input, h('label', { for: id }, label), extra || null) };
  };

  /**
   * KG.expiryFieldset(prefix, {current}): never / in 30 days / in 90 days /
   * on a date (and, given current, "keep"), with ids <prefix>-expiry-never,
   * -30, -90, -date-choice, -keep and the date input <prefix>-expiry-date.
   * value() → {mode, iso (RFC 3339, or null for never), errors, control}
   */
  KG.expiryFieldset = function expiryFieldset(prefix, { current } = {}) {
    const editing = current !== undefined;
    const name = `${prefix}-expiry`;
    const dateInput = h('input', { type: 'date', id: `${prefix}-expiry-date`, min: KG.dateInputValue(new Date()) });
    const choices = [];
    if (editing) {
      const cur = KG.parseDate(current);
      choices.push(KG.radioChoice(name, `${prefix}-expiry-keep`, 'keep', cur ? `Keep: ${KG.formatDateTime(cur)}` : 'Keep: never', true));
    }
    choices.push(KG.radioChoice(name, `${prefix}-expiry-never`, 'never', 'Never', !editing));
    choices.push(KG.radioChoice(name, `${prefix}-expiry-30`, '30', 'In 30 days'));
    choices.push(KG.radioChoice(name, `${prefix}-expiry-90`, '90', 'In 90 days'));
    const dateChoice = KG.radioChoice(name, `${prefix}-expiry-date-choice`, 'date', 'On a date');
    choices.push(dateChoice);
    dateInput.addEventListener('input', () => {
      if (dateInput.value) dateChoice.input.checked = true;
    });
    const fs = h('fieldset', { class: 'fieldset' }, h('legend', null, 'Expiry'),
      h('div', { class: 'choices' }, choices.map((c) => c.el)),
      KG.field({ label: 'Expiry date', control: dateInput, hint: 'The key works until the end of this day, in your time zone.', className: 'field-inline' }));
    return {
      el: fs,
      value() {
        const mode = (choices.find((c) => c.input.checked) || choices[0]).input.value;
        if (mode === 'keep') return { mode, errors: [] };
        if (mode === 'never') return { mode, iso: null, errors: [] };
        if (mode === '30' || mode === '90') return { mode, iso: new Date(Date.now() + Number(mode) * DAY_MS).toISOString(), errors: [] };
        const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateInput.value);
        if (!m) return { mode, errors: ['Expiry date: pick a date, or another expiry.'], control: dateInput };
        const end = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59);
        if (end.getTime() <= Date.now()) return { mode, errors: ['Expiry date: pick a date in the future.'], control: dateInput };
        return { mode, iso: end.toISOString(), errors: [] };
      },
    };
  };

  /**
   * KG.revealInDialog(modal, {title, intro, warnings, onClosed}, rawKey)
   * turns an open KG.modal into the one-time reveal of rawKey: the intro,
   * the reveal (raw-key, copy-key), and a Close button (reveal-close) that
   * asks "You will not see this key again. Close?" first, as Escape does.
   * Closing destroys the reveal, then calls onClosed.
   */
  KG.revealInDialog = function revealInDialog(m, { title, intro, warnings = [], onClosed, label = 'The new API key' }, rawKey) {
    m.setTitle(title);
    const reveal = KG.rawKeyReveal(rawKey, { label });
    rawKey = null; // eslint-disable-line no-param-reassign: the reveal holds the only reference
    const closeBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'reveal-close', onclick: () => m.requestClose() }, 'Close');
    KG.replace(m.body,
      h('div', { class: 'reveal-intro' }, intro),
      warnings.length ? KG.notice('warn', h('p', { class: 'notice-title' }, 'Warnings'), h('ul', null, warnings.map((w) => h('li', null, w)))) : null,
      reveal.element,
      h('div', { class: 'dialog-actions' }, closeBtn));
    m.setGuard(() => KG.confirm({
      title: 'Close this dialog?',
      message: 'You will not see this key again. Close?',
      okLabel: 'Close',
      cancelLabel: 'Keep it open',
    }));
    m.closed.then(() => {
      reveal.destroy();
      if (onClosed) onClosed();
    });
    const copy = reveal.element.querySelector('[data-testid="copy-key"]');
    if (copy) copy.focus();
    return reveal;
  };

  // ---------------------------------------------------------------- usage

  /** The outcomes a usage chart stacks, bottom to top. */
  KG.USAGE_SERIES = [
    { key: 'allowed', label: 'Allowed', className: 's-allowed' },
    { key: 'rateLimited', label: 'Rate limited', className: 's-rate' },
    { key: 'usageExceeded', label: 'Usage exceeded', className: 's-usage' },
    { key: 'other', label: 'Other refusals', className: 's-other' },
  ];

  /** KG.usagePoints(buckets of a usage answer) → [{start, values: {allowed, rateLimited, usageExceeded, other}, credits}]. */
  KG.usagePoints = function usagePoints(buckets) {
    const n = KG.num;
    return (Array.isArray(buckets) ? buckets : []).map((b) => ({
      start: new Date(b.start),
      values: {
        allowed: n(b.allowed),
        rateLimited: n(b.rateLimited),
        usageExceeded: n(b.usageExceeded),
        other: n(b.insufficientScope) + n(b.ipNotAllowed) + n(b.revoked) + n(b.expired),
      },
      credits: n(b.credits),
    }));
  };

  /** KG.sparkSlot() is the placeholder a row's sparkline replaces (KG.loadSparklines). */
  KG.sparkSlot = () => h('span', { class: 'spark-slot', 'aria-busy': 'true' }, h('span', { class: 'muted small' }, 'Loading…'));

  /**
   * KG.loadSparklines({items, rows, usagePath, alive}) fetches each item's
   * hourly usage (usagePath(item), ?granularity=hour), 4 at a time, and
   * draws a sparkline (data-testid="sparkline") in its row's KG.sparkSlot.
   * It stops when alive() turns false or the session ends.
   */
  KG.loadSparklines = function loadSparklines({ items, rows, usagePath, alive = () => true }) {
    const queue = items.map((k, i) => ({ key: k, slot: rows[i] && rows[i].querySelector('.spark-slot') }));
    let active = 0;
    let stopped = false;
    const pump = () => {
      while (!stopped && active < 4 && queue.length) {
        const job = queue.shift();
        if (!job.slot || !job.slot.isConnected || !alive()) continue;
        active++;
        KG.api.get(usagePath(job.key), { granularity: 'hour' })
          .then((res) => {
            if (!job.slot.isConnected) return;
            const pts = KG.usagePoints(res.data && res.data.buckets);
            const totals = pts.map((p) => p.values.allowed + p.values.rateLimited + p.values.usageExceeded + p.values.other);
            const allowed = pts.reduce((s, p) => s + p.values.allowed, 0);
            const refused = totals.reduce((s, t) => s + t, 0) - allowed;
            const peak = Math.max(0, ...totals);
            const label = `Requests per hour over the last 48 hours: ${KG.formatNumber(allowed)} allowed, ${KG.formatNumber(refused)} refused, busiest hour ${KG.formatNumber(peak)}.`;
            KG.replace(job.slot, KG.sparkline(totals, { label }));
            KG.setBusy(job.slot, false);
          })
          .catch((err) => {
            if (err.sessionEnded) {
              stopped = true;
              return;
            }
            if (!job.slot.isConnected) return;
            KG.replace(job.slot, h('span', { class: 'muted small', title: err.message }, 'unavailable'));
            KG.setBusy(job.slot, false);
          })
          .finally(() => {
            active--;
            pump();
          });
      }
    };
    pump();
  };

  const hourTick = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dayTickUTC = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  const dayTickLocal = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  const dayFullUTC = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });

  /**
   * KG.usagePanel({path, what, alive}) is a usage chart of path (a usage
   * answer: ?granularity=hour|day) with an "Hourly, last 48 hours" / "Daily,
   * last 30 days" toggle; the chart is a KG.stackedBarChart (data-testid
   * usage-chart). Returns {element, load}; it loads at once.
   */
  KG.usagePanel = function usagePanel({ path, what, alive = () => true }) {
    let gran = 'hour';
    const hourBtn = h('button', { type: 'button', class: 'btn btn-toggle', 'aria-pressed': true }, 'Hourly, last 48 hours');
    const dayBtn = h('button', { type: 'button', class: 'btn btn-toggle', 'aria-pressed': false }, 'Daily, last 30 days');
    const toggle = h('div', { class: 'toggle', role: 'group', 'aria-label': 'Usage period' }, hourBtn, dayBtn);
    const holder = h('div', { class: 'chart-holder', 'aria-busy': 'true' });
    let seq = 0;

    async function load() {
      const my = ++seq;
      KG.setBusy(holder, true);
      KG.replace(holder, KG.loading('Loading usage…'));
      try {
        const res = await KG.api.get(path, { granularity: gran });
        if (my !== seq || !alive()) return;
        const d = res.data || {};
        const pts = KG.usagePoints(d.buckets);
        const sum = (k) => pts.reduce((s, p) => s + p.values[k], 0);
        const creditsSpent = pts.reduce((s, p) => s + p.credits, 0);
        const hourly = gran === 'hour';
        const when = (v) => {
          const dt = KG.parseDate(v);
          if (!dt) return '—';
          return hourly ? KG.formatDateTime(dt) : dayFullUTC.format(dt);
        };
        const summary = `${hourly ? 'Hourly' : 'Daily'}, ${when(d.from)} to ${when(d.to)}: `
          + `${KG.formatNumber(sum('allowed'))} allowed, ${KG.formatNumber(sum('rateLimited'))} rate limited, `
          + `${KG.formatNumber(sum('usageExceeded'))} usage exceeded, ${KG.formatNumber(sum('other'))} other refusals; `
          + `${KG.plural(creditsSpent, 'credit')} spent.`;
        KG.replace(holder, KG.stackedBarChart({
          title: `${what}: requests per ${hourly ? 'hour, last 48 hours' : 'day, last 30 days'}`,
          series: KG.USAGE_SERIES,
          points: pts,
          summary,
          xTitle: hourly ? 'Hour (your time zone)' : 'Day (UTC)',
          yTitle: 'Requests',
          formatTick: hourly
            ? (dt, i) => (i === 0 || dt.getHours() === 0 ? dayTickLocal.format(dt) : hourTick.format(dt))
            : (dt) => dayTickUTC.format(dt),
          formatPoint: hourly ? (dt) => KG.formatDateTime(dt) : (dt) => `${dayFullUTC.format(dt)} (UTC)`,
        }));
      } catch (err) {
        if (my !== seq || !alive() || err.sessionEnded) return;
        KG.replace(holder, KG.errorBox(err, { retry: load }));
      } finally {
        if (my === seq) KG.setBusy(holder, false);
      }
    }
    const pick = (g) => {
      if (g === gran) return;
      gran = g;
      hourBtn.setAttribute('aria-pressed', String(g === 'hour'));
      dayBtn.setAttribute('aria-pressed', String(g === 'day'));
      load();
    };
    hourBtn.addEventListener('click', () => pick('hour'));
    dayBtn.addEventListener('click', () => pick('day'));
    load();
    return { element: h('div', { class: 'usage-panel' }, toggle, holder), load };
  };

  // ---------------------------------------------------------------- app plumbing

  /**
   * KG.apiBase(app) is the API's base: the page is served at <prefix>/<app>
   * (the prefix is API Gateway's stage, e.g. /prod, or a custom domain's base
   * path), so the API is <prefix>/<app>/api. Elsewhere, the page's meta tag
   * keygate-api-base says, else /<app>/api.
   */
  KG.apiBase = function apiBase(app) {
    const path = location.pathname.replace(/\/+$/, '');
    if (path.endsWith(`/${app}`)) return `${path}/api`;
    const meta = document.querySelector('meta[name="keygate-api-base"]');
    return (meta && meta.content) || `/${app}/api`;
  };

  /**
   * KG.startApp({app, onUnauthorized, onHashChange, start}) runs once the
   * document is parsed: it empties <main id="app"> for a <div id="view">,
   * mounts the toasts, makes the skip link move focus without touching the
   * hash (the router's), points KG.api at KG.apiBase(app), listens for hash
   * changes, then calls start({main, header, view}).
   */
  KG.startApp = function startApp({ app, onUnauthorized, onHashChange, start }) {
    const run = () => {
      const main = document.getElementById('app');
      const header = document.getElementById('site-header') || h('header', { id: 'site-header', class: 'site-header' });
      if (!header.isConnected) document.body.prepend(header);
      KG.replace(main);
      const view = h('div', { id: 'view', class: 'view' });
      KG.append(main, view);
      KG.mountToasts(main);
      main.removeAttribute('aria-busy');
      const skip = document.querySelector('.skip-link');
      if (skip) {
        skip.addEventListener('click', (ev) => {
          ev.preventDefault();
          const h1 = view.querySelector('h1');
          (h1 || main).focus();
        });
      }
      KG.api.configure({ base: KG.apiBase(app), onUnauthorized });
      window.addEventListener('hashchange', onHashChange);
      start({ main, header, view });
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run);
    else run();
  };

  /**
   * KG.views() switches an app's one view: next(viewEl) empties it and
   * returns {view, alive()} (alive turns false when the next view starts);
   * page(viewEl, navigated) is next() for a routed page, with
   * focusHeading(el) that focuses el when the user navigated or after the
   * first page. routedOnce: whether a page was shown yet.
   */
  KG.views = function views() {
    let seq = 0;
    const v = {
      routedOnce: false,
      next(view) {
        const my = ++seq;
        KG.replace(view);
        return { view, alive: () => my === seq };
      },
      page(view, navigated) {
        const ctx = v.next(view);
        const focus = navigated || v.routedOnce;
        v.routedOnce = true;
        ctx.focusHeading = (el) => {
          if (focus) el.focus({ preventScroll: false });
        };
        return ctx;
      },
    };
    return v;
  };

  /**
   * KG.hashRoute() is the hash's path: {home: true, segs: []} for "", "#" and
   * "#/", else {segs} (decoded, "#/keys/a%2Fb" → ['keys', 'a/b']), or null
   * when a segment does not decode.
   */
  KG.hashRoute = function hashRoute() {
    const raw = location.hash.replace(/^#/, '').split('?')[0];
    if (raw === '' || raw === '/') return { home: true, segs: [] };
    try {
      return { segs: raw.split('/').filter(Boolean).map(decodeURIComponent) };
    } catch {
      return null;
    }
  };

  /** KG.forgetSession(): no CSRF token any more, and every open dialog closed (which destroys any raw key it shows). */
  KG.forgetSession = function forgetSession() {
    KG.api.setCsrfToken('');
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
  };

  /** KG.signOutButton(onSignedOut): the header's Sign out button (data-testid signout); DELETE /session. */
  KG.signOutButton = function signOutButton(onSignedOut) {
    const btn = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'signout' }, 'Sign out');
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      btn.textContent = 'Signing out…';
      try {
        await KG.api.del('/session');
        onSignedOut();
      } catch (err) {
        if (err.sessionEnded) return;
        btn.disabled = false;
        btn.textContent = 'Sign out';
        KG.toastError(err, 'Could not sign out: ');
      }
    });
    return btn;
  };

  // ---------------------------------------------------------------- page pieces

  /** KG.muted(text): a muted <span>. */
  KG.muted = (text) => h('span', { class: 'muted' }, text);

  /** KG.keyHref(id) → "#/keys/<id>". */
  KG.keyHref = (id) => `#/keys/${encodeURIComponent(id)}`;

  /** KG.pageHead(title, ...actions) → {h1, el}: a page's heading (focusable) and its action buttons. */
  KG.pageHead = function pageHead(title, ...actions) {
    const h1 = h('h1', { tabindex: '-1' }, title);
    return { h1, el: h('div', { class: 'page-head' }, h1, actions.length ? h('div', { class: 'page-actions' }, actions) : null) };
  };

  /** KG.crumbs([[text, href], …, [text, null]]): a breadcrumb trail, the last item the current page. */
  KG.crumbs = function crumbs(items) {
    return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('ol', null, items.map(([text, href]) => h('li', null, href ? h('a', { href }, text) : h('span', { 'aria-current': 'page' }, text)))));
  };

  /** KG.panel(title, ...content): a <section> titled by an <h2>. */
  KG.panel = function panel(title, ...content) {
    const id = KG.uid('sec');
    return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...content);
  };

  /** KG.notFoundPage(ctx, linkText): "Page not found", linking to #/keys. */
  KG.notFoundPage = function notFoundPage(ctx, linkText) {
    const head = KG.pageHead('Page not found');
    KG.append(ctx.view, head.el, h('p', null, 'There is no page at this address. ', h('a', { href: '#/keys' }, linkText), '.'));
    ctx.focusHeading(head.h1);
  };

  /** KG.codeList(list, empty): the strings as an inline list of <code>, or empty (muted). */
  KG.codeList = function codeList(list, empty) {
    if (!Array.isArray(list) || !list.length) return KG.muted(empty);
    return h('ul', { class: 'inline-list' }, list.map((s) => h('li', null, h('code', null, KG.text(s)))));
  };

  /** KG.detailRow(term, ...value): a <dt>/<dd> pair of a details list. */
  KG.detailRow = (term, ...value) => [h('dt', null, term), h('dd', null, ...value)];

  /** KG.keyLifeRows(key): a key's Expires, Revoked (when it is), Last used and Total requests rows. */
  KG.keyLifeRows = function keyLifeRows(key) {
    const row = KG.detailRow;
    const usage = key.usage || {};
    return [
      row('Expires', key.expiresAt ? [KG.time(key.expiresAt), ` (${KG.relativeTime(key.expiresAt)})`, ' ', KG.expiryBadge(key)] : KG.muted('never')),
      key.revokedAt ? row('Revoked', KG.time(key.revokedAt)) : null,
      row('Last used', usage.lastUsed ? [KG.time(usage.lastUsed), ` (${KG.relativeTime(usage.lastUsed)})`] : KG.muted('never')),
      row('Total requests', KG.formatNumber(usage.totalRequests || 0)),
    ];
  };

  /**
   * KG.submitting({form, submit, busyText, errs}, send) disables submit
   * (reading busyText) and marks form busy while send() runs. When send
   * fails (unless the session ended or the form is gone), the button comes
   * back, errs shows the error, and onError(err) is called. A success leaves
   * the form as it is (send replaces it).
   */
  KG.submitting = async function submitting({ form, submit, busyText, errs, onError }, send) {
    const label = submit.textContent;
    submit.disabled = true;
    submit.textContent = busyText;
    KG.setBusy(form, true);
    try {
      await send();
    } catch (err) {
      if (err.sessionEnded || !form.isConnected) return;
      submit.disabled = false;
      submit.textContent = label;
      KG.setBusy(form, false);
      errs.show(err);
      if (onError) onError(err);
    }
  };

  /**
   * KG.revokeKey({key, button, busy, path, onRevoked}) asks "Revoke key
   * “<name>” (<start>…)? …", then DELETEs path, toasts, and calls onRevoked.
   */
  KG.revokeKey = async function revokeKey({ key, button, busy, path, onRevoked }) {
    const ok = await KG.confirm({
      title: 'Revoke key',
      message: ['Revoke key “', KG.text(key.name), '” (', KG.text(key.start), '…)? Requests with it will be refused at once.'],
      okLabel: 'Revoke key',
      danger: true,
    });
    if (!ok) return;
    button.disabled = true;
    button.textContent = 'Revoking…';
    KG.setBusy(busy, true);
    try {
      await KG.api.del(path);
      KG.toast(`Key “${KG.plainText(key.name)}” revoked.`, { kind: 'ok' });
      onRevoked();
    } catch (err) {
      if (err.sessionEnded) return;
      button.disabled = false;
      button.textContent = 'Revoke';
      KG.setBusy(busy, false);
      KG.toastError(err, 'Could not revoke the key: ');
    }
  };

  /**
   * KG.rotateDialog({key, path, about, legend, choices, extra, grace, intro,
   * label, wide, onClosed}) is the Rotate dialog (rotate-dialog, submit
   * rotate-submit): "Rotating “<name>” (<start>…) <about>", the grace
   * choices (KG.radioChoice) under legend, then extra. On submit, grace(errs)
   * is the grace period in seconds, or null after showing why not (default:
   * the checked choice's value); path is POSTed {gracePeriodSeconds} and the
   * dialog reveals the new key under intro(newKey, seconds, until).
   * Returns {modal, submit}.
   */
  KG.rotateDialog = function rotateDialog({ key, path, about, legend, choices, extra = null, grace, intro, label, wide = false, onClosed }) {
    const m = KG.modal({ title: 'Rotate key', testid: 'rotate-dialog' });
    const errs = KG.formErrors();
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'rotate-submit' }, 'Rotate key');
    const form = h('form', { class: 'form', novalidate: true, 'aria-busy': 'false' },
      h('p', null, 'Rotating “', KG.text(key.name), '” (', h('code', null, KG.text(key.start), '…'), ') ', about),
      h('fieldset', { class: 'fieldset' }, h('legend', null, legend), h('div', { class: 'choices' }, choices.map((c) => c.el)), extra),
      errs.el,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', onclick: () => m.close() }, 'Cancel'), submit));
    KG.append(m.body, form);
    const checked = () => Number(choices.find((c) => c.input.checked).input.value);

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errs.clear();
      const seconds = grace ? grace(errs) : checked();
      if (seconds === null) return;
      await KG.submitting({ form, submit, busyText: 'Rotating…', errs }, async () => {
        const res = await KG.api.post(path, { gracePeriodSeconds: seconds });
        const until = new Date(Date.now() + seconds * 1000);
        if (wide) m.dialog.classList.add('dialog-wide'); // the whole key fits its field
        KG.revealInDialog(m, { title: 'Key rotated', intro: intro(res.data || {}, seconds, until), warnings: res.warnings, onClosed, label }, KG.takeRawKey(res.data));
        KG.toast('Key rotated: copy the new key now, it is shown once.', { kind: 'ok' });
      });
    });
    return { modal: m, submit };
  };

  /** Key ids: key_ and 1 to 64 letters and digits. */
  KG.KEY_ID_RE = /^key_[0-9A-Za-z]{1,64}$/;

  /**
   * KG.keyView({ctx, id, crumbs, badId, keyPath, failed, rotate, changed,
   * draw}) is a key's page in ctx.view: crumbs, the heading (the key's name
   * once loaded) and a body that loads GET keyPath(id). An id that is not a
   * key id shows badId instead. failed(err, retry) shows a failed load;
   * draw(key, {actions, active, render}) returns the body's content, actions
   * holding Rotate (rotate(key, done), for an active key not yet rotated) and
   * Revoke (KG.revokeKey on keyPath(key.id)); after either, changed() runs
   * and the key loads again. render(key, {focus}) draws a key again and
   * focuses focus (a selector, or 'h1' for the heading).
   */
  KG.keyView = function keyView({ ctx, id, crumbs, badId, keyPath, failed, rotate, changed = () => {}, draw }) {
    const h1 = h('h1', { tabindex: '-1' }, 'Key');
    const body = h('div', { class: 'key-detail', 'aria-busy': 'true' });
    KG.append(ctx.view, crumbs, h1, body);
    ctx.focusHeading(h1);

    if (!KG.KEY_ID_RE.test(id)) {
      h1.textContent = 'Key not found';
      KG.append(body, KG.notice('error', h('p', null, badId)));
      KG.setBusy(body, false);
      return;
    }

    async function load({ focus = '' } = {}) {
      KG.setBusy(body, true);
      KG.replace(body, KG.loading('Loading the key…'));
      try {
        const res = await KG.api.get(keyPath(id));
        if (!ctx.alive()) return;
        render(res.data || {}, { focus });
      } catch (err) {
        if (!ctx.alive() || err.sessionEnded) return;
        failed(err, { h1, body, retry: load });
      } finally {
        if (ctx.alive()) KG.setBusy(body, false);
      }
    }

    const reload = () => {
      changed();
      if (ctx.alive()) load({ focus: 'h1' });
    };

    function render(key, { focus = '' } = {}) {
      KG.replace(h1, KG.text(key.name));
      const active = key.status === 'active';
      const actions = h('div', { class: 'page-actions' });
      if (active && !key.rotatedTo) {
        KG.append(actions, h('button', { type: 'button', class: 'btn', 'data-testid': 'rotate', onclick: () => rotate(key, reload) }, 'Rotate'));
      }
      if (active) {
        KG.append(actions, h('button', {
          type: 'button', class: 'btn btn-danger', 'data-testid': 'revoke',
          onclick: (ev) => KG.revokeKey({ key, button: ev.currentTarget, busy: body, path: keyPath(key.id), onRevoked: reload }),
        }, 'Revoke'));
      }
      KG.replace(body, draw(key, { actions, active, render }));
      const target = focus === 'h1' ? h1 : focus ? body.querySelector(focus) : null;
      if (target) {
        target.focus({ preventScroll: true });
        target.scrollIntoView({ block: 'nearest' });
      }
    }

    load();
  };

  /**
   * KG.gather(problems, invalid, v): adds a field's value() v to a form's
   * check: its errors, its controls ([[control, bad], …]) and its control
   * (bad when v has errors). Returns v.
   */
  KG.gather = function gather(problems, invalid, v) {
    problems.push(...v.errors);
    if (v.controls) invalid.push(...v.controls);
    if (v.control) invalid.push([v.control, v.errors.length > 0]);
    return v;
  };

  /** KG.checkKeyName(input, problems, invalid): a key name is 1 to 128 characters; returns it. */
  KG.checkKeyName = function checkKeyName(input, problems, invalid) {
    const nm = input.value;
    const bad = nm.trim() === '' || nm.length > 128;
    if (bad) problems.push('Name: 1 to 128 characters.');
    invalid.push([input, bad]);
    return nm;
  };

  /**
   * KG.createKeyDialog({tiers, tierLabel, noTier, tierMissing, nameHint,
   * tierHint, fields, collect, path, intro, label, onCreated, onError}) is
   * the Create key dialog (create-dialog, create-submit): Name (create-name)
   * and tier (create-tier, hinted by tierHint(tier)), then fields (elements).
   * On submit, collect(problems, invalid) adds its checks and returns the
   * rest of the body; path is POSTed {name, tier, …} and the dialog reveals
   * the new key under intro(newKey). onError(err) follows a failure shown.
   * needTier: the submit button is disabled when there is no tier.
   */
  KG.createKeyDialog = function createKeyDialog({ tiers, tierLabel, noTier, tierMissing, nameHint, tierHint, fields, collect, path, intro, label, onCreated, onError, needTier = false }) {
    const m = KG.modal({ title: 'Create key', className: 'dialog-wide', testid: 'create-dialog' });
    const name = h('input', { type: 'text', id: 'create-name', required: true, maxlength: '128', autocomplete: 'off' });
    const tier = h('select', { id: 'create-tier', required: true },
      tiers.length ? tiers.map((t) => h('option', { value: t.name }, t.name)) : h('option', { value: '' }, noTier));
    const tierField = KG.field({ label: tierLabel, control: tier, hint: ' ' });
    const tierHintEl = tierField.querySelector('.hint');
    const syncTier = () => {
      tierHintEl.textContent = tierHint(tier.value);
    };
    tier.addEventListener('change', syncTier);
    syncTier();

    const errs = KG.formErrors();
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'create-submit', disabled: needTier && !tiers.length }, 'Create key');
    const cancel = h('button', { type: 'button', class: 'btn', onclick: () => m.close() }, 'Cancel');
    const form = h('form', { class: 'form', novalidate: true, 'aria-busy': 'false' },
      h('div', { class: 'field-row' }, KG.field({ label: 'Name', control: name, hint: nameHint }), tierField),
      fields,
      errs.el,
      h('div', { class: 'dialog-actions' }, cancel, submit));
    KG.append(m.body, form);
    name.focus();

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errs.clear();
      const problems = [];
      const invalid = [];
      const nm = KG.checkKeyName(name, problems, invalid);
      if (!tier.value) problems.push(tierMissing);
      invalid.push([tier, !tier.value]);
      const rest = collect(problems, invalid);
      if (!errs.check(problems, invalid)) return;
      const body = { name: nm, tier: tier.value, ...rest };
      const failed = (err) => {
        errs.el.scrollIntoView({ block: 'nearest' });
        if (onError) onError(err);
      };
      await KG.submitting({ form, submit, busyText: 'Creating…', errs, onError: failed }, async () => {
        const res = await KG.api.post(path, body);
        KG.revealInDialog(m, { title: 'Key created', intro: intro(res.data || {}), warnings: res.warnings, onClosed: onCreated, label }, KG.takeRawKey(res.data));
        KG.toast('Key created: copy it now, it is shown once.', { kind: 'ok' });
      });
    });
  };
})();
