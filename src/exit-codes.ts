// Exit statuses with a meaning for systemd (design.md: "Exit status means something").
// Anything the client or the network did ends in 0, so only our own faults leave a failed
// unit behind.
export const EXIT_OK = 0;
export const EXIT_SOFTWARE = 70; // EX_SOFTWARE: a bug in lukko
export const EXIT_CONFIG = 78; // EX_CONFIG: lukko.conf, host keys or the environment given to us
