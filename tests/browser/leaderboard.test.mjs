// Browser tests of the leaderboard page (web/), driving Chromium against a
// worker started here. Run: node --test --test-concurrency=1 tests/browser/
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startWorker, launchBrowser, waitFor, api, expectStatus, ARTIFACTS } from './support.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const PEOPLE = [
  ['ada', 'Ada Lovelace', 42], ['grace', 'Grace Hopper', 37], ['alan', 'Alan Turing', 37],
  ['linus', 'Linus Torvalds', 29], ['margaret', 'Margaret Hamilton', 24], ['barbara', 'Barbara Liskov', 21],
  ['dennis', 'Dennis Ritchie', 18], ['ken', 'Ken Thompson', 15], ['katherine', 'Katherine Johnson', 12],
  ['tim', 'Tim Berners-Lee', 9], ['edsger', null, 6], ['donald', 'Donald Knuth', 3],
];

let worker;
let browser;
let page;
const dialogs = [];
const pageErrors = [];

async function seed(url) {
  await expectStatus(await api.putBoard(url, 'likes', { title: 'Most liked', windows: ['all', 'day', 'week', 'month'] }), [200, 201], 'PUT likes');
  await expectStatus(await api.putBoard(url, 'sales', { title: 'Top sellers', windows: ['all', 'month'] }), [200, 201], 'PUT sales');
  await expectStatus(await api.putBoard(url, 'quiet', { title: 'Quiet board' }), [200, 201], 'PUT quiet');
  await expectStatus(await api.putBoard(url, 'comments', { title: 'Most comments' }), [200, 201], 'PUT comments');
  const events = [];
  for (const [member, name, n] of PEOPLE) {
    events.push({ type: 'like', board: 'likes', member, value: n, ...(name ? { meta: { name } } : {}) });
  }
  for (const [i, [member, name]] of PEOPLE.slice(0, 8).entries()) {
    events.push({ type: 'order', board: 'sales', member, value: 1_250_000 - i * 97_531.5, meta: { name } });
  }
  events.push({ type: 'comment', board: 'comments', member: XSS, value: 5, meta: { name: XSS } });
  events.push({ type: 'comment', board: 'comments', member: 'plain', value: 3 });
  await expectStatus(await api.events(url, events), 202, 'POST seed events');
  for (const [board, total] of [['likes', PEOPLE.length], ['sales', 8], ['comments', 2]]) {
    await waitFor(async () => (await api.get(url, `/v1/boards/${board}/top`)).json?.total === total,
      { timeout: 10_000, what: `seeded ${board}` });
  }
}

/** The API's own view, used as the oracle for what the table should show. */
async function apiTop(board, qs = '') {
  const r = await api.get(worker.url, `/v1/boards/${board}/top?limit=20${qs}`);
  return r.json;
}
async function tableMatchesApi(board, qs = '') {
  const t = await apiTop(board, qs);
  const shown = await rowMembers();
  return t && JSON.stringify(shown) === JSON.stringify(t.entries.map((e) => e.member));
}
const rowMembers = () => page.$$eval('#board-rows tr', (trs) => trs.map((tr) => tr.dataset.member));
const liveState = () => page.getAttribute('#live-status', 'data-state');

// Rank checkpoints every 10 s (an hour in production), so the page's
// movement arrows can be seen within the test.
const EVERY = 10_000;

before(async () => {
  worker = await startWorker({ vars: { CHECKPOINT_EVERY_MS: String(EVERY) } });
  await seed(worker.url);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });
});

after(async () => {
  await browser?.close();
  await worker?.stop();
});

describe('leaderboard page', () => {
  test('serves the page with a Content-Security-Policy', async () => {
    const r = await fetch(`${worker.url}/`);
    assert.equal(r.status, 200);
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /default-src 'self'/, 'CSP header from web/_headers');
    assert.match(csp, /script-src 'self'/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  });

  test('loads and shows the seeded board', async () => {
    await page.goto(`${worker.url}/?board=likes`);
    await waitFor(async () => (await rowMembers()).length === PEOPLE.length, { timeout: 5000, what: 'rows' });
    // grace and alan tie and were sent in one request (same event time), so
    // member id byte order decides: alan before grace.
    assert.deepEqual((await rowMembers()).slice(0, 3), ['ada', 'alan', 'grace']);
    assert.equal(await page.textContent('#board-rows tr:first-child .member-name'), 'Ada Lovelace');
    assert.equal(await page.textContent('#board-rows tr:first-child .member-id'), 'ada');
    // grace and alan share rank 2.
    assert.equal((await page.textContent('#board-rows tr:nth-child(2) .rank')).trim(), '=2');
    assert.equal((await page.textContent('#board-rows tr:nth-child(3) .rank')).trim(), '=2');
    assert.equal(await page.textContent('#stat-total'), String(PEOPLE.length));
    assert.equal(await page.textContent('#board-title'), 'Most liked');
    await waitFor(async () => (await liveState()) === 'live', { what: 'live indicator' });
    assert.equal(await page.getAttribute('[role=tab][aria-selected=true]', 'data-window'), 'all');
  });

  test('events posted through the API change the table within 2 s, no reload', async () => {
    await waitFor(async () => (await liveState()) === 'live', { what: 'live' });
    const t0 = Date.now();
    await expectStatus(await api.events(worker.url, { type: 'like', board: 'likes', member: 'donald', value: 100, meta: { name: 'Donald Knuth' } }), 202, 'POST event');
    await waitFor(async () => (await rowMembers())[0] === 'donald', { timeout: 2000, interval: 25, what: 'donald on top' });
    console.log(`# live update visible after ${Date.now() - t0} ms`);
    assert.ok(await page.$('#board-rows tr.is-up[data-member="donald"] .cue-up'), 'an up-arrow cue on the mover');
    // A member new to the board enters with a "new" cue.
    await expectStatus(await api.events(worker.url, { type: 'like', board: 'likes', member: 'hedy', value: 50, meta: { name: 'Hedy Lamarr' } }), 202, 'POST event');
    await waitFor(async () => (await rowMembers()).includes('hedy'), { timeout: 2000, interval: 25, what: 'hedy enters' });
    assert.ok(await page.$('#board-rows tr.is-new[data-member="hedy"] .cue-new'));
    assert.equal(await page.textContent('#stat-total'), String(PEOPLE.length + 1));
  });

  test('switching board and window works (URL keeps the state)', async () => {
    await page.selectOption('#board-select', 'sales');
    await waitFor(async () => (await rowMembers())[0] === 'ada' && (await rowMembers()).length === 8, { what: 'sales rows' });
    assert.match(page.url(), /board=sales/);
    assert.equal(await page.textContent('#board-title'), 'Top sellers');
    // 1,250,000 shows compactly.
    assert.equal(await page.textContent('#board-rows tr:first-child .score'), '1.3M');
    const tabs = await page.$$eval('[role=tab]', (ts) => ts.map((t) => t.textContent));
    assert.deepEqual(tabs, ['All time', 'This month']);
    await page.click('[role=tab][data-window=month]');
    await waitFor(async () => page.url().includes('window=month'), { what: 'url window=month' });
    assert.equal(await page.getAttribute('[role=tab][data-window=month]', 'aria-selected'), 'true');
    await waitFor(async () => (await rowMembers()).length === 8 && /\d{4}|[A-Z][a-z]+ \d{4}/.test(await page.textContent('#stat-period')),
      { what: 'month rows + period' });
    // Keyboard: ArrowLeft moves back to "All time".
    await page.focus('[role=tab][data-window=month]');
    await page.keyboard.press('ArrowLeft');
    await waitFor(async () => page.url().includes('window=all'), { what: 'keyboard tab switch' });
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.window), 'all');
    // A link with board + window opens that view directly.
    await page.goto(`${worker.url}/?board=likes&window=day`);
    await waitFor(() => tableMatchesApi('likes', '&window=day'), { what: 'likes/day rows' });
    assert.equal(await page.getAttribute('[role=tab][aria-selected=true]', 'data-window'), 'day');
    // Back button returns to the previous view.
    await page.goBack();
    await waitFor(async () => (await rowMembers()).length === 8, { what: 'back to sales' });
  });

  test('with no board in the URL it opens the last board this browser opened, else the busiest; the URL follows', async () => {
    // The busiest board: the most events in its current period (GET /v1/boards `events`).
    const busy = Array.from({ length: 40 }, (_, i) => ({ type: 'like', board: 'busy', member: `fan${i % 5}` }));
    await expectStatus(await api.events(worker.url, busy), 202, 'POST busy events');
    await waitFor(async () => (await api.get(worker.url, '/v1/boards?prefix=busy')).json?.boards?.[0]?.events === 40,
      { timeout: 10_000, what: 'busy counted' });
    // A fresh browser profile (no localStorage): the busiest board, written into the URL.
    const ctx = await browser.newContext();
    try {
      const fresh = await ctx.newPage();
      await fresh.goto(`${worker.url}/`);
      await waitFor(async () => /[?&]board=busy(&|$)/.test(fresh.url()), { what: 'opens busy' });
      assert.match(fresh.url(), /window=all/);
      assert.equal(await fresh.$eval('#board-select', (s) => s.value), 'busy');
      // The picker writes the URL; the next visit without a board opens that one.
      await fresh.selectOption('#board-select', 'quiet');
      await waitFor(async () => /[?&]board=quiet(&|$)/.test(fresh.url()), { what: 'url follows the picker' });
      await fresh.goto(`${worker.url}/`);
      await waitFor(async () => /[?&]board=quiet(&|$)/.test(fresh.url()), { what: 'reopens the last board' });
      // A remembered board that no longer exists falls back to the busiest.
      await fresh.evaluate(() => localStorage.setItem('podium.lastBoard', 'gone-board'));
      await fresh.goto(`${worker.url}/`);
      await waitFor(async () => /[?&]board=busy(&|$)/.test(fresh.url()), { what: 'falls back to busy' });
    } finally {
      await ctx.close();
    }
  });

  test('empty and unknown boards show friendly states', async () => {
    await page.goto(`${worker.url}/?board=quiet`);
    await waitFor(async () => /No scores yet/.test(await page.textContent('#board-message')), { what: 'empty state' });
    assert.equal(await page.isVisible('#board-table'), false);
    await page.goto(`${worker.url}/?board=no-such-board`);
    await waitFor(async () => /no board called/i.test(await page.textContent('#board-message')), { what: 'unknown state' });
    assert.ok(await page.isVisible('#board-message a'), 'a way back to a real board');
  });

  test('search shows a member rank, percentile and neighbours; 404 says not on this board', async () => {
    await page.goto(`${worker.url}/?board=likes`);
    await waitFor(async () => (await rowMembers()).length > 0, { what: 'rows' });
    await page.fill('#search-input', 'linus');
    await page.press('#search-input', 'Enter');
    await waitFor(async () => (await page.$$('#search-result .around-row')).length > 0, { what: 'search result' });
    const text = await page.textContent('#search-result');
    const want = (await api.get(worker.url, '/v1/boards/likes/members/linus')).json;
    assert.match(text, /Linus Torvalds/);
    assert.equal(await page.textContent('#search-result .stat-rank dd'), `#${want.rank}`);
    const around = (await api.get(worker.url, '/v1/boards/likes/members/linus/around?radius=3')).json;
    assert.deepEqual(await page.$$eval('#search-result .around-row', (li) => li.map((x) => x.dataset.member)),
      around.entries.map((e) => e.member));
    assert.match(text, /Percentile/);
    assert.equal(await page.getAttribute('#search-result .around-row.is-self', 'aria-current'), 'true');
    await page.fill('#search-input', 'nobody-here');
    await page.click('#search-form button');
    await waitFor(async () => /not on this board/.test(await page.textContent('#search-result')), { what: '404 message' });
  });

  test('a member named like HTML shows as text and runs no script', async () => {
    await page.goto(`${worker.url}/?board=comments`);
    await waitFor(async () => (await rowMembers()).length === 2, { what: 'comments rows' });
    assert.equal(await page.textContent('#board-rows tr:first-child .member-name'), XSS);
    assert.equal(await page.textContent('#board-rows tr:first-child .member-id'), XSS);
    assert.equal(await page.$$eval('#board-rows img, #search-result img', (x) => x.length), 0);
    await page.fill('#search-input', XSS);
    await page.press('#search-input', 'Enter');
    await waitFor(async () => (await page.$$('#search-result .around-row')).length === 2, { what: 'xss search' });
    assert.match(await page.textContent('#search-result .stat-rank dd'), /#1/);
    assert.equal(await page.$$eval('main img', (x) => x.length), 0);
    assert.deepEqual(dialogs, [], 'no alert() ran');
  });

  test('screenshots: desktop and phone', async () => {
    await page.goto(`${worker.url}/?board=likes`);
    await waitFor(async () => (await tableMatchesApi('likes')) && (await liveState()) === 'live', { what: 'rows' });
    // A live move so the cue shows in the picture.
    await expectStatus(await api.events(worker.url, { type: 'like', board: 'likes', member: 'katherine', value: 40, meta: { name: 'Katherine Johnson' } }), 202, 'POST');
    await waitFor(async () => page.$('#board-rows tr.is-up[data-member="katherine"]'), { timeout: 3000, what: 'katherine moves' });
    await page.fill('#search-input', 'margaret');
    await page.press('#search-input', 'Enter');
    await waitFor(async () => (await page.$$('#search-result .around-row')).length > 0, { what: 'search' });
    await page.screenshot({ path: join(ARTIFACTS, 'leaderboard-desktop.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(ARTIFACTS, 'leaderboard-desktop-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });

    const phone = await browser.newPage({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      await phone.goto(`${worker.url}/?board=likes`);
      await waitFor(async () => (await phone.$$('#board-rows tr')).length === (await apiTop('likes')).entries.length, { what: 'phone rows' });
      await waitFor(async () => (await phone.getAttribute('#live-status', 'data-state')) === 'live', { what: 'phone live' });
      // Nothing overflows sideways at phone width.
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `horizontal overflow of ${overflow}px at 375px`);
      await phone.screenshot({ path: join(ARTIFACTS, 'leaderboard-phone.png') });
      await phone.screenshot({ path: join(ARTIFACTS, 'leaderboard-phone-full.png'), fullPage: true });
    } finally {
      await phone.close();
    }
  });

  test('reconnects after the server restarts and shows new events', async () => {
    await page.goto(`${worker.url}/?board=likes`);
    await waitFor(async () => (await liveState()) === 'live', { what: 'live before restart' });
    await worker.kill();
    await waitFor(async () => (await liveState()) === 'reconnecting', { timeout: 5000, what: 'reconnecting indicator' });
    await worker.start(); // same port, same persist dir
    await waitFor(async () => (await liveState()) === 'live', { timeout: 20_000, interval: 100, what: 'live again' });
    assert.ok(await tableMatchesApi('likes'), 'fresh snapshot after reconnect');
    await expectStatus(await api.events(worker.url, { type: 'like', board: 'likes', member: 'ken', value: 500, meta: { name: 'Ken Thompson' } }), 202, 'POST');
    await waitFor(async () => (await rowMembers())[0] === 'ken', { timeout: 5000, what: 'new event after reconnect' });
  });

  test('a member removed or hidden by the admin leaves the live table without a reload', async () => {
    await page.goto(`${worker.url}/?board=likes`);
    await waitFor(async () => (await liveState()) === 'live', { what: 'live' });
    await waitFor(async () => (await rowMembers()).includes('tim') && (await rowMembers()).includes('katherine'), { what: 'rows' });
    await expectStatus(await api.admin(worker.url, 'DELETE', '/v1/boards/likes/members/tim'), 200, 'DELETE tim');
    await waitFor(async () => !(await rowMembers()).includes('tim'), { timeout: 5000, what: 'tim gone' });
    await expectStatus(await api.admin(worker.url, 'PUT', '/v1/boards/likes/members/katherine/hidden'), 200, 'hide katherine');
    await waitFor(async () => !(await rowMembers()).includes('katherine'), { timeout: 5000, what: 'katherine hidden' });
    assert.ok(await tableMatchesApi('likes'), 'the table is the API view without them');
    await expectStatus(await api.admin(worker.url, 'DELETE', '/v1/boards/likes/members/katherine/hidden'), 200, 'show katherine');
    await waitFor(async () => (await rowMembers()).includes('katherine'), { timeout: 5000, what: 'katherine back' });
  });

  test('rows show their movement since the last checkpoint: up, down and new', async () => {
    await expectStatus(await api.putBoard(worker.url, 'moves', { title: 'Moves' }), [200, 201], 'PUT moves');
    await expectStatus(await api.events(worker.url, [
      { type: 'hit', board: 'moves', member: 'ann', value: 3 },
      { type: 'hit', board: 'moves', member: 'bo', value: 2 },
      { type: 'hit', board: 'moves', member: 'cy', value: 1 },
    ]), 202, 'seed moves');
    await waitFor(async () => (await apiTop('moves'))?.total === 3, { what: 'seeded' });
    await page.goto(`${worker.url}/?board=moves`);
    await waitFor(async () => (await liveState()) === 'live', { what: 'live' });
    // Just after the next boundary, a read takes the checkpoint: ann 1, bo 2, cy 3.
    const seeded = Date.now();
    const next = seeded - (seeded % EVERY) + EVERY;
    await waitFor(() => Date.now() >= next && Date.now() % EVERY < 1000, { timeout: 2 * EVERY + 1000, interval: 20, what: 'a boundary' });
    const boundary = Date.now() - (Date.now() % EVERY);
    await waitFor(async () => (await apiTop('moves')).entries.every((e) => e.prev_rank === e.rank), { what: 'checkpoint' });
    await expectStatus(await api.events(worker.url, [
      { type: 'hit', board: 'moves', member: 'cy', value: 5 },
      { type: 'hit', board: 'moves', member: 'dee', value: 4 },
    ]), 202, 'moves');
    const since = () => page.$$eval('#board-rows tr', (trs) => trs.map((tr) => [tr.dataset.member, tr.querySelector('.since')?.textContent ?? '']));
    await waitFor(async () => JSON.stringify(await since()) === JSON.stringify([['cy', '↑2'], ['dee', 'new'], ['ann', '↓2'], ['bo', '↓2']]),
      { timeout: 5000, what: 'movement arrows' });
    assert.ok(Date.now() < boundary + EVERY, 'the next checkpoint came before the arrows could be read');
    await page.screenshot({ path: join(ARTIFACTS, 'leaderboard-movement.png') });
  });

  test('a board with a tiebreak shows its subscores in their own column; others have none; local days say their zone', async () => {
    await expectStatus(await api.putBoard(worker.url, 'speedrun', { title: 'Speedrun', op: 'best', tiebreak: 'asc', windows: ['all', 'day'], tz: 'Asia/Shanghai' }), [200, 201], 'PUT speedrun');
    await expectStatus(await api.events(worker.url, [
      { type: 'run', board: 'speedrun', member: 'slow', value: 100, subscore: 95.5 },
      { type: 'run', board: 'speedrun', member: 'quick', value: 100, subscore: 61 },
      { type: 'run', board: 'speedrun', member: 'low', value: 80, subscore: 12 },
    ]), 202, 'runs');
    await waitFor(async () => (await apiTop('speedrun'))?.total === 3, { what: 'runs applied' });
    await page.goto(`${worker.url}/?board=speedrun`);
    const cells = () => page.$$eval('#board-rows tr', (trs) => trs.map((tr) => [tr.dataset.member, tr.querySelector('.col-sub')?.textContent ?? null]));
    await waitFor(async () => JSON.stringify(await cells()) === JSON.stringify([['quick', '61'], ['slow', '95.5'], ['low', '12']]),
      { timeout: 5000, what: 'subscore column' });
    assert.equal(await page.isVisible('#sub-head'), true);
    await page.goto(`${worker.url}/?board=speedrun&window=day`);
    await waitFor(async () => /^Today \(Asia\/Shanghai\) · /.test(await page.textContent('#stat-period')), { what: 'local day name' });
    await page.goto(`${worker.url}/?board=likes`);
    await waitFor(async () => (await rowMembers()).length > 0, { what: 'likes rows' });
    assert.equal(await page.isVisible('#sub-head'), false);
    assert.equal(await page.$$eval('#board-rows .col-sub', (tds) => tds.length), 0);
  });

  test('a board with past seasons has a season picker: a past season is read once, the current one is live', async () => {
    await expectStatus(await api.putBoard(worker.url, 'seasoned', { title: 'Seasoned' }), [200, 201], 'PUT seasoned');
    await expectStatus(await api.events(worker.url, [
      { type: 'hit', board: 'seasoned', member: 'old-champ', value: 50 },
      { type: 'hit', board: 'seasoned', member: 'old-second', value: 20 },
    ]), 202, 'season 1');
    await waitFor(async () => (await apiTop('seasoned'))?.total === 2, { what: 'season 1 applied' });
    await expectStatus(await api.admin(worker.url, 'POST', '/v1/boards/seasoned/seasons'), 200, 'new season');
    await expectStatus(await api.events(worker.url, [{ type: 'hit', board: 'seasoned', member: 'newcomer', value: 1 }]), 202, 'season 2');
    await waitFor(async () => (await apiTop('seasoned'))?.total === 1, { what: 'season 2 applied' });
    // the page's board list was read before this board existed: load it afresh
    await page.goto(`${worker.url}/?board=seasoned`);
    await waitFor(async () => JSON.stringify(await rowMembers()) === JSON.stringify(['newcomer']), { what: 'live season 2' });
    assert.equal(await page.isVisible('#season-picker'), true);
    assert.deepEqual(await page.$$eval('#season-select option', (os) => os.map((o) => o.textContent)), ['Season 2 (live)', 'Season 1']);
    await page.selectOption('#season-select', '1');
    await waitFor(async () => JSON.stringify(await rowMembers()) === JSON.stringify(['old-champ', 'old-second']), { what: 'season 1 rows' });
    assert.equal(await page.textContent('#stat-period'), 'Season 1');
    assert.equal(await liveState(), 'offline', 'an archived season is not live');
    assert.match(page.url(), /season=1/);
    await page.selectOption('#season-select', '2');
    await waitFor(async () => (await liveState()) === 'live' && JSON.stringify(await rowMembers()) === JSON.stringify(['newcomer']), { what: 'back to live' });
    await page.goto(`${worker.url}/?board=likes`);
    await waitFor(async () => (await rowMembers()).length > 0, { what: 'likes rows' });
    assert.equal(await page.isVisible('#season-picker'), false, 'no picker on a board with one season');
  });

  test('no script errors or CSP violations on the page', () => {
    assert.deepEqual(pageErrors.filter((e) => !/Failed to load resource|WebSocket connection/.test(e)), []);
  });
});
