// Runs the whole suite with node:test. Unit tests import src/*.ts directly (Node 24 strips
// types); integration tests drive the built dist/ through real clients. The type check of the
// tests runs first so a stale signature fails loudly rather than at run time.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'test/tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const only = process.argv.slice(2);
const files = [];
for (const dir of ['unit', 'integration', 'systemd']) {
  let names = [];
  try { names = readdirSync(join(root, 'test', dir)); } catch { continue; }
  for (const n of names.sort()) if (n.endsWith('.test.ts')) files.push(join('test', dir, n));
}
const chosen = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS; // adds ~80 ms to every node start; systemd never sets it
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...chosen], { stdio: 'inherit', cwd: root, env });
process.exit(r.status ?? 1);
