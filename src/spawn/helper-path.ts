// The C helpers (lukko-exec, lukko-netns, lukko-control-recv) are built into dist/DIR/NAME.
// This module runs as dist/spawn/helper-path.js, inside the bundled
// dist/connection/main.bundle.js, or from src/ when tests run it directly: from each of
// those, one of the paths below is that file.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const found = new Map<string, string>();

/** dist/DIR/NAME (or `override`, an environment variable's value, if that file exists); undefined when not built. */
export function builtHelper(dir: string, name: string, override?: string): string | undefined {
  const key = `${dir}/${name}`;
  const known = found.get(key);
  if (known !== undefined) return known;
  const candidates = [
    override,
    fileURLToPath(new URL(`../${dir}/${name}`, import.meta.url)),
    fileURLToPath(new URL(`../../dist/${dir}/${name}`, import.meta.url)),
  ];
  const path = candidates.find((c): c is string => !!c && existsSync(c));
  if (path !== undefined) found.set(key, path);
  return path;
}
