// Disk-backed entry point.
import { readdirSync, readFileSync } from 'node:fs';
import { ConfigError, errnoText } from './errors.ts';
import { parseConfigText } from './parse.ts';
import type { FileAccess } from './reader.ts';
import { DEFAULT_CONFIG_PATH, type Config } from './schema.ts';

export const nodeFileAccess: FileAccess = {
  readFile: (path) => readFileSync(path, 'utf8'),
  listDir: (dir) => readdirSync(dir),
};

export function loadConfig(path: string = DEFAULT_CONFIG_PATH): Config {
  let text: string;
  try {
    text = nodeFileAccess.readFile(path);
  } catch (err) {
    throw new ConfigError(`Failed to open "${path}": ${errnoText(err)}`, { file: path });
  }
  return parseConfigText(text, { path, ...nodeFileAccess });
}
