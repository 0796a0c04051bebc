#!/usr/bin/env node
'use strict';
/*
 * yamlcheck.js - syntax and consistency checks of the deployment files in
 * etc/ (called by test/deploy/check_deploy.sh; containers cannot run where
 * the tests run, so this is what can be checked without them).
 *
 *   node yamlcheck.js [--compose FILE --env-example FILE]
 *                     [--livekit FILE] [--turnconf FILE] [FILE.yaml ...]
 *
 * Every YAML file is parsed with a real parser (the `yaml` package, YAML 1.2,
 * duplicate keys are errors).  With --compose the Compose file is also
 * checked for structure: services have an image or a build, depends_on and
 * networks name things that exist, bind mounts exist, every ${VAR} it uses
 * is listed in the --env-example file, and no secret is written literally.
 * --livekit / --turnconf cross-check the placeholders those files expect
 * the containers to fill in.
 *
 * Prints one line per check, "PASS <what>" or "FAIL <what>: <why>", and
 * exits 1 if any check failed.
 */
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

let failed = 0;
function pass(what) { console.log(`PASS ${what}`); }
function fail(what, why) { failed++; console.log(`FAIL ${what}: ${why}`); }
function check(what, problems) {
	if (problems.length === 0) pass(what);
	else fail(what, problems.join('; '));
}

function parseFile(file) {
	let text;
	try {
		text = fs.readFileSync(file, 'utf8');
	} catch (e) {
		fail(`parse ${file}`, e.message);
		return undefined;
	}
	const docs = YAML.parseAllDocuments(text, { merge: true, uniqueKeys: true, prettyErrors: true });
	const errs = [];
	for (const d of docs) {
		for (const e of d.errors) errs.push(e.message.split('\n')[0]);
		for (const w of d.warnings) errs.push(`warning: ${w.message.split('\n')[0]}`);
	}
	if (errs.length > 0) {
		fail(`parse ${file}`, errs.join('; '));
		return undefined;
	}
	if (docs.length !== 1) {
		fail(`parse ${file}`, `expected one YAML document, found ${docs.length}`);
		return undefined;
	}
	const value = docs[0].toJS({ maxAliasCount: 100 });
	if (value === null || typeof value !== 'object' || Array.isArray(value)) {
		fail(`parse ${file}`, 'the top level is not a mapping');
		return undefined;
	}
	pass(`parse ${file}`);
	return { text, value };
}

/* ------------------------------------------------------------ .env.example */

/* name -> 'set' (NAME=value) or 'commented' (# NAME=value). */
function readEnvExample(file) {
	const names = new Map();
	for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
		let m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(line);
		if (m) {
			names.set(m[1], 'set');
			continue;
		}
		m = /^#\s*([A-Za-z_][A-Za-z0-9_]*)=/.exec(line);
		if (m && !names.has(m[1])) names.set(m[1], 'commented');
	}
	return names;
}

/* ------------------------------------------------------ compose interpolation */

/*
 * Compose interpolation: "$$" is a literal "$"; "${NAME}", "${NAME:-def}",
 * "${NAME-def}", "${NAME:?err}", "${NAME?err}", "${NAME:+alt}" and "$NAME"
 * are variables.  Returns [{name, hasDefault}] and the unescaped problems.
 */
function composeVars(text) {
	const vars = [];
	const problems = [];
	for (let i = 0; i < text.length; i++) {
		if (text[i] !== '$') continue;
		if (text[i + 1] === '$') { i++; continue; }
		if (text[i + 1] === '{') {
			const end = text.indexOf('}', i + 2);
			if (end < 0) { problems.push(`unterminated \${ at offset ${i}`); break; }
			const body = text.slice(i + 2, end);
			const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$/s.exec(body);
			if (!m) problems.push(`bad variable \${${body}}`);
			else vars.push({ name: m[1], hasDefault: m[2] === '-' || m[2] === ':-' || m[2] === '+' || m[2] === ':+' });
			i = end;
			continue;
		}
		const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
		if (m) {
			vars.push({ name: m[0], hasDefault: false });
			i += m[0].length;
		} else {
			problems.push(`lone "$" at offset ${i} (write "$$" for a literal dollar)`);
		}
	}
	return { vars, problems };
}

function asList(x) {
	if (x === undefined || x === null) return [];
	return Array.isArray(x) ? x : Object.keys(x);
}

const SECRET_NAME = /(PASSWORD|SECRET|_KEY|KEYS)$/;

function checkCompose(file, envFile, doc) {
	const dir = path.dirname(file);
	const c = doc.value;
	const services = c.services && typeof c.services === 'object' ? c.services : {};
	const names = Object.keys(services);
	const topNetworks = new Set(Object.keys(c.networks || {}));
	const topVolumes = new Set(Object.keys(c.volumes || {}));

	check(`${file}: has services`, names.length > 0 ? [] : ['no services']);

	const required = ['postgres', 'redis', 'livekit', 'egress', 'ingress', 'coturn', 'minio',
		'minio-init', 'migrate', 'nchat-rtc'];
	check(`${file}: the stack of the design report is complete`,
		required.filter((s) => !services[s]).map((s) => `service ${s} missing`));

	for (const name of names) {
		const s = services[name] || {};
		const p = [];
		if (!s.image && !s.build) p.push('neither image nor build');
		if (s.build) {
			const b = typeof s.build === 'string' ? { context: s.build } : s.build;
			const ctx = path.resolve(dir, b.context || '.');
			if (!fs.existsSync(ctx)) p.push(`build context ${b.context} does not exist`);
			const df = path.resolve(ctx, b.dockerfile || 'Dockerfile');
			if (!fs.existsSync(df)) p.push(`Dockerfile ${b.dockerfile} not found in the context`);
		}
		const deps = s.depends_on;
		for (const d of asList(deps)) {
			if (!services[d]) { p.push(`depends_on unknown service ${d}`); continue; }
			if (d === name) p.push('depends on itself');
			if (deps && !Array.isArray(deps)) {
				const cond = (deps[d] || {}).condition || 'service_started';
				if (!['service_started', 'service_healthy', 'service_completed_successfully'].includes(cond))
					p.push(`depends_on ${d}: unknown condition ${cond}`);
				if (cond === 'service_healthy' && !(services[d] || {}).healthcheck)
					p.push(`depends_on ${d} being healthy, but ${d} has no healthcheck`);
				if (cond === 'service_completed_successfully' && (services[d] || {}).restart &&
				    !['no', 'on-failure'].includes(String(services[d].restart)))
					p.push(`waits for ${d} to complete, but ${d} restarts (${services[d].restart})`);
			}
		}
		for (const n of asList(s.networks))
			if (!topNetworks.has(n)) p.push(`network ${n} not declared`);
		for (const v of s.volumes || []) {
			const src = typeof v === 'string' ? v.split(':')[0] : (v.source || '');
			if (src.startsWith('.') || src.startsWith('/')) {
				if (!fs.existsSync(path.resolve(dir, src))) p.push(`bind mount source ${src} does not exist`);
			} else if (src && !topVolumes.has(src)) {
				p.push(`volume ${src} not declared`);
			}
		}
		const env = s.environment;
		if (env && !Array.isArray(env)) {
			for (const [k, v] of Object.entries(env)) {
				if (!SECRET_NAME.test(k) || v === null || v === undefined) continue;
				const sv = String(v);
				if (sv !== '' && !sv.includes('${')) p.push(`${k} is a literal; take it from .env`);
			}
		} else if (Array.isArray(env)) {
			p.push('environment as a list: use a mapping');
		}
		check(`${file}: service ${name}`, p);
	}

	/* depends_on cycles */
	const state = new Map();
	const cycles = [];
	const visit = (n, trail) => {
		if (state.get(n) === 2) return;
		if (state.get(n) === 1) { cycles.push([...trail, n].join(' -> ')); return; }
		state.set(n, 1);
		for (const d of asList((services[n] || {}).depends_on)) if (services[d]) visit(d, [...trail, n]);
		state.set(n, 2);
	};
	names.forEach((n) => visit(n, []));
	check(`${file}: depends_on has no cycle`, cycles);

	/* Variables against .env.example (Compose interpolates values, not
	 * comments, so walk the parsed document). */
	const strings = [];
	const walk = (x) => {
		if (typeof x === 'string') strings.push(x);
		else if (x && typeof x === 'object')
			for (const [k, v] of Object.entries(x)) { if (!Array.isArray(x)) strings.push(k); walk(v); }
	};
	walk(c);
	const vars = [];
	const problems = [];
	for (const str of strings) {
		const r = composeVars(str);
		vars.push(...r.vars);
		problems.push(...r.problems.map((m) => `${m} in "${str.slice(0, 40)}"`));
	}
	const listed = readEnvExample(envFile);
	const p = [...problems];
	const seen = new Set();
	for (const v of vars) {
		if (seen.has(v.name + v.hasDefault)) continue;
		seen.add(v.name + v.hasDefault);
		const st = listed.get(v.name);
		if (st === undefined) p.push(`\${${v.name}} is not listed in ${path.basename(envFile)}`);
		else if (st === 'commented' && !v.hasDefault)
			p.push(`\${${v.name}} has no default but is commented out in ${path.basename(envFile)}`);
	}
	check(`${file}: every variable is listed in ${path.basename(envFile)}`, p);

	/* Unused entries in .env.example are a sign of a typo on one side. */
	const used = new Set(vars.map((v) => v.name));
	check(`${path.basename(envFile)}: every entry is used by ${path.basename(file)}`,
		[...listed.keys()].filter((n) => !used.has(n)).map((n) => `${n} is not used`));

	/* Secrets in .env.example are obvious placeholders. */
	const envText = fs.readFileSync(envFile, 'utf8');
	const lit = [];
	for (const line of envText.split('\n')) {
		const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
		if (m && /(PASSWORD|SECRET)$/.test(m[1]) && m[2] !== '' && m[2] !== 'CHANGE_ME')
			lit.push(`${m[1]} should be CHANGE_ME`);
	}
	check(`${path.basename(envFile)}: secrets are placeholders`, lit);

	/* What nchat-rtc reads. */
	const app = services['nchat-rtc'] || {};
	const appEnv = app.environment && !Array.isArray(app.environment) ? app.environment : {};
	const want = ['DATABASE_URL', 'REDIS_URL', 'LIVEKIT_URL', 'LIVEKIT_API_KEY',
		'LIVEKIT_API_SECRET', 'TURN_SERVER_URL', 'TURN_SECRET', 'S3_ENDPOINT', 'S3_PUBLIC_ENDPOINT',
		'S3_REGION', 'S3_BUCKET', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'S3_FORCE_PATH_STYLE',
		'NEXT_PUBLIC_STREAM_INGEST_URL', 'NEXT_PUBLIC_HLS_BASE_URL', 'LISTEN_ADDR'];
	const miss = want.filter((k) => !(k in appEnv)).map((k) => `${k} not set`);
	if (!('AUTH_JWT_SECRET' in appEnv) && !('HASURA_GRAPHQL_JWT_SECRET' in appEnv))
		miss.push('neither AUTH_JWT_SECRET nor HASURA_GRAPHQL_JWT_SECRET');
	if (appEnv.LISTEN_ADDR !== undefined && !String(appEnv.LISTEN_ADDR).startsWith('0.0.0.0:'))
		miss.push('LISTEN_ADDR must listen on 0.0.0.0 inside a container');
	const mig = services.migrate || {};
	const migEnv = mig.environment && !Array.isArray(mig.environment) ? mig.environment : {};
	if (!('DATABASE_MIGRATE_URL' in migEnv) && !('DATABASE_URL' in migEnv))
		miss.push('migrate has no database URL');
	if (!JSON.stringify(mig.command || '').includes('migrate')) miss.push('migrate does not run `migrate`');
	const dep = app.depends_on && !Array.isArray(app.depends_on) ? app.depends_on : {};
	if (!dep.migrate || dep.migrate.condition !== 'service_completed_successfully')
		miss.push('nchat-rtc does not wait for migrate to complete');
	const grace = /^(\d+)s$/.exec(String(app.stop_grace_period || ''));
	if (!grace || Number(grace[1]) <= 25) miss.push('stop_grace_period must exceed the 25 s drain');
	check(`${file}: nchat-rtc settings`, miss);
	return services;
}

/* ----------------------------------------------- placeholders of rendered files */

/* Each ${NAME} in a file some service renders must be in that service's
 * environment and substituted by its command. */
function checkRendered(file, services, serviceName) {
	const text = fs.readFileSync(file, 'utf8');
	const s = services[serviceName] || {};
	const env = s.environment && !Array.isArray(s.environment) ? s.environment : {};
	const cmd = JSON.stringify([s.entrypoint, s.command]);
	const p = [];
	const names = new Set();
	for (const line of text.split('\n')) {
		const body = line.replace(/^\s*#.*$/, '');
		for (const m of body.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(m[1]);
	}
	for (const n of names) {
		if (!(n in env)) p.push(`\${${n}} is not in the environment of service ${serviceName}`);
		if (!cmd.includes(`$\${${n}}`)) p.push(`\${${n}} is not substituted by the command of ${serviceName}`);
	}
	if (names.size === 0 && cmd.includes('sed')) p.push('nothing to render, yet the command renders');
	check(`${file}: placeholders are filled in by service ${serviceName}`, p);
}

function get(obj, dotted) {
	return dotted.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
}

function checkLivekit(file, doc) {
	const c = doc.value;
	const p = [];
	const urls = get(c, 'webhook.urls') || [];
	if (!urls.some((u) => /^https?:\/\/[^/]+\/api\/webhooks\/livekit$/.test(u)))
		p.push('webhook.urls has no .../api/webhooks/livekit');
	if (!get(c, 'webhook.api_key')) p.push('webhook.api_key missing (required with webhook.urls)');
	if (c.keys && Object.values(c.keys).some((v) => !String(v).startsWith('${')))
		p.push('keys holds a literal secret: use LIVEKIT_KEYS');
	if (!get(c, 'redis.address')) p.push('redis.address missing (Egress and Ingress need it)');
	if (!get(c, 'ingress.rtmp_base_url')) p.push('ingress.rtmp_base_url missing');
	const ts = get(c, 'rtc.turn_servers') || [];
	const embedded = get(c, 'turn.enabled') === true;
	if (!embedded && ts.length === 0) p.push('no TURN: neither rtc.turn_servers nor turn.enabled');
	for (const t of ts) {
		if (!t.host || !t.port || !t.protocol) p.push('rtc.turn_servers entry without host/port/protocol');
		if (!['udp', 'tcp', 'tls'].includes(t.protocol)) p.push(`turn_servers protocol ${t.protocol}`);
		if (!t.secret && !t.credential) p.push('rtc.turn_servers entry without secret');
	}
	if (get(c, 'room.auto_create') !== false) p.push('room.auto_create should be false (nchat-rtc creates rooms)');
	check(`${file}: LiveKit settings`, p);
}

function checkEgressIngress(file, doc) {
	const c = doc.value;
	const p = [];
	if (!c.ws_url && true) p.push('ws_url missing');
	if (!get(c, 'redis.address')) p.push('redis.address missing');
	for (const k of ['api_secret', 'storage.s3.secret', 's3.secret'])
		if (get(c, k)) p.push(`${k} is a literal secret: use the environment`);
	check(`${file}: LiveKit service settings`, p);
}

function checkTurnPeer(file, services) {
	const text = fs.readFileSync(file, 'utf8');
	const allowed = [...text.matchAll(/^allowed-peer-ip=(\S+)/gm)].map((m) => m[1]);
	const lk = (services.livekit || {}).networks || {};
	const ips = Array.isArray(lk) ? [] : Object.values(lk).map((n) => (n || {}).ipv4_address).filter(Boolean);
	const p = [];
	for (const ip of ips) if (!allowed.includes(ip)) p.push(`livekit's ${ip} is not an allowed-peer-ip`);
	for (const ip of allowed) if (!ips.includes(ip)) p.push(`allowed-peer-ip ${ip} is not livekit's address`);
	check(`${file}: coturn may relay to livekit-server`, p);
}

/* ------------------------------------------------------------------- main */

function main(argv) {
	const opt = { files: [] };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (['--compose', '--env-example', '--livekit', '--turnconf', '--egress', '--ingress'].includes(a)) {
			if (i + 1 >= argv.length) { console.error(`${a} needs a file`); return 2; }
			opt[a.slice(2)] = argv[++i];
		} else if (a.startsWith('--')) {
			console.error(`unknown option ${a}`);
			return 2;
		} else {
			opt.files.push(a);
		}
	}
	let services = null;
	if (opt.compose) {
		const doc = parseFile(opt.compose);
		if (doc) {
			if (!opt['env-example']) { console.error('--compose needs --env-example'); return 2; }
			services = checkCompose(opt.compose, opt['env-example'], doc);
		}
	}
	if (opt.livekit) {
		const doc = parseFile(opt.livekit);
		if (doc) checkLivekit(opt.livekit, doc);
		if (doc && services) checkRendered(opt.livekit, services, 'livekit');
	}
	for (const k of ['egress', 'ingress']) {
		if (!opt[k]) continue;
		const doc = parseFile(opt[k]);
		if (doc) checkEgressIngress(opt[k], doc);
	}
	if (opt.turnconf && services) {
		checkRendered(opt.turnconf, services, 'coturn');
		checkTurnPeer(opt.turnconf, services);
	}
	for (const f of opt.files) parseFile(f);
	return failed > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
