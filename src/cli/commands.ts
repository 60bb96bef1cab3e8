// Every `lukko` command but `connection` (see main.ts), with yargs.
import { dirname } from 'node:path';
import yargs from 'yargs';
import { ConfigError, DEFAULT_CONFIG_PATH, formatAddress, loadConfig } from '../config/index.ts';
import type { Config } from '../config/index.ts';
import { EXIT_CONFIG } from '../exit-codes.ts';
import { chooseLogMode, createLogger } from '../log/logger.ts';
import { serve } from '../serve/serve.ts';
import type { KeyKind } from '../ssh/keygen.ts';
import { writeMissingHostKeys } from '../ssh/keygen.ts';
import { VERSION } from '../version.ts';

function load(path: string): Config {
  try {
    return loadConfig(path);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`lukko: ${e.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw e;
  }
}

export function describeListeners(config: Config): string[] {
  return config.listeners.map((l) => {
    const opts: string[] = [];
    if (l.implicit) opts.push('implicit default');
    if (l.tag) opts.push(`tag=${l.tag}`);
    if (l.interface) opts.push(`interface=${l.interface}`);
    if (l.v6only) opts.push('v6only');
    if (l.reusePort) opts.push('reuse_port');
    if (l.keepalive) opts.push('keepalive');
    if (l.ackTimeout) opts.push(`ack_timeout=${l.ackTimeout}s`);
    if (l.maxConnectionsPerIp) opts.push(`max_connections_per_ip=${l.maxConnectionsPerIp}`);
    if (l.tarpit) opts.push('tarpit');
    if (l.hostKeyFiles.length) opts.push(`host keys: ${l.hostKeyFiles.join(', ')}`);
    if (l.proxyTo) opts.push(`proxy_to=${l.proxyTo}`);
    if (l.proxyToZeroconf) opts.push(`proxy_to_zeroconf=${l.proxyToZeroconf}`);
    if (l.verboseErrors) opts.push('verbose_errors');
    if (l.execRejectStderr) opts.push('exec_reject_stderr');
    return `listener ${formatAddress(l.bind)}${opts.length ? ` (${opts.join('; ')})` : ''}`;
  });
}

export async function run(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('lukko')
    .version(VERSION)
    .option('config', { type: 'string', default: DEFAULT_CONFIG_PATH, describe: 'lukko.conf to use' })
    .command('connection', 'serve the one SSH connection systemd passed (lukko@.service)', () => {}, () => {
      /* dispatched in main.ts before yargs loads */
    })
    .command(
      'serve',
      'accept connections and start `lukko connection` for each, as systemd would',
      (y) =>
        y
          .option('listen', { type: 'string', array: true, describe: 'HOST:PORT to listen on (default: the config\'s listeners)' })
          .option('state-dir', { type: 'string', describe: 'keep host keys and a generated lukko.conf here (when --config is not given)' })
          .option('log-level', { type: 'string', default: 'info' }),
      async (a) => {
        const explicitConfig = argv.some((x) => x === '--config' || x.startsWith('--config='));
        const configPath = explicitConfig || !a['state-dir'] ? a.config : undefined;
        let listen = a.listen ?? [];
        if (!listen.length) {
          const config = load(configPath ?? a.config);
          listen = config.listeners.filter((l) => l.bind.kind === 'inet').map((l) => formatAddress(l.bind).replace(/^\[::\]/, '*'));
        }
        const log = createLogger({ fd: 1, mode: chooseLogMode(1, process.env, !!process.stdout.isTTY), level: a['log-level'] });
        await serve({ log, configPath, listen, stateDir: a['state-dir'], logLevel: a['log-level'] });
      },
    )
    .command('check-config', 'validate lukko.conf and print the effective listeners', () => {}, (a) => {
      const config = load(a.config);
      for (const line of describeListeners(config)) console.log(line);
      console.log(`${a.config}: OK`);
    })
    .command(
      'keygen',
      'write the missing host keys (ed25519, ecdsa; rsa with --rsa) into the config directory',
      (y) => y.option('rsa', { type: 'boolean', default: false }).option('dir', { type: 'string', describe: 'directory (default: the config file\'s)' }),
      (a) => {
        const dir = a.dir ?? dirname(a.config);
        const kinds: KeyKind[] = ['ed25519', 'ecdsa', ...(a.rsa ? (['rsa'] as const) : [])];
        const written = writeMissingHostKeys(dir, kinds);
        for (const p of written) console.log(`wrote ${p}`);
        if (!written.length) console.log(`host keys in ${dir} are complete`);
      },
    )
    .command(
      'units',
      'render lukko.conf\'s listener blocks as a lukko.socket drop-in (stdout, or into --output)',
      (y) => y.option('output', { type: 'string', describe: 'unit directory to write lukko.socket.d/50-lukko-conf.conf into, e.g. /etc/systemd/system' }),
      async (a) => {
        const { renderSocketDropIn, UnitRenderError, writeSocketDropIn } = await import('../systemd/render-units.ts');
        const config = load(a.config);
        let rendered;
        try {
          rendered = renderSocketDropIn(config);
        } catch (e) {
          if (!(e instanceof UnitRenderError)) throw e;
          for (const p of e.problems) process.stderr.write(`lukko units: ${p}\n`);
          process.exit(EXIT_CONFIG);
        }
        for (const n of rendered.notes) process.stderr.write(`lukko units: note: ${n}\n`);
        if (a.output === undefined) {
          process.stdout.write(rendered.text);
          return;
        }
        const path = writeSocketDropIn(a.output, rendered.text);
        process.stderr.write(`lukko units: wrote ${path}; now run: systemctl daemon-reload && systemctl restart lukko.socket\n`);
      },
    )
    .command(
      'companion',
      'collect the connections\' reports into metrics and serve them (lukko-companion.service; docs/companion.md)',
      (y) =>
        y
          .option('state', { type: 'string', default: '/var/lib/lukko/companion-state.json', describe: 'file the counters are kept in across restarts' })
          .option('report-socket', { type: 'string', default: '/run/lukko/companion.socket', describe: 'socket the lukko instances report to (@name: abstract); not used when systemd passes one named "report"' })
          .option('log-level', { type: 'string', default: 'info' }),
      async (a) => {
        const { runCompanion } = await import('../companion/main.ts');
        await runCompanion({ config: a.config, state: a.state, reportSocket: a['report-socket'], logLevel: a['log-level'] });
      },
    )
    .command(
      'translation-server',
      'answer lukko\'s LOGIN requests from a user file (translation protocol; docs/translation-server.md)',
      (y) =>
        y
          .command(
            'hash-password',
            'read a password from stdin (without echo on a terminal) and print its hash for the user file',
            (yy) => yy.option('params', { type: 'string', describe: 'scrypt cost, e.g. ln=16,r=8,p=1 (default ln=15,r=6,p=1)' }),
            async (a) => {
              const { runHashPassword } = await import('../translation-server/main.ts');
              await runHashPassword({ params: a.params });
            },
          )
          .option('users', { type: 'string', default: '/etc/cm4all/lukko/users.ini', describe: 'the user file' })
          .option('listen', { type: 'string', default: '/run/lukko/translation.socket', describe: 'socket path, or @name for an abstract socket (not used when systemd passes a socket)' })
          .option('request-timeout', { type: 'number', default: 10, describe: 'seconds a connection has for each complete request' })
          .option('log-level', { type: 'string', default: 'info' }),
      async (a) => {
        const { runTranslationServer } = await import('../translation-server/main.ts');
        const listenGiven = argv.some((x) => x === '--listen' || x.startsWith('--listen='));
        await runTranslationServer({ users: a.users, listen: a.listen, listenGiven, logLevel: a['log-level'], requestTimeout: a['request-timeout'] });
      },
    )
    .demandCommand(1)
    .strict()
    .help()
    .parseAsync();
}
