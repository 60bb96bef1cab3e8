// One file for the per-connection start path. Node's ES module loader pays per module
// (resolution, stat, cache lookup) and `lukko connection` loads ~30 of ours on every login;
// bundled, start-up is 10-20 ms shorter. Dependencies stay external: ssh2 finds its native
// binding relative to its own files, and the compile cache covers node_modules anyway.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/connection/main.js'],
  outfile: 'dist/connection/main.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  packages: 'external',
  logLevel: 'warning',
});
