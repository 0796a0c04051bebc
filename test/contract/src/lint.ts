/*
 * etc/openapi.yaml through @apidevtools/swagger-parser (validate: OpenAPI 3.1
 * schema plus $ref resolution) and through the project's own rules, which no
 * generic linter has: every operation documents each status it can return
 * with a schema, errors use the shared Error body, bodies are named schemas,
 * and no schema is an inline copy of another.
 * Prints PASS/FAIL lines (counted by check.sh).  Argument: the document.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { check, assert } from './lib';

type Obj = { [k: string]: any };
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

function problems(list: string[], what: string): void {
  if (list.length > 0) throw new Error(`${list.length} ${what}: ${list.slice(0, 12).join('; ')}${list.length > 12 ? '; ...' : ''}`);
}

async function main(): Promise<void> {
  const file = process.argv[2] ?? '../../etc/openapi.yaml';
  const doc = YAML.parse(readFileSync(file, 'utf8')) as Obj;

  await check(`swagger-parser validate ${file}`, async () => {
    const api = await SwaggerParser.validate(structuredClone(doc) as never) as Obj;
    assert(String(api.openapi).startsWith('3.1'), `openapi ${api.openapi}, want 3.1.x`);
  });

  const resolve = (o: Obj | undefined): Obj | undefined => {
    if (!o || typeof o.$ref !== 'string') return o;
    return resolve(o.$ref.replace(/^#\//, '').split('/').reduce((c: Obj | undefined, k: string) => c?.[k], doc));
  };
  const ops: Array<{ where: string; op: Obj; path: string }> = [];
  for (const [p, item] of Object.entries(doc.paths ?? {}))
    for (const m of METHODS) if ((item as Obj)[m]) ops.push({ where: `${m.toUpperCase()} ${p}`, op: (item as Obj)[m], path: p });

  await check('every operation has an operationId, a summary, a tag and a 2xx response', () => {
    const bad: string[] = [];
    for (const { where, op } of ops) {
      if (!op.operationId) bad.push(`${where}: no operationId`);
      if (!op.summary) bad.push(`${where}: no summary`);
      if (!Array.isArray(op.tags) || op.tags.length === 0) bad.push(`${where}: no tag`);
      if (!Object.keys(op.responses ?? {}).some((c) => /^2/.test(c))) bad.push(`${where}: no 2xx`);
    }
    problems(bad, 'problems');
  });

  await check('every documented status has a body schema (204 excepted); errors use the Error body', () => {
    const bad: string[] = [];
    for (const { where, op } of ops)
      for (const [code, r0] of Object.entries(op.responses ?? {})) {
        const r = resolve(r0 as Obj);
        if (code === '204') { if (r?.content) bad.push(`${where} ${code}: 204 with a body`); continue; }
        const media = Object.values(r?.content ?? {}) as Obj[];
        if (media.length === 0 || media.some((m) => !m.schema)) { bad.push(`${where} ${code}: no schema`); continue; }
        if (/^[45]/.test(code)) {
          const refs = media.map((m) => resolve(m.schema));
          const isErr = (s: Obj | undefined) => s === doc.components.schemas.Error ||
            (Array.isArray(s?.oneOf) && s!.oneOf.some((x: Obj) => resolve(x) === doc.components.schemas.Error));
          if (!refs.every(isErr)) bad.push(`${where} ${code}: not the Error body`);
        }
      }
    problems(bad, 'responses');
  });

  await check('request and response bodies are named schemas ($ref), not inline', () => {
    const bad: string[] = [];
    const named = (m: Obj) => typeof m.schema?.$ref === 'string';
    for (const { where, op } of ops) {
      for (const [mt, m] of Object.entries(resolve(op.requestBody)?.content ?? {}))
        if (!named(m as Obj)) bad.push(`${where} request ${mt}`);
      for (const [code, r0] of Object.entries(op.responses ?? {}))
        for (const [mt, m] of Object.entries(resolve(r0 as Obj)?.content ?? {}))
          if (!named(m as Obj)) bad.push(`${where} ${code} ${mt}`);
    }
    for (const [name, r] of Object.entries(doc.components?.responses ?? {}))
      for (const [mt, m] of Object.entries((r as Obj).content ?? {}))
        if (!named(m as Obj)) bad.push(`components.responses.${name} ${mt}`);
    problems(bad, 'inline bodies');
  });

  await check('the generic statuses are documented (401 with a token, 400/413/415 with a body, 429/500/503)', () => {
    const bad: string[] = [];
    for (const { where, op, path } of ops) {
      const codes = new Set(Object.keys(op.responses ?? {}));
      const sec: Obj[] = op.security ?? doc.security ?? [];
      const needsAuth = sec.some((s) => Object.keys(s).length > 0);
      if (needsAuth && !codes.has('401')) bad.push(`${where}: 401`);
      const body = resolve(op.requestBody);
      if (body) {
        for (const c of ['400', '413']) if (!codes.has(c)) bad.push(`${where}: ${c}`);
        if (body.content?.['application/json'] && !codes.has('415')) bad.push(`${where}: 415`);
      }
      if (/\{/.test(path) && !codes.has('400')) bad.push(`${where}: 400 (path id)`);
      const onLoop = path === '/healthz';
      if (!onLoop && !codes.has('503')) bad.push(`${where}: 503`);
      if (path.startsWith('/api/') && !path.startsWith('/api/webhooks/')) {
        for (const c of ['429', '500']) if (!codes.has(c)) bad.push(`${where}: ${c}`);
      }
    }
    problems(bad, 'missing statuses');
  });

  await check('no schema is an inline copy of a named one', () => {
    const schemas = doc.components?.schemas ?? {};
    const names = Object.keys(schemas);
    const bad: string[] = [];
    for (let i = 0; i < names.length; i++)
      for (let j = i + 1; j < names.length; j++)
        if (isDeepStrictEqual(schemas[names[i]!], schemas[names[j]!])) bad.push(`${names[i]} = ${names[j]}`);
    const strip = (s: Obj) => { const { description, ...rest } = s; void description; return rest; };
    const walk = (s: unknown, at: string, top: boolean) => {
      if (!s || typeof s !== 'object') return;
      if (!top && !Array.isArray(s) && (s as Obj).type === 'object' && (s as Obj).properties) {
        for (const n of names)
          if (isDeepStrictEqual(strip(s as Obj), strip(schemas[n]))) bad.push(`${at} copies ${n}`);
      }
      for (const [k, v] of Object.entries(s as Obj)) walk(v, `${at}.${k}`, false);
    };
    for (const n of names) walk(schemas[n], n, true);
    walk(doc.paths, 'paths', false);
    problems(bad, 'copies');
  });
}

main().then(() => undefined, (e) => { console.log(`FAIL lint: ${String(e)}`); process.exitCode = 1; });
