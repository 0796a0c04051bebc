#!/usr/bin/env node
// Self-test of the stand-ins: starts livekit.js and s3.js on free ports and checks them
// against the official SDK clients / signer. Prints "N passed, N failed"; exit 0/1.
'use strict';

const { spawn } = require('child_process');
const http = require('http');
const os = require('os');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const P = require('@livekit/protocol');
const {
  AccessToken, RoomServiceClient, EgressClient, IngressClient, WebhookReceiver, EncodedFileOutput, S3Upload,
} = require('livekit-server-sdk');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

const KEY = 'devkey';
const SECRET = 'secret';
const S3_KEY = 'nchat-test-key';
const S3_SECRET = 'nchat-test-secret';
const BUCKET = 'recordings';

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    process.stdout.write(`ok   - ${name}\n`);
  } catch (e) {
    failed++;
    process.stdout.write(`FAIL - ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}\n`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg || 'assertion failed');
}
function eq(a, b, msg) {
  if (a !== b) throw new Error(`${msg || 'mismatch'}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start(script, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, script), ...args], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]), stderr: () => err });
    });
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}: ${err}`)));
    setTimeout(() => reject(new Error(`${script} did not start: ${err}`)), 10000).unref();
  });
}

function request(port, method, p, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, buf, text: buf.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function control(port, method, p, obj) {
  const body = obj === undefined ? undefined : JSON.stringify(obj);
  const r = await request(port, method, p, body ? { 'Content-Type': 'application/json' } : {}, body);
  return { status: r.status, json: JSON.parse(r.text) };
}
async function token(grant, ttl = '10m') {
  const at = new AccessToken(KEY, SECRET, { ttl });
  at.addGrant(grant);
  return at.toJwt();
}

// RFC 3986 encoding as SigV4 wants it
const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const encodeKeyPath = (k) => k.split('/').map(rfc3986).join('/');
function queryString(q) {
  return Object.keys(q).map((k) => `${rfc3986(k)}=${rfc3986(q[k])}`).join('&');
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'standin-selftest-'));
  const lk = await start('livekit.js', ['--port', '0'], { LIVEKIT_API_KEY: KEY, LIVEKIT_API_SECRET: SECRET });
  const s3 = await start('s3.js', ['--port', '0', '--dir', tmp, '--bucket', BUCKET], {
    S3_ACCESS_KEY: S3_KEY, S3_SECRET_KEY: S3_SECRET, S3_REGION: 'us-east-1',
  });
  const lkUrl = `http://127.0.0.1:${lk.port}`;
  const rooms = new RoomServiceClient(lkUrl, KEY, SECRET);
  const egress = new EgressClient(lkUrl, KEY, SECRET);
  const ingress = new IngressClient(lkUrl, KEY, SECRET);

  try {
    // ------------------------------------------------------------ LiveKit
    let demoSid;
    await check('CreateRoom via RoomServiceClient (JSON)', async () => {
      const room = await rooms.createRoom({ name: 'demo', emptyTimeout: 300, maxParticipants: 10, metadata: 'm1' });
      assert(/^RM_/.test(room.sid), `sid ${room.sid}`);
      eq(room.name, 'demo');
      eq(room.maxParticipants, 10);
      assert(room.creationTime > 0n, 'creationTime');
      demoSid = room.sid;
    });
    await check('CreateRoom via raw protobuf POST returns the existing room', async () => {
      const body = Buffer.from(new P.CreateRoomRequest({ name: 'demo', emptyTimeout: 300, maxParticipants: 10 }).toBinary());
      eq(body.toString('hex'), '0a0464656d6f10ac02180a', 'reference encoding');
      const r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/CreateRoom', {
        'Content-Type': 'application/protobuf', Authorization: `Bearer ${await token({ roomCreate: true })}`,
      }, body);
      eq(r.status, 200, 'status');
      eq(r.headers['content-type'], 'application/protobuf');
      const room = P.Room.fromBinary(new Uint8Array(r.buf));
      eq(room.sid, demoSid, 'same sid');
    });
    await check('JSON response is snake_case with defaults', async () => {
      const r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', {
        'Content-Type': 'application/json', Authorization: `Bearer ${await token({ roomList: true })}`,
      }, '{}');
      eq(r.status, 200);
      const j = JSON.parse(r.text);
      eq(j.rooms[0].name, 'demo');
      eq(typeof j.rooms[0].creation_time, 'string', 'int64 as string');
      eq(j.rooms[0].num_participants, 0, 'defaults emitted');
    });
    await check('grant refusal: roomList token calling CreateRoom -> 401 permissions denied', async () => {
      const r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/CreateRoom', {
        'Content-Type': 'application/json', Authorization: `Bearer ${await token({ roomList: true })}`,
      }, '{"name":"x"}');
      eq(r.status, 401);
      const j = JSON.parse(r.text);
      eq(j.code, 'unauthenticated');
      eq(j.msg, 'permissions denied');
    });
    await check('roomAdmin for another room is refused', async () => {
      const r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListParticipants', {
        'Content-Type': 'application/json', Authorization: `Bearer ${await token({ roomAdmin: true, room: 'other' })}`,
      }, '{"room":"demo"}');
      eq(r.status, 401);
    });
    await check('plain-text 401s for bad Authorization header / bad token', async () => {
      let r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', {
        'Content-Type': 'application/json', Authorization: 'Token abc',
      }, '{}');
      eq(r.status, 401);
      eq(r.text, 'invalid authorization header. Must start with Bearer ');
      const bad = await new AccessToken(KEY, 'wrong-secret', { ttl: '1m' }).toJwt();
      r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', {
        'Content-Type': 'application/json', Authorization: `Bearer ${bad}`,
      }, '{}');
      eq(r.status, 401);
      assert(r.text.startsWith(`invalid token: ${bad}, error:`), r.text);
      const unknown = await new AccessToken('nokey', SECRET, { ttl: '1m' }).toJwt();
      r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', {
        'Content-Type': 'application/json', Authorization: `Bearer ${unknown}`,
      }, '{}');
      eq(r.text, 'invalid API key: nokey');
    });
    await check('bad_route for GET, unknown method and wrong Content-Type', async () => {
      const auth = { Authorization: `Bearer ${await token({ roomList: true })}` };
      let r = await request(lk.port, 'GET', '/twirp/livekit.RoomService/ListRooms', auth);
      eq(r.status, 404);
      eq(JSON.parse(r.text).code, 'bad_route');
      r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/Nope', { ...auth, 'Content-Type': 'application/json' }, '{}');
      eq(JSON.parse(r.text).code, 'bad_route');
      r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', { ...auth, 'Content-Type': 'text/plain' }, '{}');
      eq(r.status, 404);
      eq(JSON.parse(r.text).code, 'bad_route');
    });
    await check('fault injection: unavailable, error, drop', async () => {
      let c = await control(lk.port, 'POST', '/_test/fault', { method: 'ListRooms', mode: 'unavailable', count: 1 });
      eq(c.status, 200);
      const hdr = { 'Content-Type': 'application/json', Authorization: `Bearer ${await token({ roomList: true })}` };
      let r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', hdr, '{}');
      eq(r.status, 503);
      eq(JSON.parse(r.text).code, 'unavailable');
      r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', hdr, '{}');
      eq(r.status, 200, 'fault consumed');
      await control(lk.port, 'POST', '/_test/fault', { method: '*', mode: 'error', code: 'not_found', msg: 'nope' });
      r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', hdr, '{}');
      eq(r.status, 404);
      eq(JSON.parse(r.text).msg, 'nope');
      await control(lk.port, 'POST', '/_test/fault', { method: 'ListRooms', mode: 'drop' });
      let dropped = false;
      try { await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', hdr, '{}'); } catch (_) { dropped = true; }
      assert(dropped, 'socket dropped');
      await control(lk.port, 'POST', '/_test/fault', { method: 'ListRooms', mode: 'slow', delayMs: 200 });
      const t0 = Date.now();
      r = await request(lk.port, 'POST', '/twirp/livekit.RoomService/ListRooms', hdr, '{}');
      eq(r.status, 200);
      assert(Date.now() - t0 >= 190, 'slow');
    });
    await check('recorded requests (method filter, grants, decoded request)', async () => {
      const c = await control(lk.port, 'GET', '/_test/requests?method=CreateRoom');
      assert(c.json.length >= 2, 'two CreateRoom calls');
      const [a, b] = c.json;
      eq(a.service, 'RoomService');
      eq(a.grants.roomCreate, true);
      eq(a.request.name, 'demo');
      eq(a.request.maxParticipants, 10);
      assert(/application\/json/.test(a.contentType), a.contentType);
      eq(b.contentType, 'application/protobuf');
      const since = await control(lk.port, 'GET', `/_test/requests?since=${b.seq}`);
      assert(since.json.every((x) => x.seq > b.seq), 'since filter');
    });
    await check('participants, MutePublishedTrack, RemoveParticipant', async () => {
      const c = await control(lk.port, 'POST', '/_test/participants', {
        room: 'demo', identity: 'alice', name: 'Alice',
        tracks: [{ sid: 'TR_a1', type: 'AUDIO', source: 'MICROPHONE', muted: false }],
      });
      eq(c.status, 200);
      const ps = await rooms.listParticipants('demo');
      eq(ps.length, 1);
      eq(ps[0].identity, 'alice');
      const t = await rooms.mutePublishedTrack('demo', 'alice', 'TR_a1', true);
      eq(t.muted, true);
      let err = null;
      try { await rooms.mutePublishedTrack('demo', 'alice', 'TR_none', true); } catch (e) { err = e; }
      assert(err && err.status === 404 && /track is not found/.test(err.message), `not_found: ${err && err.message}`);
      const p = await rooms.updateParticipant('demo', 'alice', { metadata: 'meta', attributes: { a: '1' } });
      eq(p.metadata, 'meta');
      await rooms.removeParticipant('demo', 'alice');
      err = null;
      try { await rooms.removeParticipant('demo', 'alice'); } catch (e) { err = e; }
      assert(err && err.status === 404, 'second remove -> 404');
    });
    await check('Egress start/list/stop lifecycle', async () => {
      const out = new EncodedFileOutput({
        filepath: 'rooms/{room_name}/{time}.mp4',
        output: { case: 's3', value: new S3Upload({ bucket: BUCKET, region: 'us-east-1', endpoint: `http://127.0.0.1:${s3.port}`, forcePathStyle: true, accessKey: S3_KEY, secret: S3_SECRET }) },
      });
      const info = await egress.startRoomCompositeEgress('demo', { file: out }, { layout: 'grid' });
      assert(/^EG_/.test(info.egressId), info.egressId);
      eq(info.status, P.EgressStatus.EGRESS_STARTING);
      eq(info.roomId, demoSid);
      eq(info.request.case, 'roomComposite');
      await sleep(150);
      let list = await egress.listEgress({ roomName: 'demo', active: true });
      eq(list.length, 1);
      eq(list[0].status, P.EgressStatus.EGRESS_ACTIVE);
      const stopped = await egress.stopEgress(info.egressId);
      eq(stopped.status, P.EgressStatus.EGRESS_ENDING);
      await sleep(200);
      list = await egress.listEgress({ egressId: info.egressId });
      eq(list[0].status, P.EgressStatus.EGRESS_COMPLETE);
      eq(list[0].fileResults.length, 1);
      let err = null;
      try { await egress.stopEgress(info.egressId); } catch (e) { err = e; }
      assert(err && err.status === 412, `412: ${err && err.status}`);
      err = null;
      try { await egress.startRoomCompositeEgress('nosuchroom', { file: out }); } catch (e) { err = e; }
      assert(err && err.status === 404, 'start in missing room -> 404');
    });
    await check('Ingress create/update/list/delete', async () => {
      const info = await ingress.createIngress(P.IngressInput.RTMP_INPUT, { name: 'cam', roomName: 'demo', participantIdentity: 'streamer' });
      assert(/^IN_/.test(info.ingressId));
      eq(info.url, 'rtmp://127.0.0.1:1935/live');
      assert(info.streamKey.length > 0, 'stream key');
      eq(info.reusable, true);
      const upd = await ingress.updateIngress(info.ingressId, { name: 'cam2', enabled: false });
      eq(upd.name, 'cam2');
      eq(upd.enabled, false);
      const list = await ingress.listIngress({ roomName: 'demo' });
      eq(list.length, 1);
      await ingress.deleteIngress(info.ingressId);
      let err = null;
      try { await ingress.deleteIngress(info.ingressId); } catch (e) { err = e; }
      assert(err && err.status === 404, 'delete twice -> 404');
    });
    await check('verify-token control endpoint', async () => {
      const at = new AccessToken(KEY, SECRET, { identity: 'alice', ttl: '10m' });
      at.addGrant({ roomJoin: true, room: 'demo' });
      const t = await at.toJwt();
      let c = await control(lk.port, 'POST', '/_test/verify-token', { token: t });
      eq(c.json.ok, true);
      eq(c.json.header.alg, 'HS256');
      eq(c.json.claims.video.room, 'demo');
      c = await control(lk.port, 'POST', '/_test/verify-token', { token: t, secret: 'other' });
      eq(c.json.ok, false);
    });
    await check('sign-webhook output verifies with WebhookReceiver', async () => {
      const c = await control(lk.port, 'POST', '/_test/sign-webhook', {
        event: { event: 'participant_joined', room: { sid: 'RM_x', name: 'demo' }, participant: { sid: 'PA_x', identity: 'bob', state: 'ACTIVE' } },
      });
      eq(c.status, 200);
      const ev = await new WebhookReceiver(KEY, SECRET).receive(c.json.body, c.json.authorization);
      eq(ev.event, 'participant_joined');
      eq(ev.participant.identity, 'bob');
      assert(/^EV_/.test(ev.id), 'id filled');
      assert(ev.createdAt > 0n, 'createdAt filled');
      let bad = false;
      try { await new WebhookReceiver(KEY, SECRET).receive(c.json.body.replace('bob', 'eve'), c.json.authorization); } catch (_) { bad = true; }
      assert(bad, 'tampered body rejected');
    });
    await check('auto webhooks + /_test/webhook delivery to a receiver', async () => {
      const got = [];
      const recv = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (d) => chunks.push(d));
        req.on('end', async () => {
          const body = Buffer.concat(chunks).toString('utf8');
          try {
            eq(req.headers['content-type'], 'application/webhook+json');
            const ev = await new WebhookReceiver(KEY, SECRET).receive(body, req.headers.authorization);
            got.push(ev.event);
            res.end('ok');
          } catch (e) {
            res.statusCode = 401;
            res.end(String(e.message));
          }
        });
      });
      await new Promise((r) => recv.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${recv.address().port}/hook`;
      try {
        const c = await control(lk.port, 'POST', '/_test/webhook', { url, event: { event: 'room_started', room: { name: 'x' } } });
        eq(c.json.status, 200);
        await control(lk.port, 'POST', '/_test/webhooks/auto', { url, retryDelaysMs: [50, 50] });
        await rooms.createRoom({ name: 'hooked' });
        await control(lk.port, 'POST', '/_test/participants', { room: 'hooked', identity: 'carol' });
        await rooms.deleteRoom('hooked');
        for (let i = 0; i < 50 && got.length < 5; i++) await sleep(20);
        eq(got.join(','), 'room_started,room_started,participant_joined,participant_left,room_finished');
        const log = await control(lk.port, 'GET', '/_test/webhooks');
        assert(log.json.every((x) => x.delivered), 'log says delivered');
      } finally {
        recv.close();
        await control(lk.port, 'POST', '/_test/webhooks/auto', { url: null });
      }
    });
    await check('state + reset', async () => {
      let c = await control(lk.port, 'GET', '/_test/state');
      assert(c.json.rooms.some((r) => r.room.name === 'demo'), 'demo in state');
      assert(c.json.egress.length === 1, 'egress in state');
      await control(lk.port, 'POST', '/_test/reset');
      c = await control(lk.port, 'GET', '/_test/state');
      eq(c.json.rooms.length, 0);
      c = await control(lk.port, 'GET', '/_test/requests');
      eq(c.json.length, 0);
    });

    // ------------------------------------------------------------ S3
    const signer = new SignatureV4({
      credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_SECRET }, region: 'us-east-1', service: 's3',
      sha256: Sha256, uriEscapePath: false,
    });
    const badSigner = new SignatureV4({
      credentials: { accessKeyId: S3_KEY, secretAccessKey: 'not-the-secret' }, region: 'us-east-1', service: 's3',
      sha256: Sha256, uriEscapePath: false,
    });
    const host = `127.0.0.1:${s3.port}`;
    const objKey = 'rooms/demo/rec 1+(x).mp4';
    const objPath = `/${BUCKET}/${encodeKeyPath(objKey)}`;
    const payload = Buffer.from(`fake mp4 ${crypto.randomBytes(8).toString('hex')}`);
    const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
    async function signed(s, method, p, body, extraHeaders = {}, query = {}) {
      const reqObj = {
        method, protocol: 'http:', hostname: '127.0.0.1', port: s3.port, path: p, query,
        headers: { host, 'x-amz-content-sha256': body ? sha(body) : sha(Buffer.alloc(0)), ...extraHeaders },
        body,
      };
      const out = await s.sign(reqObj);
      const qs = queryString(query);
      return request(s3.port, method, p + (qs ? `?${qs}` : ''), out.headers, body);
    }

    await check('S3 PUT/GET/DELETE signed with @smithy/signature-v4', async () => {
      let r = await signed(signer, 'PUT', objPath, payload, { 'content-type': 'video/mp4', 'content-length': String(payload.length) });
      eq(r.status, 200, `PUT ${r.text}`);
      r = await signed(signer, 'GET', objPath);
      eq(r.status, 200, `GET ${r.text}`);
      eq(r.buf.toString(), payload.toString(), 'content');
      r = await signed(signer, 'GET', `/${BUCKET}`, undefined, {}, { 'list-type': '2', prefix: 'rooms/demo/' });
      eq(r.status, 200, `LIST ${r.text}`);
      assert(r.text.includes('<Key>rooms/demo/rec 1+(x).mp4</Key>'), r.text);
    });
    await check('S3 UNSIGNED-PAYLOAD PUT accepted', async () => {
      const r = await signed(signer, 'PUT', `/${BUCKET}/unsigned.txt`, Buffer.from('u'), { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
      eq(r.status, 200, r.text);
    });
    await check('S3 request signed with a different secret -> 403 SignatureDoesNotMatch', async () => {
      const r = await signed(badSigner, 'GET', objPath);
      eq(r.status, 403);
      assert(r.text.includes('<Code>SignatureDoesNotMatch</Code>'), r.text);
    });
    await check('S3 tampered request (path changed after signing) -> 403', async () => {
      const reqObj = { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', path: objPath, query: {}, headers: { host, 'x-amz-content-sha256': sha(Buffer.alloc(0)) } };
      const out = await signer.sign(reqObj);
      const r = await request(s3.port, 'GET', `/${BUCKET}/unsigned.txt`, out.headers);
      eq(r.status, 403);
      assert(r.text.includes('SignatureDoesNotMatch'), r.text);
    });
    await check('S3 body changed after signing -> 400 XAmzContentSHA256Mismatch', async () => {
      const reqObj = { method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', path: objPath, query: {}, headers: { host, 'x-amz-content-sha256': sha(payload) }, body: payload };
      const out = await signer.sign(reqObj);
      const r = await request(s3.port, 'PUT', objPath, out.headers, Buffer.from('evil'));
      eq(r.status, 400);
      assert(r.text.includes('XAmzContentSHA256Mismatch'), r.text);
    });
    await check('S3 anonymous request -> 403 AccessDenied', async () => {
      const r = await request(s3.port, 'GET', objPath);
      eq(r.status, 403);
      assert(r.text.includes('<Code>AccessDenied</Code>'), r.text);
    });
    async function presignedUrl(s, p, expiresIn, signingDate) {
      // like the AWS S3 presigner: payload hash UNSIGNED-PAYLOAD, that header neither hoisted nor signed
      const out = await s.presign({
        method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: s3.port, path: p, query: {},
        headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      }, {
        expiresIn, signingDate,
        unhoistableHeaders: new Set(['x-amz-content-sha256']), unsignableHeaders: new Set(['x-amz-content-sha256']),
      });
      return `${p}?${queryString(out.query)}`;
    }
    await check('S3 presigned GET accepted', async () => {
      const u = await presignedUrl(signer, objPath, 300);
      const r = await request(s3.port, 'GET', u);
      eq(r.status, 200, r.text);
      eq(r.buf.toString(), payload.toString());
    });
    await check('S3 presigned GET tampered -> 403', async () => {
      const u = await presignedUrl(signer, objPath, 300);
      const tampered = u.replace(/X-Amz-Signature=([0-9a-f])/, (m, c) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
      let r = await request(s3.port, 'GET', tampered);
      eq(r.status, 403);
      assert(r.text.includes('SignatureDoesNotMatch'), r.text);
      r = await request(s3.port, 'GET', u.replace('X-Amz-Expires=300', 'X-Amz-Expires=301'));
      eq(r.status, 403, 'changed expiry');
      const other = await presignedUrl(badSigner, objPath, 300);
      r = await request(s3.port, 'GET', other);
      eq(r.status, 403, 'wrong secret');
    });
    await check('S3 presigned GET expired -> 403 Request has expired', async () => {
      const u = await presignedUrl(signer, objPath, 60, new Date(Date.now() - 3600 * 1000));
      const r = await request(s3.port, 'GET', u);
      eq(r.status, 403);
      assert(r.text.includes('Request has expired'), r.text);
    });
    await check('S3 fault down -> 503, then recovers; request log', async () => {
      await control(s3.port, 'POST', '/_test/fault', { mode: 'down', count: 1 });
      let r = await signed(signer, 'GET', objPath);
      eq(r.status, 503);
      assert(r.text.includes('ServiceUnavailable'), r.text);
      r = await signed(signer, 'GET', objPath);
      eq(r.status, 200);
      const log = await control(s3.port, 'GET', '/_test/requests');
      const last = log.json[log.json.length - 1];
      eq(last.signatureOk, true);
      eq(last.status, 200);
      assert(log.json.some((x) => x.signatureOk === false && x.status === 403), 'refusals logged');
    });
    await check('S3 DELETE signed', async () => {
      let r = await signed(signer, 'DELETE', objPath);
      eq(r.status, 204, r.text);
      r = await signed(signer, 'GET', objPath);
      eq(r.status, 404, 'gone');
      assert(r.text.includes('NoSuchKey'), r.text);
    });
  } finally {
    lk.child.kill('SIGTERM');
    s3.child.kill('SIGTERM');
    await Promise.all([lk.child, s3.child].map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)))));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  process.stdout.write(`selftest crashed: ${e.stack || e}\n${passed} passed, ${failed + 1} failed\n`);
  process.exit(1);
});
