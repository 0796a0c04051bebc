// seed.js - data and request files for make bench / make soak.
//
//   node bench/seed.js OUT_DIR
//
// Env: BASE (http://127.0.0.1:<port> of nchat-rtc), AUTH_JWT_SECRET,
// LK_STANDIN_URL, USERS_FILE (one user id per line, inserted by the caller
// through the owner connection, all members of CHANNEL_ID), CHANNEL_ID,
// JOIN_CALLS (512), WEBHOOK_EVENTS (40000), VIEWER_SESSIONS (256).
//
// Writes request files for bench/reqs.lua, one request a line:
//   METHOD <TAB> PATH <TAB> AUTHORIZATION (or -) <TAB> BODY (or -)
// join.req, initiate.req, chat.req, reaction.req, webhook.req,
// viewer_join.req, heartbeat.req; tokens.txt (one user token a line, for
// the SSE clients); seed.env (ids for the pgbench scripts).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const out = process.argv[2];
const BASE = process.env.BASE;
const SECRET = process.env.AUTH_JWT_SECRET;
const LK = process.env.LK_STANDIN_URL;
const users = fs.readFileSync(process.env.USERS_FILE, 'utf8').split('\n').filter(Boolean);
const CHANNEL = process.env.CHANNEL_ID;
const JOIN_CALLS = Number(process.env.JOIN_CALLS || 512);
const WEBHOOK_EVENTS = Number(process.env.WEBHOOK_EVENTS || 40000);
const VIEWER_SESSIONS = Number(process.env.VIEWER_SESSIONS || 256);
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function token(user) {
  const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = b({ alg: 'HS256', typ: 'JWT' }) + '.' + b({
    sub: user, iat: now, exp: now + 6 * 3600,
    'https://hasura.io/jwt/claims': {
      'x-hasura-user-id': user, 'x-hasura-default-role': 'user', 'x-hasura-allowed-roles': ['user'],
    },
  });
  return head + '.' + crypto.createHmac('sha256', SECRET).update(head).digest('base64url');
}

function req(base, method, p, auth, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(p, base);
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = { 'content-type': 'application/json' };
    if (auth) headers.authorization = auth;
    if (data) headers['content-length'] = data.length;
    const r = http.request(u, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        resolve({ status: res.statusCode, json, text });
      });
    });
    r.on('error', reject);
    if (data) r.write(data);
    r.end();
  });
}

async function must(base, method, p, auth, body, want) {
  const r = await req(base, method, p, auth, body);
  if (r.status !== want) throw new Error(`${method} ${p}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json;
}

// Run fn(i) for i < n with `conc` in flight.
async function pool(n, conc, fn) {
  let next = 0;
  const run = async () => { while (next < n) { const i = next++; await fn(i); } };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, run));
}

const line = (m, p, auth, body) =>
  [m, p, auth || '-', body === undefined ? '-' : JSON.stringify(body)].join('\t');

async function main() {
  fs.mkdirSync(out, { recursive: true });
  const tok = users.map(token);
  const bearer = (i) => 'Bearer ' + tok[i];
  fs.writeFileSync(path.join(out, 'tokens.txt'), tok.join('\n') + '\n');
  const need = 2 * JOIN_CALLS + 2 * 64 + 128 + 1;
  if (users.length < need) throw new Error(`need ${need} users, have ${users.length}`);

  // Join: call i is initiated by user 2i and joined by user 2i+1; the first
  // join happens here, so the benchmark measures the idempotent re-join of
  // a joined participant (what a reconnecting client does), one pair per
  // request slot.
  const calls = new Array(JOIN_CALLS);
  await pool(JOIN_CALLS, 16, async (i) => {
    const r = await must(BASE, 'POST', '/api/calls/initiate', bearer(2 * i),
      { targetUserId: users[2 * i + 1], type: 'video' }, 201);
    calls[i] = { id: r.callId, room: r.roomName, a: 2 * i, b: 2 * i + 1 };
    await must(BASE, 'POST', `/api/calls/${r.callId}/join`, bearer(2 * i + 1), {}, 200);
  });
  fs.writeFileSync(path.join(out, 'join.req'),
    calls.map((c) => line('POST', `/api/calls/${c.id}/join`, bearer(c.b), {})).join('\n') + '\n');

  // Initiate: users from 2*JOIN_CALLS on, 64 caller/callee pairs.
  const base2 = 2 * JOIN_CALLS;
  const ini = [];
  for (let i = 0; i < 64; i++) {
    ini.push(line('POST', '/api/calls/initiate', bearer(base2 + 2 * i),
      { targetUserId: users[base2 + 2 * i + 1], type: 'audio' }));
  }
  fs.writeFileSync(path.join(out, 'initiate.req'), ini.join('\n') + '\n');

  // A live stream in the channel; 128 chatting / reacting viewers.
  const base3 = base2 + 128;
  const caster = base3 + 128;
  const s = await must(BASE, 'POST', '/api/streams/create', bearer(caster),
    { channelId: CHANNEL, title: 'bench stream' }, 201);
  await must(BASE, 'POST', `/api/streams/${s.id}/start`, bearer(caster), {}, 200);
  const chat = [], react = [];
  const kinds = ['heart', 'like', 'fire', 'clap', 'laugh', 'wow', 'sad', 'angry'];
  for (let i = 0; i < 128; i++) {
    chat.push(line('POST', `/api/streams/${s.id}/chat`, bearer(base3 + i),
      { content: `bench message from viewer ${i}` }));
    react.push(line('POST', `/api/streams/${s.id}/reactions`, bearer(base3 + i),
      { reactionType: kinds[i % kinds.length] }));
  }
  fs.writeFileSync(path.join(out, 'chat.req'), chat.join('\n') + '\n');
  fs.writeFileSync(path.join(out, 'reaction.req'), react.join('\n') + '\n');

  // Viewer sessions (anonymous): joined here, heartbeats in the soak.
  const vj = [], hb = [];
  let viewerRetries = 0;
  await pool(VIEWER_SESSIONS, 1, async (i) => {
    const sid = `bench-viewer-${i}-${crypto.randomBytes(4).toString('hex')}`;
    // 409 "concurrent update" is the documented answer to a lost race: retry
    for (let tries = 0; ; tries++) {
      const r = await req(BASE, 'POST', `/api/streams/${s.id}/viewers/join`, null, { viewer_session_id: sid });
      if (r.status === 200 || r.status === 201) break;
      if (r.status !== 409 || tries > 20) throw new Error(`viewers/join: ${r.status} ${r.text.slice(0, 300)}`);
      viewerRetries++;
    }
    hb[i] = line('POST', `/api/streams/${s.id}/viewers/heartbeat`, '-', { viewer_session_id: sid });
    vj[i] = line('POST', `/api/streams/${s.id}/viewers/join`, '-', { viewer_session_id: sid });
  });
  fs.writeFileSync(path.join(out, 'viewer_join.req'), vj.join('\n') + '\n');
  fs.writeFileSync(path.join(out, 'heartbeat.req'), hb.join('\n') + '\n');

  // Webhooks: participant_joined / participant_left of the joined invitee
  // in the last 64 join calls (the join benchmark runs first), unique ids,
  // createdAt increasing, signed by the stand-in (LiveKit's own signing).
  const t0 = Math.floor(Date.now() / 1000);
  const wh = new Array(WEBHOOK_EVENTS);
  const wcalls = calls.slice(-64);
  const run = crypto.randomBytes(4).toString('hex');
  await pool(WEBHOOK_EVENTS, 64, async (i) => {
    const c = wcalls[i % wcalls.length];
    const k = Math.floor(i / wcalls.length);
    const event = {
      event: k % 2 === 0 ? 'participant_joined' : 'participant_left',
      id: `EV_bench_${run}_${i}`,
      createdAt: String(t0 + k),
      room: { sid: `RM_${c.id.slice(0, 12)}`, name: c.room },
      participant: { sid: `PA_${c.id.slice(0, 8)}_${k >> 1}`, identity: users[c.b], joinedAt: String(t0 + k - (k % 2)) },
    };
    const r = await must(LK, 'POST', '/_test/sign-webhook', null, { event, ttl: 3600 }, 200);
    wh[i] = ['POST', '/api/webhooks/livekit', r.authorization, r.body].join('\t');
  });
  fs.writeFileSync(path.join(out, 'webhook.req'), wh.join('\n') + '\n');

  fs.writeFileSync(path.join(out, 'seed.env'), [
    `STREAM_ID=${s.id}`,
    `JOIN_CALL_ID=${calls[0].id}`,
    `JOIN_USER_ID=${users[calls[0].b]}`,
    `WEBHOOK_CALLS=${wcalls.length}`,
    `VIEWER_JOIN_409=${viewerRetries}`,
  ].join('\n') + '\n');
  // pgbench needs the (call, user) pairs of the join benchmark.
  fs.writeFileSync(path.join(out, 'join_pairs.tsv'),
    calls.map((c, i) => `${i}\t${c.id}\t${c.room}`).join('\n') + '\n');
  agent.destroy();
}

main().catch((e) => { console.error('seed:', e.message); process.exit(1); });
