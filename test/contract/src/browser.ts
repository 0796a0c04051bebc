/*
 * A real browser against nchat-rtc: Debian's Chromium, headless, driven by
 * playwright-core (which is pointed at /usr/bin/chromium and never downloads
 * a browser).  The test page is served from a second origin, as the Next.js
 * app is:
 *
 *   - a fetch with Authorization (so a CORS preflight) from the configured
 *     origin succeeds; the same fetch from another origin is refused by the
 *     browser;
 *   - an EventSource on /api/events?access_token=... receives call.invite
 *     when another user initiates a call (through a second instance);
 *   - the instance serving the stream is stopped (it drops the connection
 *     with server.shutdown) and started again on the same port; while it is
 *     down another call is initiated through the second instance, and the
 *     browser's own reconnect, carrying Last-Event-ID, brings that missed
 *     call.invite from the shared replay log.
 *
 * Without Chromium it prints one SKIP line (and "0 passed, 0 failed").
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import {
  assert, check, eq, freePort, newUser, restartService, serviceLog, sleep, startService, stopService, summary,
  userToken, type Service,
} from './lib';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface SeenEvent { type: string; data: string; lastEventId: string }

declare global {
  interface Window { seen: SeenEvent[]; opens: number; errors: number; es?: EventSource }
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>nchat-rtc browser test</title></head>
<body><p>nchat-rtc browser test page</p></body></html>`;

function servePage(port: number): Promise<Server> {
  const srv = createServer((req, res) => {
    if (req.url === '/favicon.ico') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)));
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function fetchMe(page: Page, api: string, token: string) {
  return page.evaluate(async ({ api, token }) => {
    try {
      const r = await fetch(`${api}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
      return { ok: true, status: r.status, body: await r.text(), error: '' };
    } catch (e) {
      return { ok: false, status: 0, body: '', error: `${(e as Error).name}: ${(e as Error).message}` };
    }
  }, { api, token });
}

async function main(): Promise<number> {
  if (!existsSync(CHROMIUM)) {
    console.log(`SKIP browser tests: ${CHROMIUM} not found (Debian package chromium; scripts/deps.sh installs it)`);
    return summary();
  }
  const { chromium } = await import('playwright-core');
  const pagePort = await freePort();
  const allowed = `http://127.0.0.1:${pagePort}`;
  const refused = `http://localhost:${pagePort}`;
  const cfg = { CORS_ORIGINS: allowed, SSE_HEARTBEAT_SECONDS: '5' };
  const profile = mkdtempSync(path.join(os.tmpdir(), 'nchat-chromium-'));
  let one: Service | null = null, two: Service | null = null;
  let ctx: BrowserContext | null = null;
  let pageSrv: Server | null = null;
  try {
    [one, two] = await Promise.all([startService(cfg), startService(cfg)]);
    pageSrv = await servePage(pagePort);
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: FLAGS, timeout: 60000,
    });
    const page = await ctx.newPage();
    await page.goto(`${allowed}/`);
    const other = await ctx.newPage();
    await other.goto(`${refused}/`);
    const api = one.base;
    const alice = newUser('Alice Browser');
    const bob = newUser('Bob Browser');
    const bobToken = userToken(bob);
    const aliceToken = userToken(alice);
    const initiate = async (svc: Service) => {
      const r = await fetch(`${svc.base}/api/calls/initiate`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${aliceToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ targetUserId: bob, type: 'audio' }),
      });
      eq(r.status, 201, 'initiate status');
      return ((await r.json()) as { callId: string }).callId;
    };

    await check(`CORS: fetch with Authorization from the configured origin ${allowed} (preflight allowed)`, async () => {
      const r = await fetchMe(page, api, bobToken);
      assert(r.ok, `fetch failed: ${r.error}`);
      eq(r.status, 200, 'status');
      eq((JSON.parse(r.body) as { userId: string }).userId, bob, 'userId');
    });
    await check(`CORS: the same fetch from another origin ${refused} is refused by the browser`, async () => {
      const r = await fetchMe(other, api, bobToken);
      assert(!r.ok, `the fetch succeeded (status ${r.status})`);
      assert(/TypeError/.test(r.error), `unexpected error ${r.error}`);
    });
    await check('CORS: both went through a preflight (OPTIONS /api/me answered 204)', () => {
      const n = serviceLog(one!).split('\n').filter((l) => l.includes('OPTIONS /api/me -> 204')).length;
      assert(n >= 2, `${n} preflight(s) in the server log`);
    });

    await page.evaluate(({ api, token }) => {
      window.seen = [];
      window.opens = 0;
      window.errors = 0;
      const es = new EventSource(`${api}/api/events?access_token=${encodeURIComponent(token)}`);
      window.es = es;
      es.onopen = () => { window.opens++; };
      es.onerror = () => { window.errors++; };
      for (const t of ['call.invite', 'server.shutdown'])
        es.addEventListener(t, (ev) => {
          const m = ev as MessageEvent<string>;
          window.seen.push({ type: t, data: m.data, lastEventId: m.lastEventId });
        });
    }, { api, token: bobToken });
    const seen = () => page.evaluate(() => window.seen);
    const invites = async () => (await seen()).filter((e) => e.type === 'call.invite');

    await check('EventSource with ?access_token= opens', async () => {
      await waitFor('the event stream to open', async () => ((await page.evaluate(() => window.opens)) > 0 ? true : undefined));
    });
    let first = '';
    await check('EventSource receives call.invite when A initiates a call (through the other instance)', async () => {
      first = await initiate(two!);
      const ev = await waitFor('call.invite', async () => (await invites()).find((e) => e.data.includes(first)));
      assert(ev.lastEventId !== '', 'the event has an id');
      eq((JSON.parse(ev.data) as { callId: string }).callId, first, 'callId');
    });
    await check('the server drops the stream (instance stopped: server.shutdown, connection closed)', async () => {
      const code = await stopService(one!);
      eq(code, 0, 'exit status of the drained instance');
      await waitFor('server.shutdown', async () => ((await seen()).some((e) => e.type === 'server.shutdown') ? true : undefined));
      await waitFor('the browser to notice', async () => ((await page.evaluate(() => window.errors)) > 0 ? true : undefined));
      eq(await page.evaluate(() => window.es!.readyState), 0, 'readyState (CONNECTING: the browser will retry)');
    });
    let missed = '';
    await check("the browser's reconnect brings the call.invite it missed (Last-Event-ID replay)", async () => {
      missed = await initiate(two!);                 // published while nobody listens on instance one
      await sleep(300);
      assert(!(await invites()).some((e) => e.data.includes(missed)), 'delivered before the reconnect?');
      await restartService(one!);
      const ev = await waitFor('the replayed call.invite',
        async () => (await invites()).find((e) => e.data.includes(missed)), 20000);
      eq((JSON.parse(ev.data) as { callId: string }).callId, missed, 'callId');
      eq(await page.evaluate(() => window.opens), 2, 'opens (one reconnect)');
      eq((await invites()).filter((e) => e.data.includes(first)).length, 1, 'the first invite is not repeated');
    });
    await check('control: a new EventSource (no Last-Event-ID) does not get the missed invite', async () => {
      await page.evaluate(({ api, token }) => {
        (window as unknown as { fresh: string[] }).fresh = [];
        const es = new EventSource(`${api}/api/events?access_token=${encodeURIComponent(token)}`);
        es.addEventListener('call.invite', (ev) => { (window as unknown as { fresh: string[] }).fresh.push((ev as MessageEvent<string>).data); });
        es.onopen = () => { (window as unknown as { freshOpen: boolean }).freshOpen = true; };
      }, { api, token: bobToken });
      await waitFor('the new stream to open', async () =>
        ((await page.evaluate(() => (window as unknown as { freshOpen?: boolean }).freshOpen)) ? true : undefined));
      await sleep(1000);
      const fresh = await page.evaluate(() => (window as unknown as { fresh: string[] }).fresh);
      assert(!fresh.some((d) => d.includes(missed) || d.includes(first)), 'a stream without Last-Event-ID replayed old events');
    });
    await page.evaluate(() => window.es?.close());
  } catch (e) {
    console.log(`FAIL browser set-up: ${e instanceof Error ? e.message : String(e)}`);
    summary();
    return 1;
  } finally {
    if (ctx) await ctx.close().catch(() => undefined);
    if (pageSrv) pageSrv.close();
    await Promise.all([one, two].map((s) => (s ? stopService(s) : Promise.resolve(null))));
    rmSync(profile, { recursive: true, force: true });
  }
  return summary();
}

main().then((rc) => { process.exitCode = rc; }, (e) => { console.log(`FAIL ${String(e)}`); process.exitCode = 1; });
