/*
 * lukko-exec: the last step between lukko's per-connection process (root) and a user's
 * program. Node cannot do this itself: child_process drops all supplementary groups when
 * it changes uid (libuv calls setgroups(0, NULL)), node-pty never touches groups, and
 * neither can give a login shell its "-bash" argv[0]. util-linux setpriv gets groups
 * right but cannot set argv[0] or terminal modes either, so this helper does exactly these
 * steps, in this order, and nothing else:
 *
 *   terminal modes on fd 0 (pty sessions) -> supplementary groups -> gid
 *   -> resource limits (still root: a hard limit may be raised) -> uid
 *   -> refuse to continue if root could be regained -> chdir -> umask -> close fds >= 3
 *   -> no_new_privs -> execvp
 *
 * Usage: lukko-exec [--uid N --gid N (--groups a,b,.. | --init-groups NAME)]
 *                   [--chdir DIR] [--argv0 NAME] [--tty GID]
 *                   [--termios I+,I-,O+,O-,C+,C-,L+,L-] [--cc INDEX=VALUE]...
 *                   [--umask OCTAL] [--rlimit RES=SOFT:HARD]... [--no-new-privs]
 *                   [--passwd-line NAME:x:UID:GID::HOME:SHELL]
 *                   -- FILE [ARG]...
 * --passwd-line: a private mount namespace whose /etc/passwd has this entry (see
 * passwd_overlay).
 * --tty: fd 0 is the session's pty; it is given to the user (group GID, mode 0620, as
 * OpenSSH does) and SSH_TTY names it.
 * --umask: umask(2) for the program, in octal (at most 0777).
 * --rlimit: setrlimit(2) for resource RES, named without RLIMIT_ (CPU, FSIZE, DATA, STACK,
 * CORE, RSS, NPROC, NOFILE, MEMLOCK, AS, SIGPENDING, MSGQUEUE, NICE, RTPRIO), at most once
 * each. SOFT and HARD are each a decimal number, "inf" for RLIM_INFINITY or "-" to keep the
 * current value. The limits are set before the uid changes, so root may raise a hard limit.
 * A soft limit above the hard one (after "-" is filled in) and any setrlimit failure refuse
 * the spawn: the translation server asked for that limit, and running without it would
 * fail open.
 * --no-new-privs: prctl(PR_SET_NO_NEW_PRIVS) just before execvp; setuid and file
 * capabilities then no longer raise the program's privileges.
 * Numbers are decimal unless said otherwise. Exit status 126 for a setup failure (like a
 * shell's "cannot execute"), 127 when FILE cannot be executed; the reason goes to stderr,
 * which the session forwards to the client.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64 /* a 64-bit rlim_t everywhere */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

static void fail(int status, const char *what, const char *arg)
{
	fprintf(stderr, "lukko-exec: %s%s%s: %s\r\n", what, arg ? " " : "", arg ? arg : "",
		strerror(errno));
	_exit(status);
}

static void usage(const char *why)
{
	fprintf(stderr, "lukko-exec: %s\n", why);
	_exit(126);
}

static unsigned long number(const char *s, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != 0 || errno != 0 || v > max)
		usage("bad number");
	return v;
}

static size_t parse_groups(char *list, gid_t *out, size_t max)
{
	size_t n = 0;
	if (*list == 0)
		return 0;
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		if (n == max)
			usage("too many groups");
		out[n++] = (gid_t)number(tok, UINT_MAX - 1);
	}
	return n;
}

static void apply_termios(const char *spec, char **cc, size_t ncc)
{
	unsigned long v[8];
	if (sscanf(spec, "%lu,%lu,%lu,%lu,%lu,%lu,%lu,%lu", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &v[6], &v[7]) != 8)
		usage("bad --termios");
	struct termios t;
	if (tcgetattr(0, &t) < 0)
		fail(126, "tcgetattr", NULL);
	t.c_iflag = (t.c_iflag | v[0]) & ~v[1];
	t.c_oflag = (t.c_oflag | v[2]) & ~v[3];
	/* CS7/CS8 are values of the CSIZE field, not independent bits */
	if (v[4] & CSIZE)
		t.c_cflag &= ~CSIZE;
	t.c_cflag = (t.c_cflag | v[4]) & ~v[5];
	t.c_lflag = (t.c_lflag | v[6]) & ~v[7];
	for (size_t i = 0; i < ncc; i++) {
		unsigned idx, val;
		if (sscanf(cc[i], "%u=%u", &idx, &val) != 2 || idx >= NCCS || val > 255)
			usage("bad --cc");
		t.c_cc[idx] = (cc_t)val;
	}
	if (tcsetattr(0, TCSANOW, &t) < 0)
		fail(126, "tcsetattr", NULL);
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "CPU", RLIMIT_CPU },		 { "FSIZE", RLIMIT_FSIZE },
	{ "DATA", RLIMIT_DATA },	 { "STACK", RLIMIT_STACK },
	{ "CORE", RLIMIT_CORE },	 { "RSS", RLIMIT_RSS },
	{ "NPROC", RLIMIT_NPROC },	 { "NOFILE", RLIMIT_NOFILE },
	{ "MEMLOCK", RLIMIT_MEMLOCK },	 { "AS", RLIMIT_AS },
	{ "SIGPENDING", RLIMIT_SIGPENDING }, { "MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "NICE", RLIMIT_NICE },	 { "RTPRIO", RLIMIT_RTPRIO },
};
#define N_RLIMITS (sizeof(rlimit_names) / sizeof(rlimit_names[0]))

_Static_assert(sizeof(rlim_t) == sizeof(unsigned long long), "rlim_t is 64 bits");

/* one --rlimit: which sides were given, and their values */
struct rlimit_spec {
	int given, keep_soft, keep_hard;
	rlim_t soft, hard;
};

/* "-": keep (returns 1); "inf": RLIM_INFINITY; else a decimal number that fits in rlim_t */
static int rlimit_value(const char *s, rlim_t *out)
{
	if (strcmp(s, "-") == 0)
		return 1;
	if (strcmp(s, "inf") == 0) {
		*out = RLIM_INFINITY;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != 0 || errno != 0)
		usage("bad --rlimit value");
	*out = (rlim_t)v;
	return 0;
}

static void parse_rlimit(char *spec, struct rlimit_spec *specs)
{
	char *eq = strchr(spec, '=');
	char *colon = eq ? strchr(eq + 1, ':') : NULL;
	if (!colon)
		usage("bad --rlimit: want RES=SOFT:HARD");
	*eq = 0;
	*colon = 0;
	size_t r = 0;
	while (r < N_RLIMITS && strcmp(rlimit_names[r].name, spec) != 0)
		r++;
	if (r == N_RLIMITS)
		usage("bad --rlimit: unknown resource");
	struct rlimit_spec *s = &specs[r];
	if (s->given)
		usage("bad --rlimit: resource given twice");
	s->given = 1;
	s->keep_soft = rlimit_value(eq + 1, &s->soft);
	s->keep_hard = rlimit_value(colon + 1, &s->hard);
}

static void apply_rlimits(const struct rlimit_spec *specs)
{
	for (size_t r = 0; r < N_RLIMITS; r++) {
		const struct rlimit_spec *s = &specs[r];
		if (!s->given)
			continue;
		const char *name = rlimit_names[r].name;
		struct rlimit l;
		if (getrlimit(rlimit_names[r].resource, &l) < 0)
			fail(126, "getrlimit", name);
		if (!s->keep_soft)
			l.rlim_cur = s->soft;
		if (!s->keep_hard)
			l.rlim_max = s->hard;
		/* RLIM_INFINITY is the largest rlim_t, so plain comparison orders it right */
		if (l.rlim_cur > l.rlim_max) {
			fprintf(stderr,
				"lukko-exec: rlimit %s: soft limit %llu is above hard limit %llu\r\n",
				name, (unsigned long long)l.rlim_cur, (unsigned long long)l.rlim_max);
			_exit(126);
		}
		if (setrlimit(rlimit_names[r].resource, &l) < 0)
			fail(126, "setrlimit", name);
	}
}

/*
 * --passwd-line: an account that only a translation server knows has no passwd entry, and
 * programs that look themselves up (OpenSSH's sftp-server refuses to start: "No user found
 * for uid") would fail. The process gets a mount namespace of its own in which /etc/passwd
 * is the system's file plus this line (replacing an entry of the same name), read-only. The
 * host's file is never touched; nothing else differs from the host's mounts.
 */
static void passwd_overlay(const char *line)
{
	const char *colon = strchr(line, ':');
	if (!colon || colon == line || strchr(line, '\n'))
		usage("bad --passwd-line");
	size_t prefix = (size_t)(colon - line) + 1; /* "name:" */
	/* A file, not a memfd: the kernel refuses to bind-mount from its internal mounts.
	 * Unlinked as soon as it is mounted, so nothing stays behind in /run. */
	char path[] = "/run/.lukko-passwd-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		fail(126, "mkstemp", path);
	FILE *out = fdopen(fd, "w");
	if (!out)
		fail(126, "passwd copy", path);
	FILE *in = fopen("/etc/passwd", "re");
	if (in) {
		char *l = NULL;
		size_t cap = 0;
		ssize_t n;
		while ((n = getline(&l, &cap, in)) > 0) {
			if (strncmp(l, line, prefix) == 0)
				continue;
			fputs(l, out);
			if (l[n - 1] != '\n')
				fputc('\n', out);
		}
		free(l);
		fclose(in);
	}
	fprintf(out, "%s\n", line);
	if (fchmod(fd, 0644) < 0 || fclose(out) != 0) {
		unlink(path);
		fail(126, "passwd copy", path);
	}
	int ok = unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
		 mount(path, "/etc/passwd", NULL, MS_BIND, NULL) == 0;
	int saved = errno;
	unlink(path);
	errno = saved;
	if (!ok)
		fail(126, "private /etc/passwd", NULL);
	if (mount(NULL, "/etc/passwd", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		fail(126, "mount", "/etc/passwd (read-only)");
}

int main(int argc, char **argv)
{
	long uid = -1, gid = -1;
	long tty_gid = -1;
	char *groups = NULL, *init_groups = NULL, *dir = NULL, *argv0 = NULL, *termios_spec = NULL;
	char *passwd_line = NULL;
	char *cc[NCCS];
	size_t ncc = 0;
	long mask = -1;
	int no_new_privs = 0;
	struct rlimit_spec rlimits[N_RLIMITS];
	memset(rlimits, 0, sizeof rlimits);
	int i = 1;

	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--no-new-privs") == 0) {
			no_new_privs = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage("option without value");
		char *val = argv[++i];
		if (strcmp(a, "--uid") == 0)
			uid = (long)number(val, UINT_MAX - 1);
		else if (strcmp(a, "--gid") == 0)
			gid = (long)number(val, UINT_MAX - 1);
		else if (strcmp(a, "--groups") == 0)
			groups = val;
		else if (strcmp(a, "--init-groups") == 0)
			init_groups = val;
		else if (strcmp(a, "--chdir") == 0)
			dir = val;
		else if (strcmp(a, "--argv0") == 0)
			argv0 = val;
		else if (strcmp(a, "--tty") == 0)
			tty_gid = (long)number(val, UINT_MAX - 1);
		else if (strcmp(a, "--termios") == 0)
			termios_spec = val;
		else if (strcmp(a, "--cc") == 0) {
			if (ncc == NCCS)
				usage("too many --cc");
			cc[ncc++] = val;
		} else if (strcmp(a, "--umask") == 0) {
			char *end;
			errno = 0;
			unsigned long m = strtoul(val, &end, 8);
			if (*val < '0' || *val > '7' || *end != 0 || errno != 0 || m > 0777)
				usage("bad --umask");
			mask = (long)m;
		} else if (strcmp(a, "--passwd-line") == 0)
			passwd_line = val;
		else if (strcmp(a, "--rlimit") == 0)
			parse_rlimit(val, rlimits);
		else
			usage("unknown option");
	}
	if (i >= argc)
		usage("no program");
	if ((uid < 0) != (gid < 0))
		usage("--uid and --gid go together");
	if (uid >= 0 && !groups && !init_groups)
		usage("--uid needs --groups or --init-groups: never keep the server's groups");

	/* Node ignores SIGPIPE and may block signals; the user's program starts clean. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);

	if (termios_spec)
		apply_termios(termios_spec, cc, ncc);

	if (tty_gid >= 0) {
		const char *name = ttyname(0);
		if (!name)
			fail(126, "ttyname", NULL);
		if (uid >= 0 && fchown(0, (uid_t)uid, (gid_t)tty_gid) < 0)
			fail(126, "chown", name);
		if (fchmod(0, 0620) < 0)
			fail(126, "chmod", name);
		setenv("SSH_TTY", name, 1);
	}

	if (passwd_line)
		passwd_overlay(passwd_line);

	if (uid >= 0) {
		if (init_groups) {
			if (initgroups(init_groups, (gid_t)gid) < 0)
				fail(126, "initgroups", init_groups);
		} else {
			static gid_t list[NGROUPS_MAX];
			size_t n = parse_groups(groups, list, NGROUPS_MAX);
			if (setgroups(n, list) < 0)
				fail(126, "setgroups", NULL);
		}
		if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0)
			fail(126, "setgid", NULL);
	}

	/* after NSS (initgroups) has run, but before the uid changes: root may raise a hard
	 * limit, the user may not */
	apply_rlimits(rlimits);

	if (uid >= 0) {
		if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
			fail(126, "setuid", NULL);
		/* fail closed: a non-root target must not be able to get root back */
		if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
			fprintf(stderr, "lukko-exec: could regain root after dropping it\r\n");
			_exit(126);
		}
	}

	if (dir && chdir(dir) < 0) {
		/* as OpenSSH: say so and start in / rather than refuse the session */
		fprintf(stderr, "Could not chdir to home directory %s: %s\r\n", dir, strerror(errno));
		if (chdir("/") < 0)
			fail(126, "chdir", "/");
	}

	if (mask >= 0)
		umask((mode_t)mask);

	/* nothing of the server's (the client socket, logs, key files) reaches the user */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);

	/* last, so that nothing above is affected by it */
	if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(126, "prctl", "PR_SET_NO_NEW_PRIVS");

	char *file = argv[i];
	if (argv0)
		argv[i] = argv0;
	execvp(file, &argv[i]);
	fail(127, "cannot execute", file);
	return 127;
}
