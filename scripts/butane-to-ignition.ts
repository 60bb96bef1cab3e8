#!/usr/bin/env node
// Butane (variant flatcar, version 1.0.0) to Ignition 3.3.0 JSON, for the configs in butane/.
//
// The real `butane` transpiler cannot run here (docs/flatcar.md), so this script stands in for
// it for the part of the spec our files use, and nothing more:
//   - a YAML subset: block mappings, block sequences ("- key: value"), plain, 'single' and
//     "double" quoted scalars, integers (0644 is octal, as in Butane), true/false, comments,
//     and literal block scalars "|" (clip); no flow collections, anchors, tags or folding;
//   - Butane fields: passwd.users (name, ssh_authorized_keys, groups, uid, shell, …),
//     storage.files (path, mode, overwrite, user, group, contents: inline or
//     source + verification.hash), storage.directories, storage.links, and systemd.units
//     (name, enabled, mask, contents, dropins). Any other key is an error, not a warning.
// `contents.inline` becomes a plain percent-encoded `data:,` URL. Real Butane may gzip and
// base64 long contents instead; Ignition writes the same bytes either way.
//
//   node scripts/butane-to-ignition.ts FILE.bu            prints the Ignition JSON
//   node scripts/butane-to-ignition.ts --write            regenerates butane/**/*.ign
//   node scripts/butane-to-ignition.ts --check            compares them and runs ignition-validate
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

export type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

export class ButaneError extends Error {}

// ---------------------------------------------------------------------------------------
// YAML subset

interface Line {
  no: number;
  indent: number;
  text: string; // without indentation; comments not yet removed
}

function stripComment(s: string): string {
  // A comment starts at " #" outside quotes.
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[{,-]/.test(s[i - 1]!)) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

function scalar(raw: string, no: number): Yaml {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new ButaneError(`line ${no}: unterminated "string"`);
    return JSON.parse(s) as string;
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new ButaneError(`line ${no}: unterminated 'string'`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (/^[[{&*!|>%@`]/.test(s)) throw new ButaneError(`line ${no}: unsupported YAML: ${s}`);
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^0[0-7]+$/.test(s)) return parseInt(s, 8);
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^-?(0|[1-9]\d*)$/.test(s)) return Number(s);
  return s;
}

/** Parses the YAML subset described at the top of this file. */
export function parseYaml(text: string): Yaml {
  const raw = text.replace(/\r\n/g, '\n').split('\n');
  if (raw.some((l) => /^\s*\t/.test(l))) throw new ButaneError('tabs are not allowed for indentation');
  let pos = 0;

  const next = (): Line | undefined => {
    // Skips blank and comment-only lines.
    while (pos < raw.length) {
      const l = raw[pos]!;
      const t = l.trimStart();
      if (t === '' || t.startsWith('#') || t === '---') {
        pos++;
        continue;
      }
      return { no: pos + 1, indent: l.length - t.length, text: t };
    }
    return undefined;
  };

  const blockScalar = (parentIndent: number, header: string, no: number): string => {
    if (header !== '|') throw new ButaneError(`line ${no}: only literal "|" block scalars are supported, not "${header}"`);
    const lines: string[] = [];
    let indent = -1;
    while (pos < raw.length) {
      const l = raw[pos]!;
      if (l.trim() === '') {
        lines.push('');
        pos++;
        continue;
      }
      const ind = l.length - l.trimStart().length;
      if (indent < 0) {
        if (ind <= parentIndent) break;
        indent = ind;
      }
      if (ind < indent) break;
      lines.push(l.slice(indent));
      pos++;
    }
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines.length ? lines.join('\n') + '\n' : '';
  };

  // The value after "key:" or "- ": inline scalar, block scalar, or a nested block.
  const value = (rest: string, ownIndent: number, no: number): Yaml => {
    const v = stripComment(rest).trim();
    if (v === '|' || v === '|-' || v === '|+' || v.startsWith('>')) return blockScalar(ownIndent, v, no);
    if (v !== '') return scalar(v, no);
    const n = next();
    if (!n || n.indent <= ownIndent) {
      // A sequence may sit at the same indentation as its key.
      if (n && n.indent === ownIndent && n.text.startsWith('- ')) return block(n.indent);
      return null;
    }
    return block(n.indent);
  };

  const block = (indent: number): Yaml => {
    const first = next();
    if (!first || first.indent !== indent) throw new ButaneError(`line ${first?.no ?? raw.length}: bad indentation`);
    if (first.text === '-' || first.text.startsWith('- ')) {
      const seq: Yaml[] = [];
      for (let l = next(); l && l.indent === indent && (l.text === '-' || l.text.startsWith('- ')); l = next()) {
        const after = l.text.slice(1);
        const inner = after.trimStart();
        const innerIndent = indent + 1 + (after.length - inner.length);
        if (inner === '' || inner.startsWith('#')) {
          pos++;
          seq.push(value('', indent, l.no));
        } else if (/^[^'"\s][^:]*:(\s|$)/.test(inner) || /^["'][^"']*["']:(\s|$)/.test(inner)) {
          // "- key: value": a mapping whose keys line up after the dash.
          raw[pos] = ' '.repeat(innerIndent) + inner;
          seq.push(block(innerIndent));
        } else {
          pos++;
          seq.push(value(inner, indent, l.no));
        }
      }
      const l = next();
      if (l && l.indent > indent) throw new ButaneError(`line ${l.no}: bad indentation`);
      return seq;
    }
    const map: { [key: string]: Yaml } = {};
    for (let l = next(); l && l.indent === indent; l = next()) {
      const m = /^("[^"]*"|'[^']*'|[^\s"'#][^:]*?):(?:\s+(.*))?$/.exec(l.text) ?? /^("[^"]*"|'[^']*'|[^\s"'#][^:]*?):$/.exec(l.text);
      if (!m) throw new ButaneError(`line ${l.no}: expected "key: value", got: ${l.text}`);
      const key = String(scalar(m[1]!, l.no));
      if (Object.hasOwn(map, key)) throw new ButaneError(`line ${l.no}: duplicate key ${key}`);
      pos++;
      map[key] = value(m[2] ?? '', indent, l.no);
    }
    const l = next();
    if (l && l.indent > indent) throw new ButaneError(`line ${l.no}: bad indentation`);
    return map;
  };

  const first = next();
  if (!first) return null;
  const doc = block(first.indent);
  const rest = next();
  if (rest) throw new ButaneError(`line ${rest.no}: unexpected content: ${rest.text}`);
  return doc;
}

// ---------------------------------------------------------------------------------------
// Butane flatcar 1.0.0 → Ignition 3.3.0

type Obj = { [key: string]: Yaml };

function isObj(v: Yaml | undefined): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: Yaml | undefined, where: string, allowed: string[]): Obj {
  if (!isObj(v)) throw new ButaneError(`${where}: expected a mapping`);
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw new ButaneError(`${where}: unknown key "${k}"`);
  return v;
}

function list(v: Yaml | undefined, where: string): Yaml[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ButaneError(`${where}: expected a list`);
  return v;
}

function str(v: Yaml | undefined, where: string): string {
  if (typeof v !== 'string') throw new ButaneError(`${where}: expected a string`);
  return v;
}

function bool(v: Yaml | undefined, where: string): boolean {
  if (typeof v !== 'boolean') throw new ButaneError(`${where}: expected true or false`);
  return v;
}

function int(v: Yaml | undefined, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ButaneError(`${where}: expected an integer`);
  return v;
}

/** RFC 2397 data URL, percent-encoded (what Ignition decodes). */
export function dataUrl(text: string): string {
  return 'data:,' + encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Inverse of dataUrl for plain and base64 `data:` URLs (tests read what Ignition would write). */
export function decodeDataUrl(url: string): string {
  const m = /^data:([^,]*),(.*)$/s.exec(url);
  if (!m) throw new ButaneError(`not a data URL: ${url.slice(0, 40)}`);
  return m[1]!.endsWith(';base64') ? Buffer.from(m[2]!, 'base64').toString('utf8') : decodeURIComponent(m[2]!);
}

function copyOpt(from: Obj, to: Obj, key: string, conv: (v: Yaml, w: string) => Yaml, where: string): void {
  if (from[key] !== undefined && from[key] !== null) to[key] = conv(from[key], `${where}.${key}`);
}

function owner(v: Yaml, where: string): Yaml {
  const o = obj(v, where, ['id', 'name']);
  const out: Obj = {};
  copyOpt(o, out, 'id', int, where);
  copyOpt(o, out, 'name', str, where);
  return out;
}

function node(o: Obj, out: Obj, where: string): void {
  const path = str(o.path, `${where}.path`);
  if (!path.startsWith('/')) throw new ButaneError(`${where}.path: must be absolute: ${path}`);
  out.path = path;
  copyOpt(o, out, 'overwrite', bool, where);
  copyOpt(o, out, 'user', owner, where);
  copyOpt(o, out, 'group', owner, where);
}

function contents(v: Yaml, where: string): Obj {
  const c = obj(v, where, ['inline', 'source', 'compression', 'verification', 'http_headers']);
  if ((c.inline === undefined) === (c.source === undefined)) throw new ButaneError(`${where}: exactly one of inline and source`);
  const out: Obj = {};
  if (c.inline !== undefined) out.source = dataUrl(str(c.inline, `${where}.inline`));
  else out.source = str(c.source, `${where}.source`);
  copyOpt(c, out, 'compression', str, where);
  if (c.verification !== undefined) {
    const ver = obj(c.verification, `${where}.verification`, ['hash']);
    out.verification = { hash: str(ver.hash, `${where}.verification.hash`) };
  }
  if (c.http_headers !== undefined) {
    out.httpHeaders = list(c.http_headers, `${where}.http_headers`).map((h, i) => {
      const ho = obj(h, `${where}.http_headers[${i}]`, ['name', 'value']);
      return { name: str(ho.name, `${where}.http_headers[${i}].name`), value: str(ho.value, `${where}.http_headers[${i}].value`) };
    });
  }
  return out;
}

export interface Ignition {
  ignition: { version: '3.3.0' };
  passwd?: { users: Obj[] };
  storage?: { directories?: Obj[]; files?: Obj[]; links?: Obj[] };
  systemd?: { units: Obj[] };
}

/** Butane document (parsed YAML) → Ignition 3.3.0 config, the way Butane flatcar 1.0.0 does for our subset. */
export function butaneToIgnition(doc: Yaml): Ignition {
  const top = obj(doc, 'config', ['variant', 'version', 'passwd', 'storage', 'systemd']);
  if (top.variant !== 'flatcar') throw new ButaneError(`variant must be "flatcar", not ${JSON.stringify(top.variant)}`);
  if (top.version !== '1.0.0') throw new ButaneError(`version must be "1.0.0" (Ignition 3.3.0), not ${JSON.stringify(top.version)}`);
  const out: Ignition = { ignition: { version: '3.3.0' } };

  if (top.passwd !== undefined) {
    const p = obj(top.passwd, 'passwd', ['users']);
    out.passwd = {
      users: list(p.users, 'passwd.users').map((u, i) => {
        const w = `passwd.users[${i}]`;
        const o = obj(u, w, ['name', 'ssh_authorized_keys', 'groups', 'uid', 'primary_group', 'home_dir', 'shell', 'password_hash', 'system', 'no_create_home', 'gecos']);
        const r: Obj = { name: str(o.name, `${w}.name`) };
        if (o.ssh_authorized_keys !== undefined) r.sshAuthorizedKeys = list(o.ssh_authorized_keys, `${w}.ssh_authorized_keys`).map((k, j) => str(k, `${w}.ssh_authorized_keys[${j}]`));
        if (o.groups !== undefined) r.groups = list(o.groups, `${w}.groups`).map((g, j) => str(g, `${w}.groups[${j}]`));
        copyOpt(o, r, 'uid', int, w);
        const renamed: [string, string, (v: Yaml, w: string) => Yaml][] = [
          ['primary_group', 'primaryGroup', str], ['home_dir', 'homeDir', str], ['shell', 'shell', str], ['password_hash', 'passwordHash', str],
          ['system', 'system', bool], ['no_create_home', 'noCreateHome', bool], ['gecos', 'gecos', str],
        ];
        for (const [from, to, conv] of renamed) if (o[from] !== undefined) r[to] = conv(o[from], `${w}.${from}`);
        return r;
      }),
    };
  }

  if (top.storage !== undefined) {
    const s = obj(top.storage, 'storage', ['directories', 'files', 'links']);
    const storage: NonNullable<Ignition['storage']> = {};
    const dirs = list(s.directories, 'storage.directories').map((d, i) => {
      const w = `storage.directories[${i}]`;
      const o = obj(d, w, ['path', 'overwrite', 'user', 'group', 'mode']);
      const r: Obj = {};
      node(o, r, w);
      copyOpt(o, r, 'mode', int, w);
      return r;
    });
    const files = list(s.files, 'storage.files').map((f, i) => {
      const w = `storage.files[${i}]`;
      const o = obj(f, w, ['path', 'overwrite', 'user', 'group', 'mode', 'contents', 'append']);
      const r: Obj = {};
      node(o, r, w);
      if (o.contents !== undefined) r.contents = contents(o.contents, `${w}.contents`);
      copyOpt(o, r, 'mode', int, w);
      if (o.append !== undefined) r.append = list(o.append, `${w}.append`).map((a, j) => contents(a, `${w}.append[${j}]`));
      return r;
    });
    const links = list(s.links, 'storage.links').map((l, i) => {
      const w = `storage.links[${i}]`;
      const o = obj(l, w, ['path', 'overwrite', 'user', 'group', 'target', 'hard']);
      const r: Obj = {};
      node(o, r, w);
      r.target = str(o.target, `${w}.target`);
      copyOpt(o, r, 'hard', bool, w);
      return r;
    });
    if (dirs.length) storage.directories = dirs;
    if (files.length) storage.files = files;
    if (links.length) storage.links = links;
    out.storage = storage;
  }

  if (top.systemd !== undefined) {
    const sd = obj(top.systemd, 'systemd', ['units']);
    out.systemd = {
      units: list(sd.units, 'systemd.units').map((u, i) => {
        const w = `systemd.units[${i}]`;
        const o = obj(u, w, ['name', 'enabled', 'mask', 'contents', 'dropins']);
        const r: Obj = { name: str(o.name, `${w}.name`) };
        copyOpt(o, r, 'contents', str, w);
        copyOpt(o, r, 'enabled', bool, w);
        copyOpt(o, r, 'mask', bool, w);
        if (o.dropins !== undefined) {
          r.dropins = list(o.dropins, `${w}.dropins`).map((d, j) => {
            const dw = `${w}.dropins[${j}]`;
            const dobj = obj(d, dw, ['name', 'contents']);
            const dr: Obj = { name: str(dobj.name, `${dw}.name`) };
            copyOpt(dobj, dr, 'contents', str, dw);
            return dr;
          });
        }
        return r;
      }),
    };
  }
  return out;
}

/** Butane text → Ignition JSON text (2-space indentation, trailing newline). */
export function transpile(butane: string): string {
  return JSON.stringify(butaneToIgnition(parseYaml(butane)), null, 2) + '\n';
}

/**
 * Merges `extra` into `base` the way the docs tell an operator to paste an example into
 * lukko.bu: units with the same name become one entry (later fields win, drop-ins with the
 * same name are replaced, others appended); storage entries are appended.
 */
export function mergeIgnition(base: Ignition, extra: Ignition): Ignition {
  const out = JSON.parse(JSON.stringify(base)) as Ignition;
  if (extra.passwd) out.passwd = { users: [...(out.passwd?.users ?? []), ...extra.passwd.users] };
  if (extra.storage) {
    out.storage ??= {};
    for (const k of ['directories', 'files', 'links'] as const) {
      if (extra.storage[k]) out.storage[k] = [...(out.storage[k] ?? []), ...extra.storage[k]];
    }
  }
  if (extra.systemd) {
    out.systemd ??= { units: [] };
    for (const u of extra.systemd.units) {
      const have: Obj | undefined = out.systemd.units.find((x) => x.name === u.name);
      if (!have) {
        out.systemd.units.push(u);
        continue;
      }
      for (const [k, v] of Object.entries(u)) {
        if (k !== 'dropins') have[k] = v;
      }
      const dropins: Obj[] = (have.dropins as Obj[] | undefined) ?? [];
      for (const d of (u.dropins as Obj[] | undefined) ?? []) {
        const i = dropins.findIndex((x) => x.name === d.name);
        if (i >= 0) dropins[i] = d;
        else dropins.push(d);
      }
      if (dropins.length) have.dropins = dropins;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// ignition-validate (Debian's `ignition` package, 2.14.0 in bookworm: accepts spec 3.3.0)

export const IGNITION_VALIDATE = '/usr/bin/ignition-validate';

/** Installs Debian's `ignition` package if ignition-validate is missing; returns why not, or undefined. */
export function ensureIgnitionValidate(): string | undefined {
  if (existsSync(IGNITION_VALIDATE)) return undefined;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-q', 'ignition'], { encoding: 'utf8', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { encoding: 'utf8', env });
    r = spawnSync('apt-get', ['install', '-y', '-q', 'ignition'], { encoding: 'utf8', env });
  }
  if (existsSync(IGNITION_VALIDATE)) return undefined;
  return `apt-get install -y ignition failed (${r.status ?? r.error?.message}): ${(r.stderr ?? '').slice(-500)}`;
}

export interface Validation {
  ok: boolean;
  output: string;
}

/** Runs ignition-validate on a config (JSON text). ok = exit 0; output holds its warnings too. */
export function validateIgnition(json: string): Validation {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-ign-'));
  try {
    const file = join(dir, 'config.ign');
    writeFileSync(file, json);
    const r = spawnSync(IGNITION_VALIDATE, [file], { encoding: 'utf8' });
    if (r.error) throw r.error;
    return { ok: r.status === 0, output: (r.stdout + r.stderr).trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const BUTANE_DIR = new URL('../butane/', import.meta.url).pathname;

/** Every butane/**\/*.bu, relative to butane/. */
export function butaneFiles(dir = BUTANE_DIR): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.bu')) out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out;
}

/**
 * Replaces the literal `contents: |` block of every unit in a Butane text whose name has a file
 * in `unitDir` with that file, so that editing units/ and running `--sync-units` keeps lukko.bu
 * byte for byte the same (test/unit/butane.test.ts checks it).
 */
export function syncUnits(bu: string, unitText: (name: string) => string | undefined): string {
  const lines = bu.split('\n');
  const out: string[] = [];
  let unit: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const name = /^    - name: (\S+)$/.exec(line);
    if (name) unit = name[1];
    out.push(line);
    if (unit === undefined || line !== '      contents: |') continue;
    const text = unitText(unit);
    if (text === undefined) continue;
    // skip the old block: lines indented by 8 or more, and blank lines inside it
    let j = i + 1;
    while (j < lines.length && (lines[j]!.startsWith('        ') || (lines[j] === '' && j + 1 < lines.length && lines[j + 1]!.startsWith('        ')))) j++;
    for (const t of text.replace(/\n$/, '').split('\n')) out.push(t === '' ? '' : `        ${t}`);
    i = j - 1;
    unit = undefined;
  }
  return out.join('\n');
}

function main(argv: string[]): number {
  if (argv[0] === '--sync-units') {
    const unitDir = join(BUTANE_DIR, '..', 'units');
    const path = join(BUTANE_DIR, 'lukko.bu');
    const synced = syncUnits(readFileSync(path, 'utf8'), (name) => (existsSync(join(unitDir, name)) ? readFileSync(join(unitDir, name), 'utf8') : undefined));
    writeFileSync(path, synced);
    console.log('synced butane/lukko.bu with units/; now run --write');
    return 0;
  }
  if (argv[0] === '--write' || argv[0] === '--check') {
    let bad = 0;
    if (argv[0] === '--check') {
      const why = ensureIgnitionValidate();
      if (why) {
        console.error(why);
        return 1;
      }
    }
    for (const bu of butaneFiles()) {
      const ign = join(BUTANE_DIR, bu.replace(/\.bu$/, '.ign'));
      const json = transpile(readFileSync(join(BUTANE_DIR, bu), 'utf8'));
      if (argv[0] === '--write') {
        writeFileSync(ign, json);
        console.log(`wrote butane/${relative(BUTANE_DIR, ign)}`);
        continue;
      }
      const same = existsSync(ign) && readFileSync(ign, 'utf8') === json;
      const v = validateIgnition(json);
      console.log(`butane/${bu}: ${same ? 'matches' : 'DIFFERS FROM'} its .ign; ignition-validate ${v.ok ? 'ok' : 'FAILED'}${v.output ? `\n  ${v.output.replace(/\n/g, '\n  ')}` : ''}`);
      if (!same || !v.ok) bad++;
    }
    return bad ? 1 : 0;
  }
  if (argv.length !== 1) {
    console.error('usage: butane-to-ignition.ts FILE.bu | --write | --check | --sync-units');
    return 2;
  }
  try {
    process.stdout.write(transpile(readFileSync(argv[0]!, 'utf8')));
    return 0;
  } catch (e) {
    if (e instanceof ButaneError) {
      console.error(`${argv[0]}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv.slice(2));
