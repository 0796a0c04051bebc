/*
 * A typed nchat-rtc client, written the way the Next.js frontend uses it:
 * types generated from etc/openapi.yaml by openapi-typescript
 * (gen/nchat-rtc.d.ts, `make openapi-types`), requests through openapi-fetch.
 *
 *   const api = createNchatClient({ baseUrl, getToken: () => session.accessToken });
 *   const call = await api.calls.initiate({ targetUserId, type: 'video' });
 *   const { token, livekitUrl } = await api.calls.join(call.callId);
 *
 * Every helper returns the documented success body or throws ApiError
 * carrying the documented Error body and the status.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from '../gen/nchat-rtc';

export type Schemas = components['schemas'];
export type ApiErrorBody = Schemas['Error'];
export type RawClient = ReturnType<typeof createClient<paths>>;

export class ApiError extends Error {
  constructor(readonly status: number, readonly body: ApiErrorBody | undefined) {
    super(`HTTP ${status}: ${body?.error.code ?? '?'}: ${body?.error.message ?? ''}`);
  }
  get code(): ApiErrorBody['error']['code'] | undefined {
    return this.body?.error.code;
  }
}

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/* openapi-fetch's { data, error } as a value or an ApiError. */
async function unwrap<T>(p: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await p;
  if (!response.ok) throw new ApiError(response.status, error as ApiErrorBody | undefined);
  return data as T;
}

export interface NchatClientOptions {
  baseUrl: string;
  /* The signed-in user's token, or null for anonymous requests. */
  getToken: () => string | null;
  middleware?: Middleware[];
  fetch?: typeof globalThis.fetch;
}

export function createNchatClient(opts: NchatClientOptions) {
  const raw: RawClient = createClient<paths>({ baseUrl: opts.baseUrl, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
  raw.use({
    onRequest({ request }) {
      const token = opts.getToken();
      if (token !== null) request.headers.set('Authorization', `Bearer ${token}`);
      return request;
    },
  });
  for (const m of opts.middleware ?? []) raw.use(m);

  const id = (v: string) => ({ params: { path: { id: v } } });

  return {
    raw,
    me: () => unwrap(raw.GET('/api/me')),
    readiness: () => unwrap(raw.GET('/readyz')),
    calls: {
      initiate: (body: Schemas['CallInitiateRequest']) => unwrap(raw.POST('/api/calls/initiate', { body })),
      list: (query: paths['/api/calls']['get']['parameters']['query'] = {}) =>
        unwrap(raw.GET('/api/calls', { params: { query } })),
      get: (callId: string) => unwrap(raw.GET('/api/calls/{id}', id(callId))),
      join: (callId: string) => unwrap(raw.POST('/api/calls/{id}/join', id(callId))),
      decline: (callId: string) => unwrap(raw.POST('/api/calls/{id}/decline', id(callId))),
      leave: (callId: string) => unwrap(raw.POST('/api/calls/{id}/leave', id(callId))),
      end: (callId: string) => unwrap(raw.POST('/api/calls/{id}/end', id(callId))),
      stats: (callId: string, body: Schemas['CallStatsRequest']) =>
        unwrap(raw.POST('/api/calls/{id}/stats', { ...id(callId), body })),
      startRecording: (callId: string, body: Schemas['RecordingStartRequest'] = {}) =>
        unwrap(raw.POST('/api/calls/{id}/recording/start', { ...id(callId), body })),
      stopRecording: (callId: string) => unwrap(raw.POST('/api/calls/{id}/recording/stop', id(callId))),
      recordings: (callId: string) => unwrap(raw.GET('/api/calls/{id}/recordings', id(callId))),
    },
    recordings: {
      get: (recordingId: string) => unwrap(raw.GET('/api/recordings/{id}', id(recordingId))),
    },
    streams: {
      create: (body: Schemas['StreamCreateRequest']) => unwrap(raw.POST('/api/streams/create', { body })),
      list: (query: paths['/api/streams']['get']['parameters']['query'] = {}) =>
        unwrap(raw.GET('/api/streams', { params: { query } })),
      get: (streamId: string) => unwrap(raw.GET('/api/streams/{id}', id(streamId))),
      start: (streamId: string) => unwrap(raw.POST('/api/streams/{id}/start', id(streamId))),
      end: (streamId: string) => unwrap(raw.POST('/api/streams/{id}/end', id(streamId))),
      viewerToken: (streamId: string, body: Schemas['ViewerSessionRequest'] = {}) =>
        unwrap(raw.POST('/api/streams/{id}/viewer-token', { ...id(streamId), body })),
      joinAsViewer: (streamId: string, viewerSessionId: string) =>
        unwrap(raw.POST('/api/streams/{id}/viewers/join', { ...id(streamId), body: { viewer_session_id: viewerSessionId } })),
      heartbeat: (streamId: string, viewerSessionId: string) =>
        unwrap(raw.POST('/api/streams/{id}/viewers/heartbeat', { ...id(streamId), body: { viewer_session_id: viewerSessionId } })),
      leaveAsViewer: (streamId: string, viewerSessionId: string) =>
        unwrap(raw.POST('/api/streams/{id}/viewers/leave', { ...id(streamId), body: { viewer_session_id: viewerSessionId } })),
      chat: (streamId: string, query: paths['/api/streams/{id}/chat']['get']['parameters']['query'] = {}) =>
        unwrap(raw.GET('/api/streams/{id}/chat', { params: { path: { id: streamId }, query } })),
      postChat: (streamId: string, content: string) =>
        unwrap(raw.POST('/api/streams/{id}/chat', { ...id(streamId), body: { content } })),
      react: (streamId: string, reactionType: Schemas['ReactionType']) =>
        unwrap(raw.POST('/api/streams/{id}/reactions', { ...id(streamId), body: { reactionType } })),
      reactions: (streamId: string) => unwrap(raw.GET('/api/streams/{id}/reactions', id(streamId))),
      analytics: (streamId: string) => unwrap(raw.GET('/api/streams/{id}/analytics', id(streamId))),
    },
    me_data: {
      export: () => unwrap(raw.GET('/api/users/me/export')),
    },
  };
}

export type NchatClient = ReturnType<typeof createNchatClient>;
