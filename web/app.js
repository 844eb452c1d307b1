// Podium leaderboard page. No build step: the API calls and the live socket go
// through the TypeScript client (clients/ts), loaded as the prebuilt ESM file
// web/podium-client.js (scripts/test.sh checks it equals a fresh build).
// Security rule: every piece of data from the API (member ids, meta, board
// titles) reaches the DOM only through textContent / createTextNode.
import { Podium } from './podium-client.js';

(() => {
  const WINDOW_LABELS = { all: 'All time', day: 'Today', week: 'This week', month: 'This month' };
  const DEFAULT_LIMIT = 20;
  const BACKOFF = { baseMs: 500, capMs: 15000 };
  // The last board this browser opened, to open it again when the URL names none.
  const LAST_BOARD_KEY = 'podium.lastBoard';
  // Same origin: reads are public, so the page holds no key.
  const podium = new Podium({ baseUrl: location.origin });

  const $ = (id) => document.getElementById(id);
  const els = {
    select: $('board-select'),
    status: $('live-status'),
    statusText: $('live-status-text'),
    boardName: $('board-name'),
    boardTitle: $('board-title'),
    total: $('stat-total'),
    period: $('stat-period'),
    tabs: $('window-tabs'),
    body: $('board-body'),
    message: $('board-message'),
    table: $('board-table'),
    caption: $('table-caption'),
    rows: $('board-rows'),
    subHead: $('sub-head'),
    seasonPicker: $('season-picker'),
    seasonSelect: $('season-select'),
    announcer: $('live-announcer'),
    searchForm: $('search-form'),
    searchInput: $('search-input'),
    searchResult: $('search-result'),
  };

  // ---------- formatting ----------
  const locale = undefined; // the user's
  const fmtInt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const fmtNum = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  const fmtCompact = new Intl.NumberFormat(locale, { notation: 'compact', maximumFractionDigits: 1 });
  const fmtPct = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });

  /** Full precision up to a million, compact (1.2M) beyond. */
  function formatScore(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
    return Math.abs(n) >= 1e6 ? fmtCompact.format(n) : fmtNum.format(n);
  }
  function formatCount(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
    return Math.abs(n) >= 1e6 ? fmtCompact.format(n) : fmtInt.format(n);
  }

  const MONTHS = new Intl.DateTimeFormat(locale, { month: 'long', year: 'numeric', timeZone: 'UTC' });
  const DAYS = new Intl.DateTimeFormat(locale, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
  const SHORT = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', timeZone: 'UTC' });

  /**
   * Human text for the live table's period key ("all", "2026-11-22",
   * "2026-W47", "2026-11"): always the current one, in the board's own time
   * zone (API 1.1 `tz`; keys are local dates), e.g. "Today (Asia/Shanghai) ·
   * Mon, Nov 30, 2026". The dates are formatted as calendar dates (in UTC),
   * so no browser zone shifts them.
   */
  function formatPeriod(window, period, tz) {
    let s;
    if (window === 'all' && (s = /^s(\d+)$/.exec(period || ''))) return `Season ${+s[1]}`;
    if (!period || period === 'all' || window === 'all') return 'All time';
    const zone = tz || 'UTC';
    const inZone = zone === 'UTC' ? '' : ` (${zone})`;
    let m;
    if ((m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(period))) {
      return `Today (${zone}) · ${DAYS.format(Date.UTC(+m[1], +m[2] - 1, +m[3]))}`;
    }
    if ((m = /^(\d{4})-W(\d{2})$/.exec(period))) {
      // ISO week: the week with Jan 4th is week 1; weeks start on Monday.
      const jan4 = Date.UTC(+m[1], 0, 4);
      const dow = (new Date(jan4).getUTCDay() + 6) % 7;
      const monday = jan4 - dow * 864e5 + (+m[2] - 1) * 7 * 864e5;
      return `Week ${+m[2]}${inZone} · ${SHORT.format(monday)} – ${SHORT.format(monday + 6 * 864e5)}`;
    }
    if ((m = /^(\d{4})-(\d{2})$/.exec(period))) {
      return MONTHS.format(Date.UTC(+m[1], +m[2] - 1, 1)) + inZone;
    }
    return period;
  }

  // ---------- tiny DOM helpers (text only) ----------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function displayName(entry) {
    const name = entry && entry.meta && typeof entry.meta.name === 'string' ? entry.meta.name.trim() : '';
    return name || null;
  }

  // ---------- state ----------
  const state = {
    boards: [],
    board: null, // the board object from /v1/boards
    window: 'all',
    limit: DEFAULT_LIMIT,
    live: null, // the client's LiveConnection, while the table is live
    wsGen: 0,
    prevRanks: null, // Map member -> {rank, score} from the last render
    period: null, // the period the table shows
    season: null, // a past season shown (its number), or null: the live current one
    lastAnnounce: 0,
  };

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const limit = parseInt(q.get('limit') || '', 10);
    const season = parseInt(q.get('season') || '', 10);
    return {
      board: q.get('board') || '',
      window: q.get('window') || '',
      season: Number.isInteger(season) && season >= 1 ? season : null,
      limit: Number.isFinite(limit) && limit >= 1 && limit <= 100 ? limit : DEFAULT_LIMIT,
    };
  }
  function writeUrl(push) {
    const q = new URLSearchParams(location.search);
    if (state.board) q.set('board', state.board.name); else q.delete('board');
    q.set('window', state.window);
    if (state.season) q.set('season', String(state.season)); else q.delete('season');
    const url = `${location.pathname}?${q.toString()}`;
    if (url === location.pathname + location.search) return;
    if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  }

  // ---------- API ----------
  /** A typed client call as {ok, status, body}; a network failure is status 0. */
  async function api(call) {
    try {
      const { data, error, response } = await call;
      return { ok: response.ok, status: response.status, body: response.ok ? data : error };
    } catch {
      return { ok: false, status: 0, body: null };
    }
  }
  const enc = encodeURIComponent;

  // ---------- live status ----------
  const STATUS_TEXT = { idle: 'Idle', connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline' };
  function setStatus(s, detail) {
    els.status.dataset.state = s;
    els.statusText.textContent = detail || STATUS_TEXT[s] || s;
    els.status.title = `Live connection: ${detail || STATUS_TEXT[s] || s}`;
  }

  // ---------- board chrome ----------
  function renderPicker(selected) {
    clear(els.select);
    if (!state.boards.length) {
      els.select.appendChild(el('option', null, 'No boards yet'));
      els.select.disabled = true;
      return;
    }
    for (const b of state.boards) {
      const opt = el('option', null, b.title ? `${b.title}` : b.name);
      opt.value = b.name;
      if (b.name === selected) opt.selected = true;
      els.select.appendChild(opt);
    }
    if (selected && !state.boards.some((b) => b.name === selected)) {
      const opt = el('option', null, `${selected} (not found)`);
      opt.value = selected;
      opt.selected = true;
      opt.disabled = true;
      els.select.insertBefore(opt, els.select.firstChild);
    }
    els.select.disabled = false;
  }

  function renderTabs() {
    const hadFocus = els.tabs.contains(document.activeElement);
    clear(els.tabs);
    const windows = state.board ? state.board.windows || ['all'] : [];
    els.tabs.hidden = windows.length === 0;
    for (const w of windows) {
      const b = el('button', 'tab', WINDOW_LABELS[w] || w);
      b.type = 'button';
      b.id = `tab-${w}`;
      b.setAttribute('role', 'tab');
      b.dataset.window = w;
      const on = w === state.window;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
      b.setAttribute('aria-controls', 'board-body');
      b.addEventListener('click', () => selectWindow(w, true));
      els.tabs.appendChild(b);
      if (on && hadFocus) b.focus();
    }
  }

  // ---------- seasons (API 1.1) ----------
  /** The board's current season (1 until the first POST …/seasons). */
  function currentSeason() {
    return state.board && Number.isInteger(state.board.season) ? state.board.season : 1;
  }

  /** The season picker: only on the all window of a board that has past seasons. */
  function renderSeasons() {
    const current = currentSeason();
    const show = state.window === 'all' && current > 1;
    els.seasonPicker.hidden = !show;
    if (!show) { state.season = null; return; }
    if (state.season && state.season >= current) state.season = null;
    clear(els.seasonSelect);
    for (let n = current; n >= 1; n--) {
      const opt = el('option', null, n === current ? `Season ${n} (live)` : `Season ${n}`);
      opt.value = String(n);
      opt.selected = n === (state.season || current);
      els.seasonSelect.appendChild(opt);
    }
  }

  /** A past season: read once (it is archived), no live socket. */
  async function showPastSeason(n) {
    disconnect();
    state.prevRanks = null;
    state.period = `s${n}`;
    setStatus('offline', 'Archived season');
    const gen = ++state.wsGen;
    const r = await api(podium.api.GET('/v1/boards/{board}/top', {
      params: { path: { board: state.board.name }, query: { limit: state.limit, window: 'all', period: `s${n}` } },
    }));
    if (gen !== state.wsGen) return;
    if (!r.ok || !r.body) {
      showMessage('missing', `Season ${n} cannot be read`, `The API answered ${r.status}.`);
      return;
    }
    renderEntries({ ...r.body, window: 'all', period: `s${n}` }, true);
  }

  /** Shows the season chosen (state.season), live when it is the current one. */
  function showSeason() {
    if (state.season) showPastSeason(state.season);
    else connect();
  }

  els.seasonSelect.addEventListener('change', () => {
    const n = parseInt(els.seasonSelect.value, 10);
    state.season = n < currentSeason() ? n : null;
    writeUrl(true);
    clearSearch(true);
    showSeason();
  });

  // Arrow keys move between tabs (WAI-ARIA tabs pattern, automatic activation).
  els.tabs.addEventListener('keydown', (e) => {
    const tabs = [...els.tabs.querySelectorAll('[role=tab]')];
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = tabs.length - 1;
    if (j === null) return;
    e.preventDefault();
    tabs[j].focus();
    selectWindow(tabs[j].dataset.window, true);
  });

  // Small line icons built with the DOM (no emoji font needed, no innerHTML).
  const ICONS = {
    empty: ['M6 21V4', 'M6 4h11l-2 4 2 4H6'], // a flag: the race has not started
    missing: ['M11 4a7 7 0 1 0 0 14a7 7 0 1 0 0-14', 'M16 16l5 5', 'M8.5 8.5l5 5', 'M13.5 8.5l-5 5'],
    error: ['M12 3l10 18H2z', 'M12 10v5', 'M12 18v.01'],
  };
  function icon(kind) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'message-icon');
    svg.setAttribute('aria-hidden', 'true');
    for (const d of ICONS[kind] || ICONS.missing) {
      const path = document.createElementNS(NS, 'path');
      path.setAttribute('d', d);
      svg.appendChild(path);
    }
    return svg;
  }

  function showMessage(kind, title, detail, action) {
    els.table.hidden = true;
    els.message.hidden = false;
    els.message.dataset.kind = kind;
    clear(els.message);
    els.message.appendChild(icon(kind));
    els.message.appendChild(el('p', 'message-title', title));
    if (detail) els.message.appendChild(el('p', 'message-detail', detail));
    if (action) els.message.appendChild(action);
  }
  function hideMessage() {
    els.message.hidden = true;
    els.table.hidden = false;
  }

  // ---------- live table ----------
  function tieSet(entries) {
    // Ranks that appear more than once are shared ("=2").
    const counts = new Map();
    for (const e of entries) counts.set(e.rank, (counts.get(e.rank) || 0) + 1);
    return (rank) => counts.get(rank) > 1;
  }

  function rankCell(entry, shared, checkpointed) {
    const td = el('td', 'col-rank');
    const badge = el('span', 'rank' + (entry.rank <= 3 ? ` rank-${entry.rank}` : ''));
    badge.textContent = (shared ? '=' : '') + fmtInt.format(entry.rank);
    if (shared) {
      badge.title = `Tied for rank ${fmtInt.format(entry.rank)}`;
      badge.classList.add('rank-tied');
    }
    td.appendChild(badge);
    const since = sinceCheckpoint(entry, checkpointed);
    if (since) td.appendChild(since);
    return td;
  }

  // Movement since the board's last hourly checkpoint (API 1.1 prev_rank):
  // ↑3 / ↓2 / new. "new" only once the board has a checkpoint with members
  // (else everyone would be new).
  function sinceCheckpoint(entry, checkpointed) {
    if (typeof entry.prev_rank !== 'number') {
      if (!checkpointed) return null;
      const s = el('span', 'since since-new', 'new');
      s.title = 'Not on the board at the last hourly checkpoint';
      return s;
    }
    const d = entry.prev_rank - entry.rank;
    if (d === 0) return null;
    const s = el('span', `since ${d > 0 ? 'since-up' : 'since-down'}`, `${d > 0 ? '↑' : '↓'}${fmtInt.format(Math.abs(d))}`);
    s.title = `${d > 0 ? 'Up' : 'Down'} from ${fmtInt.format(entry.prev_rank)} since the last hourly checkpoint`;
    return s;
  }

  function memberCell(entry, extra) {
    const td = el('td', 'col-member');
    const wrap = el('div', 'member');
    const name = displayName(entry);
    const primary = el('span', 'member-name', name || entry.member);
    wrap.appendChild(primary);
    if (name) wrap.appendChild(el('span', 'member-id', entry.member));
    if (extra) wrap.appendChild(extra);
    td.appendChild(wrap);
    return td;
  }

  function scoreCell(entry) {
    const td = el('td', 'col-score');
    const s = el('span', 'score', formatScore(entry.score));
    if (Math.abs(entry.score) >= 1e6) s.title = fmtNum.format(entry.score);
    td.appendChild(s);
    return td;
  }

  /** The board's tie-break (API 1.1), when it has one: `asc` or `desc`. */
  function tiebreakOf(board) {
    return board && (board.tiebreak === 'asc' || board.tiebreak === 'desc') ? board.tiebreak : null;
  }

  function subCell(entry) {
    const td = el('td', 'col-sub');
    if (typeof entry.subscore === 'number') td.textContent = formatScore(entry.subscore);
    return td;
  }

  function renderEntries(msg, isSnapshot) {
    const entries = Array.isArray(msg.entries) ? msg.entries : [];
    const tb = tiebreakOf(state.board);
    els.subHead.hidden = !tb;
    els.subHead.title = tb === 'asc' ? 'Equal scores: the lower value ranks first' : 'Equal scores: the higher value ranks first';
    els.total.textContent = formatCount(msg.total);
    els.total.title = typeof msg.total === 'number' ? `${fmtInt.format(msg.total)} members` : '';
    els.period.textContent = formatPeriod(msg.window, msg.period, state.board && state.board.tz);
    els.period.title = msg.period || '';

    if (entries.length === 0) {
      state.prevRanks = new Map();
      clear(els.rows);
      showMessage('empty', 'No scores yet', `Nobody is on this board ${msg.window === 'all' ? '' : `for ${(WINDOW_LABELS[msg.window] || msg.window).toLowerCase()} `}yet. New scores appear here live.`);
      return;
    }
    hideMessage();
    els.caption.textContent = `Top ${entries.length} of ${fmtInt.format(msg.total || entries.length)} members`;

    const prev = state.prevRanks;
    const shared = tieSet(entries);
    const checkpointed = entries.some((e) => typeof e.prev_rank === 'number');
    const next = new Map();
    const frag = document.createDocumentFragment();
    const moves = [];
    for (const entry of entries) {
      next.set(entry.member, { rank: entry.rank, score: entry.score });
      const tr = el('tr', 'row');
      tr.dataset.member = entry.member; // attribute value, never parsed as HTML
      let cue = null;
      if (prev) {
        const before = prev.get(entry.member);
        if (!before) {
          tr.classList.add('moved', 'is-new');
          cue = el('span', 'cue cue-new', 'new');
          cue.title = 'New in the top';
          moves.push(`${displayName(entry) || entry.member} entered at ${entry.rank}`);
        } else if (entry.rank < before.rank) {
          tr.classList.add('moved', 'is-up');
          cue = el('span', 'cue cue-up', `▲ ${before.rank - entry.rank}`);
          cue.title = `Up from ${before.rank}`;
          if (entry.rank <= 3) moves.push(`${displayName(entry) || entry.member} up to ${entry.rank}`);
        } else if (entry.rank > before.rank) {
          tr.classList.add('moved', 'is-down');
          cue = el('span', 'cue cue-down', `▼ ${entry.rank - before.rank}`);
          cue.title = `Down from ${before.rank}`;
        } else if (entry.score !== before.score) {
          tr.classList.add('moved', 'is-changed');
        }
      }
      tr.appendChild(rankCell(entry, shared(entry.rank), checkpointed));
      tr.appendChild(memberCell(entry, cue));
      tr.appendChild(scoreCell(entry));
      if (tb) tr.appendChild(subCell(entry));
      frag.appendChild(tr);
    }
    clear(els.rows);
    els.rows.appendChild(frag);
    state.prevRanks = next;

    // Announce sparingly: only top-3 changes / new entrants, at most every 10 s.
    const now = Date.now();
    if (moves.length && now - state.lastAnnounce > 10000) {
      state.lastAnnounce = now;
      els.announcer.textContent = moves.slice(0, 2).join('. ');
    }
  }

  // ---------- live socket (the client reconnects with backoff) ----------
  function disconnect() {
    state.wsGen++;
    if (state.live) {
      state.live.close();
      state.live = null;
    }
  }

  function connect() {
    disconnect();
    if (!state.board) return;
    const gen = state.wsGen;
    state.live = podium.live(state.board.name, {
      limit: state.limit,
      window: state.window,
      backoff: BACKOFF,
      canConnect: () => navigator.onLine,
      onStatus: (st) => {
        if (gen !== state.wsGen) return;
        if (st.state === 'connecting') setStatus(st.attempt ? 'reconnecting' : 'connecting');
        else if (st.state === 'live') setStatus('live');
        else if (st.state === 'reconnecting') setStatus('reconnecting', `Reconnecting in ${Math.max(1, Math.round(st.delayMs / 1000))}s…`);
        else if (st.reason === 'board_removed') {
          // The board was deleted while we watched.
          setStatus('offline', 'Board removed');
          showMessage('missing', 'This board was removed', 'Pick another board above.');
        }
      },
      onMessage: (msg) => {
        if (gen !== state.wsGen) return;
        if (msg.period !== state.period) {
          // A new period (rollover) starts a fresh table: no movement cues against the old one.
          state.period = msg.period;
          state.prevRanks = null;
        }
        renderEntries(msg, msg.type === 'snapshot');
      },
    });
  }

  window.addEventListener('online', () => {
    if (state.live) state.live.reconnectNow();
  });

  // ---------- navigation ----------
  async function loadBoards() {
    const r = await api(podium.api.GET('/v1/boards', { params: { query: { limit: 1000 } } }));
    if (!r.ok || !r.body || !Array.isArray(r.body.boards)) throw new Error(`GET /v1/boards → ${r.status}`);
    // The picker lists the busiest first: most events in the board's default
    // window's current period (the API's `events`), then most members.
    state.boards = r.body.boards.slice().sort((a, b) => (b.events || 0) - (a.events || 0)
      || (b.members || 0) - (a.members || 0) || a.name.localeCompare(b.name));
  }

  /**
   * The board to open when the URL names none. The API says nothing about
   * "recently active", so: the board this browser opened last (localStorage),
   * when it still exists; else the busiest (the first in the picker's order:
   * most events in its current period, then most members). A board left by
   * a test run has few events today, so it does not win over a live one.
   */
  function defaultBoard() {
    let last = null;
    try { last = localStorage.getItem(LAST_BOARD_KEY); } catch { /* storage blocked */ }
    const known = last && state.boards.find((b) => b.name === last);
    return known ? known.name : state.boards[0].name;
  }
  function rememberBoard(name) {
    try { localStorage.setItem(LAST_BOARD_KEY, name); } catch { /* storage blocked or full */ }
  }

  function boardHeading(board) {
    els.boardTitle.textContent = board.title || board.name;
    els.boardName.textContent = board.title && board.title !== board.name ? board.name : 'Leaderboard';
    document.title = `${board.title || board.name} — Podium`;
  }

  async function selectBoard(name, push) {
    disconnect();
    state.prevRanks = null;
    state.period = null;
    clear(els.rows);
    els.total.textContent = '—';
    els.period.textContent = '—';
    clearSearch();

    let board = state.boards.find((b) => b.name === name) || null;
    if (!board && name) {
      // Not in the list we have: ask directly (it may be brand new).
      const r = await api(podium.api.GET('/v1/boards/{board}', { params: { path: { board: name } } }));
      if (r.ok && r.body) board = r.body;
    }
    renderPicker(name);
    if (!board) {
      state.board = null;
      renderTabs();
      setStatus('offline', 'Not connected');
      els.boardTitle.textContent = 'Board not found';
      els.boardName.textContent = 'Leaderboard';
      document.title = 'Board not found — Podium';
      const action = state.boards.length ? (() => {
        const a = el('a', 'btn btn-ghost', `Go to ${state.boards[0].title || state.boards[0].name}`);
        a.href = `?board=${enc(state.boards[0].name)}`;
        return a;
      })() : null;
      showMessage('missing', `There is no board called “${name}”`, state.boards.length ? 'It may have been removed, or the link has a typo. Pick a board above.' : 'No boards exist yet. Send an event to create one.', action);
      return;
    }
    state.board = board;
    rememberBoard(board.name);
    boardHeading(board);
    const windows = board.windows && board.windows.length ? board.windows : ['all'];
    if (!windows.includes(state.window)) state.window = windows[0];
    renderTabs();
    renderSeasons();
    writeUrl(push);
    showMessage('loading', 'Loading…');
    els.message.dataset.kind = 'loading';
    showSeason();
  }

  function selectWindow(w, push) {
    if (!state.board || w === state.window) return;
    state.window = w;
    state.prevRanks = null;
    state.period = null;
    state.season = null;
    renderTabs();
    renderSeasons();
    writeUrl(push);
    clearSearch(true);
    connect();
  }

  els.select.addEventListener('change', () => {
    state.window = '';
    state.season = null;
    selectBoard(els.select.value, true);
  });

  window.addEventListener('popstate', () => route(false));

  async function route(push) {
    const u = readUrl();
    state.limit = u.limit;
    if (!u.board && state.boards.length === 0) {
      disconnect();
      renderPicker('');
      state.board = null;
      renderTabs();
      els.boardTitle.textContent = 'No boards yet';
      setStatus('idle');
      showMessage('empty', 'No boards yet', 'Boards appear as soon as the first event reaches them (POST /v1/events).');
      return;
    }
    const name = u.board || defaultBoard();
    if (state.board && state.board.name === name && u.window && u.window !== state.window) {
      selectWindow(u.window, false);
      return;
    }
    state.window = u.window;
    state.season = u.season;
    await selectBoard(name, push);
  }

  // ---------- search ----------
  let searchGen = 0;
  function clearSearch(keepInput) {
    searchGen++;
    clear(els.searchResult);
    if (!keepInput) els.searchInput.value = '';
    else if (els.searchInput.value.trim()) runSearch(els.searchInput.value.trim());
  }

  async function runSearch(member) {
    if (!state.board) return;
    const gen = ++searchGen;
    clear(els.searchResult);
    els.searchResult.appendChild(el('p', 'muted', 'Searching…'));
    const path = { board: state.board.name, member };
    const query = { window: state.window, ...(state.season ? { period: `s${state.season}` } : {}) };
    const r = await api(podium.api.GET('/v1/boards/{board}/members/{member}', { params: { path, query } }));
    if (gen !== searchGen) return;
    clear(els.searchResult);
    if (r.status === 404) {
      const p = el('p', 'search-miss');
      p.appendChild(el('strong', 'mono', member));
      p.appendChild(document.createTextNode(' is not on this board'));
      const label = WINDOW_LABELS[state.window];
      if (state.window !== 'all' && label) p.appendChild(document.createTextNode(` (${label.toLowerCase()})`));
      p.appendChild(document.createTextNode('.'));
      els.searchResult.appendChild(p);
      return;
    }
    if (!r.ok || !r.body) {
      els.searchResult.appendChild(el('p', 'search-miss', `Search failed (${r.status || 'network error'}). Try again.`));
      return;
    }
    const m = r.body;
    const head = el('div', 'search-head');
    const who = el('div', 'member');
    const name = displayName(m);
    who.appendChild(el('span', 'member-name', name || m.member));
    if (name) who.appendChild(el('span', 'member-id', m.member));
    head.appendChild(who);
    els.searchResult.appendChild(head);

    const dl = el('dl', 'search-stats');
    const add = (k, v, cls) => {
      const d = el('div', 'stat' + (cls ? ` ${cls}` : ''));
      d.appendChild(el('dt', null, k));
      d.appendChild(el('dd', null, v));
      dl.appendChild(d);
    };
    add('Rank', `#${fmtInt.format(m.rank)}`, 'stat-rank');
    add('Score', formatScore(m.score));
    if (typeof m.subscore === 'number') add('Tiebreak', formatScore(m.subscore));
    add('Percentile', typeof m.percentile === 'number' ? `${fmtPct.format(m.percentile)}%` : '—');
    els.searchResult.appendChild(dl);
    if (typeof m.total === 'number') {
      els.searchResult.appendChild(el('p', 'muted small', `Better than ${fmtPct.format(m.percentile || 0)}% of ${fmtInt.format(m.total)} members`));
    }

    const a = await api(podium.api.GET('/v1/boards/{board}/members/{member}/around', { params: { path, query: { ...query, radius: 3 } } }));
    if (gen !== searchGen) return;
    if (a.ok && a.body && Array.isArray(a.body.entries) && a.body.entries.length) {
      els.searchResult.appendChild(el('h3', 'around-title', 'Around them'));
      const list = el('ol', 'around');
      const shared = tieSet(a.body.entries);
      for (const e of a.body.entries) {
        const li = el('li', 'around-row' + (e.member === m.member ? ' is-self' : ''));
        li.dataset.member = e.member;
        if (e.member === m.member) li.setAttribute('aria-current', 'true');
        const rank = el('span', 'rank', (shared(e.rank) ? '=' : '') + fmtInt.format(e.rank));
        li.appendChild(rank);
        const who2 = el('span', 'member');
        const n2 = displayName(e);
        who2.appendChild(el('span', 'member-name', n2 || e.member));
        if (n2) who2.appendChild(el('span', 'member-id', e.member));
        li.appendChild(who2);
        li.appendChild(el('span', 'score', formatScore(e.score)));
        list.appendChild(li);
      }
      els.searchResult.appendChild(list);
    }
    // A lookup is a point in time (the table above is the live view): say when, offer a refresh.
    const foot = el('div', 'search-foot');
    foot.appendChild(el('span', 'muted small', `As of ${new Date().toLocaleTimeString()}`));
    const again = el('button', 'btn btn-ghost btn-small', 'Refresh');
    again.type = 'button';
    again.addEventListener('click', () => runSearch(member));
    foot.appendChild(again);
    els.searchResult.appendChild(foot);
  }

  els.searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = els.searchInput.value.trim();
    if (v) runSearch(v);
  });

  // ---------- start ----------
  async function start() {
    try {
      await loadBoards();
    } catch (err) {
      renderPicker('');
      setStatus('offline', 'Offline');
      const retry = el('button', 'btn', 'Try again');
      retry.type = 'button';
      retry.addEventListener('click', () => { showMessage('loading', 'Loading…'); start(); });
      showMessage('error', 'Could not reach the leaderboard service', 'Check your connection and try again.', retry);
      return;
    }
    await route(false);
  }
  start();
})();
