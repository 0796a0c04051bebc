/*
 * Test plumbing shared by the contract and browser tests: the service
 * process, SQL for seeding, user tokens, PASS/FAIL reporting.
 *
 * The environment is the one scripts/test.sh exports (NC_BIN, DATABASE_URL,
 * REDIS_URL, LIVEKIT_*, S3_*, AUTH_JWT_SECRET, NC_RUN_DIR).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';

export function env(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set (run through make test)`);
  return v;
}

/* ------------------------------------------------------------ reporting */

let passed = 0;
let failed = 0;

export function pass(what: string): void {
  passed++;
  console.log(`PASS ${what}`);
}

export function fail(what: string, why: unknown): void {
  failed++;
  const msg = why instanceof Error ? why.message : String(why);
  console.log(`FAIL ${what}: ${msg}`);
}

/* Run one named check; an exception fails it. */
export async function check(what: string, fn: () => Promise<void> | void): Promise<boolean> {
  try {
    await fn();
    pass(what);
    return true;
  } catch (e) {
    fail(what, e);
    return false;
  }
}

export function summary(): number {
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

export function eq<T>(got: T, want: T, what: string): void {
  if (got !== want) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/* ---------------------------------------------------------------- ports */

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/* -------------------------------------------------------------- service */

export interface Service {
  base: string;
  port: number;
  logPath: string;
  proc: ChildProcess | null;
  env: Record<string, string>;
}

/* Start `nchat-rtc serve` on 127.0.0.1:port (a free one by default). */
export async function startService(extraEnv: Record<string, string> = {}, port?: number): Promise<Service> {
  const p = port ?? (await freePort());
  const runDir = process.env.NC_RUN_DIR ?? '/tmp';
  const logPath = path.join(runDir, `contract-server-${p}.log`);
  const e: Record<string, string> = {
    LISTEN_ADDR: `127.0.0.1:${p}`,
    METRICS_ADDR: 'off', // not under test here; the default port would collide between runs
    WORKERS: '4',
    LOG_LEVEL: 'info',
    RATE_LIMIT_IP: 'off',
    RATE_LIMITS: 'default=off,initiate=off,join=off,chat=off,reactions=off,stats=off',
    ...extraEnv,
  };
  const svc: Service = { base: `http://127.0.0.1:${p}`, port: p, logPath, proc: null, env: e };
  await launch(svc);
  return svc;
}

async function launch(svc: Service): Promise<void> {
  const out = openSync(svc.logPath, 'a');
  const proc = spawn(env('NC_BIN'), ['serve'], { env: { ...process.env, ...svc.env }, stdio: ['ignore', out, out] });
  svc.proc = proc;
  let exited = false;
  proc.once('exit', () => { exited = true; });
  for (let i = 0; i < 300; i++) {
    if (exited) throw new Error(`nchat-rtc exited during start-up; see ${svc.logPath}`);
    try {
      const r = await fetch(`${svc.base}/healthz`);
      if (r.status === 200) return;
    } catch { /* not up yet */ }
    await sleep(50);
  }
  throw new Error(`nchat-rtc did not answer /healthz within 15 s; see ${svc.logPath}`);
}

/* SIGTERM and wait for the exit status (0 expected: a clean drain). */
export function stopService(svc: Service): Promise<number | null> {
  const proc = svc.proc;
  svc.proc = null;
  if (proc === null || proc.exitCode !== null) return Promise.resolve(proc?.exitCode ?? null);
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 30000);
    proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
    proc.kill('SIGTERM');
  });
}

/* The same instance again, on the same port. */
export async function restartService(svc: Service): Promise<void> {
  if (svc.proc !== null) await stopService(svc);
  await launch(svc);
}

export function serviceLog(svc: Service): string {
  try { return readFileSync(svc.logPath, 'utf8'); } catch { return ''; }
}

/* ------------------------------------------------------------------ SQL */

/* psql as the superuser on the service's database; -v variables are quoted by psql. */
export function sql(query: string, vars: Record<string, string> = {}): string {
  const url = new URL(env('DATABASE_URL'));
  url.username = 'postgres';
  const args = ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1'];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  args.push('-d', url.toString());
  return execFileSync('psql', args, { input: query, encoding: 'utf8' }).trim();
}

export function newUser(name: string): string {
  return sql(`INSERT INTO nchat_users (id, display_name) VALUES (gen_random_uuid(), :'n') RETURNING id;`, { n: name });
}

export function newChannel(name: string, members: string[]): string {
  const id = sql(`INSERT INTO nchat_channels (id, name) VALUES (gen_random_uuid(), :'n') RETURNING id;`, { n: name });
  for (const m of members)
    sql(`INSERT INTO nchat_channel_members (channel_id, user_id, role) VALUES (:'c', :'u', 'member');`, { c: id, u: m });
  return id;
}

/* --------------------------------------------------------------- tokens */

/* An HS256 user token with Hasura claims, as the chat's auth service mints them. */
export function userToken(userId: string, role: 'user' | 'moderator' | 'admin' = 'user', ttlS = 3600): string {
  const b = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const roles = role === 'user' ? ['user'] : ['user', role];
  const head = `${b({ alg: 'HS256', typ: 'JWT' })}.${b({
    sub: userId, iat: now, exp: now + ttlS,
    'https://hasura.io/jwt/claims': {
      'x-hasura-user-id': userId, 'x-hasura-default-role': role, 'x-hasura-allowed-roles': roles,
    },
  })}`;
  const sig = createHmac('sha256', env('AUTH_JWT_SECRET')).update(head).digest('base64url');
  return `${head}.${sig}`;
}

export { randomUUID };
