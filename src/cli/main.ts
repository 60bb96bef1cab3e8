#!/usr/bin/env node
// The `lukko` command. `lukko connection` runs on every login, so it is dispatched before
// anything else loads: yargs alone costs tens of milliseconds (spec/dependencies.md).
const [command, ...rest] = process.argv.slice(2);
if (command === 'connection') {
  const { main } = await import('../connection/main.ts');
  main(rest);
} else {
  const { run } = await import('./commands.ts');
  await run(process.argv.slice(2));
}
