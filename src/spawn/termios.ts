// RFC 4254 8 / RFC 8160 terminal modes → Linux termios changes, as arguments for
// lukko-exec, which applies them to the pty before the user's program starts (node-pty has
// no way to). Values are Linux's generic (x86_64, arm64) constants.

const CC: Record<string, number> = {
  VINTR: 0, VQUIT: 1, VERASE: 2, VKILL: 3, VEOF: 4, VSWTCH: 7, VSTART: 8, VSTOP: 9,
  VSUSP: 10, VEOL: 11, VREPRINT: 12, VDISCARD: 13, VWERASE: 14, VLNEXT: 15, VEOL2: 16,
};

type Field = 0 | 1 | 2 | 3; // iflag, oflag, cflag, lflag
const FLAGS: Record<string, [Field, number]> = {
  IGNPAR: [0, 0o4], PARMRK: [0, 0o10], INPCK: [0, 0o20], ISTRIP: [0, 0o40], INLCR: [0, 0o100],
  IGNCR: [0, 0o200], ICRNL: [0, 0o400], IUCLC: [0, 0o1000], IXON: [0, 0o2000], IXANY: [0, 0o4000],
  IXOFF: [0, 0o10000], IMAXBEL: [0, 0o20000], IUTF8: [0, 0o40000],
  OPOST: [1, 0o1], OLCUC: [1, 0o2], ONLCR: [1, 0o4], OCRNL: [1, 0o10], ONOCR: [1, 0o20], ONLRET: [1, 0o40],
  CS7: [2, 0o40], CS8: [2, 0o60], PARENB: [2, 0o400], PARODD: [2, 0o1000],
  ISIG: [3, 0o1], ICANON: [3, 0o2], XCASE: [3, 0o4], ECHO: [3, 0o10], ECHOE: [3, 0o20], ECHOK: [3, 0o40],
  ECHONL: [3, 0o100], NOFLSH: [3, 0o200], TOSTOP: [3, 0o400], ECHOCTL: [3, 0o1000], ECHOKE: [3, 0o4000],
  PENDIN: [3, 0o40000], IEXTEN: [3, 0o100000],
};

/** Pure: `--termios` and `--cc` arguments for lukko-exec; unknown modes are skipped. */
export function termiosArgs(modes: Record<string, number>): string[] {
  const set = [0, 0, 0, 0];
  const clear = [0, 0, 0, 0];
  const args: string[] = [];
  for (const [name, value] of Object.entries(modes)) {
    const cc = CC[name];
    if (cc !== undefined) {
      // 255 means "disabled" on the wire; Linux's _POSIX_VDISABLE is 0.
      args.push('--cc', `${cc}=${value === 255 ? 0 : value & 0xff}`);
      continue;
    }
    const flag = FLAGS[name];
    if (!flag) continue;
    const [field, bit] = flag;
    if (name === 'CS7' || name === 'CS8') {
      if (value) set[field]! |= bit; // CSIZE values; lukko-exec clears CSIZE first
      continue;
    }
    if (value) set[field]! |= bit;
    else clear[field]! |= bit;
  }
  const spec = [0, 1, 2, 3].flatMap((f) => [set[f]!, clear[f]! & ~set[f]!]).join(',');
  return ['--termios', spec, ...args];
}
