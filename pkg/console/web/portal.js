/*
 * keygate customer portal: the page a team's customer opens from a one-time
 * link (<prefix>/portal#t=<token>) to manage their own API keys. A classic
 * script, loaded with `defer` after ui.js (window.KG).
 *
 * Start: the token is read from location.hash and taken out of the URL
 * (history.replaceState) before anything else, then exchanged once (POST
 * portal/api/session {token}, X-Keygate-CSRF: open) for an HttpOnly session
 * cookie. A link pasted into an open page (a hash change) is exchanged too.
 * Without a token, GET portal/api/session says whether a session is open.
 *
 * Pages (hash routing, once signed in):
 *   "", #/, #/keys       the customer's keys: count of maxKeys, table (cards
 *                        on a phone) with sparklines, "Create key"
 *   #/keys/<id>          one key: details, usage chart (hourly 48 h / daily
 *                        30 d), Rotate, Revoke
 *   anything else        "Page not found"
 * Full pages with no other UI:
 *   link-invalid         no token and no session, or the exchange refused
 *                        (401/400): "This link has expired or was already used"
 *   session-ended        any call answered 401, or the session's time is up
 *   signed-out           after "Sign out"
 *
 * Server: <prefix>/portal/api + /session (GET, POST, DELETE), /keys (GET
 * ?limit&cursor, POST), /keys/<id> (GET, DELETE), /keys/<id>/rotate (POST
 * {gracePeriodSeconds}), /keys/<id>/usage (GET ?granularity=hour|day).
 * Non-GET requests carry X-Keygate-CSRF (the session's csrfToken) and
 * Content-Type: application/json; errors show the envelope's message.
 *
 * Test hooks (data-testid):
 *   portal-title (the team's title in the header), back-link (the header's
 *   "Back to <title>", only for an http(s) returnUrl), signout, key-count
 *   ("N of M keys"), keys-table (the <table>), key-row (each <tr>, with
 *   data-key-id; its name links to #/keys/<id>), sparkline (one per row, once
 *   its usage loaded), create-key (button; disabled at maxKeys, with a note),
 *   create-dialog, create-submit, raw-key (the read-only <input> holding the
 *   raw key: read its value), copy-key, reveal-close (asks first),
 *   confirm-dialog, confirm-ok, confirm-cancel, rotate, rotate-dialog,
 *   rotate-submit, revoke (on the key's page), usage-chart (a <figure>),
 *   toast (the one role="status" live region; it moves into an open modal
 *   dialog), link-invalid, session-ended, signed-out (the full pages above).
 * Texts tests may match: "This link has expired or was already used"; "Your
 *   session has ended"; "You are signed out"; the copy button and the toast
 *   read "Copied"; a masked key's note contains "hidden: you can no longer
 *   see it"; closing a reveal asks "You will not see this key again.
 *   Close?"; revoking asks "Revoke key “<name>” (<start>…)? Requests with it
 *   will be refused at once."
 * Stable control ids (each with a visible <label for>):
 *   create dialog: create-name, create-tier, create-scope-<scope> (checkboxes;
 *     characters of the scope other than letters, digits, _ and - as _),
 *     create-expiry-{never,30,90,date-choice} (radios), create-expiry-date
 *   rotate dialog: rotate-grace-{0,3600,86400,604800} (radios)
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------- the link's token

  /**
   * takeToken reads t=<token> from the URL's fragment and, when there is
   * one, takes the fragment out of the URL at once (the current history
   * entry is replaced), so the link never stays in the history.
   */
  function takeToken() {
    const m = /^#(?:[^&]*&)*t=([^&]*)/.exec(location.hash);
    if (!m) return null;
    history.replaceState(null, '', location.pathname + location.search);
    try {
      return decodeURIComponent(m[1]);
    } catch {
      return m[1];
    }
  }

  // Before anything else, even before checking that ui.js loaded.
  let pendingToken = takeToken();

  const KG = window.KG;
  if (!KG) return; // ui.js did not load: the page keeps its "Loading…" and the token is out of the URL.
  const { h, api } = KG;
  const enc = encodeURIComponent;

  const PAGE_SIZE = 20;
  const MAX_TIMER_MS = 2147483647;

  const state = {
    signedIn: false,
    session: null, // the session view, normalized (see normalizeSession)
    title: '', // the team's title and back URL, kept after the session ends
    returnUrl: '',
    expiryTimer: 0,
    sessionReadAt: 0, // when the session (its key count) was last read
  };

  let els = null;
  const views = KG.views();
  let countUI = null; // the keys page's count and Create button, while it shows

  // ---------------------------------------------------------------- boot

  function onHashChange() {
    // A new link pasted into this tab changes only the fragment.
    const token = takeToken();
    if (token) {
      exchange(token);
      return;
    }
    if (state.signedIn) route({ navigated: true });
  }

  /** Exchanges the link's token for a session, once. */
  async function exchange(token) {
    if (state.signedIn) endLocally();
    const ctx = newView();
    setTitle('Opening');
    KG.append(ctx.view, h('div', { class: 'boot', 'aria-busy': 'true' }, KG.loading('Opening your API keys…')));
    if (!token) {
      renderLinkInvalid(null);
      return;
    }
    try {
      const res = await api.post('/session', { token }, { csrf: 'open', allowUnauthorized: true });
      if (!ctx.alive()) return;
      applySession(res.data || {});
      if (!state.signedIn) {
        renderLinkInvalid(null);
        return;
      }
      route({ navigated: views.routedOnce }); // the fragment is gone: the keys
    } catch (err) {
      if (!ctx.alive()) return;
      if (err.status === 401 || err.status === 400 || err.code === 'unauthorized') {
        renderLinkInvalid(err);
        return;
      }
      // The server or the network failed: the link may still be good.
      setTitle('Cannot open');
      KG.replace(ctx.view, h('div', { class: 'portal-message' },
        h('h1', { tabindex: '-1' }, 'Your API keys cannot open right now'),
        KG.errorBox(err, { retry: () => exchange(token) })));
    }
  }

  async function checkSession() {
    const ctx = newView();
    setTitle('Loading');
    KG.append(ctx.view, h('div', { class: 'boot', 'aria-busy': 'true' }, KG.loading('Loading your API keys…')));
    try {
      const res = await api.get('/session', null, { allowUnauthorized: true });
      if (!ctx.alive()) return;
      if (res.data && res.data.signedIn) {
        applySession(res.data);
        route();
      } else {
        renderLinkInvalid(null);
      }
    } catch (err) {
      if (!ctx.alive()) return;
      if (err.status === 401) {
        renderLinkInvalid(null);
        return;
      }
      setTitle('Cannot load');
      KG.replace(ctx.view, h('div', { class: 'portal-message' },
        h('h1', { tabindex: '-1' }, 'Your API keys cannot load right now'),
        KG.errorBox(err, { retry: checkSession })));
    }
  }

  // ---------------------------------------------------------------- session

  /** A returnUrl the page may link to: an absolute http(s) URL, else ''. */
  function safeReturnUrl(v) {
    if (typeof v !== 'string' || !v) return '';
    try {
      const u = new URL(v);
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : '';
    } catch {
      return '';
    }
  }

  function normalizeSession(s) {
    const tiers = (Array.isArray(s.allowedTiers) ? s.allowedTiers : [])
      .map((t) => (typeof t === 'string' ? { name: t } : t))
      .filter((t) => t && typeof t.name === 'string' && t.name);
    return {
      ...s,
      title: typeof s.title === 'string' ? s.title : '',
      returnUrl: safeReturnUrl(s.returnUrl),
      maxKeys: Math.max(0, KG.num(s.maxKeys)),
      activeKeys: Math.max(0, KG.num(s.activeKeys)),
      allowedScopes: (Array.isArray(s.allowedScopes) ? s.allowedScopes : []).map(String),
      allowedTiers: tiers,
    };
  }

  /** Takes a session answer: {signedIn, csrfToken, session} (or the session itself). */
  function applySession(data) {
    const s = data.session && typeof data.session === 'object' ? data.session : (data.owner || data.id ? data : null);
    if (!s || data.signedIn === false) {
      state.signedIn = false;
      return;
    }
    state.signedIn = true;
    state.session = normalizeSession(s);
    state.sessionReadAt = Date.now();
    state.title = state.session.title;
    state.returnUrl = state.session.returnUrl;
    if (typeof data.csrfToken === 'string' && data.csrfToken) api.setCsrfToken(data.csrfToken);
    scheduleExpiry();
    renderHeader();
    updateCount();
  }

  /** Re-reads the session (its key count) after a change. */
  async function refreshSession() {
    if (!state.signedIn) return;
    try {
      const res = await api.get('/session');
      if (!state.signedIn) return;
      if (res.data && res.data.signedIn) applySession(res.data);
      else sessionEnded({ message: '' });
    } catch {
      // A 401 already ended the session; other failures keep the count as it was.
    }
  }

  function scheduleExpiry() {
    clearTimeout(state.expiryTimer);
    const exp = KG.parseDate(state.session && state.session.expiresAt);
    if (!exp) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, exp.getTime() - Date.now()) + 1000);
    state.expiryTimer = setTimeout(() => {
      if (Date.now() >= exp.getTime()) sessionEnded({ message: 'This page’s time is up: for your security it works for a limited time only.' });
      else scheduleExpiry();
    }, wait);
  }

  /** Forgets the session in this page: dialogs (and any key they show) closed. */
  function endLocally() {
    state.signedIn = false;
    state.session = null;
    countUI = null;
    clearTimeout(state.expiryTimer);
    KG.forgetSession();
    renderHeader();
  }

  function sessionEnded(err) {
    if (!state.signedIn) return;
    endLocally();
    let message = '';
    if (err && err.message) message = err instanceof KG.APIError ? KG.errorMessage(err) : String(err.message);
    renderEnded({ signedOut: false, message });
  }

  // ---------------------------------------------------------------- header

  function backLink(text, { testid, className = '' } = {}) {
    if (!state.returnUrl) return null;
    return h('a', { href: state.returnUrl, rel: 'noopener noreferrer', class: className, 'data-testid': testid }, text);
  }

  function renderHeader() {
    const title = state.title;
    const brand = h('div', { class: 'portal-brand' },
      h('p', { class: 'portal-title', 'data-testid': 'portal-title' }, title ? KG.text(title) : 'API keys'),
      title ? h('p', { class: 'portal-sub' }, 'API keys') : null);
    const back = backLink(['Back to ', title ? KG.text(title) : 'the site'], { testid: 'back-link', className: 'back-link' });
    const right = h('div', { class: 'who' });
    if (back) KG.append(right, back);
    if (state.signedIn) {
      const s = state.session;
      const exp = KG.parseDate(s.expiresAt);
      if (exp) KG.append(right, h('p', { class: 'who-text muted' }, 'Session ends ', KG.time(exp, { mode: 'datetime' })));
      KG.append(right, KG.signOutButton(() => {
        endLocally();
        renderEnded({ signedOut: true });
      }));
    }
    KG.replace(els.header, h('div', { class: 'header-inner' }, brand, right.childNodes.length ? right : null));
  }

  // ---------------------------------------------------------------- views

  function newView() {
    countUI = null;
    return views.next(els.view);
  }

  function setTitle(text) {
    document.title = `${text} · ${state.title ? KG.plainText(state.title) : 'API keys'}`;
  }

  function route({ navigated = false } = {}) {
    if (!els || !state.signedIn) return;
    const r = parseRoute();
    countUI = null;
    const ctx = views.page(els.view, navigated);
    switch (r.name) {
      case 'keys': return viewKeys(ctx);
      case 'key': return viewKey(ctx, r.id);
      default: return viewNotFound(ctx);
    }
  }

  function parseRoute() {
    const r = KG.hashRoute();
    if (!r) return { name: 'notfound' };
    if (r.home) return { name: 'keys' };
    const [first, second, extra] = r.segs;
    if (first !== 'keys' || extra !== undefined) return { name: 'notfound' };
    return second === undefined ? { name: 'keys' } : { name: 'key', id: second };
  }

  const { keyHref, muted, pageHead, panel, codeList } = KG;

  function viewNotFound(ctx) {
    setTitle('Page not found');
    KG.notFoundPage(ctx, 'Go to your API keys');
  }

  // ---------------------------------------------------------------- full pages

  /** The link was refused (err: its answer), or there is no link and no session (err null). */
  function renderLinkInvalid(err) {
    if (state.signedIn) endLocally();
    const ctx = newView();
    setTitle('Link expired');
    const h1 = h('h1', { tabindex: '-1', id: KG.uid('msg-title') }, 'This link has expired or was already used');
    KG.append(ctx.view, h('section', { class: 'portal-message', 'data-testid': 'link-invalid', 'aria-labelledby': h1.id },
      h1,
      err ? KG.notice('warn', h('p', null, KG.errorMessage(err))) : null,
      h('p', null, 'A link to manage your API keys works once, and only for a short time.'),
      h('p', null, state.returnUrl
        ? ['Ask for a new one: go back to ', KG.text(state.title || 'the site'), ' and open its API keys page again.']
        : 'Ask for a new one: go back to the site that sent you here and open its API keys page again.'),
      state.returnUrl ? h('p', null, backLink(['Go back to ', KG.text(state.title || 'the site')], { className: 'btn btn-primary' })) : null));
    if (views.routedOnce) h1.focus();
    views.routedOnce = true;
  }

  function renderEnded({ signedOut, message = '' }) {
    const ctx = newView();
    setTitle(signedOut ? 'Signed out' : 'Session ended');
    const title = state.title;
    const h1 = h('h1', { tabindex: '-1', id: KG.uid('msg-title') }, signedOut ? 'You are signed out' : 'Your session has ended');
    const again = title
      ? ['To manage your API keys again, go back to ', KG.text(title), ' and open its API keys page.']
      : 'To manage your API keys again, go back to the site that sent you here and open its API keys page.';
    KG.append(ctx.view, h('section', { class: 'portal-message', 'data-testid': signedOut ? 'signed-out' : 'session-ended', 'aria-labelledby': h1.id },
      h1,
      !signedOut && message ? KG.notice('warn', h('p', null, message)) : null,
      signedOut ? h('p', null, 'This page no longer gives access to your keys. Your keys themselves keep working.') : null,
      h('p', null, again),
      state.returnUrl ? h('p', null, backLink(['Go back to ', KG.text(title || 'the site')], { className: 'btn btn-primary' })) : null));
    h1.focus();
    views.routedOnce = true;
  }

  // ---------------------------------------------------------------- formatting

  function limitsText(list) {
    if (!Array.isArray(list) || !list.length) return 'no rate limit';
    return KG.describeLimits(list, { names: list.length > 1 });
  }

  function tierText(t) {
    if (!t) return '';
    let s = `Rate limit: ${limitsText(t.rateLimits)}`;
    if (t.rateLimits === undefined) s = '';
    if (t.credits !== undefined) s += `${s ? '; c' : 'C'}redits: ${KG.describeCredits(t.credits)}`;
    return s ? `${s}.` : '';
  }

  function creditsCell(k) {
    if (!k.credits) return muted('unlimited');
    return `${KG.formatNumber(k.credits.remaining)} remaining`;
  }

  function scopesText(list) {
    return Array.isArray(list) && list.length ? KG.text(list.join(', ')) : muted('none');
  }

  /** The keys count: "1 of 3 keys" (or "1 key" when the team set no maximum). */
  function countText(s) {
    if (!s.maxKeys) return KG.plural(s.activeKeys, 'key');
    return `${KG.formatNumber(s.activeKeys)} of ${KG.plural(s.maxKeys, 'key')}`;
  }

  const atLimit = (s) => s.maxKeys > 0 && s.activeKeys >= s.maxKeys;

  function updateCount() {
    if (!countUI || !state.session) return;
    const s = state.session;
    countUI.count.textContent = countText(s);
    const full = atLimit(s);
    countUI.create.disabled = full;
    countUI.note.hidden = !full;
    if (full) countUI.create.setAttribute('aria-describedby', countUI.note.id);
    else countUI.create.removeAttribute('aria-describedby');
  }

  // ---------------------------------------------------------------- keys list

  function viewKeys(ctx) {
    setTitle('Your API keys');
    const createBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'create-key' }, 'Create key');
    const head = pageHead('Your API keys', createBtn);
    const count = h('span', { 'data-testid': 'key-count' });
    const note = h('p', { id: 'create-limit-note', class: 'notice notice-info limit-note', hidden: true },
      'You have as many active keys as you may. To create another, revoke one you no longer use: open it, then choose Revoke.');
    countUI = { count, create: createBtn, note };

    const columns = [
      {
        header: 'Name',
        rowHeader: true,
        className: 'col-name',
        // Only a key that no longer works says so: most are active.
        render: (k) => [h('a', { href: keyHref(k.id) }, KG.text(k.name)), k.status === 'active' ? null : [' ', KG.statusBadge(k.status)]],
      },
      { header: 'Prefix', render: (k) => h('code', null, KG.text(k.start), '…') },
      { header: 'Scopes', className: 'col-wrap', render: (k) => scopesText(k.scopes) },
      { header: 'Created', render: (k) => KG.time(k.createdAt, { mode: 'date' }) },
      { header: 'Expires', render: (k) => [k.expiresAt ? KG.time(k.expiresAt, { mode: 'date' }) : muted('never'), ' ', KG.expiryBadge(k)] },
      { header: 'Last used', render: (k) => (k.usage && k.usage.lastUsed ? KG.time(k.usage.lastUsed, { mode: 'relative' }) : muted('never')) },
      { header: 'Usage, 48 h', className: 'col-spark', render: () => KG.sparkSlot() },
      { header: 'Rate limits', className: 'col-wrap', render: (k) => limitsText(k.rateLimits) },
      { header: 'Credits', render: creditsCell },
    ];
    const table = KG.pagedTable({
      caption: 'Your API keys',
      columns,
      cardLabels: true,
      emptyText: 'You have no API keys yet. Choose “Create key” to make one.',
      tableAttrs: { 'data-testid': 'keys-table', class: 'table portal-keys' },
      rowAttrs: (k) => ({ 'data-testid': 'key-row', 'data-key-id': k.id, class: k.status === 'active' ? null : 'row-inactive' }),
      load: async (cursor) => {
        const res = await api.get('/keys', { limit: PAGE_SIZE, cursor });
        return { items: Array.isArray(res.data) ? res.data : [], nextCursor: res.nextCursor };
      },
      onPage: (items, rows) => KG.loadSparklines({ items, rows, usagePath: (k) => `/keys/${enc(k.id)}/usage`, alive: ctx.alive }),
    });

    createBtn.addEventListener('click', () => openCreateDialog(() => {
      refreshSession();
      if (ctx.alive()) table.reset();
    }));

    KG.append(ctx.view,
      head.el,
      h('p', { class: 'key-count' }, count, ' ', muted('active. Revoked and expired keys do not count.')),
      note,
      table.element);
    updateCount();
    ctx.focusHeading(head.h1);
    table.reload();
    // Keys may have changed elsewhere since the count was read.
    if (Date.now() - state.sessionReadAt > 2000) refreshSession();
  }

  // ---------------------------------------------------------------- create dialog

  function openCreateDialog(onCreated) {
    const s = state.session;
    const tiers = s.allowedTiers;
    const boxes = [];
    const scopeList = h('div', { class: 'choices choices-grid' });
    for (const scope of s.allowedScopes) {
      const id = `create-scope-${KG.safeId(scope)}`;
      const cb = h('input', { type: 'checkbox', id, value: scope });
      boxes.push(cb);
      KG.append(scopeList, h('div', { class: 'choice' }, cb, h('label', { for: id }, h('code', null, KG.text(scope)))));
    }
    const scopes = h('fieldset', { class: 'fieldset scopes' }, h('legend', null, 'Scopes'),
      h('p', { class: 'hint' }, s.allowedScopes.length ? 'What the key may do. Choose only what you need.' : 'No scopes are offered: the key gets none.'),
      scopeList);
    const expiry = KG.expiryFieldset('create');

    KG.createKeyDialog({
      tiers,
      tierLabel: 'Plan (tier)',
      noTier: 'No plan is available',
      tierMissing: 'Plan: choose one.',
      nameHint: 'To tell your keys apart, for example “Production server”. 1 to 128 characters.',
      tierHint: (name) => tierText(tiers.find((t) => t.name === name)) || ' ',
      needTier: true,
      fields: [scopes, expiry.el],
      collect(problems, invalid) {
        const exp = KG.gather(problems, invalid, expiry.value());
        const body = { scopes: boxes.filter((b) => b.checked).map((b) => b.value) };
        if (exp.iso) body.expiresAt = exp.iso;
        return body;
      },
      path: '/keys',
      intro: (k) => h('p', null, 'Key “', KG.text(k.name), '” (', h('code', null, KG.text(k.start), '…'), ') was created.'),
      label: 'Your new API key',
      onCreated,
      onError: (err) => {
        if (err.code === 'conflict') refreshSession();
      },
    });
  }

  // ---------------------------------------------------------------- key page

  function viewKey(ctx, id) {
    setTitle('Key');
    const keyPath = (kid) => `/keys/${enc(kid)}`;
    const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('ol', null, h('li', null, h('a', { href: '#/keys' }, 'Your API keys')), h('li', null, h('span', { 'aria-current': 'page' }, KG.text(id)))));
    const seeKeys = () => h('a', { href: '#/keys' }, 'See your API keys');
    KG.keyView({
      ctx,
      id,
      crumbs,
      badId: ['There is no key at this address. ', seeKeys(), '.'],
      keyPath,
      rotate: openRotateDialog,
      changed: refreshSession,
      failed(err, { h1, body, retry }) {
        if (err.code === 'not_found') {
          h1.textContent = 'Key not found';
          KG.replace(body, KG.notice('error', h('p', null, KG.errorMessage(err), ' ', seeKeys(), '.')));
        } else {
          KG.replace(body, KG.errorBox(err, { retry }));
        }
      },
      draw(key, { actions, active }) {
        KG.replace(crumbs.querySelector('[aria-current]'), KG.text(key.name));
        setTitle(`Key ${KG.plainText(key.name)}`);
        const summary = h('p', { class: 'key-summary' }, KG.statusBadge(key.status), ' ', KG.expiryBadge(key), ' ',
          h('code', null, KG.text(key.start), '…'));
        const notes = [];
        if (key.rotatedTo) {
          notes.push(KG.notice('info', h('p', null, 'This key was replaced by ', h('a', { href: keyHref(key.rotatedTo) }, 'its new key'),
            active && key.expiresAt ? ['; it keeps working until ', KG.time(key.expiresAt), ' (', KG.relativeTime(key.expiresAt), ').'] : '.')));
        }
        if (key.rotatedFrom) {
          notes.push(KG.notice('info', h('p', null, 'This key replaces ', h('a', { href: keyHref(key.rotatedFrom) }, 'an earlier key'), '.')));
        }
        return [
          h('div', { class: 'key-head' }, summary, actions),
          ...notes,
          panel('Details', detailsList(key)),
          panel('Usage', KG.usagePanel({ path: `${keyPath(key.id)}/usage`, what: 'This key', alive: ctx.alive }).element),
        ];
      },
    });
  }

  function detailsList(key) {
    const row = KG.detailRow;
    const limits = Array.isArray(key.rateLimits) && key.rateLimits.length
      ? h('ul', { class: 'plain-list' }, key.rateLimits.map((l) => h('li', null,
        `${KG.formatNumber(l.limit)} requests per ${KG.formatWindow(l.windowSeconds)}`,
        key.rateLimits.length > 1 ? [' ', muted(['(', KG.text(l.name), ')'])] : null)))
      : muted('no rate limit');
    let credits = muted('unlimited');
    if (key.credits) {
      credits = h('span', null, `${KG.formatNumber(key.credits.remaining)} remaining`,
        key.credits.refill ? `, ${KG.describeRefill(key.credits.refill)}` : '',
        key.credits.nextRefillAt ? [', next refill ', KG.time(key.credits.nextRefillAt)] : '');
    }
    return h('dl', { class: 'details' },
      row('Display prefix', h('code', null, KG.text(key.start), '…')),
      row('Status', KG.statusBadge(key.status)),
      row('Plan (tier)', KG.text(key.tier)),
      row('Scopes', codeList(key.scopes, 'none')),
      row('Created', KG.time(key.createdAt)),
      KG.keyLifeRows(key),
      row('Rate limits', limits),
      row('Credits', credits),
      row('Key id', h('code', null, KG.text(key.id))),
    );
  }

  // ---------------------------------------------------------------- rotate dialog

  function openRotateDialog(key, done) {
    const name = 'rotate-grace';
    const { submit } = KG.rotateDialog({
      key,
      path: `/keys/${enc(key.id)}/rotate`,
      about: 'gives you a new key with the same settings. The current key keeps working for the time you choose, so you can switch to the new key, then it stops working.',
      legend: 'The current key keeps working for',
      choices: [
        KG.radioChoice(name, 'rotate-grace-0', '0', 'None: the current key stops working at once'),
        KG.radioChoice(name, 'rotate-grace-3600', '3600', '1 hour'),
        KG.radioChoice(name, 'rotate-grace-86400', '86400', '24 hours', true),
        KG.radioChoice(name, 'rotate-grace-604800', '604800', '7 days'),
      ],
      intro: (k, grace, until) => [
        h('p', null, 'Your new key “', KG.text(k.name), '” (', h('code', null, KG.text(k.start), '…'), ') is ready.'),
        h('p', null, 'The old key (', h('code', null, KG.text(key.start), '…'), ')',
          grace === 0 ? ' no longer works.' : [' keeps working for ', KG.formatDuration(grace), ', until ', KG.time(until), '.']),
      ],
      label: 'Your new API key',
      wide: true,
      onClosed: done,
    });
    submit.focus();
  }

  // ---------------------------------------------------------------- start

  KG.startApp({
    app: 'portal',
    onUnauthorized: sessionEnded,
    onHashChange,
    start(el) {
      els = el;
      renderHeader();
      const token = pendingToken;
      pendingToken = null;
      if (token) exchange(token);
      else checkSession();
    },
  });
})();
