#!/usr/bin/env node
// S3 stand-in for recordings: s3rver (on a private loopback port) behind a proxy that
// verifies AWS Signature Version 4 (Authorization header or presigned query) exactly
// like S3 does, recomputing it with @smithy/signature-v4.
//
// Usage: node s3.js --port 0 --dir <data dir> --bucket <name> [--host 127.0.0.1]
// Env:   S3_ACCESS_KEY / S3_SECRET_KEY (default nchat-test-key / nchat-test-secret),
//        S3_REGION (default us-east-1).
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const S3rver = require('s3rver');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

const ACCESS_KEY = process.env.S3_ACCESS_KEY || 'nchat-test-key';
const SECRET_KEY = process.env.S3_SECRET_KEY || 'nchat-test-secret';
const REGION = process.env.S3_REGION || 'us-east-1';
const SERVICE = 's3';
const MAX_SKEW_MS = 15 * 60 * 1000;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function parseArgs(argv) {
  const out = { port: 0, host: '127.0.0.1', dir: null, bucket: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--host') out.host = argv[++i];
    else if (a === '--dir') out.dir = argv[++i];
    else if (a === '--bucket') out.bucket = argv[++i];
    else {
      process.stderr.write(`s3-standin: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!out.dir || !out.bucket) {
    process.stderr.write('usage: node s3.js --port <n|0> --dir <data dir> --bucket <name>\n');
    process.exit(2);
  }
  return out;
}

const xmlEscape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
function s3Error(res, status, code, message, extra = {}) {
  let body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>`;
  for (const [k, v] of Object.entries(extra)) body += `<${k}>${xmlEscape(v)}</${k}>`;
  body += `<RequestId>${crypto.randomBytes(8).toString('hex').toUpperCase()}</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

class AuthError extends Error {
  constructor(status, code, message, extra) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra || {};
  }
}

// Raw query string -> { key: value | [values] } with values percent-decoded ('+' is literal, as in SigV4).
function parseQuery(raw) {
  const q = {};
  if (!raw) return q;
  for (const part of raw.split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const dec = (s) => { try { return decodeURIComponent(s); } catch (_) { return s; } };
    const k = dec(i < 0 ? part : part.slice(0, i));
    const v = i < 0 ? '' : dec(part.slice(i + 1));
    if (Object.prototype.hasOwnProperty.call(q, k)) q[k] = [].concat(q[k], v);
    else q[k] = v;
  }
  return q;
}

function amzDateToDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m) return null;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

const signer = new SignatureV4({
  credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  region: REGION,
  service: SERVICE,
  sha256: Sha256,
  uriEscapePath: false, // S3 does not double-encode the path
  applyChecksum: true,
});

// Recompute the signature with the signer's canonical-request / string-to-sign / signing-key steps.
async function computeSignature({ method, path, query, headers, signedHeaders, payloadHash, amzDate }) {
  const canonicalHeaders = {};
  for (const h of signedHeaders) {
    const v = headers[h];
    if (v === undefined) throw new AuthError(403, 'SignatureDoesNotMatch', `signed header ${h} is missing from the request`);
    canonicalHeaders[h] = String(Array.isArray(v) ? v.join(',') : v)
      .replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
  }
  const request = { method, path, query, headers: {}, protocol: 'http:', hostname: 'x' };
  const canonicalRequest = signer.createCanonicalRequest(request, canonicalHeaders, payloadHash);
  const shortDate = amzDate.slice(0, 8);
  const scope = `${shortDate}/${REGION}/${SERVICE}/aws4_request`;
  const key = signer.getSigningKey({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, REGION, shortDate, SERVICE);
  const signature = await signer.getSignature(amzDate, scope, key, canonicalRequest);
  return { signature, canonicalRequest };
}

function safeEq(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function checkCredential(cred, amzDate) {
  const parts = String(cred || '').split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') {
    throw new AuthError(400, 'AuthorizationHeaderMalformed', `malformed credential: ${cred}`);
  }
  const [ak, date, region, service] = parts;
  if (ak !== ACCESS_KEY) {
    throw new AuthError(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', { AWSAccessKeyId: ak });
  }
  if (region !== REGION) {
    throw new AuthError(400, 'AuthorizationHeaderMalformed', `the region '${region}' is wrong; expecting '${REGION}'`, { Region: REGION });
  }
  if (service !== SERVICE) throw new AuthError(400, 'AuthorizationHeaderMalformed', `wrong service '${service}'`);
  if (date !== amzDate.slice(0, 8)) {
    throw new AuthError(403, 'SignatureDoesNotMatch', 'credential scope date does not match X-Amz-Date');
  }
}

// Returns { kind, stripQuery } on success, throws AuthError otherwise.
async function verifyRequest(req, rawPath, rawQuery, body) {
  const headers = req.headers; // node lower-cases names; duplicates joined with ", "
  const query = parseQuery(rawQuery);
  const authz = headers.authorization;
  const isPresigned = Object.prototype.hasOwnProperty.call(query, 'X-Amz-Algorithm');
  if (authz && isPresigned) {
    throw new AuthError(400, 'InvalidArgument', 'Only one auth mechanism allowed');
  }
  if (!authz && !isPresigned) throw new AuthError(403, 'AccessDenied', 'Access Denied');

  if (authz) {
    const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(authz);
    if (!m) throw new AuthError(400, 'InvalidArgument', 'Unsupported Authorization Type');
    const fields = {};
    for (const kv of m[1].split(',')) {
      const i = kv.indexOf('=');
      if (i > 0) fields[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    }
    if (!fields.Credential || !fields.SignedHeaders || !fields.Signature) {
      throw new AuthError(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed');
    }
    let amzDate = headers['x-amz-date'];
    if (!amzDate && headers.date) {
      const d = new Date(headers.date);
      if (!isNaN(d)) amzDate = d.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
    }
    const signingDate = amzDateToDate(amzDate);
    if (!signingDate) throw new AuthError(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    checkCredential(fields.Credential, amzDate);
    if (Math.abs(Date.now() - signingDate.getTime()) > MAX_SKEW_MS) {
      throw new AuthError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
    }
    const payloadHash = headers['x-amz-content-sha256'];
    if (!payloadHash) {
      throw new AuthError(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    }
    if (/^STREAMING-/.test(payloadHash)) {
      throw new AuthError(501, 'NotImplemented', 'streaming (chunked) signed payloads are not supported by this stand-in');
    }
    if (payloadHash !== 'UNSIGNED-PAYLOAD') {
      if (!/^[0-9a-f]{64}$/.test(payloadHash)) {
        throw new AuthError(400, 'InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.');
      }
      const actual = crypto.createHash('sha256').update(body).digest('hex');
      if (actual !== payloadHash) {
        throw new AuthError(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.",
          { ClientComputedContentSHA256: payloadHash, S3ComputedContentSHA256: actual });
      }
    }
    const signedHeaders = fields.SignedHeaders.split(';').map((s) => s.trim().toLowerCase());
    if (!signedHeaders.includes('host')) throw new AuthError(403, 'SignatureDoesNotMatch', 'host must be a signed header');
    const { signature, canonicalRequest } = await computeSignature({
      method: req.method, path: rawPath, query, headers, signedHeaders, payloadHash, amzDate,
    });
    if (!safeEq(fields.Signature, signature)) {
      throw new AuthError(403, 'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { CanonicalRequest: canonicalRequest });
    }
    return { kind: 'header', stripQuery: [] };
  }

  // presigned URL
  if (query['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') {
    throw new AuthError(400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  }
  for (const k of ['X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature']) {
    if (typeof query[k] !== 'string') {
      throw new AuthError(400, 'AuthorizationQueryParametersError',
        'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
    }
  }
  const amzDate = query['X-Amz-Date'];
  const signingDate = amzDateToDate(amzDate);
  if (!signingDate) throw new AuthError(400, 'AuthorizationQueryParametersError', 'X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
  const expires = Number(query['X-Amz-Expires']);
  if (!Number.isInteger(expires) || expires < 0) {
    throw new AuthError(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires should be a number');
  }
  if (expires > 604800) {
    throw new AuthError(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be less than a week (in seconds) that is 604800');
  }
  checkCredential(query['X-Amz-Credential'], amzDate);
  const now = Date.now();
  if (now > signingDate.getTime() + expires * 1000) {
    throw new AuthError(403, 'AccessDenied', 'Request has expired',
      { 'X-Amz-Expires': String(expires), Expires: new Date(signingDate.getTime() + expires * 1000).toISOString(), ServerTime: new Date(now).toISOString() });
  }
  if (signingDate.getTime() > now + MAX_SKEW_MS) {
    throw new AuthError(403, 'AccessDenied', 'Request is not valid yet');
  }
  const signedHeaders = query['X-Amz-SignedHeaders'].split(';').map((s) => s.trim().toLowerCase());
  if (!signedHeaders.includes('host')) throw new AuthError(403, 'SignatureDoesNotMatch', 'host must be a signed header');
  const { signature, canonicalRequest } = await computeSignature({
    method: req.method, path: rawPath, query, headers, signedHeaders, payloadHash: 'UNSIGNED-PAYLOAD', amzDate,
  });
  const given = query['X-Amz-Signature'];
  if (!safeEq(given, signature)) {
    throw new AuthError(403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { CanonicalRequest: canonicalRequest });
  }
  return {
    kind: 'presigned',
    stripQuery: ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token'],
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
function sendJson(res, status, obj) {
  const b = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(b) });
  res.end(b);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.dir, { recursive: true });
  const backend = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: args.dir,
    configureBuckets: [{ name: args.bucket }],
    vhostBuckets: false,
  });
  const addr = await backend.run();
  const backendPort = addr.port;

  let requests = [];
  let faults = [];

  let writeQueue = Promise.resolve();
  const server = http.createServer(async (req, res) => {
    const q = req.url.indexOf('?');
    const rawPath = q < 0 ? req.url : req.url.slice(0, q);
    const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
    try {
      // control endpoints
      if (rawPath.startsWith('/_test/')) {
        const body = await readBody(req);
        if (req.method === 'POST' && rawPath === '/_test/reset') {
          requests = [];
          faults = [];
          return sendJson(res, 200, { ok: true });
        }
        if (req.method === 'POST' && rawPath === '/_test/fault') {
          const b = body.length ? JSON.parse(body.toString('utf8')) : {};
          if (!['down', 'error'].includes(b.mode)) return sendJson(res, 400, { ok: false, error: 'mode must be down|error' });
          const f = { mode: b.mode, count: b.count == null ? 1 : Number(b.count), status: b.status, code: b.code, msg: b.msg };
          if (f.count !== 0) faults.push(f);
          return sendJson(res, 200, { ok: true, faults });
        }
        if (req.method === 'GET' && rawPath === '/_test/requests') {
          return sendJson(res, 200, requests);
        }
        return sendJson(res, 404, { ok: false, error: `unknown control endpoint ${req.method} ${rawPath}` });
      }

      const body = await readBody(req);
      const rec = { seq: requests.length + 1, method: req.method, path: rawPath, query: rawQuery, signatureOk: false, status: null, auth: null };
      requests.push(rec);
      const done = (status, code) => {
        rec.status = status;
        if (code) rec.error = code;
        process.stderr.write(`s3-standin: ${req.method} ${rawPath} -> ${status}${code ? ' ' + code : ''}\n`);
      };

      if (faults.length) {
        const f = faults[0];
        if (f.count > 0) f.count--;
        if (f.count === 0) faults.shift();
        rec.fault = f.mode;
        if (f.mode === 'down') {
          done(503, 'ServiceUnavailable');
          return s3Error(res, 503, 'ServiceUnavailable', 'Please reduce your request rate.');
        }
        const status = f.status || 500;
        const code = f.code || 'InternalError';
        done(status, code);
        return s3Error(res, status, code, f.msg || 'We encountered an internal error. Please try again.');
      }

      let verdict;
      try {
        verdict = await verifyRequest(req, rawPath, rawQuery, body);
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        rec.auth = Object.prototype.hasOwnProperty.call(parseQuery(rawQuery), 'X-Amz-Algorithm') ? 'presigned'
          : (req.headers.authorization ? 'header' : 'none');
        done(e.status, e.code);
        return s3Error(res, e.status, e.code, e.message, e.extra);
      }
      rec.signatureOk = true;
      rec.auth = verdict.kind;

      // forward unchanged (minus auth material, which s3rver would otherwise try to check)
      const fwdQuery = rawQuery.split('&').filter((p) => {
        if (!p) return false;
        const k = decodeURIComponent(p.split('=')[0]);
        return !verdict.stripQuery.includes(k);
      }).join('&');
      const headers = { ...req.headers };
      delete headers.authorization;
      headers.host = `127.0.0.1:${backendPort}`;
      if (headers['transfer-encoding']) delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
      const forward = () => new Promise((resolve) => {
        const up = http.request({
          host: '127.0.0.1', port: backendPort, method: req.method,
          path: rawPath + (fwdQuery ? `?${fwdQuery}` : ''), headers,
        }, (upRes) => {
          done(upRes.statusCode);
          res.writeHead(upRes.statusCode, upRes.headers);
          upRes.pipe(res);
          upRes.on('end', resolve);
          upRes.on('error', resolve);
        });
        up.on('error', (e) => {
          done(502, 'BadGateway');
          if (!res.headersSent) s3Error(res, 502, 'InternalError', `backend error: ${e.message}`);
          else res.destroy();
          resolve();
        });
        up.end(body);
      });
      // s3rver keeps objects as files and prunes empty directories on delete, which races
      // when two writes touch one directory at once (a 500 real S3 never gives): writes go
      // to it one at a time.
      if (req.method === 'GET' || req.method === 'HEAD') {
        await forward();
      } else {
        const turn = writeQueue.then(forward);
        writeQueue = turn.catch(() => {});
        await turn;
      }
    } catch (e) {
      process.stderr.write(`s3-standin: internal error: ${e.stack || e}\n`);
      if (!res.headersSent) s3Error(res, 500, 'InternalError', String(e.message || e));
      else res.destroy();
    }
  });
  server.listen(args.port, args.host, () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
    backend.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`s3-standin: ${e.stack || e}\n`);
    process.exit(1);
  });
}
