// peer.js - make bench's peer: the design report's own stack for the two
// call hot paths, on the same schema, database, Redis and LiveKit stand-in
// as nchat-rtc in the same run, so that `make bench` can print both and
// their ratio.
//
//   PEER_PORT=8090 node bench/peer/peer.js
//
// Env: DATABASE_URL, REDIS_URL, AUTH_JWT_SECRET, LIVEKIT_URL,
// LIVEKIT_API_KEY, LIVEKIT_API_SECRET, RING_TIMEOUT_SECONDS,
// MAX_ROOM_PARTICIPANTS, PEER_POOL (10), PEER_DB_ROLE (SET ROLE on connect).
//
// What it does, as nchat-rtc does it:
//   POST /api/calls/{id}/join   verify the user JWT (jose, HS256), read the
//     call with the caller's participant row, channel membership, joined
//     count and display name (statement 1); when the caller is not joined
//     yet, insert/update their row and answer a ringing call (statement 2,
//     no transaction, as the design report's stack does); mint the LiveKit
//     token (AccessToken, the same grants), ICE servers; presence in Redis
//     (ioredis pipeline); call.updated to the members on a first join.
//   POST /api/calls/initiate    verify, check the caller and the target
//     (statement 1), CreateRoom (RoomServiceClient), insert the call and
//     both participants (statement 2, one CTE), token, call.invite.
// Named prepared statements (pg), a Pool of PEER_POOL connections, one
// Node process (the stack's deployment unit).
//
// What it skips (nchat-rtc does these): rate limiting (one Redis round
// trip per request in nchat-rtc), the per-transaction identity and
// statement timeout (the peer sets its role (nchat_rtc_system) once per connection), the
// outgoing webhook outbox, channel calls and group calls in initiate, the
// request id / access log / metrics, and the HTTP hardening of the front
// door (limits, slow-client guard).
'use strict';
const crypto = require('crypto');
const http = require('http');
const { Pool } = require('pg');
const { jwtVerify } = require('jose');
const { AccessToken, RoomServiceClient, TrackSource } = require('livekit-server-sdk');
const Redis = require('ioredis');

const env = process.env;
const PORT = Number(env.PEER_PORT || 8090);
const SECRET = new TextEncoder().encode(env.AUTH_JWT_SECRET || '');
const LK_KEY = env.LIVEKIT_API_KEY;
const LK_SECRET = env.LIVEKIT_API_SECRET;
const LK_URL = env.LIVEKIT_URL || '';
const LK_HTTP = LK_URL.replace(/^ws/, 'http');
const CAP = Number(env.MAX_ROOM_PARTICIPANTS || 100);
const RING_S = Number(env.RING_TIMEOUT_SECONDS || 45);
const TOKEN_TTL = Number(env.LIVEKIT_TOKEN_TTL_SECONDS || 3600);
const PRESENCE_TTL = Number(env.PRESENCE_TTL_SECONDS || 120);
const CLAIMS = 'https://hasura.io/jwt/claims';
const TERMINAL = new Set(['ended', 'missed', 'declined', 'failed']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const pool = new Pool({ connectionString: env.DATABASE_URL, max: Number(env.PEER_POOL || 10) });
pool.on('connect', (c) => {
  // service context for the session (row-level security), once per connection
  c.query("SELECT set_config('role', 'nchat_rtc_system', false)").catch(() => {});
  if (env.PEER_DB_ROLE) c.query(`SET ROLE "${env.PEER_DB_ROLE.replace(/"/g, '')}"`).catch(() => {});
});
const redis = new Redis(env.REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
const rooms = new RoomServiceClient(LK_HTTP, LK_KEY, LK_SECRET);

// The realtime event script of nchat-rtc (src/events.c): replay log + publish.
const PUBLISH_LUA =
  "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])\n" +
  "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n" +
  "redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[1])\n" +
  'return id\n';
redis.defineCommand('ncPublish', { numberOfKeys: 2, lua: PUBLISH_LUA });
function publishUser(user, type, data) {
  const ev = JSON.stringify({ type, data });
  return redis.ncPublish(`nchat:rtlog:user:${user}`, `nchat:rt:user:${user}`, ev, 1000, 600000)
    .catch(() => {});
}

const SQL_JOIN_READ = {
  name: 'peer_join_read',
  text: `SELECT c.status, c.call_type, c.livekit_room_name AS room, c.initiator_id::text AS initiator,
           COALESCE(c.max_participants, $3::int) AS cap,
           (SELECT p.status FROM nchat_call_participants p WHERE p.call_id = c.id AND p.user_id = $2::uuid) AS pst,
           c.channel_id IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m
             WHERE m.channel_id = c.channel_id AND m.user_id = $2::uuid) AS member,
           (SELECT count(*) FROM nchat_call_participants p WHERE p.call_id = c.id AND p.status = 'joined')::int AS joined,
           (SELECT display_name FROM nchat_users WHERE id = $2::uuid) AS name
         FROM nchat_calls c WHERE c.id = $1::uuid`,
};
const SQL_JOIN_WRITE = {
  name: 'peer_join_write',
  text: `WITH p AS (INSERT INTO nchat_call_participants (call_id, user_id, role, status, joined_at, livekit_identity)
           VALUES ($1, $2::uuid, 'participant', 'joined', now(), $2::text)
           ON CONFLICT (call_id, user_id) DO UPDATE SET status = 'joined', joined_at = now(), left_at = NULL,
             livekit_identity = EXCLUDED.livekit_identity RETURNING 1),
         c AS (UPDATE nchat_calls SET status = 'active', started_at = COALESCE(started_at, now())
           WHERE id = $1 AND status = 'ringing' AND initiator_id IS DISTINCT FROM $2::uuid RETURNING status)
         SELECT (SELECT status FROM c) AS activated,
           (SELECT json_agg(user_id::text) FROM nchat_call_participants WHERE call_id = $1
              AND user_id IS NOT NULL AND status <> 'removed') AS members`,
};
const SQL_INI_CHECK = {
  name: 'peer_initiate_check',
  text: `SELECT (SELECT display_name FROM nchat_users WHERE id = $1::uuid) AS name,
           EXISTS (SELECT 1 FROM nchat_users WHERE id = $1::uuid) AS caller,
           EXISTS (SELECT 1 FROM nchat_users WHERE id = $2::uuid) AS target`,
};
const SQL_INI_INSERT = {
  name: 'peer_initiate_insert',
  text: `WITH c AS (INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id,
             is_group_call, metadata, max_participants, ring_expires_at)
           VALUES ($1, $2, $3, 'ringing', $4, false, '{}'::jsonb, $5::int, now() + make_interval(secs => $6::int))
           RETURNING id)
         INSERT INTO nchat_call_participants (call_id, user_id, role, status, joined_at, livekit_identity)
         SELECT c.id, x.u, x.role, x.st, x.j, x.u::text FROM c,
           (VALUES ($4::uuid, 'initiator', 'joined', now()), ($7::uuid, 'participant', 'ringing', NULL::timestamptz))
             AS x(u, role, st, j)`,
};

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text) });
  res.end(text);
}
const fail = (res, status, code, message) => send(res, status, { error: { code, message } });

async function user(req) {
  const h = req.headers.authorization || '';
  if (!h.startsWith('Bearer ')) return null;
  try {
    const { payload } = await jwtVerify(h.slice(7), SECRET, { algorithms: ['HS256'], clockTolerance: 30 });
    const c = payload[CLAIMS] || {};
    const id = c['x-hasura-user-id'] || payload.sub;
    return UUID.test(id || '') ? id.toLowerCase() : null;
  } catch (e) {
    return null;
  }
}

function sources(type) {
  if (type === 'audio') return [TrackSource.MICROPHONE];
  if (type === 'video') return [TrackSource.CAMERA, TrackSource.MICROPHONE,
    TrackSource.SCREEN_SHARE, TrackSource.SCREEN_SHARE_AUDIO];
  return [TrackSource.SCREEN_SHARE, TrackSource.SCREEN_SHARE_AUDIO, TrackSource.MICROPHONE];
}

function iceServers(uid) {
  if (!env.TURN_URL || !env.TURN_SECRET) return [{ urls: [env.STUN_URLS || 'stun:stun.l.google.com:19302'] }];
  const username = `${Math.floor(Date.now() / 1000) + 3600}:${uid}`;
  const credential = crypto.createHmac('sha1', env.TURN_SECRET).update(username).digest('base64');
  const host = env.TURN_URL.replace(/^turns?:/, '');
  return [{ urls: [`stun:${host}`] },
    { urls: [`turn:${host}?transport=udp`, `turn:${host}?transport=tcp`], username, credential }];
}

async function joinFields(uid, name, room, type) {
  const at = new AccessToken(LK_KEY, LK_SECRET, { identity: uid, name: name || undefined, ttl: TOKEN_TTL });
  at.addGrant({ room, roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true,
    canPublishSources: sources(type) });
  return { roomName: room, token: await at.toJwt(), iceServers: iceServers(uid), livekitUrl: LK_URL,
    expiresAt: new Date((Math.floor(Date.now() / 1000) + TOKEN_TTL) * 1000).toISOString().replace(/\.\d+Z$/, 'Z') };
}

function presence(call, uid) {
  const set = `nchat:presence:call:${call}`;
  redis.pipeline().sadd(set, uid).expire(set, PRESENCE_TTL)
    .set(`nchat:busy:${uid}`, call, 'EX', PRESENCE_TTL).exec().catch(() => {});
}

async function join(req, res, call) {
  const uid = await user(req);
  if (!uid) return fail(res, 401, 'unauthorized', 'missing or bad token');
  if (!UUID.test(call)) return fail(res, 400, 'bad_request', 'id is not a UUID');
  const r = await pool.query({ ...SQL_JOIN_READ, values: [call, uid, CAP] });
  if (r.rowCount === 0) return fail(res, 404, 'not_found', 'call not found');
  const c = r.rows[0];
  if (c.pst === null && !c.member) return fail(res, 403, 'forbidden', 'not invited to this call');
  if (TERMINAL.has(c.status)) return fail(res, 410, 'gone', `the call is ${c.status}`);
  if (c.pst === 'removed') return fail(res, 403, 'forbidden', 'removed from this call');
  let members = null;
  let status = c.status;
  const answers = c.status === 'ringing' && c.initiator !== uid;
  if (c.pst !== 'joined' || answers) {
    if (c.pst !== 'joined' && c.joined >= c.cap) return fail(res, 409, 'conflict', 'the call is full');
    const w = await pool.query({ ...SQL_JOIN_WRITE, values: [call, uid] });
    if (w.rows[0].activated) status = 'active';
    members = w.rows[0].members || [];
  }
  const out = await joinFields(uid, c.name, c.room, c.call_type);
  out.callType = c.call_type;
  send(res, 200, out);
  presence(call, uid);
  if (members) for (const m of members) publishUser(m, 'call.updated', { callId: call, status, reason: 'joined' });
}

async function body(req) {
  const chunks = [];
  for await (const ch of req) chunks.push(ch);
  try { return JSON.parse(Buffer.concat(chunks).toString() || '{}'); } catch (e) { return null; }
}

async function initiate(req, res) {
  const uid = await user(req);
  if (!uid) return fail(res, 401, 'unauthorized', 'missing or bad token');
  const b = await body(req);
  if (!b || typeof b !== 'object') return fail(res, 400, 'bad_request', 'body must be a JSON object');
  const target = b.targetUserId;
  const type = b.type;
  if (!UUID.test(target || '')) return fail(res, 400, 'bad_request', 'targetUserId is required');
  if (!['audio', 'video', 'screen_share'].includes(type)) return fail(res, 400, 'bad_request', 'bad type');
  if (target.toLowerCase() === uid) return fail(res, 400, 'bad_request', 'cannot call only yourself');
  const chk = await pool.query({ ...SQL_INI_CHECK, values: [uid, target] });
  if (!chk.rows[0].caller) return fail(res, 403, 'forbidden', 'the caller is not a registered user');
  if (!chk.rows[0].target) return fail(res, 404, 'not_found', `user ${target} not found`);
  const id = crypto.randomUUID();
  const room = `call-${id}`;
  try {
    await rooms.createRoom({ name: room, emptyTimeout: RING_S + 30, departureTimeout: 30, maxParticipants: CAP,
      metadata: JSON.stringify({ callId: id, callType: type }) });
  } catch (e) {
    return fail(res, 502, 'livekit_unavailable', 'LiveKit refused');
  }
  try {
    await pool.query({ ...SQL_INI_INSERT, values: [id, room, type, uid, CAP, RING_S, target.toLowerCase()] });
  } catch (e) {
    rooms.deleteRoom(room).catch(() => {});
    return fail(res, 500, 'internal', 'the call could not be recorded');
  }
  const out = { callId: id, ...(await joinFields(uid, chk.rows[0].name, room, type)), participants: 2 };
  send(res, 201, out);
  publishUser(target.toLowerCase(), 'call.invite', { callId: id, callType: type, channelId: null,
    from: { userId: uid, displayName: chk.rows[0].name }, roomName: room });
}

const JOIN_PATH = /^\/api\/calls\/([^/]+)\/join$/;
const cluster = require('cluster');
const PROCS = Number(env.PEER_PROCESSES || 1);
if (PROCS > 1 && cluster.isPrimary) {
  // PEER_PROCESSES > 1: node:cluster, one pool per process, one shared port
  for (let i = 0; i < PROCS; i++) cluster.fork();
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill('SIGTERM'); process.exit(0); });
  return;
}
const server = http.createServer((req, res) => {
  const m = req.method === 'POST' ? JOIN_PATH.exec(req.url) : null;
  let p;
  if (m) p = join(req, res, m[1]);
  else if (req.method === 'POST' && req.url === '/api/calls/initiate') p = initiate(req, res);
  else if (req.url === '/healthz') return send(res, 200, { status: 'ok' });
  else return fail(res, 404, 'not_found', 'no such route');
  p.catch((e) => { if (!res.headersSent) fail(res, 503, 'unavailable', String(e.message || e)); });
});
server.keepAliveTimeout = 65000;
server.listen(PORT, '127.0.0.1', () => process.stdout.write(`peer listening on ${PORT}\n`));
process.on('SIGTERM', () => { server.close(); pool.end(); redis.disconnect(); process.exit(0); });
