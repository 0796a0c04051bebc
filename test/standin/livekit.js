#!/usr/bin/env node
// LiveKit server stand-in for the nchat-rtc integration tests.
//
// Speaks the LiveKit server API (Twirp over HTTP, protobuf or JSON bodies) for
// RoomService, Egress and Ingress with in-memory state, authorises requests the
// way livekit-server does (JWT HS256, per-method grants), sends signed webhooks,
// and exposes a JSON control API under /_test/ for the tests.
//
// Usage: node livekit.js --port 0 [--host 127.0.0.1]
// Env:   LIVEKIT_API_KEY / LIVEKIT_API_SECRET (default devkey / secret),
//        LIVEKIT_KEYS ("key1:secret1,key2:secret2", extra accepted keys),
//        LIVEKIT_INGRESS_RTMP_URL (default rtmp://127.0.0.1:1935/live),
//        LIVEKIT_INGRESS_WHIP_URL (default http://127.0.0.1:8080/w).
'use strict';

const http = require('http');
const crypto = require('crypto');
const P = require('@livekit/protocol');
const { AccessToken, TokenVerifier, WebhookReceiver } = require('livekit-server-sdk');

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const out = { port: 7880, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--host') out.host = argv[++i];
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node livekit.js --port <n|0> [--host 127.0.0.1]\n');
      process.exit(0);
    } else {
      process.stderr.write(`livekit-standin: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return out;
}

const API_KEY = process.env.LIVEKIT_API_KEY || 'devkey';
const API_SECRET = process.env.LIVEKIT_API_SECRET || 'secret';
const KEYS = new Map([[API_KEY, API_SECRET]]);
for (const pair of (process.env.LIVEKIT_KEYS || '').split(',')) {
  const i = pair.indexOf(':');
  if (i > 0) KEYS.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
}
const RTMP_URL = process.env.LIVEKIT_INGRESS_RTMP_URL || 'rtmp://127.0.0.1:1935/live';
const WHIP_URL = process.env.LIVEKIT_INGRESS_WHIP_URL || 'http://127.0.0.1:8080/w';
const TOKEN_LEEWAY_S = 60; // livekit-server's JWT leeway

// ---------------------------------------------------------------- helpers
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randId(prefix, n = 12) {
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[bytes[i] % ALNUM.length];
  return prefix + s;
}
const nowSec = () => BigInt(Math.floor(Date.now() / 1000));
const nowMs = () => BigInt(Date.now());
const nowNs = () => BigInt(Date.now()) * 1000000n;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class TwirpError extends Error {
  constructor(code, msg, meta) {
    super(msg);
    this.code = code;
    this.meta = meta;
  }
}
const TWIRP_STATUS = {
  canceled: 408, unknown: 500, invalid_argument: 400, malformed: 400, deadline_exceeded: 408,
  not_found: 404, bad_route: 404, already_exists: 409, permission_denied: 403,
  unauthenticated: 401, resource_exhausted: 429, failed_precondition: 412, aborted: 409,
  out_of_range: 400, unimplemented: 501, internal: 500, unavailable: 503, data_loss: 500,
};

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
function sendTwirpError(res, status, code, msg, meta) {
  const obj = { code, msg };
  if (meta && Object.keys(meta).length) obj.meta = meta;
  sendJson(res, status, obj);
}
function sendText(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
function b64urlJson(seg) {
  return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
}
const j = (msg) => (msg ? msg.toJson() : null); // protobuf JSON (camelCase, defaults omitted)

// ---------------------------------------------------------------- state
const state = {
  rooms: new Map(), // name -> { room: Room, participants: Map<identity, ParticipantInfo> }
  egress: new Map(), // id -> EgressInfo
  ingress: new Map(), // id -> IngressInfo
  requests: [],
  seq: 0,
  faults: [],
  webhookLog: [],
  webhookSeq: 0,
};
const DEFAULT_CONFIG = {
  egressActivateMs: 100, // STARTING -> ACTIVE after this many ms (-1 = never)
  egressCompleteMs: 100, // ENDING -> COMPLETE after StopEgress (-1 = never)
  enableRemoteUnmute: false,
};
let config = { ...DEFAULT_CONFIG };
let autoHook = null; // { url, key, secret, retryDelaysMs }
const timers = new Set();
function later(ms, fn) {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

function resetState() {
  state.rooms.clear();
  state.egress.clear();
  state.ingress.clear();
  state.requests = [];
  state.seq = 0;
  state.faults = [];
  state.webhookLog = [];
  for (const t of timers) clearTimeout(t);
  timers.clear();
  config = { ...DEFAULT_CONFIG };
  autoHook = null;
  hookQueues.clear();
}

const DEFAULT_CODECS = [
  { mime: 'audio/opus' }, { mime: 'audio/red' }, { mime: 'video/VP8' }, { mime: 'video/H264' },
  { mime: 'video/VP9' }, { mime: 'video/AV1' },
];

function newRoom(name, fields = {}) {
  const room = new P.Room({
    sid: randId('RM_'),
    name,
    emptyTimeout: fields.emptyTimeout || 300,
    departureTimeout: fields.departureTimeout || 20,
    maxParticipants: fields.maxParticipants || 0,
    creationTime: nowSec(),
    creationTimeMs: nowMs(),
    turnPassword: randId('', 24),
    enabledCodecs: DEFAULT_CODECS.map((c) => new P.Codec(c)),
    metadata: fields.metadata || '',
  });
  const entry = { room, participants: new Map() };
  state.rooms.set(name, entry);
  emitHook('room_started', { room: roomSnapshot(entry) });
  return entry;
}
function roomSnapshot(entry) {
  const r = entry.room.clone();
  r.numParticipants = entry.participants.size;
  r.numPublishers = [...entry.participants.values()].filter((p) => p.isPublisher).length;
  r.activeRecording = [...state.egress.values()].some(
    (e) => e.roomName === r.name && isActiveEgress(e) && e.request.case === 'roomComposite');
  return r;
}
function mustRoom(name) {
  const e = state.rooms.get(name);
  if (!e) throw new TwirpError('not_found', 'requested room does not exist');
  return e;
}
function mustParticipant(roomName, identity) {
  const e = mustRoom(roomName);
  const p = e.participants.get(identity);
  if (!p) throw new TwirpError('not_found', 'participant does not exist');
  return { entry: e, p };
}
function removeParticipant(entry, identity, reason) {
  const p = entry.participants.get(identity);
  if (!p) return;
  entry.participants.delete(identity);
  const left = p.clone();
  left.state = P.ParticipantInfo_State.DISCONNECTED;
  left.disconnectReason = reason;
  emitHook('participant_left', { room: roomSnapshot(entry), participant: left });
}

const TERMINAL_EGRESS = new Set([
  P.EgressStatus.EGRESS_COMPLETE, P.EgressStatus.EGRESS_FAILED,
  P.EgressStatus.EGRESS_ABORTED, P.EgressStatus.EGRESS_LIMIT_REACHED,
]);
const isActiveEgress = (e) => !TERMINAL_EGRESS.has(e.status);
const egressStatusName = (s) => P.EgressStatus[s];

// ---------------------------------------------------------------- webhooks
async function signWebhook(eventJson, key, secret, ttl) {
  const obj = { ...eventJson };
  if (!obj.id) obj.id = randId('EV_');
  if (!obj.createdAt && !obj.created_at) obj.createdAt = String(nowSec());
  // Build with the @livekit/protocol class (the SDK subclass drops `event`).
  const ev = P.WebhookEvent.fromJson(obj, { ignoreUnknownFields: true });
  const body = ev.toJsonString();
  const sha = crypto.createHash('sha256').update(body).digest('base64');
  const at = new AccessToken(key, secret, { ttl: ttl == null ? '5m' : ttl });
  at.sha256 = sha;
  const authorization = await at.toJwt();
  // self-check with the official receiver
  await new WebhookReceiver(key, secret).receive(body, authorization);
  return { body, authorization, event: ev };
}

function postWebhook(url, body, authorization, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      method: 'POST', hostname: u.hostname, port: u.port || 80, path: u.pathname + u.search,
      headers: {
        'Content-Type': 'application/webhook+json',
        Authorization: authorization,
        'Content-Length': Buffer.byteLength(body),
      },
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

// per-resource FIFO queues like livekit's webhook notifier
const hookQueues = new Map();
function resourceKey(ev) {
  return (ev.egressInfo && ev.egressInfo.egressId) || (ev.ingressInfo && ev.ingressInfo.ingressId) ||
    (ev.room && ev.room.name) || (ev.participant && ev.participant.identity) || (ev.track && ev.track.sid) || '';
}
function emitHook(event, fields) {
  if (!autoHook) return;
  const hook = autoHook;
  const ev = new P.WebhookEvent({ event, id: randId('EV_'), createdAt: nowSec(), ...fields });
  const entry = { seq: ++state.webhookSeq, id: ev.id, event, url: hook.url, attempts: 0, status: null, delivered: false, error: null };
  state.webhookLog.push(entry);
  const key = resourceKey(ev);
  const prev = hookQueues.get(key) || Promise.resolve();
  const next = prev.then(async () => {
    let signed;
    try {
      signed = await signWebhook(ev.toJson(), hook.key, hook.secret);
    } catch (e) {
      entry.error = String(e.message || e);
      return;
    }
    entry.body = signed.body;
    const delays = hook.retryDelaysMs;
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (autoHook !== hook) return; // reset / reconfigured
      entry.attempts++;
      try {
        const r = await postWebhook(hook.url, signed.body, signed.authorization);
        entry.status = r.status;
        entry.error = null;
        const retry = r.status === 429 || (r.status >= 500 && r.status !== 501);
        if (!retry) {
          entry.delivered = r.status >= 200 && r.status < 300;
          process.stderr.write(`livekit-standin: webhook ${event} ${ev.id} -> ${r.status}\n`);
          return;
        }
      } catch (e) {
        entry.status = null;
        entry.error = String(e.message || e);
      }
      if (attempt < delays.length) await sleep(delays[attempt]);
    }
    process.stderr.write(`livekit-standin: webhook ${event} ${ev.id} dropped after ${entry.attempts} attempts\n`);
  });
  hookQueues.set(key, next);
}

// ---------------------------------------------------------------- egress helpers
function egressOutputsOf(reqMsg) {
  const outs = { file: [], segments: [], stream: [], images: [] };
  if (!reqMsg) return outs;
  if (reqMsg.fileOutputs) outs.file.push(...reqMsg.fileOutputs);
  if (reqMsg.segmentOutputs) outs.segments.push(...reqMsg.segmentOutputs);
  if (reqMsg.streamOutputs) outs.stream.push(...reqMsg.streamOutputs);
  if (reqMsg.imageOutputs) outs.images.push(...reqMsg.imageOutputs);
  if (reqMsg.output && reqMsg.output.case) {
    const { case: c, value } = reqMsg.output;
    if (c === 'file') outs.file.push(value);
    else if (c === 'segments') outs.segments.push(value);
    else if (c === 'stream') outs.stream.push(value);
  }
  return outs;
}
function expandTemplate(tpl, info, ext) {
  const t = new Date();
  const stamp = t.toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  let s = tpl || `${info.roomName || 'egress'}-{time}`;
  s = s.replace(/\{room_name\}/g, info.roomName).replace(/\{room_id\}/g, info.roomId)
    .replace(/\{time\}/g, stamp).replace(/\{utc\}/g, stamp)
    .replace(/\{publisher_identity\}/g, 'publisher').replace(/\{track_id\}/g, 'TR_standin')
    .replace(/\{track_type\}/g, 'video').replace(/\{track_source\}/g, 'camera');
  if (s.endsWith('/')) s += `${info.roomName}-${stamp}`;
  if (ext && !/\.[A-Za-z0-9]+$/.test(s)) s += ext;
  return s;
}
function storageLocation(out, filename) {
  const up = out && out.output && out.output.case === 's3' ? out.output.value : null;
  if (up) {
    if (up.endpoint) {
      const ep = up.endpoint.replace(/\/+$/, '');
      return up.forcePathStyle ? `${ep}/${up.bucket}/${filename}` : `${ep}/${up.bucket}/${filename}`;
    }
    return `https://${up.bucket}.s3.${up.region || 'us-east-1'}.amazonaws.com/${filename}`;
  }
  return filename;
}
function fillEgressResults(info) {
  const reqMsg = info.request.value;
  const outs = egressOutputsOf(reqMsg);
  const end = info.endedAt || nowNs();
  const start = info.startedAt || end;
  const dur = end - start;
  if (!info.fileResults.length) {
    for (const f of outs.file) {
      const ext = { 1: '.mp4', 2: '.ogg', 3: '.mp3' }[f.fileType] || '.mp4';
      const filename = expandTemplate(f.filepath, info, ext);
      info.fileResults.push(new P.FileInfo({
        filename, startedAt: start, endedAt: end, duration: dur, size: 0n, location: storageLocation(f, filename),
      }));
    }
  }
  if (!info.segmentResults.length) {
    for (const s of outs.segments) {
      const prefix = expandTemplate(s.filenamePrefix, info, '');
      const playlistName = s.playlistName || `${prefix}.m3u8`;
      info.segmentResults.push(new P.SegmentsInfo({
        playlistName, duration: dur, size: 0n, playlistLocation: storageLocation(s, playlistName),
        segmentCount: 0n, startedAt: start, endedAt: end,
      }));
    }
  }
  for (const s of info.streamResults) {
    if (s.status === P.StreamInfo_Status.ACTIVE) {
      s.status = P.StreamInfo_Status.FINISHED;
      s.endedAt = end;
      s.duration = end - (s.startedAt || start);
    }
  }
}
function scheduleActivate(info) {
  if (config.egressActivateMs < 0) return;
  later(config.egressActivateMs, () => {
    if (info.status !== P.EgressStatus.EGRESS_STARTING) return;
    info.status = P.EgressStatus.EGRESS_ACTIVE;
    info.updatedAt = nowNs();
    emitHook('egress_updated', { egressInfo: info.clone() });
  });
}
function finishEgress(info, status, error) {
  info.status = status;
  info.endedAt = nowNs();
  info.updatedAt = info.endedAt;
  if (error) info.error = error;
  if (status === P.EgressStatus.EGRESS_COMPLETE || status === P.EgressStatus.EGRESS_LIMIT_REACHED) fillEgressResults(info);
  emitHook('egress_ended', { egressInfo: info.clone() });
}

function startEgress(requestCase, reqMsg, roomName, needRoom = true) {
  let roomId = '';
  if (needRoom) {
    const e = mustRoom(roomName);
    roomId = e.room.sid;
  }
  const outs = egressOutputsOf(reqMsg);
  const hasOutput = outs.file.length + outs.segments.length + outs.stream.length + outs.images.length > 0 ||
    (requestCase === 'track' && reqMsg.output && reqMsg.output.case);
  if (!hasOutput) throw new TwirpError('invalid_argument', 'no outputs provided');
  const t = nowNs();
  const info = new P.EgressInfo({
    egressId: randId('EG_'),
    roomId,
    roomName: roomName || '',
    sourceType: requestCase === 'web' ? P.EgressSourceType.EGRESS_SOURCE_TYPE_WEB
      : (requestCase === 'roomComposite' ? P.EgressSourceType.EGRESS_SOURCE_TYPE_WEB : P.EgressSourceType.EGRESS_SOURCE_TYPE_SDK),
    status: P.EgressStatus.EGRESS_STARTING,
    startedAt: t,
    updatedAt: t,
    request: { case: requestCase, value: reqMsg.clone() },
  });
  for (const s of outs.stream) {
    for (const url of s.urls || []) info.streamResults.push(new P.StreamInfo({ url, startedAt: t, status: P.StreamInfo_Status.ACTIVE }));
  }
  state.egress.set(info.egressId, info);
  emitHook('egress_started', { egressInfo: info.clone() });
  scheduleActivate(info);
  return info;
}
function mustEgress(id) {
  const info = state.egress.get(id);
  if (!info) throw new TwirpError('not_found', 'egress does not exist');
  return info;
}

function mustIngress(id) {
  const info = state.ingress.get(id);
  if (!info) throw new TwirpError('not_found', 'ingress does not exist');
  return info;
}

// ---------------------------------------------------------------- Twirp methods
// grant: create | list | admin | record | ingress
const G = { create: 'create', list: 'list', admin: 'admin', record: 'record', ingress: 'ingress' };
const METHODS = {
  RoomService: {
    CreateRoom: [P.CreateRoomRequest, G.create, (r) => {
      if (r.name.length > 256) throw new TwirpError('invalid_argument', 'room name length exceeds limits');
      if (r.metadata.length > 512 * 1024) throw new TwirpError('invalid_argument', 'metadata size exceeds limits');
      let e = state.rooms.get(r.name);
      if (!e) e = newRoom(r.name, r);
      return roomSnapshot(e);
    }],
    ListRooms: [P.ListRoomsRequest, G.list, (r) => {
      const rooms = [...state.rooms.values()].filter((e) => !r.names.length || r.names.includes(e.room.name));
      return new P.ListRoomsResponse({ rooms: rooms.map(roomSnapshot) });
    }],
    DeleteRoom: [P.DeleteRoomRequest, G.create, (r) => {
      const e = mustRoom(r.room);
      for (const id of [...e.participants.keys()]) removeParticipant(e, id, P.DisconnectReason.ROOM_DELETED);
      for (const info of state.egress.values()) {
        if (info.roomName === r.room && isActiveEgress(info)) finishEgress(info, P.EgressStatus.EGRESS_COMPLETE);
      }
      const snap = roomSnapshot(e);
      state.rooms.delete(r.room);
      emitHook('room_finished', { room: snap });
      return new P.DeleteRoomResponse();
    }],
    ListParticipants: [P.ListParticipantsRequest, G.admin, (r) => {
      const e = mustRoom(r.room);
      return new P.ListParticipantsResponse({ participants: [...e.participants.values()] });
    }],
    GetParticipant: [P.RoomParticipantIdentity, G.admin, (r) => mustParticipant(r.room, r.identity).p],
    RemoveParticipant: [P.RoomParticipantIdentity, G.admin, (r) => {
      const { entry } = mustParticipant(r.room, r.identity);
      removeParticipant(entry, r.identity, P.DisconnectReason.PARTICIPANT_REMOVED);
      return new P.RemoveParticipantResponse();
    }],
    MutePublishedTrack: [P.MuteRoomTrackRequest, G.admin, (r) => {
      const { p } = mustParticipant(r.room, r.identity);
      const t = p.tracks.find((x) => x.sid === r.trackSid);
      if (!t) throw new TwirpError('not_found', 'track is not found');
      if (!r.muted && !config.enableRemoteUnmute) throw new TwirpError('failed_precondition', 'remote unmute not enabled');
      t.muted = r.muted;
      p.version++;
      return new P.MuteRoomTrackResponse({ track: t });
    }],
    UpdateParticipant: [P.UpdateParticipantRequest, G.admin, (r) => {
      const { p } = mustParticipant(r.room, r.identity);
      if (r.metadata.length > 512 * 1024) throw new TwirpError('invalid_argument', 'metadata size exceeds limits');
      if (r.name.length > 256) throw new TwirpError('invalid_argument', 'name length exceeds limits');
      if (r.metadata) p.metadata = r.metadata;
      if (r.name) p.name = r.name;
      if (r.permission) p.permission = r.permission.clone();
      for (const [k, v] of Object.entries(r.attributes || {})) {
        if (v === '') delete p.attributes[k];
        else p.attributes[k] = v;
      }
      p.version++;
      return p;
    }],
    UpdateSubscriptions: [P.UpdateSubscriptionsRequest, G.admin, (r) => {
      mustParticipant(r.room, r.identity);
      return new P.UpdateSubscriptionsResponse();
    }],
    SendData: [P.SendDataRequest, G.admin, (r) => {
      if (r.nonce.length !== 0 && r.nonce.length !== 16) {
        throw new TwirpError('invalid_argument', `nonce should be 16-bytes or not present, got: ${r.nonce.length} bytes`);
      }
      mustRoom(r.room);
      return new P.SendDataResponse();
    }],
    UpdateRoomMetadata: [P.UpdateRoomMetadataRequest, G.admin, (r) => {
      const e = mustRoom(r.room);
      if (r.metadata.length > 512 * 1024) throw new TwirpError('invalid_argument', 'metadata size exceeds limits');
      e.room.metadata = r.metadata;
      return roomSnapshot(e);
    }],
  },
  Egress: {
    StartRoomCompositeEgress: [P.RoomCompositeEgressRequest, G.record, (r) => startEgress('roomComposite', r, r.roomName)],
    StartTrackCompositeEgress: [P.TrackCompositeEgressRequest, G.record, (r) => startEgress('trackComposite', r, r.roomName)],
    StartParticipantEgress: [P.ParticipantEgressRequest, G.record, (r) => startEgress('participant', r, r.roomName)],
    StartTrackEgress: [P.TrackEgressRequest, G.record, (r) => startEgress('track', r, r.roomName)],
    StartWebEgress: [P.WebEgressRequest, G.record, (r) => startEgress('web', r, '', false)],
    UpdateLayout: [P.UpdateLayoutRequest, G.record, (r) => {
      const info = mustEgress(r.egressId);
      if (!isActiveEgress(info) || info.status === P.EgressStatus.EGRESS_ENDING) {
        throw new TwirpError('failed_precondition', `egress with status ${egressStatusName(info.status)} cannot be updated`);
      }
      if (info.request.case === 'roomComposite') info.request.value.layout = r.layout;
      info.updatedAt = nowNs();
      emitHook('egress_updated', { egressInfo: info.clone() });
      return info;
    }],
    UpdateStream: [P.UpdateStreamRequest, G.record, (r) => {
      const info = mustEgress(r.egressId);
      if (!isActiveEgress(info) || info.status === P.EgressStatus.EGRESS_ENDING) {
        throw new TwirpError('failed_precondition', `egress with status ${egressStatusName(info.status)} cannot be updated`);
      }
      const t = nowNs();
      for (const url of r.addOutputUrls) info.streamResults.push(new P.StreamInfo({ url, startedAt: t, status: P.StreamInfo_Status.ACTIVE }));
      for (const s of info.streamResults) {
        if (r.removeOutputUrls.includes(s.url) && s.status === P.StreamInfo_Status.ACTIVE) {
          s.status = P.StreamInfo_Status.FINISHED;
          s.endedAt = t;
          s.duration = t - s.startedAt;
        }
      }
      info.updatedAt = t;
      emitHook('egress_updated', { egressInfo: info.clone() });
      return info;
    }],
    ListEgress: [P.ListEgressRequest, G.record, (r) => {
      const items = [...state.egress.values()].filter((e) =>
        (!r.roomName || e.roomName === r.roomName) && (!r.egressId || e.egressId === r.egressId) &&
        (!r.active || isActiveEgress(e)));
      return new P.ListEgressResponse({ items });
    }],
    StopEgress: [P.StopEgressRequest, G.record, (r) => {
      const info = mustEgress(r.egressId);
      if (!isActiveEgress(info) || info.status === P.EgressStatus.EGRESS_ENDING) {
        throw new TwirpError('failed_precondition', `egress with status ${egressStatusName(info.status)} cannot be stopped`);
      }
      info.status = P.EgressStatus.EGRESS_ENDING;
      info.updatedAt = nowNs();
      emitHook('egress_updated', { egressInfo: info.clone() });
      if (config.egressCompleteMs >= 0) {
        later(config.egressCompleteMs, () => {
          if (info.status === P.EgressStatus.EGRESS_ENDING) finishEgress(info, P.EgressStatus.EGRESS_COMPLETE);
        });
      }
      return info;
    }],
  },
  Ingress: {
    CreateIngress: [P.CreateIngressRequest, G.ingress, (r) => {
      const info = new P.IngressInfo({
        ingressId: randId('IN_'),
        name: r.name,
        inputType: r.inputType,
        bypassTranscoding: r.bypassTranscoding,
        enableTranscoding: r.enableTranscoding,
        audio: r.audio,
        video: r.video,
        roomName: r.roomName,
        participantIdentity: r.participantIdentity,
        participantName: r.participantName,
        participantMetadata: r.participantMetadata,
        enabled: r.enabled,
        state: new P.IngressState({ status: P.IngressState_Status.ENDPOINT_INACTIVE }),
      });
      if (r.inputType === P.IngressInput.RTMP_INPUT || r.inputType === P.IngressInput.WHIP_INPUT) {
        info.streamKey = randId('', 12);
        info.url = r.inputType === P.IngressInput.RTMP_INPUT ? RTMP_URL : WHIP_URL;
        info.reusable = true;
      } else if (r.inputType === P.IngressInput.URL_INPUT) {
        let ok = false;
        try { ok = ['http:', 'https:', 'srt:'].includes(new URL(r.url).protocol); } catch (_) { ok = false; }
        if (!ok) throw new TwirpError('invalid_argument', 'invalid url');
        info.url = r.url;
      } else {
        throw new TwirpError('invalid_argument', 'unsupported ingress type');
      }
      state.ingress.set(info.ingressId, info);
      return info;
    }],
    UpdateIngress: [P.UpdateIngressRequest, G.ingress, (r) => {
      const info = mustIngress(r.ingressId);
      if (!info.reusable) throw new TwirpError('invalid_argument', 'ingress is not reusable and cannot be modified');
      for (const f of ['name', 'roomName', 'participantIdentity', 'participantName', 'participantMetadata']) {
        if (r[f]) info[f] = r[f];
      }
      if (r.bypassTranscoding !== undefined) info.bypassTranscoding = r.bypassTranscoding;
      if (r.enableTranscoding !== undefined) info.enableTranscoding = r.enableTranscoding;
      if (r.enabled !== undefined) info.enabled = r.enabled;
      if (r.audio) info.audio = r.audio;
      if (r.video) info.video = r.video;
      return info;
    }],
    ListIngress: [P.ListIngressRequest, G.ingress, (r) => {
      const items = [...state.ingress.values()].filter((i) =>
        (!r.roomName || i.roomName === r.roomName) && (!r.ingressId || i.ingressId === r.ingressId));
      return new P.ListIngressResponse({ items });
    }],
    DeleteIngress: [P.DeleteIngressRequest, G.ingress, (r) => {
      const info = mustIngress(r.ingressId);
      const st = info.state ? info.state.status : 0;
      if (st === P.IngressState_Status.ENDPOINT_BUFFERING || st === P.IngressState_Status.ENDPOINT_PUBLISHING) {
        info.state.status = P.IngressState_Status.ENDPOINT_COMPLETE;
        info.state.endedAt = nowNs();
        info.state.updatedAt = info.state.endedAt;
        emitHook('ingress_ended', { ingressInfo: info.clone() });
      }
      state.ingress.delete(info.ingressId);
      return info;
    }],
  },
};

function grantAllows(grant, video, reqMsg) {
  const v = video || {};
  switch (grant) {
    case G.create: return !!v.roomCreate;
    case G.list: return !!v.roomList;
    case G.admin: return !!v.roomAdmin && !!v.room && v.room === reqMsg.room;
    case G.record: return !!v.roomRecord;
    case G.ingress: return !!v.ingressAdmin;
    default: return false;
  }
}

// ---------------------------------------------------------------- auth (before Twirp)
// Returns { claims, header } or { claims: null } when no credentials; throws {status,text} on failure.
async function authenticate(req, url) {
  let token = null;
  const h = req.headers.authorization;
  if (h !== undefined) {
    if (!h.startsWith('Bearer ')) throw { text: 'invalid authorization header. Must start with Bearer ' };
    token = h.slice(7);
  } else if (url.searchParams.get('access_token')) {
    token = url.searchParams.get('access_token');
  }
  if (token === null) return { claims: null, header: null, token: null };
  let header;
  let unverified;
  try {
    const parts = token.split('.');
    if (parts.length !== 3) throw new Error('segments');
    header = b64urlJson(parts[0]);
    unverified = b64urlJson(parts[1]);
  } catch (_) {
    throw { text: 'invalid authorization token' };
  }
  const key = unverified && unverified.iss;
  const secret = KEYS.get(key);
  if (secret === undefined) throw { text: `invalid API key: ${key}` };
  if (header.alg !== 'HS256') {
    throw { text: `invalid token: ${token}, error: token is unverifiable: signing method ${header.alg} is invalid` };
  }
  try {
    const claims = await new TokenVerifier(key, secret).verify(token, TOKEN_LEEWAY_S);
    return { claims, header, token };
  } catch (e) {
    throw { text: `invalid token: ${token}, error: ${e.message || e}` };
  }
}

// ---------------------------------------------------------------- faults
function takeFault(method, service) {
  for (let i = 0; i < state.faults.length; i++) {
    const f = state.faults[i];
    if (f.method === '*' || f.method === method || f.method === `${service}/${method}` ||
        f.method === `livekit.${service}/${method}`) {
      if (f.count > 0) f.count--;
      if (f.count === 0) state.faults.splice(i, 1);
      return f;
    }
  }
  return null;
}

// ---------------------------------------------------------------- Twirp handler
async function handleTwirp(req, res, url) {
  const path = url.pathname.replace(/^\/\/+/, '/');
  const m = /^\/twirp\/livekit\.([A-Za-z]+)\/([A-Za-z]+)$/.exec(path);
  const badRoute = (msg) => {
    process.stderr.write(`livekit-standin: ${req.method} ${path} -> 404 bad_route\n`);
    sendTwirpError(res, 404, 'bad_route', msg, { twirp_invalid_route: `${req.method} ${path}` });
  };

  // livekit's auth middleware wraps every route
  let auth;
  try {
    auth = await authenticate(req, url);
  } catch (e) {
    if (e && e.text) {
      process.stderr.write(`livekit-standin: ${req.method} ${path} -> 401 (${e.text.slice(0, 80)})\n`);
      if (m) {
        state.requests.push({
          seq: ++state.seq, service: m[1], method: m[2], contentType: req.headers['content-type'] || null,
          identity: null, grants: null, claims: null, request: null, status: 401, error: e.text,
        });
      }
      return sendText(res, 401, e.text);
    }
    throw e;
  }

  if (req.method !== 'POST') return badRoute(`unsupported method "${req.method}" (only POST is allowed)`);
  if (!m || !METHODS[m[1]] || !METHODS[m[1]][m[2]]) return badRoute(`no handler for path "${path}"`);
  const [service, method] = [m[1], m[2]];
  const [ReqClass, grant, impl] = METHODS[service][method];
  const ctRaw = req.headers['content-type'] || '';
  const ct = ctRaw.split(';')[0].trim().toLowerCase();
  if (ct !== 'application/json' && ct !== 'application/protobuf') {
    return badRoute(`unexpected Content-Type: "${ctRaw}"`);
  }
  const isJson = ct === 'application/json';
  const body = await readBody(req);
  const claims = auth.claims;
  const rec = {
    seq: ++state.seq, service, method, contentType: ctRaw,
    identity: claims ? (claims.sub || '') : null,
    grants: claims ? (claims.video || {}) : null,
    claims: claims || null,
    request: null,
    status: null,
  };
  state.requests.push(rec);
  const finish = (status, code) => {
    rec.status = status;
    if (code) rec.code = code;
    process.stderr.write(`livekit-standin: ${service}/${method} -> ${status}${code ? ' ' + code : ''}\n`);
  };

  let reqMsg;
  try {
    reqMsg = isJson
      ? ReqClass.fromJsonString(body.length ? body.toString('utf8') : '{}', { ignoreUnknownFields: true })
      : ReqClass.fromBinary(new Uint8Array(body));
    rec.request = reqMsg.toJson();
  } catch (e) {
    rec.error = String(e.message || e);
    finish(400, 'malformed');
    return sendTwirpError(res, 400, 'malformed',
      isJson ? `the json request could not be decoded: ${e.message}` : `the protobuf request could not be decoded: ${e.message}`);
  }

  const fault = takeFault(method, service);
  if (fault) {
    rec.fault = fault.mode;
    if (fault.mode === 'drop') {
      finish(0, 'dropped');
      req.socket.destroy();
      return;
    }
    if (fault.mode === 'unavailable') {
      finish(503, 'unavailable');
      return sendTwirpError(res, 503, 'unavailable', fault.msg || 'service unavailable');
    }
    if (fault.mode === 'error') {
      const code = fault.code || 'internal';
      const status = fault.status || TWIRP_STATUS[code] || 500;
      finish(status, code);
      return sendTwirpError(res, status, code, fault.msg || 'injected error', fault.meta);
    }
    if (fault.mode === 'slow') await sleep(fault.delayMs || 1000);
  }

  if (!grantAllows(grant, claims && claims.video, reqMsg)) {
    finish(401, 'unauthenticated');
    return sendTwirpError(res, 401, 'unauthenticated', 'permissions denied');
  }

  let resp;
  try {
    resp = impl(reqMsg);
  } catch (e) {
    if (e instanceof TwirpError) {
      const st = TWIRP_STATUS[e.code] || 500;
      finish(st, e.code);
      return sendTwirpError(res, st, e.code, e.message, e.meta);
    }
    finish(500, 'internal');
    process.stderr.write(`livekit-standin: ${e.stack || e}\n`);
    return sendTwirpError(res, 500, 'internal', String(e.message || e));
  }
  if (res.destroyed || req.socket.destroyed) return;
  finish(200);
  if (isJson) {
    const out = JSON.stringify(resp.toJson({ useProtoFieldName: true, emitDefaultValues: true }));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) });
    res.end(out);
  } else {
    const out = Buffer.from(resp.toBinary());
    res.writeHead(200, { 'Content-Type': 'application/protobuf', 'Content-Length': out.length });
    res.end(out);
  }
}

// ---------------------------------------------------------------- control API
async function readJson(req) {
  const b = await readBody(req);
  if (!b.length) return {};
  return JSON.parse(b.toString('utf8'));
}

function participantFromTest(b) {
  const obj = {
    sid: b.sid || randId('PA_'),
    identity: b.identity,
    name: b.name || '',
    state: 'ACTIVE',
    metadata: b.metadata || '',
    joinedAt: String(nowSec()),
    joinedAtMs: String(nowMs()),
    version: 1,
    kind: b.kind || 'STANDARD',
    attributes: b.attributes || {},
    permission: b.permission || { canSubscribe: true, canPublish: true, canPublishData: true },
    tracks: (b.tracks || []).map((t) => ({ sid: t.sid || randId('TR_'), ...t })),
  };
  const p = P.ParticipantInfo.fromJson(obj, { ignoreUnknownFields: true });
  p.isPublisher = p.tracks.length > 0;
  return p;
}

async function handleControl(req, res, url) {
  const p = url.pathname;
  const M = req.method;
  try {
    if (M === 'POST' && p === '/_test/reset') {
      resetState();
      return sendJson(res, 200, { ok: true });
    }
    if (M === 'GET' && p === '/_test/requests') {
      const method = url.searchParams.get('method');
      const service = url.searchParams.get('service');
      const since = Number(url.searchParams.get('since') || 0);
      return sendJson(res, 200, state.requests.filter((r) =>
        (!method || r.method === method) && (!service || r.service === service) && r.seq > since));
    }
    if (M === 'POST' && p === '/_test/fault') {
      const b = await readJson(req);
      if (!['unavailable', 'error', 'slow', 'drop'].includes(b.mode)) {
        return sendJson(res, 400, { ok: false, error: 'mode must be unavailable|error|slow|drop' });
      }
      const f = {
        method: b.method || '*', mode: b.mode, count: b.count == null ? 1 : Number(b.count),
        delayMs: b.delayMs, code: b.code, status: b.status, msg: b.msg, meta: b.meta,
      };
      if (f.count !== 0) state.faults.push(f);
      return sendJson(res, 200, { ok: true, faults: state.faults });
    }
    if (M === 'POST' && p === '/_test/fault/clear') {
      state.faults = [];
      return sendJson(res, 200, { ok: true });
    }
    if (M === 'POST' && p === '/_test/config') {
      const b = await readJson(req);
      for (const k of Object.keys(DEFAULT_CONFIG)) if (b[k] !== undefined) config[k] = b[k];
      return sendJson(res, 200, { ok: true, config });
    }
    if (M === 'POST' && p === '/_test/verify-token') {
      const b = await readJson(req);
      const key = b.key || API_KEY;
      const secret = b.secret || KEYS.get(key) || API_SECRET;
      try {
        const header = b64urlJson(String(b.token).split('.')[0]);
        const claims = await new TokenVerifier(key, secret).verify(b.token, b.clockTolerance);
        return sendJson(res, 200, { ok: true, header, claims });
      } catch (e) {
        return sendJson(res, 200, { ok: false, error: String(e.message || e) });
      }
    }
    if (M === 'GET' && p === '/_test/state') {
      return sendJson(res, 200, {
        rooms: [...state.rooms.values()].map((e) => ({
          room: j(roomSnapshot(e)), participants: [...e.participants.values()].map(j),
        })),
        egress: [...state.egress.values()].map(j),
        ingress: [...state.ingress.values()].map(j),
      });
    }
    if (M === 'POST' && p === '/_test/participants') {
      const b = await readJson(req);
      if (!b.room || !b.identity) return sendJson(res, 400, { ok: false, error: 'room and identity required' });
      let e = state.rooms.get(b.room);
      if (!e) e = newRoom(b.room);
      const part = participantFromTest(b);
      if (e.participants.has(b.identity)) removeParticipant(e, b.identity, P.DisconnectReason.DUPLICATE_IDENTITY);
      e.participants.set(b.identity, part);
      emitHook('participant_joined', { room: roomSnapshot(e), participant: part.clone() });
      for (const t of part.tracks) {
        emitHook('track_published', {
          room: new P.Room({ sid: e.room.sid, name: e.room.name }),
          participant: new P.ParticipantInfo({ sid: part.sid, identity: part.identity }),
          track: t.clone(),
        });
      }
      return sendJson(res, 200, { ok: true, participant: j(part) });
    }
    if (M === 'POST' && p === '/_test/participants/remove') {
      const b = await readJson(req);
      const e = state.rooms.get(b.room);
      if (!e || !e.participants.has(b.identity)) return sendJson(res, 404, { ok: false, error: 'participant does not exist' });
      removeParticipant(e, b.identity, P.DisconnectReason[b.reason] || P.DisconnectReason.CLIENT_INITIATED);
      return sendJson(res, 200, { ok: true });
    }
    if (M === 'POST' && p === '/_test/egress/update') {
      const b = await readJson(req);
      const info = state.egress.get(b.egressId);
      if (!info) return sendJson(res, 404, { ok: false, error: 'egress does not exist' });
      const fields = {};
      for (const f of ['status', 'error', 'errorCode', 'details', 'fileResults', 'segmentResults', 'streamResults']) {
        if (b[f] !== undefined) fields[f] = b[f];
      }
      const patch = P.EgressInfo.fromJson(fields, { ignoreUnknownFields: true });
      if (b.status !== undefined) info.status = patch.status;
      for (const f of ['error', 'errorCode', 'details']) if (b[f] !== undefined) info[f] = patch[f];
      for (const f of ['fileResults', 'segmentResults', 'streamResults']) if (b[f] !== undefined) info[f] = patch[f];
      info.updatedAt = nowNs();
      if (TERMINAL_EGRESS.has(info.status)) {
        if (!info.endedAt) info.endedAt = info.updatedAt;
        if (b.fillResults !== false && info.status === P.EgressStatus.EGRESS_COMPLETE) fillEgressResults(info);
        emitHook('egress_ended', { egressInfo: info.clone() });
      } else {
        emitHook('egress_updated', { egressInfo: info.clone() });
      }
      return sendJson(res, 200, { ok: true, egress: j(info) });
    }
    if (M === 'POST' && p === '/_test/ingress/update') {
      const b = await readJson(req);
      const info = state.ingress.get(b.ingressId);
      if (!info) return sendJson(res, 404, { ok: false, error: 'ingress does not exist' });
      const st = P.IngressState.fromJson({ status: b.status || 'ENDPOINT_INACTIVE', error: b.error || '' });
      const prev = info.state ? info.state.status : 0;
      if (!info.state) info.state = new P.IngressState();
      info.state.status = st.status;
      info.state.error = st.error;
      info.state.updatedAt = nowNs();
      const S = P.IngressState_Status;
      if (st.status === S.ENDPOINT_PUBLISHING && prev !== S.ENDPOINT_PUBLISHING) {
        info.state.startedAt = info.state.updatedAt;
        info.state.endedAt = 0n;
        info.state.resourceId = randId('IN_RES_');
        const re = state.rooms.get(info.roomName);
        info.state.roomId = re ? re.room.sid : '';
        emitHook('ingress_started', { ingressInfo: info.clone() });
      } else if ((st.status === S.ENDPOINT_COMPLETE || st.status === S.ENDPOINT_ERROR || st.status === S.ENDPOINT_INACTIVE) &&
                 (prev === S.ENDPOINT_PUBLISHING || prev === S.ENDPOINT_BUFFERING)) {
        info.state.endedAt = info.state.updatedAt;
        emitHook('ingress_ended', { ingressInfo: info.clone() });
      }
      return sendJson(res, 200, { ok: true, ingress: j(info) });
    }
    if (M === 'POST' && p === '/_test/sign-webhook') {
      const b = await readJson(req);
      const key = b.key || API_KEY;
      const secret = b.secret || KEYS.get(key) || API_SECRET;
      const s = await signWebhook(b.event || {}, key, secret, b.ttl);
      return sendJson(res, 200, { body: s.body, authorization: s.authorization });
    }
    if (M === 'POST' && p === '/_test/webhook') {
      const b = await readJson(req);
      const key = b.key || API_KEY;
      const secret = b.secret || KEYS.get(key) || API_SECRET;
      const s = await signWebhook(b.event || {}, key, secret, b.ttl);
      try {
        const r = await postWebhook(b.url, s.body, s.authorization);
        return sendJson(res, 200, { status: r.status, body: r.body, sent: s.body, authorization: s.authorization });
      } catch (e) {
        return sendJson(res, 200, { status: 0, body: '', error: String(e.message || e), sent: s.body });
      }
    }
    if (M === 'POST' && p === '/_test/webhooks/auto') {
      const b = await readJson(req);
      if (!b.url) {
        autoHook = null;
      } else {
        const key = b.key || API_KEY;
        autoHook = {
          url: b.url, key, secret: b.secret || KEYS.get(key) || API_SECRET,
          retryDelaysMs: Array.isArray(b.retryDelaysMs) ? b.retryDelaysMs.map(Number) : [1000, 2000, 4000, 8000],
        };
      }
      return sendJson(res, 200, { ok: true, url: autoHook ? autoHook.url : null });
    }
    if (M === 'GET' && p === '/_test/webhooks') {
      return sendJson(res, 200, state.webhookLog);
    }
    return sendJson(res, 404, { ok: false, error: `unknown control endpoint ${M} ${p}` });
  } catch (e) {
    return sendJson(res, 400, { ok: false, error: String(e.message || e) });
  }
}

// ---------------------------------------------------------------- server
function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = http.createServer((req, res) => {
    // a leading '//' is collapsed to '/' like livekit-server does (and must not be read as a host)
    const url = new URL(req.url.replace(/^\/\/+/, '/'), 'http://localhost');
    const handler = url.pathname.startsWith('/_test/') ? handleControl
      : (url.pathname === '/' && (req.method === 'GET' || req.method === 'HEAD')) ? (q, r) => sendText(r, 200, 'OK')
        : handleTwirp;
    Promise.resolve(handler(req, res, url)).catch((e) => {
      process.stderr.write(`livekit-standin: internal error: ${e.stack || e}\n`);
      if (!res.headersSent) sendTwirpError(res, 500, 'internal', String(e.message || e));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.listen(args.port, args.host, () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  const stop = () => {
    for (const t of timers) clearTimeout(t);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
module.exports = { signWebhook };
