/*
 * keygate web console: the app on top of ui.js (window.KG). A classic script,
 * loaded with `defer` after ui.js.
 *
 * Routes (hash routing; signed out, every route shows the sign-in form):
 *   #/keys               the project's keys: filters, pages, sparklines, "Create key"
 *   #/keys/<id>          one key: every field, edit, credits, usage chart,
 *                        audit trail, Rotate, Revoke
 *   #/owners             open an owner by name; owners by requests (30 days)
 *   #/owners/<owner>     an owner's keys, summed usage, shared limits, Offboard
 *   #/audit              the audit log: key id and action filters, pages
 *   anything else        "Page not found"; "" and "#/" go to #/keys
 *
 * Server: GET/POST/DELETE /console/api/session, then /console/api + the
 * public API path (README.md). Non-GET requests carry X-Keygate-CSRF. A 401
 * on any call shows the sign-in form again with a message.
 *
 * Test hooks (data-testid):
 *   keys-table, key-row (each <tr>, with data-key-id), sparkline (one per
 *   row, once its usage loaded), create-key (button), create-submit (the
 *   create dialog's submit), raw-key (the read-only <input> holding the raw
 *   key: read its value), copy-key, reveal-close (closes a reveal dialog,
 *   after a confirm), usage-chart (a <figure>), audit-table, audit-row,
 *   signout, rotate, rotate-submit, revoke, save-key (edit form submit),
 *   adjust-credits (credits form submit), offboard, confirm-ok,
 *   confirm-cancel, toast (the one role="status" live region; it moves into
 *   an open modal dialog while one is open), owners-table, owner-row (with
 *   data-owner), create-dialog, rotate-dialog, confirm-dialog (the <dialog>s).
 *   audit-row has data-event-id and data-action.
 * Texts tests may match: the copy button and the toast both read "Copied";
 *   a masked key's note contains "hidden: you can no longer see it"; the
 *   close confirmation reads "You will not see this key again. Close?"; the
 *   revoke confirmation "Revoke key “<name>” (<start>…)? Requests with it
 *   will be refused at once."; offboarding "This will revoke N keys …" and
 *   then "Revoked N keys." (singular for 1).
 * Stable control ids (each with a visible <label for>):
 *   sign-in: signin-key
 *   keys filters: filter-status, filter-tier, filter-owner, filter-search, filter-unused
 *   create dialog: create-name, create-tier, create-scope-<scope>, create-owner,
 *     create-expiry-{never,30,90,date-choice} (radios), create-expiry-date (the date
 *     input), create-ip, create-metadata,
 *     create-limits-{tier,none,custom}, create-limits-{name,limit,window}-<n>,
 *     create-credits-{tier,unlimited,limited}, create-credits-{remaining,refill,amount,day}
 *   key detail edit form: the same with the prefix edit- (edit-expiry-keep too),
 *     credits-op, credits-value
 *   rotate dialog: rotate-grace-{0,3600,86400,604800,custom}, rotate-grace-seconds
 *   owners: owner-open; owner page: offboard-include
 *   audit: audit-key, audit-action
 */
(function () {
  'use strict';

  const KG = window.KG;
  const { h, api } = KG;
  const enc = encodeURIComponent;

  const OWNER_RE = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$/;
  const { KEY_ID_RE } = KG;
  const LIMIT_NAME_RE = /^[a-z][a-z0-9]{0,31}$/;
  const AUDIT_ACTIONS = [
    'key.created', 'key.updated', 'key.revoked', 'key.rotated', 'key.credits_adjusted',
    'owner.revoked', 'owner.limits_updated', 'session.started', 'session.ended',
  ];

  const state = {
    signedIn: false,
    session: null,
    config: { scopes: [], tiers: [] },
    keysFilters: { status: '', tier: '', owner: '', search: '', unused: false },
    auditFilters: { keyId: '', action: '' },
  };

  let els = null;
  const views = KG.views();

  async function checkSession() {
    const ctx = newView();
    setTitle('Loading');
    const box = h('div', { class: 'boot', 'aria-busy': 'true' }, KG.loading('Loading the console…'));
    KG.append(ctx.view, box);
    try {
      const res = await api.get('/session', null, { allowUnauthorized: true });
      if (!ctx.alive()) return;
      if (res.data && res.data.signedIn) {
        applySession(res.data);
        route({ navigated: false });
      } else {
        renderSignIn();
      }
    } catch (err) {
      if (!ctx.alive()) return;
      setTitle('Cannot load');
      KG.replace(ctx.view, 
        h('h1', { tabindex: '-1' }, 'The console cannot load'),
        KG.errorBox(err, { retry: checkSession }));
    }
  }

  function applySession(data) {
    state.signedIn = true;
    state.session = data.session || {};
    const cfg = data.config || {};
    state.config = {
      scopes: Array.isArray(cfg.scopes) ? cfg.scopes.map(String) : (state.session.scopes || []).map(String),
      tiers: Array.isArray(cfg.tiers) ? cfg.tiers.filter((t) => t && typeof t.name === 'string') : [],
    };
    api.setCsrfToken(data.csrfToken || '');
    renderHeader();
  }

  function clearSession() {
    state.signedIn = false;
    state.session = null;
    state.config = { scopes: [], tiers: [] };
    state.keysFilters = { status: '', tier: '', owner: '', search: '', unused: false };
    state.auditFilters = { keyId: '', action: '' };
    KG.forgetSession();
    renderHeader();
  }

  function sessionEnded(err) {
    if (!state.signedIn) return;
    clearSession();
    renderSignIn({ title: 'Your session has ended.', message: err.message, kind: 'warn' });
  }

  function heldScopes() {
    return new Set((state.session && Array.isArray(state.session.scopes) ? state.session.scopes : []).map(String));
  }

  // ---------------------------------------------------------------- header

  function renderHeader() {
    const icon = document.querySelector('link[rel="icon"]');
    const brand = h('a', { class: 'brand', href: '#/keys' },
      icon ? h('img', { src: icon.getAttribute('href'), alt: '', width: '24', height: '24' }) : null,
      h('span', null, 'keygate console'));
    if (!state.signedIn) {
      KG.replace(els.header, h('div', { class: 'header-inner' }, brand));
      return;
    }
    const s = state.session || {};
    const links = [['#/keys', 'Keys', 'keys'], ['#/owners', 'Owners', 'owners'], ['#/audit', 'Audit log', 'audit']];
    const nav = h('nav', { class: 'main-nav', 'aria-label': 'Main' },
      h('ul', null, links.map(([href, text, section]) => h('li', null, h('a', { href, dataset: { section } }, text)))));
    const signout = KG.signOutButton(() => {
      clearSession();
      renderSignIn({ message: 'You are signed out.', kind: 'ok' });
    });
    const who = h('div', { class: 'who' },
      h('p', { class: 'who-text' },
        h('span', { class: 'muted' }, 'Signed in as '), h('strong', null, KG.text(s.keyName || s.keyId || 'an admin key')),
        h('span', { class: 'muted' }, ' · project '), h('strong', null, KG.text(s.project || ''))),
      signout);
    KG.replace(els.header, h('div', { class: 'header-inner' }, brand, nav, who));
    markNav();
  }

  function markNav() {
    const section = (location.hash.replace(/^#\/?/, '').split(/[/?]/)[0]) || 'keys';
    for (const a of els.header.querySelectorAll('.main-nav a')) {
      if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  // ---------------------------------------------------------------- views

  const newView = () => views.next(els.view);

  function setTitle(text) {
    document.title = `${text} · keygate console`;
  }

  function route({ navigated = false } = {}) {
    if (!els) return;
    if (!state.signedIn) {
      if (views.routedOnce || navigated) renderSignIn();
      return;
    }
    const r = parseRoute();
    if (r.name === 'redirect') {
      if (location.hash !== '#/keys') {
        location.replace('#/keys');
        return; // hashchange routes again
      }
    }
    markNav();
    const ctx = views.page(els.view, navigated);
    switch (r.name) {
      case 'redirect':
      case 'keys': return viewKeys(ctx);
      case 'key': return viewKey(ctx, r.id);
      case 'owners': return viewOwners(ctx);
      case 'owner': return viewOwner(ctx, r.owner);
      case 'audit': return viewAudit(ctx);
      default: return viewNotFound(ctx);
    }
  }

  function parseRoute() {
    const r = KG.hashRoute();
    if (!r) return { name: 'notfound' };
    if (r.home) return { name: 'redirect' };
    const [first, second, extra] = r.segs;
    if (extra !== undefined) return { name: 'notfound' };
    if (first === 'keys') return second === undefined ? { name: 'keys' } : { name: 'key', id: second };
    if (first === 'owners') return second === undefined ? { name: 'owners' } : { name: 'owner', owner: second };
    if (first === 'audit' && second === undefined) return { name: 'audit' };
    return { name: 'notfound' };
  }

  const { keyHref, muted, pageHead, crumbs, panel, codeList } = KG;
  const ownerHref = (owner) => `#/owners/${enc(owner)}`;

  function viewNotFound(ctx) {
    setTitle('Page not found');
    KG.notFoundPage(ctx, 'Go to the keys');
  }

  // ---------------------------------------------------------------- sign-in

  function renderSignIn({ title = '', message = '', kind = 'info' } = {}) {
    const ctx = newView();
    setTitle('Sign in');
    const input = h('input', {
      id: 'signin-key', name: 'key', type: 'password', required: true,
      autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false',
    });
    const errBox = h('div', { class: 'form-error' });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
    const form = h('form', { class: 'form signin-form', novalidate: true, 'aria-busy': 'false' },
      KG.field({ label: 'Admin API key', control: input, hint: 'A key with the admin scope. The server keeps your session; this page does not store the key.' }),
      errBox,
      h('div', { class: 'form-actions' }, submit));
    const h1 = h('h1', { tabindex: '-1' }, 'Sign in');
    KG.append(ctx.view, h('div', { class: 'signin' },
      h1,
      message ? KG.notice(kind, title ? h('p', { class: 'notice-title' }, title) : null, h('p', null, message)) : null,
      form));

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      KG.replace(errBox);
      if (!input.value.trim()) {
        input.setAttribute('aria-invalid', 'true');
        KG.replace(errBox, KG.notice('error', h('p', { role: 'alert' }, 'Enter an admin API key.')));
        input.focus();
        return;
      }
      input.removeAttribute('aria-invalid');
      const body = { key: input.value.trim() };
      input.value = '';
      submit.disabled = true;
      submit.textContent = 'Signing in…';
      KG.setBusy(form, true);
      try {
        const res = await api.post('/session', body, { csrf: 'signin', allowUnauthorized: true });
        body.key = '';
        if (!ctx.alive()) return;
        applySession(res.data || {});
        if (location.hash === '#/keys') route({ navigated: true });
        else location.hash = '#/keys';
      } catch (err) {
        body.key = '';
        if (!ctx.alive()) return;
        KG.replace(errBox, KG.errorBox(err, { title: 'Could not sign in' }));
        submit.disabled = false;
        submit.textContent = 'Sign in';
        KG.setBusy(form, false);
        input.focus();
      }
    });
    input.focus();
    views.routedOnce = true;
  }

  // ---------------------------------------------------------------- formatting helpers

  function tierHint(name) {
    const t = state.config.tiers.find((x) => x.name === name);
    if (!t) return '';
    let s = `Tier ${t.name}: ${KG.describeLimits(t.rateLimits)}`;
    if (t.credits) s += `; credits: ${KG.describeCredits(t.credits)}`;
    return s + '.';
  }

  function keyLink(id) {
    return h('a', { href: keyHref(id) }, h('code', null, KG.text(id)));
  }

  function creatorCell(createdBy) {
    if (!createdBy) return muted('—');
    if (KEY_ID_RE.test(createdBy)) return keyLink(createdBy);
    return KG.text(createdBy);
  }

  function formatValue(v) {
    if (v === null || v === undefined) return h('em', { class: 'muted' }, 'none');
    if (typeof v === 'string') return v === '' ? h('em', { class: 'muted' }, 'empty') : h('code', null, KG.text(v));
    if (KG.isRawNumber(v)) return h('code', null, v.rawJSON);
    if (typeof v === 'number' || typeof v === 'boolean') return h('code', null, String(v));
    return h('code', null, KG.text(KG.json(v)));
  }

  function sameList(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  function sameSet(a, b) {
    return sameList([...a].sort(), [...b].sort());
  }

  function lines(text) {
    return text.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  }

  function parseIntField(value) {
    const s = String(value).trim();
    if (!/^\d+$/.test(s)) return null;
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : null;
  }

  // ---------------------------------------------------------------- forms

  function scopesFieldset(prefix, { selected = [], extra = [] } = {}) {
    const held = heldScopes();
    const all = [...new Set([...state.config.scopes, ...extra])];
    const boxes = [];
    const fs = h('fieldset', { class: 'fieldset scopes' }, h('legend', null, 'Scopes'));
    if (all.some((sc) => !held.has(sc))) KG.append(fs, h('p', { class: 'hint' }, 'Your key can grant only the scopes it holds itself; the others are greyed out.'));
    if (!all.length) KG.append(fs, h('p', { class: 'hint' }, 'No scopes are configured.'));
    const list = h('div', { class: 'choices choices-grid' });
    for (const scope of all) {
      const id = `${prefix}-scope-${KG.safeId(scope)}`;
      const can = held.has(scope);
      const cb = h('input', { type: 'checkbox', id, value: scope, checked: selected.includes(scope), disabled: !can });
      let note = null;
      if (!can) {
        note = h('span', { class: 'hint', id: `${id}-note` }, '(not held by your key)');
        cb.setAttribute('aria-describedby', note.id);
      }
      boxes.push(cb);
      KG.append(list, h('div', { class: 'choice' }, cb, h('label', { for: id }, h('code', null, KG.text(scope))), note));
    }
    KG.append(fs, list);
    return { el: fs, value: () => boxes.filter((b) => b.checked).map((b) => b.value) };
  }

  /**
   * Rate limits: the tier's / none / custom rows of name, limit, window.
   * value() → {mode: 'tier'|'none'|'custom', list, errors, controls}
   */
  function limitsFieldset(prefix, { mode = 'tier', list = [] } = {}) {
    const name = `${prefix}-mode`;
    const tierHintEl = h('span', { class: 'hint' });
    const choices = [
      KG.radioChoice(name, `${prefix}-tier`, 'tier', "The tier's limits", mode === 'tier', tierHintEl),
      KG.radioChoice(name, `${prefix}-none`, 'none', 'No rate limit', mode === 'none'),
      KG.radioChoice(name, `${prefix}-custom`, 'custom', 'Custom limits', mode === 'custom'),
    ];
    const rowsEl = h('div', { class: 'limit-rows' });
    const addBtn = h('button', { type: 'button', class: 'btn btn-small' }, 'Add a limit');
    const custom = h('div', { class: 'subform', hidden: mode !== 'custom' }, rowsEl, addBtn,
      h('p', { class: 'hint' }, 'Up to 5 limits. Name: a lowercase word (letters and digits, up to 32). Window in seconds: 1 = a second, 60 = a minute, 3600 = an hour, 86400 = a day.'));
    const rows = [];
    let counter = 0;

    function relabel() {
      rows.forEach((r, i) => {
        r.labels[0].textContent = `Limit ${i + 1} name`;
        r.labels[1].textContent = `Limit ${i + 1} requests`;
        r.labels[2].textContent = `Limit ${i + 1} window (seconds)`;
        r.remove.textContent = `Remove limit ${i + 1}`;
      });
      addBtn.disabled = rows.length >= 5;
    }

    function addRow(l = {}) {
      const n = ++counter;
      const nameI = h('input', { type: 'text', id: `${prefix}-name-${n}`, value: l.name || '', autocomplete: 'off', spellcheck: 'false', maxlength: '32' });
      const limitI = h('input', { type: 'number', id: `${prefix}-limit-${n}`, min: '1', step: '1', inputmode: 'numeric', value: l.limit != null ? String(l.limit) : '' });
      const winI = h('input', { type: 'number', id: `${prefix}-window-${n}`, min: '1', max: '2592000', step: '1', inputmode: 'numeric', value: l.windowSeconds != null ? String(l.windowSeconds) : '' });
      const labels = [h('label', { for: nameI.id }), h('label', { for: limitI.id }), h('label', { for: winI.id })];
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-quiet' });
      const row = {
        nameI, limitI, winI, labels, remove,
        el: h('div', { class: 'limit-row' },
          h('div', { class: 'field' }, labels[0], nameI),
          h('div', { class: 'field' }, labels[1], limitI),
          h('div', { class: 'field' }, labels[2], winI),
          remove),
      };
      remove.addEventListener('click', () => {
        const i = rows.indexOf(row);
        if (i >= 0) rows.splice(i, 1);
        row.el.remove();
        relabel();
        addBtn.focus();
      });
      rows.push(row);
      KG.append(rowsEl, row.el);
      relabel();
      return row;
    }

    (Array.isArray(list) ? list : []).forEach((l) => addRow(l));
    addBtn.addEventListener('click', () => {
      if (rows.length >= 5) return;
      addRow().nameI.focus();
    });
    for (const c of choices) {
      c.input.addEventListener('change', () => {
        custom.hidden = c.input.value !== 'custom' || !c.input.checked;
        if (c.input.value === 'custom' && c.input.checked && !rows.length) addRow({ name: 'window' });
      });
    }
    const fs = h('fieldset', { class: 'fieldset' }, h('legend', null, 'Rate limits'), h('div', { class: 'choices' }, choices.map((c) => c.el)), custom);
    return {
      el: fs,
      setTierText(t) {
        tierHintEl.textContent = t ? ` (${t})` : '';
      },
      value() {
        const m = choices.find((c) => c.input.checked).input.value;
        if (m !== 'custom') return { mode: m, list: m === 'none' ? [] : null, errors: [], controls: [] };
        const errors = [];
        const controls = [];
        const out = [];
        if (!rows.length) errors.push('Rate limits: add a limit, or choose another option.');
        rows.forEach((r, i) => {
          const nm = r.nameI.value.trim();
          const lim = parseIntField(r.limitI.value);
          const win = parseIntField(r.winI.value);
          const badName = !LIMIT_NAME_RE.test(nm);
          const badLim = lim === null || lim < 1;
          const badWin = win === null || win < 1 || win > 2592000;
          if (badName) errors.push(`Limit ${i + 1} name: a lowercase word of letters and digits, like "daily".`);
          if (badLim) errors.push(`Limit ${i + 1} requests: a whole number, at least 1.`);
          if (badWin) errors.push(`Limit ${i + 1} window: whole seconds, 1 to 2,592,000.`);
          controls.push([r.nameI, badName], [r.limitI, badLim], [r.winI, badWin]);
          out.push({ name: nm, limit: lim, windowSeconds: win });
        });
        return { mode: m, list: out, errors, controls };
      },
    };
  }

  /**
   * Credits: (the tier's,) unlimited, or limited with remaining and refill.
   * value() → {mode, remaining, refill, errors, controls}
   */
  function creditsFieldset(prefix, { mode = 'unlimited', credits = null, allowTier = false } = {}) {
    const name = `${prefix}-mode`;
    const choices = [];
    if (allowTier) choices.push(KG.radioChoice(name, `${prefix}-tier`, 'tier', "The tier's credits, if it gives any", mode === 'tier'));
    choices.push(KG.radioChoice(name, `${prefix}-unlimited`, 'unlimited', 'Unlimited', mode === 'unlimited'));
    choices.push(KG.radioChoice(name, `${prefix}-limited`, 'limited', 'Limited credits', mode === 'limited'));
    const c = credits || {};
    const r = c.refill || null;
    const remaining = h('input', { type: 'number', id: `${prefix}-remaining`, min: '0', step: '1', inputmode: 'numeric', value: c.remaining != null ? String(KG.num(c.remaining)) : '' });
    const refill = h('select', { id: `${prefix}-refill`, value: r ? r.interval : '' },
      h('option', { value: '' }, 'No refill'),
      h('option', { value: 'daily' }, 'Daily, at 00:00 UTC'),
      h('option', { value: 'monthly' }, 'Monthly'));
    const amount = h('input', { type: 'number', id: `${prefix}-amount`, min: '1', step: '1', inputmode: 'numeric', value: r && r.amount != null ? String(r.amount) : '' });
    const day = h('input', { type: 'number', id: `${prefix}-day`, min: '1', max: '31', step: '1', inputmode: 'numeric', value: r && r.refillDay ? String(r.refillDay) : '1' });
    const amountField = KG.field({ label: 'Refill amount', control: amount, hint: 'Remaining credits are set to this at each refill.' });
    const dayField = KG.field({ label: 'Refill day of the month (1–31)', control: day, hint: 'On the last day of shorter months.' });
    const syncRefill = () => {
      amountField.hidden = !refill.value;
      dayField.hidden = refill.value !== 'monthly';
    };
    refill.addEventListener('change', syncRefill);
    syncRefill();
    const box = h('div', { class: 'subform', hidden: mode !== 'limited' },
      h('div', { class: 'field-row' },
        KG.field({ label: 'Credits remaining', control: remaining }),
        KG.field({ label: 'Refill', control: refill })),
      h('div', { class: 'field-row' }, amountField, dayField));
    for (const ch of choices) {
      ch.input.addEventListener('change', () => {
        box.hidden = !(ch.input.value === 'limited' && ch.input.checked);
      });
    }
    const fs = h('fieldset', { class: 'fieldset' }, h('legend', null, 'Credits'),
      h('p', { class: 'hint' }, 'A budget each request spends by its route’s cost.'),
      h('div', { class: 'choices' }, choices.map((ch) => ch.el)), box);
    return {
      el: fs,
      value() {
        const m = choices.find((ch) => ch.input.checked).input.value;
        if (m !== 'limited') return { mode: m, errors: [], controls: [] };
        const errors = [];
        const rem = parseIntField(remaining.value);
        const badRem = rem === null;
        if (badRem) errors.push('Credits remaining: a whole number, 0 or more.');
        let rf = null;
        let badAmount = false;
        let badDay = false;
        if (refill.value) {
          const amt = parseIntField(amount.value);
          badAmount = amt === null || amt < 1;
          if (badAmount) errors.push('Refill amount: a whole number, at least 1.');
          rf = { interval: refill.value, amount: amt };
          if (refill.value === 'monthly') {
            const d = parseIntField(day.value);
            badDay = d === null || d < 1 || d > 31;
            if (badDay) errors.push('Refill day: a day of the month, 1 to 31.');
            rf.refillDay = d;
          }
        }
        return { mode: m, remaining: rem, refill: rf, errors, controls: [[remaining, badRem], [amount, badAmount], [day, badDay]] };
      },
    };
  }

  /** Metadata textarea: value() → {changed, value (object or null), errors, control}. */
  function metadataField(prefix, initial) {
    const initialText = KG.isPlainObject(initial) ? KG.json(initial, 2) : '';
    const ta = h('textarea', { id: `${prefix}-metadata`, rows: '4', spellcheck: 'false', autocomplete: 'off', class: 'mono', value: initialText });
    const field = KG.field({ label: 'Metadata (optional)', control: ta, hint: 'A JSON object, at most 1 KB, for example {"env": "prod"}. The server checks it too.' });
    return {
      el: field,
      control: ta,
      value() {
        const text = ta.value.trim();
        const changed = text !== initialText.trim();
        const control = ta;
        if (!text) return { changed, value: null, errors: [], control };
        let v;
        try {
          v = KG.parseJSON(text);
        } catch (e) {
          return { changed, errors: [`Metadata: this is not valid JSON (${e.message}).`], control };
        }
        if (!KG.isPlainObject(v)) return { changed, errors: ['Metadata: write a JSON object, in braces, like {"env": "prod"}.'], control };
        return { changed, value: v, errors: [], control };
      },
    };
  }

  function ipField(prefix, initial) {
    const ta = h('textarea', { id: `${prefix}-ip`, rows: '3', spellcheck: 'false', autocomplete: 'off', class: 'mono', value: (initial || []).join('\n') });
    return {
      el: KG.field({ label: 'IP allowlist (optional)', control: ta, hint: 'One IP address or CIDR per line (IPv4 or IPv6), at most 16. Empty: every address.' }),
      control: ta,
      value: () => lines(ta.value),
    };
  }

  // ---------------------------------------------------------------- keys list

  function keysQuery(f) {
    return {
      status: f.status,
      tier: f.tier,
      owner: f.owner,
      search: f.search,
      unusedForDays: f.unused ? 30 : '',
    };
  }

  /** The keys table (data-testid keys-table), with lazily loaded sparklines. */
  function keysTable(ctx, { caption, query, showOwner = true, emptyText = 'No keys match.' }) {
    const columns = [
      { header: 'Name', rowHeader: true, className: 'col-name', render: (k) => h('a', { href: keyHref(k.id) }, KG.text(k.name)) },
      { header: 'Prefix', render: (k) => h('code', null, KG.text(k.start), '…') },
      { header: 'Tier', render: (k) => KG.text(k.tier) },
      { header: 'Scopes', render: (k) => (k.scopes && k.scopes.length ? KG.text(k.scopes.join(', ')) : muted('none')) },
      showOwner ? { header: 'Owner', render: (k) => (k.owner ? h('a', { href: ownerHref(k.owner) }, KG.text(k.owner)) : muted('none')) } : null,
      { header: 'Status', render: (k) => KG.statusBadge(k.status) },
      { header: 'Created', render: (k) => KG.time(k.createdAt, { mode: 'date' }) },
      { header: 'Expires', className: 'col-expires', render: (k) => [k.expiresAt ? KG.time(k.expiresAt, { mode: 'date' }) : muted('never'), ' ', KG.expiryBadge(k)] },
      { header: 'Last used', render: (k) => (k.usage && k.usage.lastUsed ? KG.time(k.usage.lastUsed, { mode: 'relative' }) : muted('never')) },
      { header: 'Usage, 48 h', className: 'col-spark', render: () => KG.sparkSlot() },
    ].filter(Boolean);
    return KG.pagedTable({
      caption,
      columns,
      emptyText,
      tableAttrs: { 'data-testid': 'keys-table', class: 'table keys-table' },
      rowAttrs: (k) => ({ 'data-testid': 'key-row', 'data-key-id': k.id }),
      load: async (cursor) => {
        const res = await api.get('/v1/api-keys', { ...query(), limit: 20, cursor });
        return { items: Array.isArray(res.data) ? res.data : [], nextCursor: res.nextCursor };
      },
      onPage: (items, rows) => KG.loadSparklines({ items, rows, usagePath: (k) => `/v1/api-keys/${enc(k.id)}/usage`, alive: ctx.alive }),
    });
  }

  function viewKeys(ctx) {
    setTitle('Keys');
    const f = state.keysFilters;
    const createBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'create-key' }, 'Create key');
    const head = pageHead('API keys', createBtn);

    const status = h('select', { id: 'filter-status', value: f.status },
      h('option', { value: '' }, 'Any'), h('option', { value: 'active' }, 'Active'),
      h('option', { value: 'revoked' }, 'Revoked'), h('option', { value: 'expired' }, 'Expired'));
    const tier = h('select', { id: 'filter-tier', value: f.tier },
      h('option', { value: '' }, 'Any'), state.config.tiers.map((t) => h('option', { value: t.name }, t.name)));
    const owner = h('input', { type: 'text', id: 'filter-owner', value: f.owner, autocomplete: 'off', spellcheck: 'false' });
    const search = h('input', { type: 'search', id: 'filter-search', value: f.search, autocomplete: 'off' });
    const unused = h('input', { type: 'checkbox', id: 'filter-unused', checked: f.unused });
    const errs = KG.formErrors();
    const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter keys', novalidate: true },
      KG.field({ label: 'Status', control: status }),
      KG.field({ label: 'Tier', control: tier }),
      KG.field({ label: 'Owner', control: owner }),
      KG.field({ label: 'Name contains', control: search }),
      h('div', { class: 'choice filter-check' }, unused, h('label', { for: 'filter-unused' }, 'Not used for 30 days')),
      h('div', { class: 'filter-actions' },
        h('button', { type: 'submit', class: 'btn' }, 'Apply filters'),
        h('button', { type: 'button', class: 'btn btn-quiet', onclick: clear }, 'Clear filters')),
      errs.el);

    const table = keysTable(ctx, { caption: 'API keys', query: () => keysQuery(state.keysFilters) });

    function apply() {
      errs.clear();
      const o = owner.value.trim();
      const badOwner = o !== '' && !OWNER_RE.test(o);
      const problems = badOwner ? ['Owner: letters, digits and . _ @ : + - (up to 128), starting with a letter or digit.'] : [];
      if (!errs.check(problems, [[owner, badOwner]], { focus: false })) return;
      state.keysFilters = { status: status.value, tier: tier.value, owner: o, search: search.value.trim(), unused: unused.checked };
      table.reset();
    }
    function clear() {
      status.value = '';
      tier.value = '';
      owner.value = '';
      search.value = '';
      unused.checked = false;
      apply();
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      apply();
    });
    for (const c of [status, tier, unused]) c.addEventListener('change', apply);
    createBtn.addEventListener('click', () => openCreateDialog(ctx, () => {
      if (ctx.alive()) table.reset();
    }));

    KG.append(ctx.view, head.el, form, table.element);
    ctx.focusHeading(head.h1);
    table.reload();
  }

  // ---------------------------------------------------------------- create dialog

  function openCreateDialog(ctx, onCreated) {
    const tiers = state.config.tiers;
    const scopes = scopesFieldset('create');
    const owner = h('input', { type: 'text', id: 'create-owner', maxlength: '128', autocomplete: 'off', spellcheck: 'false' });
    const expiry = KG.expiryFieldset('create');
    const ips = ipField('create', []);
    const meta = metadataField('create', null);
    const limits = limitsFieldset('create-limits', { mode: 'tier' });
    const credits = creditsFieldset('create-credits', { mode: 'tier', allowTier: true });

    KG.createKeyDialog({
      tiers,
      tierLabel: 'Tier',
      noTier: 'No tier is configured',
      tierMissing: 'Tier: choose a tier.',
      nameHint: '1 to 128 characters.',
      tierHint(name) {
        const t = tiers.find((x) => x.name === name);
        limits.setTierText(t ? KG.describeLimits(t.rateLimits) : '');
        return tierHint(name);
      },
      fields: [
        scopes.el,
        KG.field({ label: 'Owner (optional)', control: owner, hint: 'Who the key is for: letters, digits and . _ @ : + -. Empty: your key’s owner, if it has one.' }),
        expiry.el,
        ips.el,
        meta.el,
        limits.el,
        credits.el,
      ],
      collect(problems, invalid) {
        const body = { scopes: scopes.value() };

        const o = owner.value.trim();
        const badOwner = o !== '' && !OWNER_RE.test(o);
        if (badOwner) problems.push('Owner: letters, digits and . _ @ : + - (up to 128), starting with a letter or digit.');
        invalid.push([owner, badOwner]);
        if (o) body.owner = o;

        const exp = KG.gather(problems, invalid, expiry.value());
        if (exp.iso) body.expiresAt = exp.iso;

        const ipList = ips.value();
        if (ipList.length) body.ipAllowlist = ipList;

        const md = KG.gather(problems, invalid, meta.value());
        if (!md.errors.length && md.value) body.metadata = md.value;

        const lv = KG.gather(problems, invalid, limits.value());
        if (lv.mode === 'none') body.rateLimits = [];
        if (lv.mode === 'custom') body.rateLimits = lv.list;

        const cv = KG.gather(problems, invalid, credits.value());
        if (cv.mode === 'unlimited') body.credits = null;
        if (cv.mode === 'limited') body.credits = { remaining: cv.remaining, refill: cv.refill };
        return body;
      },
      path: '/v1/api-keys',
      intro: (k) => h('p', null, 'Key “', h('a', { href: keyHref(k.id) }, KG.text(k.name)), '” (', h('code', null, KG.text(k.start), '…'), ') was created.'),
      onCreated,
    });
  }

  // ---------------------------------------------------------------- key detail

  function viewKey(ctx, id) {
    setTitle('Key');
    const keyPath = (kid) => `/v1/api-keys/${enc(kid)}`;
    KG.keyView({
      ctx,
      id,
      crumbs: crumbs([['Keys', '#/keys'], [id, null]]),
      badId: 'This is not a key id: key ids look like key_3f9a0c2e8b1d4e6f7a8b9c0d.',
      keyPath,
      rotate: openRotateDialog,
      failed(err, { h1, body, retry }) {
        h1.textContent = err.code === 'not_found' ? 'Key not found' : 'Key';
        KG.replace(body, KG.errorBox(err, { retry }));
      },
      draw(key, { actions, active, render }) {
        setTitle(`Key ${KG.plainText(key.name)}`);
        const summary = h('p', { class: 'key-summary' }, KG.statusBadge(key.status), ' ', KG.expiryBadge(key), ' ',
          h('code', null, KG.text(key.start), '…'), ' ', muted('·'), ' ', h('code', null, KG.text(key.id)));
        const notes = [];
        if (key.rotatedTo) {
          notes.push(KG.notice('info', h('p', null, 'This key was rotated. Its successor is ', keyLink(key.rotatedTo),
            active && key.expiresAt ? ['; this key keeps working until ', KG.time(key.expiresAt), ' (', KG.relativeTime(key.expiresAt), ').'] : '.')));
        }
        if (key.rotatedFrom) {
          notes.push(KG.notice('info', h('p', null, 'This key is the successor of ', keyLink(key.rotatedFrom), '.')));
        }
        return [
          h('div', { class: 'key-head' }, summary, actions),
          ...notes,
          panel('Details', detailsList(key)),
          panel('Usage', KG.usagePanel({ path: `${keyPath(key.id)}/usage`, what: 'This key', alive: ctx.alive }).element),
          active ? panel('Edit key', editForm(key, (k) => render(k, { focus: '[data-testid="save-key"]' }))) : panel('Edit key', h('p', { class: 'muted' }, `A ${key.status} key cannot change.`)),
          active && key.credits ? panel('Adjust credits', creditsForm(key, (k) => render(k, { focus: '#credits-value' }))) : null,
          panel('Audit trail', auditTable(ctx, { keyId: key.id, caption: 'Audit trail of this key' }).loadNow()),
        ];
      },
    });
  }

  function detailsList(key) {
    const row = KG.detailRow;
    const meta = KG.isPlainObject(key.metadata) ? h('pre', { class: 'json' }, KG.text(KG.json(key.metadata, 2), { multiline: true })) : muted('none');
    const limits = Array.isArray(key.rateLimits) && key.rateLimits.length
      ? h('ul', { class: 'plain-list' }, key.rateLimits.map((l) => h('li', null, h('code', null, KG.text(l.name)), `: ${KG.formatNumber(l.limit)} requests per ${KG.formatWindow(l.windowSeconds)}`)))
      : muted('no rate limit');
    let credits = muted('unlimited');
    if (key.credits) {
      credits = h('span', null, `${KG.formatNumber(key.credits.remaining)} remaining`,
        key.credits.refill ? `, ${KG.describeRefill(key.credits.refill)}` : ', no refill',
        key.credits.nextRefillAt ? [', next refill ', KG.time(key.credits.nextRefillAt)] : '');
    }
    return h('dl', { class: 'details' },
      row('ID', h('code', null, KG.text(key.id))),
      row('Display prefix', h('code', null, KG.text(key.start), '…')),
      row('Status', KG.statusBadge(key.status)),
      row('Tier', KG.text(key.tier)),
      row('Scopes', codeList(key.scopes, 'none')),
      row('Project', KG.text(key.project)),
      row('Owner', key.owner ? h('a', { href: ownerHref(key.owner) }, KG.text(key.owner)) : muted('none')),
      row('Created', KG.time(key.createdAt), ' by ', creatorCell(key.createdBy)),
      row('Updated', KG.time(key.updatedAt)),
      KG.keyLifeRows(key),
      row('IP allowlist', codeList(key.ipAllowlist, 'every address')),
      row('Metadata', meta),
      row('Rate limits', limits, key.rateLimitsFromTier ? muted(' (the tier’s)') : null),
      row('Credits', credits),
      key.rotatedFrom ? row('Rotated from', keyLink(key.rotatedFrom)) : null,
      key.rotatedTo ? row('Rotated to', keyLink(key.rotatedTo)) : null,
    );
  }

  function editForm(key, rerender) {
    const held = heldScopes();
    const lacking = (key.scopes || []).filter((s) => !held.has(s));
    const name = h('input', { type: 'text', id: 'edit-name', required: true, maxlength: '128', autocomplete: 'off', value: key.name });
    const scopes = scopesFieldset('edit', { selected: key.scopes || [], extra: key.scopes || [] });
    const ips = ipField('edit', key.ipAllowlist || []);
    const meta = metadataField('edit', key.metadata);
    const expiry = KG.expiryFieldset('edit', { current: key.expiresAt || null });
    const limitsMode = key.rateLimitsFromTier ? 'tier' : (key.rateLimits && key.rateLimits.length ? 'custom' : 'none');
    const limits = limitsFieldset('edit-limits', { mode: limitsMode, list: limitsMode === 'custom' ? key.rateLimits : [] });
    const t = state.config.tiers.find((x) => x.name === key.tier);
    limits.setTierText(t ? KG.describeLimits(t.rateLimits) : '');
    const credits = creditsFieldset('edit-credits', { mode: key.credits ? 'limited' : 'unlimited', credits: key.credits });
    const errs = KG.formErrors();
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'save-key' }, 'Save changes');
    const form = h('form', { class: 'form', novalidate: true, 'aria-busy': 'false' },
      lacking.length ? KG.notice('warn', h('p', null, `This key holds ${lacking.length === 1 ? 'a scope' : 'scopes'} your key does not (${lacking.join(', ')}): your key cannot change it, only revoke it.`)) : null,
      KG.field({ label: 'Name', control: name }),
      scopes.el, ips.el, meta.el, expiry.el, limits.el, credits.el,
      errs.el,
      h('div', { class: 'form-actions' }, submit));

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errs.clear();
      const problems = [];
      const invalid = [];
      const body = {};

      const nm = KG.checkKeyName(name, problems, invalid);
      if (nm !== key.name) body.name = nm;

      const sc = scopes.value();
      if (!sameSet(sc, key.scopes || [])) body.scopes = sc;

      const ipList = ips.value();
      if (!sameList(ipList, key.ipAllowlist || [])) body.ipAllowlist = ipList;

      const md = KG.gather(problems, invalid, meta.value());
      if (!md.errors.length && md.changed) body.metadata = md.value;

      const exp = KG.gather(problems, invalid, expiry.value());
      if (exp.mode === 'never' && key.expiresAt) body.expiresAt = null;
      else if (exp.mode !== 'keep' && exp.mode !== 'never' && exp.iso) body.expiresAt = exp.iso;

      const lv = KG.gather(problems, invalid, limits.value());
      const cur = key.rateLimitsFromTier ? null : (key.rateLimits || []);
      if (lv.mode === 'tier' && cur !== null) body.rateLimits = null;
      if (lv.mode === 'none' && (cur === null || cur.length)) body.rateLimits = [];
      if (lv.mode === 'custom' && (cur === null || KG.json(cur.map((l) => [l.name, l.limit, l.windowSeconds])) !== KG.json(lv.list.map((l) => [l.name, l.limit, l.windowSeconds])))) body.rateLimits = lv.list;

      const cv = KG.gather(problems, invalid, credits.value());
      if (cv.mode === 'unlimited' && key.credits) body.credits = null;
      if (cv.mode === 'limited' && !cv.errors.length) {
        if (!key.credits) {
          body.credits = { remaining: cv.remaining, refill: cv.refill };
        } else {
          // Send only what changed: remaining moves while the key is in use.
          const c = {};
          if (cv.remaining !== KG.num(key.credits.remaining)) c.remaining = cv.remaining;
          const old = key.credits.refill || null;
          const norm = (r) => (r ? KG.json([r.interval, KG.num(r.amount), r.interval === 'monthly' ? KG.num(r.refillDay || 1) : 0]) : 'null');
          if (norm(old) !== norm(cv.refill)) c.refill = cv.refill;
          if (Object.keys(c).length) body.credits = c;
        }
      }

      if (!errs.check(problems, invalid)) return;
      if (!Object.keys(body).length) {
        KG.replace(errs.el, KG.notice('info', h('p', { role: 'status' }, 'Nothing to save: no field changed.')));
        return;
      }
      await KG.submitting({ form, submit, busyText: 'Saving…', errs }, async () => {
        const res = await api.patch(`/v1/api-keys/${enc(key.id)}`, body);
        KG.toast(res.warnings.length ? `Changes saved. Warning: ${res.warnings.join(' ')}` : 'Changes saved.', { kind: res.warnings.length ? 'info' : 'ok' });
        if (form.isConnected) rerender(res.data || key);
      });
    });
    return form;
  }

  function creditsForm(key, rerender) {
    const op = h('select', { id: 'credits-op' },
      h('option', { value: 'increment' }, 'Add'),
      h('option', { value: 'decrement' }, 'Subtract'),
      h('option', { value: 'set' }, 'Set to'));
    const value = h('input', { type: 'number', id: 'credits-value', min: '0', step: '1', inputmode: 'numeric', required: true });
    const errs = KG.formErrors();
    const submit = h('button', { type: 'submit', class: 'btn', 'data-testid': 'adjust-credits' }, 'Apply');
    const form = h('form', { class: 'form form-inline', novalidate: true, 'aria-busy': 'false' },
      h('p', { class: 'hint' }, `Now ${KG.formatNumber(key.credits.remaining)} remaining. The change is atomic, even while the key is in use.`),
      h('div', { class: 'field-row' },
        KG.field({ label: 'Operation', control: op }),
        KG.field({ label: 'Credits', control: value }),
        h('div', { class: 'field field-button' }, submit)),
      errs.el);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errs.clear();
      const n = parseIntField(value.value);
      KG.markInvalid([[value, n === null]]);
      if (n === null) {
        errs.show(['Credits: a whole number, 0 or more.']);
        value.focus();
        return;
      }
      await KG.submitting({ form, submit, busyText: 'Applying…', errs }, async () => {
        const res = await api.post(`/v1/api-keys/${enc(key.id)}/credits`, { op: op.value, value: n });
        const k = res.data || key;
        KG.toast(k.credits ? `Credits now ${KG.formatNumber(k.credits.remaining)}.` : 'Credits changed.', { kind: 'ok' });
        if (form.isConnected) rerender(k);
      });
    });
    return form;
  }

  function openRotateDialog(key, done) {
    const name = 'rotate-grace';
    const choices = [
      KG.radioChoice(name, 'rotate-grace-0', '0', 'None: refuse the current key at once'),
      KG.radioChoice(name, 'rotate-grace-3600', '3600', '1 hour'),
      KG.radioChoice(name, 'rotate-grace-86400', '86400', '24 hours', true),
      KG.radioChoice(name, 'rotate-grace-604800', '604800', '7 days'),
      KG.radioChoice(name, 'rotate-grace-custom', 'custom', 'Custom'),
    ];
    const seconds = h('input', { type: 'number', id: 'rotate-grace-seconds', min: '0', max: '604800', step: '1', inputmode: 'numeric' });
    seconds.addEventListener('input', () => {
      if (seconds.value !== '') choices[4].input.checked = true;
    });
    KG.rotateDialog({
      key,
      path: `/v1/api-keys/${enc(key.id)}/rotate`,
      about: 'issues a successor key with the same settings and budget. The current key keeps working for the grace period, then expires.',
      legend: 'Grace period of the current key',
      choices,
      extra: KG.field({ label: 'Custom grace period, in seconds (0 to 604,800)', control: seconds, className: 'field-inline' }),
      grace(errs) {
        const choice = choices.find((c) => c.input.checked).input.value;
        if (choice !== 'custom') return Number(choice);
        const n = parseIntField(seconds.value);
        const bad = n === null || n > 604800;
        return errs.check(bad ? ['Custom grace period: whole seconds, 0 to 604,800 (7 days).'] : [], [[seconds, bad]]) ? n : null;
      },
      intro: (k, grace, until) => [
        h('p', null, 'Successor key “', KG.text(k.name), '” created: ', keyLink(k.id), '.'),
        h('p', null, 'The old key ', keyLink(key.id), grace === 0 ? ' is refused from now on.' : [' keeps working for ', KG.formatDuration(grace), ', until ', KG.time(until), '.']),
      ],
      onClosed: done,
    });
  }

  // ---------------------------------------------------------------- audit

  function actorCell(ev) {
    const actor = ev.actor ? (KEY_ID_RE.test(ev.actor) ? keyLink(ev.actor) : KG.text(ev.actor)) : muted('—');
    let session = ev.session;
    if (session && typeof session === 'object') session = session.id;
    return session ? [actor, h('br'), h('span', { class: 'muted small' }, 'session ', KG.text(session))] : actor;
  }

  function targetCell(target) {
    const t = String(target || '');
    if (!t) return muted('—');
    if (KEY_ID_RE.test(t)) return keyLink(t);
    if (t.startsWith('owner:')) {
      const o = t.slice(6);
      return ['owner ', OWNER_RE.test(o) ? h('a', { href: ownerHref(o) }, KG.text(o)) : KG.text(o)];
    }
    return h('code', null, KG.text(t));
  }

  function changesCell(changes) {
    if (!KG.isPlainObject(changes) || !Object.keys(changes).length) return muted('—');
    return h('ul', { class: 'changes' }, Object.entries(changes).map(([field, c]) => {
      const ch = KG.isPlainObject(c) ? c : { from: undefined, to: c };
      return h('li', null, h('span', { class: 'change-field' }, KG.text(field)), ': ', formatValue(ch.from), ' → ', formatValue(ch.to));
    }));
  }

  /** The audit table (data-testid audit-table); loadNow() loads it and returns its element. */
  function auditTable(ctx, { keyId = '', action = '', caption = 'Audit events' }) {
    const t = KG.pagedTable({
      caption,
      tableAttrs: { 'data-testid': 'audit-table', class: 'table audit-table' },
      rowAttrs: (ev) => ({ 'data-testid': 'audit-row', 'data-event-id': ev.id, 'data-action': ev.action }),
      emptyText: 'No audit events match.',
      columns: [
        { header: 'Time', rowHeader: true, render: (ev) => KG.time(ev.time) },
        { header: 'Actor', render: actorCell },
        { header: 'Action', render: (ev) => h('code', null, KG.text(ev.action)) },
        { header: 'Target', render: (ev) => targetCell(ev.target) },
        { header: 'Changes', className: 'col-changes', render: (ev) => changesCell(ev.changes) },
        { header: 'Source IP', render: (ev) => (ev.sourceIp ? h('code', null, KG.text(ev.sourceIp)) : muted('—')) },
      ],
      load: async (cursor) => {
        const res = await api.get('/v1/audit', { keyId, action, limit: 25, cursor });
        return { items: Array.isArray(res.data) ? res.data : [], nextCursor: res.nextCursor };
      },
    });
    t.loadNow = () => {
      t.reload();
      return t.element;
    };
    return t;
  }

  function viewAudit(ctx) {
    setTitle('Audit log');
    const head = pageHead('Audit log');
    const f = state.auditFilters;
    const keyId = h('input', { type: 'text', id: 'audit-key', value: f.keyId, autocomplete: 'off', spellcheck: 'false', placeholder: 'key_…' });
    const action = h('select', { id: 'audit-action', value: f.action },
      h('option', { value: '' }, 'Any'), AUDIT_ACTIONS.map((a) => h('option', { value: a }, a)));
    const errs = KG.formErrors();
    const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter audit events', novalidate: true },
      KG.field({ label: 'Key id', control: keyId }),
      KG.field({ label: 'Action', control: action }),
      h('div', { class: 'filter-actions' },
        h('button', { type: 'submit', class: 'btn' }, 'Apply filters'),
        h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => { keyId.value = ''; action.value = ''; apply(); } }, 'Clear filters')),
      errs.el);
    const holder = h('div');
    KG.append(ctx.view, head.el, h('p', { class: 'muted' }, 'Every change to the project’s keys, newest first.'), form, holder);
    ctx.focusHeading(head.h1);

    function apply() {
      errs.clear();
      const k = keyId.value.trim();
      const bad = k !== '' && !KEY_ID_RE.test(k);
      if (!errs.check(bad ? ['Key id: key ids look like key_3f9a0c2e8b1d4e6f7a8b9c0d.'] : [], [[keyId, bad]], { focus: false })) return;
      state.auditFilters = { keyId: k, action: action.value };
      KG.replace(holder, auditTable(ctx, { ...state.auditFilters, caption: 'Audit events' }).loadNow());
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      apply();
    });
    action.addEventListener('change', apply);
    apply();
  }

  // ---------------------------------------------------------------- owners

  function viewOwners(ctx) {
    setTitle('Owners');
    const head = pageHead('Owners');
    const input = h('input', { type: 'text', id: 'owner-open', required: true, autocomplete: 'off', spellcheck: 'false' });
    const errs = KG.formErrors();
    const form = h('form', { class: 'filters', novalidate: true, 'aria-label': 'Open an owner' },
      KG.field({ label: 'Owner', control: input, hint: 'The owner id keys were created with, e.g. user_123.' }),
      h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Open owner')),
      errs.el);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      errs.clear();
      const o = input.value.trim();
      const bad = !OWNER_RE.test(o);
      KG.markInvalid([[input, bad]]);
      if (bad) {
        errs.show([o ? 'Owner: letters, digits and . _ @ : + - (up to 128), starting with a letter or digit.' : 'Owner: enter an owner id.']);
        input.focus();
        return;
      }
      location.hash = ownerHref(o);
    });

    const refused = (g) => ['rateLimited', 'usageExceeded', 'insufficientScope', 'ipNotAllowed', 'revoked', 'expired', 'notFound'].reduce((s, k) => s + KG.num(g[k]), 0);
    const table = KG.pagedTable({
      caption: 'Owners, most requests first',
      emptyText: 'No owner’s keys made a request in the last 30 days.',
      tableAttrs: { 'data-testid': 'owners-table' },
      rowAttrs: (g) => ({ 'data-testid': 'owner-row', 'data-owner': g.owner || '' }),
      columns: [
        { header: 'Owner', rowHeader: true, render: (g) => (g.owner ? h('a', { href: ownerHref(g.owner) }, KG.text(g.owner)) : muted('no owner, or an unknown key')) },
        { header: 'Requests', className: 'num', render: (g) => KG.formatNumber(g.requests) },
        { header: 'Allowed', className: 'num', render: (g) => KG.formatNumber(g.allowed) },
        { header: 'Refused', className: 'num', render: (g) => KG.formatNumber(refused(g)) },
        { header: 'Credits spent', className: 'num', render: (g) => KG.formatNumber(g.credits) },
      ],
      load: async (cursor) => {
        const res = await api.get('/v1/usage', { groupBy: 'owner', granularity: 'day', limit: 25, cursor });
        return { items: Array.isArray(res.data) ? res.data : [], nextCursor: res.nextCursor };
      },
    });

    KG.append(ctx.view, head.el, form,
      panel('Owners by requests, last 30 days',
        h('p', { class: 'muted' }, 'Owners whose keys made no request in the last 30 days are not listed: open them by name above.'),
        table.element));
    ctx.focusHeading(head.h1);
    table.reload();
  }

  function viewOwner(ctx, owner) {
    setTitle(`Owner ${owner}`);
    const head = pageHead(['Owner “', KG.text(owner), '”']);
    KG.append(ctx.view, crumbs([['Owners', '#/owners'], [owner, null]]), head.el);
    ctx.focusHeading(head.h1);
    if (!OWNER_RE.test(owner)) {
      KG.append(ctx.view, KG.notice('error', h('p', null, 'This is not a valid owner id: owner ids are letters, digits and . _ @ : + - (up to 128), starting with a letter or digit.')));
      return;
    }
    const path = `/v1/owners/${enc(owner)}`;
    const keys = keysTable(ctx, { caption: `Keys of owner ${owner}`, query: () => ({ owner }), showOwner: false, emptyText: 'This owner has no keys.' });
    const usage = KG.usagePanel({ path: `${path}/usage`, what: 'All the owner’s keys', alive: ctx.alive });

    const limitsBox = h('div', { 'aria-busy': 'true' }, KG.loading('Loading the shared limits…'));
    async function loadLimits() {
      KG.setBusy(limitsBox, true);
      KG.replace(limitsBox, KG.loading('Loading the shared limits…'));
      try {
        const res = await api.get(`${path}/limits`);
        if (!ctx.alive()) return;
        const l = res.data || {};
        const none = (!l.rateLimits || !l.rateLimits.length) && !l.credits;
        KG.replace(limitsBox, none
          ? h('p', null, 'None: each key has only its own limits.')
          : h('dl', { class: 'details' },
            h('dt', null, 'Rate limits'), h('dd', null, KG.describeLimits(l.rateLimits)),
            h('dt', null, 'Credits'), h('dd', null, KG.describeCredits(l.credits)),
            l.updatedAt ? [h('dt', null, 'Updated'), h('dd', null, KG.time(l.updatedAt))] : null));
      } catch (err) {
        if (!ctx.alive() || err.sessionEnded) return;
        KG.replace(limitsBox, KG.errorBox(err, { retry: loadLimits }));
      } finally {
        if (ctx.alive()) KG.setBusy(limitsBox, false);
      }
    }

    const include = h('input', { type: 'checkbox', id: 'offboard-include', checked: true });
    const offboardBtn = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'offboard' }, 'Offboard owner');
    const result = h('div', { class: 'offboard-result' });
    offboardBtn.addEventListener('click', async () => {
      KG.replace(result);
      const q = { includeCreated: include.checked ? 'true' : 'false' };
      offboardBtn.disabled = true;
      offboardBtn.textContent = 'Counting keys…';
      KG.setBusy(result, true);
      let n;
      try {
        const res = await api.post(`${path}/revoke`, undefined, { query: { ...q, dryRun: 'true' } });
        n = KG.num(res.data && res.data.wouldRevoke);
      } catch (err) {
        resetBtn();
        if (!err.sessionEnded) KG.replace(result, KG.errorBox(err));
        return;
      }
      resetBtn();
      if (!ctx.alive()) return;
      if (n === 0) {
        KG.replace(result, KG.notice('info', h('p', { role: 'status' }, `There is no active key to revoke for owner “${owner}”.`)));
        return;
      }
      const ok = await KG.confirm({
        title: 'Offboard owner',
        message: [`This will revoke ${KG.plural(n, 'key')} `, include.checked ? '(the owner’s and the keys they created) ' : '', 'of owner “', KG.text(owner), '”. Requests with them will be refused at once.'],
        okLabel: `Revoke ${KG.plural(n, 'key')}`,
        danger: true,
      });
      if (!ok) return;
      offboardBtn.disabled = true;
      offboardBtn.textContent = 'Revoking…';
      KG.setBusy(result, true);
      try {
        const res = await api.post(`${path}/revoke`, undefined, { query: q });
        const done = KG.num(res.data && res.data.revoked);
        const text = `Revoked ${KG.plural(done, 'key')}`;
        KG.toast(`${text}.`, { kind: 'ok' });
        if (!ctx.alive()) return;
        KG.replace(result, KG.notice('ok', h('p', null, `${text}.`)));
        keys.reset();
        usage.load();
      } catch (err) {
        if (!err.sessionEnded && ctx.alive()) KG.replace(result, KG.errorBox(err));
      } finally {
        resetBtn();
      }
    });
    function resetBtn() {
      offboardBtn.disabled = false;
      offboardBtn.textContent = 'Offboard owner';
      KG.setBusy(result, false);
    }

    KG.append(ctx.view, 
      panel('Keys', keys.element),
      panel('Usage', usage.element),
      panel('Shared limits', h('p', { class: 'muted' }, 'Limits all of this owner’s keys share, on top of their own.'), limitsBox),
      panel('Offboard',
        h('p', null, 'Revoke every active key of this owner, for example when someone leaves. Requests with them are refused at once. You will see how many keys first.'),
        h('div', { class: 'choice' }, include, h('label', { for: 'offboard-include' }, 'Also revoke keys this owner’s keys created')),
        h('div', { class: 'form-actions' }, offboardBtn),
        result));
    keys.reload();
    loadLimits();
  }

  // ---------------------------------------------------------------- start

  KG.startApp({
    app: 'console',
    onUnauthorized: sessionEnded,
    onHashChange: () => route({ navigated: true }),
    start(el) {
      els = el;
      renderHeader();
      checkSession();
    },
  });
})();
