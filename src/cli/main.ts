#!/usr/bin/env node
// The `lukko` command. `lukko connection` runs on every login, so it is dispatched before
// anything else loads: yargs alone costs tens of milliseconds (spec/dependencies.md).
const [command, ...rest] = process.argv.slice(2);
if (command === 'connection') {
  // The bundled copy of connection/main (scripts/bundle.mjs) when the build made one.
  let entry: typeof import('../connection/main.ts');
  try {
    entry = (await import(new URL('../connection/main.bundle.js', import.meta.url).href)) as typeof entry;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    entry = await import('../connection/main.ts');
  }
  entry.main(rest);
} else {
  const { run } = await import('./commands.ts');
  await run(process.argv.slice(2));
}
