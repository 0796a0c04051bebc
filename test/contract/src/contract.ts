/*
 * The typed client against a running nchat-rtc: the frontend's flows, each
 * response validated against etc/openapi.yaml at run time (src/openapi.ts).
 * Prints PASS/FAIL lines and "N passed, N failed".
 */
import { ApiError, createNchatClient, type NchatClient } from './client';
import { OpenApiDoc } from './openapi';
import {
  assert, check, eq, newChannel, newUser, randomUUID, startService, stopService, summary, userToken, type Service,
} from './lib';

async function expectError(p: Promise<unknown>, status: number, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    eq(e.status, status, 'status');
    eq(e.code, code, 'error code');
    return;
  }
  throw new Error(`expected ${status} ${code}, got a success`);
}

async function main(): Promise<number> {
  const doc = new OpenApiDoc();
  let svc: Service | null = null;
  try {
    svc = await startService({ RECORDING_ALLOWED: 'initiator,admin,moderator' });
    const base = svc.base;
    const alice = newUser('Alice Contract');
    const bob = newUser('Bob Contract');
    const carol = newUser('Carol Contract');
    const channel = newChannel('contract', [alice, bob]);
    const as = (user: string | null, role: 'user' | 'admin' = 'user'): NchatClient => {
      const token = user === null ? null : userToken(user, role);
      return createNchatClient({ baseUrl: base, getToken: () => token, middleware: [doc.middleware()] });
    };
    const A = as(alice), B = as(bob), C = as(carol), anon = as(null);

    await check('readiness and /api/me', async () => {
      eq((await A.readiness()).status, 'ready', 'readyz');
      const me = await B.me();
      eq(me.userId, bob, 'userId');
      assert(me.roles.includes('user'), 'roles has user');
    });

    let callId = '';
    await check('A initiates a video call to B (201 CallInitiateResponse)', async () => {
      const r = await A.calls.initiate({ targetUserId: bob, type: 'video' });
      callId = r.callId;
      eq(r.roomName, `call-${callId}`, 'roomName');
      eq(r.participants, 2, 'participants');
      assert(r.iceServers.length > 0, 'iceServers');
    });
    let joinBody = '';
    await check('B joins it (200 CallJoinResponse)', async () => {
      const r = await B.calls.join(callId);
      joinBody = JSON.stringify(r);
      eq(r.callType, 'video', 'callType');
      eq(r.roomName, `call-${callId}`, 'roomName');
    });
    await check('A reads it: active, B joined (200 Call)', async () => {
      const c = await A.calls.get(callId);
      eq(c.status, 'active', 'status');
      const p = c.participants.find((x) => x.userId === bob);
      eq(p?.status, 'joined', "B's status");
      eq(p?.displayName, 'Bob Contract', "B's displayName");
    });
    await check('B lists calls (200 CallPage)', async () => {
      const page = await B.calls.list({ limit: 5 });
      assert(page.items.some((c) => c.id === callId), 'the call is listed');
    });
    await check('B posts connection stats (201 CallStatsResult)', async () => {
      const r = await B.calls.stats(callId, { iceConnectionState: 'connected', rttMs: 42, quality: 'good' });
      assert(r.id.length === 36, 'id');
    });

    let recordingId = '';
    await check('A starts a recording (201 RecordingStartResponse)', async () => {
      const r = await A.calls.startRecording(callId, { layout: 'grid' });
      recordingId = r.recordingId;
      assert(['starting', 'active'].includes(r.status), `status ${r.status}`);
    });
    await check('B lists the call recordings (200 RecordingList)', async () => {
      const r = await B.calls.recordings(callId);
      const rec = r.recordings.find((x) => x.id === recordingId);
      assert(rec !== undefined, 'the recording is listed');
      eq(rec.layout, 'grid', 'layout');
      eq(rec.callId, callId, 'callId');
    });
    await check('A reads the recording (200 Recording)', async () => {
      const r = await A.recordings.get(recordingId);
      eq(r.id, recordingId, 'id');
    });
    await check('A stops the recording (200)', async () => {
      const r = await A.calls.stopRecording(callId);
      eq(r.recordingId, recordingId, 'recordingId');
    });

    let streamId = '';
    await check('A creates a stream in the channel (201 StreamCreated)', async () => {
      const s = await A.streams.create({ channelId: channel, title: 'Contract stream' });
      streamId = s.id;
      assert(s.stream_key.length > 8, 'stream_key');
      eq(s.status, 'preparing', 'status');
    });
    await check('A goes live (200 StreamStarted)', async () => {
      const s = await A.streams.start(streamId);
      eq(s.status, 'live', 'status');
    });
    await check('B reads and lists streams (200 Stream, StreamPage)', async () => {
      const s = await B.streams.get(streamId);
      eq(s.status, 'live', 'status');
      assert(!('stream_key_last4' in s), "B does not see A's key hint");
      const page = await B.streams.list({ channel_id: channel });
      assert(page.streams.some((x) => x.id === streamId), 'listed');
    });
    const session = `contract-${randomUUID()}`;
    await check('B joins as a viewer and heartbeats (201 ViewerSession, 200 ViewerHeartbeat)', async () => {
      const v = await B.streams.joinAsViewer(streamId, session);
      eq(v.viewer_session_id, session, 'viewer_session_id');
      const h = await B.streams.heartbeat(streamId, session);
      eq(h.stream_id, streamId, 'stream_id');
    });
    let messageId = '';
    await check('B posts a stream chat message (201 StreamChatMessage)', async () => {
      const m = await B.streams.postChat(streamId, 'hello from the contract test');
      messageId = m.id;
      eq(m.content, 'hello from the contract test', 'content');
      eq(m.user_id, bob, 'user_id');
    });
    await check('anonymous viewer reads the chat of the live stream (200 StreamChatPage)', async () => {
      const page = await anon.streams.chat(streamId, { limit: 10 });
      assert(page.messages.some((m) => m.id === messageId), 'the message is listed');
    });
    await check('B reacts; reaction summary (201 StreamReaction, 200 ReactionSummary)', async () => {
      const r = await B.streams.react(streamId, 'fire');
      eq(r.reaction_type, 'fire', 'reaction_type');
      const s = await B.streams.reactions(streamId);
      assert(s.counts.fire >= 1, 'fire counted');
    });
    await check('B gets a viewer token (200 StreamToken)', async () => {
      const t = await B.streams.viewerToken(streamId);
      eq(t.identity, bob, 'identity');
    });
    await check('A reads the analytics (200 StreamAnalytics)', async () => {
      const a = await A.streams.analytics(streamId);
      eq(a.stream_id, streamId, 'stream_id');
      assert(a.chat_messages >= 1, 'chat_messages');
    });
    await check('B leaves as a viewer (200 ViewerLeft)', async () => {
      const l = await B.streams.leaveAsViewer(streamId, session);
      eq(l.viewer_session_id, session, 'viewer_session_id');
    });
    await check('A ends the stream (200 StreamEnded)', async () => {
      const e = await A.streams.end(streamId);
      eq(e.status, 'ended', 'status');
    });

    // Errors: each is the documented Error body with a documented status.
    await check('no token: 401 unauthorized', () => expectError(anon.calls.list(), 401, 'unauthorized'));
    await check('unknown call: 404 not_found', () => expectError(A.calls.get(randomUUID()), 404, 'not_found'));
    await check('malformed id: 400 bad_request', () => expectError(A.calls.get('not-a-uuid'), 400, 'bad_request'));
    await check('outsider joins: 403 forbidden', () => expectError(C.calls.join(callId), 403, 'forbidden'));
    await check('bad body: 400 bad_request', () =>
      expectError(A.calls.initiate({ type: 'hologram' as 'video', targetUserId: bob }), 400, 'bad_request'));
    await check('chat on an ended stream: 409 conflict', () => expectError(B.streams.postChat(streamId, 'late'), 409, 'conflict'));
    await check('wrong Content-Type: 415 unsupported_media_type', async () => {
      const r = await A.raw.POST('/api/calls/initiate', {
        body: { type: 'audio', targetUserId: bob },
        bodySerializer: (b: unknown) => JSON.stringify(b),
        headers: { 'Content-Type': 'text/plain' },
      });
      eq(r.response.status, 415, 'status');
    });

    await check('A ends the call (200 CallStatusResult)', async () => {
      const r = await A.calls.end(callId);
      eq(r.status, 'ended', 'status');
    });
    await check('B joins the ended call: 410 gone', () => expectError(B.calls.join(callId), 410, 'gone'));
    await check("B exports their data (200 UserDataExport)", async () => {
      const x = await B.me_data.export();
      eq(x.user_id, bob, 'user_id');
      assert(x.call_participations.some((p) => p.call_id === callId), 'the call is in the export');
    });
    await check('the run-time check catches drift (field added, field missing, status undocumented)', () => {
      const path = '/api/calls/{id}/join';
      const ct = 'application/json';
      const want = (d: OpenApiDoc, what: string, re: RegExp) => {
        const p = d.check('POST', path, 200, ct, joinBody);
        assert(p.some((x) => re.test(x)), `${what} went unnoticed (${p.join('; ') || 'no problem reported'})`);
      };
      assert(doc.check('POST', path, 200, ct, joinBody).length === 0, 'the real document reports a problem');
      want(new OpenApiDoc(undefined, (d) => {
        const s = d.components.schemas.CallJoinResponse;
        delete s.properties.callType;
        s.required = s.required.filter((k: string) => k !== 'callType');
      }), 'a field the document omits', /additional properties.*callType/);
      want(new OpenApiDoc(undefined, (d) => {
        const s = d.components.schemas.CallJoinResponse;
        s.properties.ghost = { type: 'string' };
        s.required.push('ghost');
      }), 'a field the service does not send', /required property 'ghost'/);
      want(new OpenApiDoc(undefined, (d) => { delete d.paths[path].post.responses['200']; }),
        'an undocumented status', /status 200 is not documented/);
    });
    const all = doc.operationIds();
    console.log(`# ${doc.seen.size} of ${all.length} documented operations exercised`);
  } catch (e) {
    console.log(`FAIL set-up: ${e instanceof Error ? e.message : String(e)}`);
    if (svc) console.log(`# server log: ${svc.logPath}`);
    summary();
    return 1;
  } finally {
    if (svc) await stopService(svc);
  }
  return summary();
}

main().then((rc) => { process.exitCode = rc; }, (e) => { console.log(`FAIL ${String(e)}`); process.exitCode = 1; });
