/*
 * Run-time check of every response against etc/openapi.yaml: the status must
 * be documented for the operation, the Content-Type must be the documented
 * one, and the body must validate against the documented schema (JSON Schema
 * 2020-12, as OpenAPI 3.1 uses).  Schemas close their objects
 * (additionalProperties / unevaluatedProperties false) and list the fields
 * that are always sent as required, so a field the service sends but the
 * document omits fails, and so does one the document promises but the
 * service leaves out.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import type { Middleware } from 'openapi-fetch';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export const DOC_PATH = path.resolve(__dirname, '..', '..', '..', '..', 'etc', 'openapi.yaml');

export class OpenApiDoc {
  readonly doc: Obj;
  private readonly ajv: Ajv2020;
  private readonly cache = new Map<string, ValidateFunction>();
  /* "METHOD /path status" of every response seen, for the coverage line */
  readonly seen = new Set<string>();

  /* mutate: change the parsed document first (the self-test of the checker). */
  constructor(file = DOC_PATH, mutate?: (doc: any) => void) {
    this.doc = YAML.parse(readFileSync(file, 'utf8')) as Obj;
    if (mutate) mutate(this.doc);
    this.ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
    addFormats(this.ajv);
    this.ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
    this.ajv.addKeyword('example');
    const schemas = ((this.doc.components as Obj).schemas ?? {}) as Obj;
    const text = JSON.stringify({ $id: 'nchat-rtc.json', $defs: schemas }).replaceAll('#/components/schemas/', '#/$defs/');
    this.ajv.addSchema(JSON.parse(text) as object);
  }

  private resolve(o: Json | undefined): Obj | undefined {
    if (o === null || o === undefined || typeof o !== 'object' || Array.isArray(o)) return undefined;
    const ref = (o as Obj)['$ref'];
    if (typeof ref !== 'string') return o as Obj;
    let cur: Json = this.doc;
    for (const part of ref.replace(/^#\//, '').split('/')) {
      cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Obj)[part] ?? null : null;
    }
    return this.resolve(cur);
  }

  operation(method: string, schemaPath: string): Obj | undefined {
    const p = this.resolve(((this.doc.paths as Obj) ?? {})[schemaPath]);
    return p ? this.resolve(p[method.toLowerCase()]) : undefined;
  }

  operationIds(): string[] {
    const ids: string[] = [];
    for (const [p, item] of Object.entries((this.doc.paths as Obj) ?? {}))
      for (const [m, op] of Object.entries(item as Obj))
        if (['get', 'post', 'put', 'patch', 'delete'].includes(m)) ids.push(`${m.toUpperCase()} ${p}`);
    return ids;
  }

  private validator(schema: Obj): ValidateFunction {
    const key = JSON.stringify(schema);
    let v = this.cache.get(key);
    if (!v) {
      const text = key.replaceAll('#/components/schemas/', 'nchat-rtc.json#/$defs/');
      v = this.ajv.compile(JSON.parse(text) as object);
      this.cache.set(key, v);
    }
    return v;
  }

  /* Problems with this response (empty: it matches the document). */
  check(method: string, schemaPath: string, status: number, contentType: string | null, body: string): string[] {
    const op = this.operation(method, schemaPath);
    const where = `${method.toUpperCase()} ${schemaPath} -> ${status}`;
    if (!op) return [`${method.toUpperCase()} ${schemaPath} is not in the document`];
    this.seen.add(`${method.toUpperCase()} ${schemaPath}`);
    const res = this.resolve(((op.responses as Obj) ?? {})[String(status)]);
    if (!res) return [`${where}: status ${status} is not documented`];
    const content = this.resolve(res.content) ?? undefined;
    if (!content) return body.length === 0 ? [] : [`${where}: documented without a body, got ${body.length} bytes`];
    const mt = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    const media = this.resolve(content[mt]);
    if (!media) return [`${where}: Content-Type ${mt || '(none)'} not documented (${Object.keys(content).join(', ')})`];
    const schema = this.resolve(media.schema) && (media.schema as Obj);
    if (!schema) return [];
    let value: unknown = body;
    if (mt.endsWith('json')) {
      try { value = JSON.parse(body); } catch { return [`${where}: body is not JSON`]; }
    }
    const v = this.validator(schema);
    if (v(value)) return [];
    return (v.errors ?? []).map((e) => {
      const extra = e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties'
        ? ` (${JSON.stringify(e.params)})` : '';
      return `${where}: ${e.instancePath || '(body)'} ${e.message ?? e.keyword}${extra}`;
    });
  }

  /* openapi-fetch middleware: a response that does not match throws. */
  middleware(): Middleware {
    return {
      onResponse: async ({ request, response, schemaPath }) => {
        const body = await response.clone().text();
        const problems = this.check(request.method, schemaPath, response.status, response.headers.get('content-type'), body);
        if (problems.length > 0) throw new ContractError(problems, body);
        return undefined;
      },
    };
  }
}

export class ContractError extends Error {
  constructor(readonly problems: string[], readonly body: string) {
    super(`response does not match etc/openapi.yaml: ${problems.join('; ')}; body: ${body.slice(0, 400)}`);
  }
}
