/*
 * lukko-exec: the last step between lukko's per-connection process (root) and a user's
 * program. Node cannot do this itself: child_process drops all supplementary groups when
 * it changes uid (libuv calls setgroups(0, NULL)), node-pty never touches groups, and
 * neither can give a login shell its "-bash" argv[0]. util-linux setpriv gets groups
 * right but cannot set argv[0] or terminal modes, and unshare/nsenter/mount would take a
 * chain of processes to build one container. This helper does exactly these steps, in this
 * order, and nothing else (docs/design.md, "Why a small C helper" and "Session isolation"):
 *
 *   close fds >= 3 -> terminal modes on fd 0 (pty sessions)
 *   -> [program from the host: open it now]
 *   -> join a named network namespace -> new mount/network/IPC/UTS/cgroup namespaces
 *   -> [PID namespace: fork; this process stays behind as a relay]
 *   -> host name, loopback up -> mounts (new root, /proc, /dev, /tmp, binds, files,
 *      symlinks) -> pivot_root
 *   -> supplementary groups -> resource limits (still root)
 *   -> [PID or user namespace: fork; the parent supervises (PID 1 of the namespace),
 *       the child continues; a user namespace gets its uid/gid map from the parent]
 *   -> chroot -> gid -> uid -> refuse to continue if root could be regained -> chdir
 *   -> umask -> no_new_privs -> execvp (or fexecve of the program opened on the host)
 *
 * Usage: lukko-exec [--uid N --gid N (--groups a,b,.. | --init-groups NAME)]
 *                   [--chdir DIR] [--argv0 NAME] [--tty GID]
 *                   [--termios I+,I-,O+,O-,C+,C-,L+,L-] [--cc INDEX=VALUE]...
 *                   [--umask OCTAL] [--rlimit RES=SOFT:HARD]... [--no-new-privs]
 *                   [--passwd-line NAME:x:UID:GID::HOME:SHELL]
 *                   [--userns UID:GID] [--pid-ns] [--net-ns] [--netns-name NAME]
 *                   [--ipc-ns] [--cgroup-ns] [--hostname NAME]
 *                   [--root-tmpfs | --pivot-root DIR] [--mount-proc] [--mount-dev]
 *                   [--tmp OPTIONS] [--tmp-exec] [--dirs-readable]
 *                   [--bind FLAGS SOURCE TARGET]... [--tmpfs rw|ro TARGET]...
 *                   [--write-file FLAGS PATH CONTENTS]... [--symlink TARGET LINKPATH]...
 *                   [--chroot DIR] [--exec-host]
 *                   -- FILE [ARG]...
 * --passwd-line: without a new root, a private mount namespace whose /etc/passwd has this
 * entry (see passwd_overlay); in a program run from the host (--exec-host) into a new
 * root, the program's own getpwuid/getpwnam answer it (lukko-jail.so, see below).
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
 * --userns UID:GID: a user namespace in which the program's uid and gid are UID and GID,
 * mapped to --uid/--gid (one id each, nothing else mapped). It is created last, by a child
 * that is still root, so the namespace belongs to root: the user's other processes outside
 * have no capabilities in it, and every other namespace belongs to the host's.
 * --netns-name NAME: join /run/netns/NAME (`ip netns`); --net-ns: a new one with only `lo`.
 * --root-tmpfs: an empty tmpfs becomes "/", read-only once everything is mounted on it;
 * --pivot-root DIR: DIR does. Mount points inside a tmpfs root are created as needed (mode
 * 0711, or 0755 with --dirs-readable); anywhere else they must exist.
 * --bind FLAGS: "-" or a comma list of rw, exec, file, optional, container. Without rw a
 * bind is read-only, without exec noexec; always nosuid and nodev. container: SOURCE is a
 * path in the new root. optional: a missing SOURCE (ENOENT) skips the mount; otherwise it
 * refuses the spawn. --write-file FLAGS: "-" or "optional".
 * --exec-host: FILE is opened on the host before anything is mounted and run from there,
 * so a jail needs no copy of it. A static program is run with fexecve. A dynamic one needs
 * its loader and libraries, which a jail does not have: this process then runs the host's
 * ELF interpreter with --preload lukko-jail.so (this file built with -DLUKKO_JAIL), whose
 * constructor does everything from "join a named network namespace" on, after the loader
 * has mapped the program and its libraries and before the program's main() runs. The
 * loader runs as root, so it gets an empty environment; the user's comes back in the
 * constructor. A loader that cannot load the library ends the process (fail closed).
 * Numbers are decimal unless said otherwise. Exit status 126 for a setup failure (like a
 * shell's "cannot execute"), 127 when FILE cannot be executed; the reason goes to stderr,
 * which the session forwards to the client.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64 /* a 64-bit rlim_t everywhere */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

/* used by the executable only, not by lukko-jail.so */
#define EXEC_ONLY __attribute__((unused))

static void fail(int status, const char *what, const char *arg)
{
	fprintf(stderr, "lukko-exec: %s%s%s: %s\r\n", what, arg ? " " : "", arg ? arg : "",
		strerror(errno));
	_exit(status);
}

static void usage(const char *why)
{
	fprintf(stderr, "lukko-exec: %s\r\n", why);
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

EXEC_ONLY static void apply_termios(const char *spec, char **cc, size_t ncc)
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

/* ------------------------------------------------------------------ options */

#define B_RW 1
#define B_EXEC 2
#define B_FILE 4
#define B_OPTIONAL 8
#define B_CONTAINER 16

enum mount_kind { M_BIND, M_TMPFS, M_WRITE, M_SYMLINK };

struct mount_spec {
	enum mount_kind kind;
	int flags;
	const char *a, *b, *c; /* bind: source, target; tmpfs: target; write: path, contents;
				  symlink: target, link path */
};

#define MAX_MOUNTS 256

struct options {
	long uid, gid, tty_gid;
	char *groups, *init_groups, *dir, *argv0, *termios_spec, *passwd_line;
	char *cc[NCCS];
	size_t ncc;
	long mask;
	int no_new_privs;
	struct rlimit_spec rlimits[N_RLIMITS];
	/* isolation */
	int userns;
	unsigned long ns_uid, ns_gid;
	int pid_ns, net_ns, ipc_ns, cgroup_ns;
	char *netns_name, *hostname;
	int root_tmpfs;
	char *pivot_root;
	int mount_proc, mount_dev, tmp_exec, dirs_readable;
	char *tmp_options; /* --tmp: tmpfs on /tmp with these options ("" = defaults) */
	struct mount_spec mounts[MAX_MOUNTS];
	size_t nmounts;
	char *chroot_dir;
	int exec_host;
	/* the program */
	char *file;
	char **args; /* argv for the program, args[0] replaced by argv0 if given */
};

static int bind_flags(const char *s)
{
	if (strcmp(s, "-") == 0)
		return 0;
	int f = 0;
	char *copy = strdup(s);
	for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
		if (strcmp(tok, "rw") == 0)
			f |= B_RW;
		else if (strcmp(tok, "exec") == 0)
			f |= B_EXEC;
		else if (strcmp(tok, "file") == 0)
			f |= B_FILE;
		else if (strcmp(tok, "optional") == 0)
			f |= B_OPTIONAL;
		else if (strcmp(tok, "container") == 0)
			f |= B_CONTAINER;
		else
			usage("bad mount flags");
	}
	free(copy);
	return f;
}

static struct mount_spec *add_mount(struct options *o, enum mount_kind kind)
{
	if (o->nmounts == MAX_MOUNTS)
		usage("too many mounts");
	struct mount_spec *m = &o->mounts[o->nmounts++];
	memset(m, 0, sizeof *m);
	m->kind = kind;
	return m;
}

static void absolute(const char *p)
{
	if (p[0] != '/')
		usage("a mount path is not absolute");
}

/* Returns the index of FILE in argv. */
static int parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof *o);
	o->uid = o->gid = o->tty_gid = o->mask = -1;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		/* flags */
		int *flag = strcmp(a, "--no-new-privs") == 0 ? &o->no_new_privs
			    : strcmp(a, "--pid-ns") == 0	 ? &o->pid_ns
			    : strcmp(a, "--net-ns") == 0	 ? &o->net_ns
			    : strcmp(a, "--ipc-ns") == 0	 ? &o->ipc_ns
			    : strcmp(a, "--cgroup-ns") == 0	 ? &o->cgroup_ns
			    : strcmp(a, "--root-tmpfs") == 0	 ? &o->root_tmpfs
			    : strcmp(a, "--mount-proc") == 0	 ? &o->mount_proc
			    : strcmp(a, "--mount-dev") == 0	 ? &o->mount_dev
			    : strcmp(a, "--tmp-exec") == 0	 ? &o->tmp_exec
			    : strcmp(a, "--dirs-readable") == 0 ? &o->dirs_readable
			    : strcmp(a, "--exec-host") == 0	 ? &o->exec_host
							 : NULL;
		if (flag) {
			*flag = 1;
			continue;
		}
		/* options with two or three values */
		if (strcmp(a, "--bind") == 0 || strcmp(a, "--write-file") == 0) {
			if (i + 3 >= argc)
				usage("option without values");
			struct mount_spec *m = add_mount(o, a[2] == 'b' ? M_BIND : M_WRITE);
			m->flags = bind_flags(argv[i + 1]);
			m->a = argv[i + 2];
			m->b = argv[i + 3];
			absolute(m->a);
			if (m->kind == M_BIND)
				absolute(m->b);
			else if (m->flags & ~B_OPTIONAL)
				usage("bad --write-file flags");
			i += 3;
			continue;
		}
		if (strcmp(a, "--tmpfs") == 0 || strcmp(a, "--symlink") == 0) {
			if (i + 2 >= argc)
				usage("option without values");
			int tmpfs = a[2] == 't';
			struct mount_spec *m = add_mount(o, tmpfs ? M_TMPFS : M_SYMLINK);
			if (tmpfs) {
				if (strcmp(argv[i + 1], "rw") != 0 && strcmp(argv[i + 1], "ro") != 0)
					usage("bad --tmpfs mode");
				m->flags = argv[i + 1][1] == 'w' ? B_RW : 0;
				m->a = argv[i + 2];
				absolute(m->a);
			} else {
				m->a = argv[i + 1];
				m->b = argv[i + 2];
				absolute(m->b);
			}
			i += 2;
			continue;
		}
		if (i + 1 >= argc)
			usage("option without value");
		char *val = argv[++i];
		if (strcmp(a, "--uid") == 0)
			o->uid = (long)number(val, UINT_MAX - 1);
		else if (strcmp(a, "--gid") == 0)
			o->gid = (long)number(val, UINT_MAX - 1);
		else if (strcmp(a, "--groups") == 0)
			o->groups = val;
		else if (strcmp(a, "--init-groups") == 0)
			o->init_groups = val;
		else if (strcmp(a, "--chdir") == 0)
			o->dir = val;
		else if (strcmp(a, "--argv0") == 0)
			o->argv0 = val;
		else if (strcmp(a, "--tty") == 0)
			o->tty_gid = (long)number(val, UINT_MAX - 1);
		else if (strcmp(a, "--termios") == 0)
			o->termios_spec = val;
		else if (strcmp(a, "--cc") == 0) {
			if (o->ncc == NCCS)
				usage("too many --cc");
			o->cc[o->ncc++] = val;
		} else if (strcmp(a, "--umask") == 0) {
			char *end;
			errno = 0;
			unsigned long m = strtoul(val, &end, 8);
			if (*val < '0' || *val > '7' || *end != 0 || errno != 0 || m > 0777)
				usage("bad --umask");
			o->mask = (long)m;
		} else if (strcmp(a, "--passwd-line") == 0)
			o->passwd_line = val;
		else if (strcmp(a, "--rlimit") == 0)
			parse_rlimit(val, o->rlimits);
		else if (strcmp(a, "--userns") == 0) {
			char *colon = strchr(val, ':');
			if (!colon)
				usage("bad --userns: want UID:GID");
			*colon = 0;
			o->userns = 1;
			o->ns_uid = number(val, UINT_MAX - 1);
			o->ns_gid = number(colon + 1, UINT_MAX - 1);
		} else if (strcmp(a, "--netns-name") == 0) {
			if (!*val || strchr(val, '/') || strcmp(val, ".") == 0 || strcmp(val, "..") == 0)
				usage("bad --netns-name");
			o->netns_name = val;
		} else if (strcmp(a, "--hostname") == 0)
			o->hostname = val;
		else if (strcmp(a, "--pivot-root") == 0) {
			absolute(val);
			o->pivot_root = val;
		} else if (strcmp(a, "--tmp") == 0)
			o->tmp_options = val;
		else if (strcmp(a, "--chroot") == 0) {
			absolute(val);
			o->chroot_dir = val;
		} else
			usage("unknown option");
	}
	if (i >= argc)
		usage("no program");
	if ((o->uid < 0) != (o->gid < 0))
		usage("--uid and --gid go together");
	if (o->uid >= 0 && !o->groups && !o->init_groups)
		usage("--uid needs --groups or --init-groups: never keep the server's groups");
	if (o->userns && o->uid < 0)
		usage("--userns needs --uid");
	if (o->net_ns && o->netns_name)
		usage("--net-ns and --netns-name exclude each other");
	if (o->root_tmpfs && o->pivot_root)
		usage("one root only");
	if (o->mount_dev && !o->root_tmpfs && !o->pivot_root)
		usage("--mount-dev needs a new root");
	o->file = argv[i];
	o->args = &argv[i];
	return i;
}

static int new_root(const struct options *o)
{
	return o->root_tmpfs || o->pivot_root != NULL;
}

static int mount_ns(const struct options *o)
{
	return new_root(o) || o->mount_proc || o->tmp_options || o->nmounts > 0 ||
	       (o->passwd_line && o->uid >= 0);
}

/* ------------------------------------------------------------------ passwd */

/*
 * --passwd-line: an account that only a translation server knows has no passwd entry, and
 * programs that look themselves up (OpenSSH's sftp-server refuses to start: "No user found
 * for uid") would fail. Without a new root, the process's mount namespace gets an
 * /etc/passwd that is the system's file plus this line (replacing an entry of the same
 * name), read-only. The host's file is never touched.
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
	int ok = mount(path, "/etc/passwd", NULL, MS_BIND, NULL) == 0;
	int saved = errno;
	unlink(path);
	errno = saved;
	if (!ok)
		fail(126, "private /etc/passwd", NULL);
	if (mount(NULL, "/etc/passwd", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		fail(126, "mount", "/etc/passwd (read-only)");
}

/* ------------------------------------------------------------------ mounts */

/* Where a new root is assembled; one empty directory serves every session, because each
 * mounts on it in a mount namespace of its own. */
#define STAGE_PARENT "/run/lukko"
#define STAGE "/run/lukko/exec-root"

static const struct options *cur;

/* PATH inside the container, as a path in this process's view (under the stage). */
static char *in_root(const char *path)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	if (!new_root(cur))
		return strcpy(b, path);
	if ((size_t)snprintf(b, PATH_MAX, "%s%s", STAGE, strcmp(path, "/") == 0 ? "" : path) >=
	    PATH_MAX)
		usage("path too long");
	return b;
}

/*
 * Every directory on the way to PATH_IN_ROOT (the last component too, unless `parent_only`)
 * is checked, and with `create` made when missing. A symbolic link on the way is refused:
 * the kernel would follow an absolute one into the host's tree (this process's root is
 * still the host's), and a mount or a mkdir there must never happen. Directories are
 * created only inside a tmpfs root; anywhere else (the host's tree, a PIVOT_ROOT
 * directory) lukko never changes a file system to make room for a mount. Without a new
 * root the paths are the host's own and are used as they are.
 */
static int walk_path(const char *path_in_root, int parent_only, int create, mode_t mode)
{
	if (!new_root(cur))
		return 0;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", path_in_root);
	size_t skip = strlen(STAGE);
	if (strlen(p) <= skip)
		return 0;
	if (parent_only) {
		char *slash = strrchr(p, '/');
		if (!slash || (size_t)(slash - p) <= skip)
			return 0;
		*slash = 0;
	}
	char *s = p + skip;
	for (;;) {
		s = strchr(s + 1, '/');
		if (s)
			*s = 0;
		struct stat st;
		if (lstat(p, &st) == 0) {
			if (S_ISLNK(st.st_mode)) {
				errno = ELOOP;
				return -1;
			}
		} else if (errno != ENOENT || !create || !cur->root_tmpfs || mkdir(p, mode) < 0) {
			return -1;
		}
		if (!s)
			return 0;
		*s = '/';
	}
}

static int make_dirs(const char *path_in_root, mode_t mode)
{
	return walk_path(path_in_root, 0, 1, mode);
}

static int make_parent(const char *path_in_root, mode_t mode)
{
	return walk_path(path_in_root, 1, 1, mode);
}

/* no symbolic link anywhere on the way, nothing created */
static int check_path(const char *path_in_root)
{
	return walk_path(path_in_root, 0, 0, 0);
}

static mode_t dir_mode(void)
{
	return cur->dirs_readable ? 0755 : 0711;
}

static void remount(const char *target, unsigned long flags, const char *what)
{
	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0)
		fail(126, "remount", what);
}

static void do_bind(const struct mount_spec *m)
{
	const char *source = (m->flags & B_CONTAINER) ? in_root(m->a) : m->a;
	const char *target = in_root(m->b);
	struct stat st;
	if ((m->flags & B_CONTAINER) && check_path(source) < 0 && errno != ENOENT)
		fail(126, "bind mount", m->a);
	if (stat(source, &st) < 0) {
		if (errno == ENOENT && (m->flags & B_OPTIONAL))
			return;
		fail(126, "bind mount", m->a);
	}
	int file = (m->flags & B_FILE) || !S_ISDIR(st.st_mode);
	if ((m->flags & B_FILE) && !S_ISREG(st.st_mode)) {
		errno = EINVAL;
		fail(126, "bind mount (not a regular file)", m->a);
	}
	if (file) {
		if (make_parent(target, dir_mode()) < 0)
			fail(126, "mount point for", m->b);
		if (cur->root_tmpfs) {
			int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd >= 0)
				close(fd);
		}
		if (check_path(target) < 0)
			fail(126, "mount point for", m->b);
	} else if (make_dirs(target, dir_mode()) < 0) {
		fail(126, "mount point for", m->b);
	}
	if (mount(source, target, NULL, MS_BIND, NULL) < 0) {
		if (errno == ENOENT && (m->flags & B_OPTIONAL))
			return;
		fail(126, "bind mount", m->b);
	}
	unsigned long flags = MS_NOSUID | MS_NODEV;
	if (!(m->flags & B_RW))
		flags |= MS_RDONLY;
	if (!(m->flags & B_EXEC))
		flags |= MS_NOEXEC;
	remount(target, flags, m->b);
}

static void do_tmpfs(const char *path, int writable, int exec, const char *extra)
{
	const char *target = in_root(path);
	if (make_dirs(target, dir_mode()) < 0)
		fail(126, "mount point for", path);
	char data[512];
	if ((size_t)snprintf(data, sizeof data, "mode=%s%s%s", writable ? "1777" : "0755",
			     extra && *extra ? "," : "", extra ? extra : "") >= sizeof data)
		usage("tmpfs options too long");
	unsigned long flags = MS_NOSUID | MS_NODEV | (exec ? 0 : MS_NOEXEC);
	if (mount("tmpfs", target, "tmpfs", flags, data) < 0)
		fail(126, "tmpfs on", path);
	if (!writable)
		remount(target, flags | MS_RDONLY, path);
}

static void do_write_file(const struct mount_spec *m)
{
	const char *path = in_root(m->a);
	if (make_parent(path, dir_mode()) < 0) {
		if (errno == ENOENT && (m->flags & B_OPTIONAL))
			return;
		fail(126, "directory for", m->a);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == ENOENT && (m->flags & B_OPTIONAL))
			return;
		fail(126, "write file", m->a);
	}
	size_t len = strlen(m->b);
	if (write(fd, m->b, len) != (ssize_t)len || fchmod(fd, 0644) < 0 || close(fd) < 0)
		fail(126, "write file", m->a);
}

static void do_symlink(const struct mount_spec *m)
{
	const char *link = in_root(m->b);
	if (make_parent(link, dir_mode()) < 0 || symlink(m->a, link) < 0)
		fail(126, "symlink", m->b);
}

/* /dev with the harmless character devices only, bound from the host's. */
static void do_dev(void)
{
	do_tmpfs("/dev", 1, 0, NULL);
	if (chmod(in_root("/dev"), 0755) < 0)
		fail(126, "chmod", "/dev");
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		char host[64], inside[64];
		snprintf(host, sizeof host, "/dev/%s", nodes[i]);
		snprintf(inside, sizeof inside, "/dev/%s", nodes[i]);
		const char *target = in_root(inside);
		int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			fail(126, "mount point for", inside);
		close(fd);
		if (mount(host, target, NULL, MS_BIND, NULL) < 0)
			fail(126, "bind mount", host);
		remount(target, MS_NOSUID | MS_NOEXEC, inside);
	}
	static const char *const links[][2] = { { "/proc/self/fd", "/dev/fd" },
						{ "/proc/self/fd/0", "/dev/stdin" },
						{ "/proc/self/fd/1", "/dev/stdout" },
						{ "/proc/self/fd/2", "/dev/stderr" } };
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlink(links[i][0], in_root(links[i][1])) < 0)
			fail(126, "symlink", links[i][1]);
	remount(in_root("/dev"), MS_NOSUID | MS_NOEXEC | MS_RDONLY, "/dev");
}

static void setup_mounts(const struct options *o)
{
	/* Nothing done here may reach the host's mount table. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(126, "mount", "/ (private)");
	if (new_root(o)) {
		if (mkdir(STAGE_PARENT, 0755) < 0 && errno != EEXIST)
			fail(126, "mkdir", STAGE_PARENT);
		if (mkdir(STAGE, 0700) < 0 && errno != EEXIST)
			fail(126, "mkdir", STAGE);
		if (o->root_tmpfs) {
			if (mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
				fail(126, "tmpfs", "/");
		} else if (mount(o->pivot_root, STAGE, NULL, MS_BIND | MS_REC, NULL) < 0) {
			fail(126, "new root", o->pivot_root);
		}
	} else if (o->passwd_line && o->uid >= 0) {
		passwd_overlay(o->passwd_line);
	}
	if (o->mount_proc) {
		const char *target = in_root("/proc");
		if (make_dirs(target, 0555) < 0)
			fail(126, "mount point for", "/proc");
		if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			fail(126, "mount", "/proc");
	}
	if (o->mount_dev)
		do_dev();
	if (o->tmp_options)
		do_tmpfs("/tmp", 1, o->tmp_exec, o->tmp_options);
	for (size_t i = 0; i < o->nmounts; i++) {
		const struct mount_spec *m = &o->mounts[i];
		switch (m->kind) {
		case M_BIND:
			do_bind(m);
			break;
		case M_TMPFS:
			do_tmpfs(m->a, m->flags & B_RW, 0, NULL);
			break;
		case M_WRITE:
			do_write_file(m);
			break;
		case M_SYMLINK:
			do_symlink(m);
			break;
		}
	}
	if (!new_root(o))
		return;
	if (o->root_tmpfs &&
	    mount(NULL, STAGE, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755") < 0)
		fail(126, "remount", "/ (read-only)");
	/* pivot_root(".", "."): the old root ends up on top of the new one and is detached */
	if (chdir(STAGE) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		fail(126, "pivot_root", NULL);
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		fail(126, "detach old root", NULL);
}

/* ------------------------------------------------------------------ namespaces */

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &r) < 0)
		fail(126, "loopback", NULL);
	r.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &r) < 0)
		fail(126, "loopback up", NULL);
	close(s);
}

/* ------------------------------------------------------------------ supervisors */

/*
 * A namespace needs a process that stays behind: the PID namespace's creator cannot enter
 * it, and its first child is the namespace's PID 1, whose end kills every process in it.
 * So the parent of each fork supervises: it passes on the signals lukko sends (a client's
 * signal, the session's end), reaps what is reparented to it, and when its child ends,
 * ends the same way. PID 1 cannot die by its own signal, so it reports the exact wait
 * status through a pipe to the relay above it, which reproduces it for lukko.
 */
static volatile pid_t supervised = -1;

static void forward(int sig)
{
	if (supervised > 0)
		kill(supervised, sig);
}

static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2, SIGPIPE,
				 SIGALRM, SIGTERM, SIGWINCH, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU };

static void end_like(int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* the supervisor's core is nobody's business */
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none);
		signal(sig, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		kill(getpid(), sig);
		_exit(128 + sig); /* PID 1 of a namespace ignores its own signals */
	}
	_exit(WEXITSTATUS(status));
}

static void supervise(pid_t child, int report_fd, int status_fd)
{
	supervised = child;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaction(forwarded[i], &sa, NULL);
	int status = 0;
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			fail(126, "wait", NULL);
		}
		if (p == child) {
			status = st;
			break;
		}
	}
	/* A PID 1 below reports how the program really ended. */
	int reported;
	if (status_fd >= 0 && read(status_fd, &reported, sizeof reported) == sizeof reported)
		status = reported;
	if (report_fd >= 0 && write(report_fd, &status, sizeof status) != sizeof status)
		_exit(126);
	end_like(status);
}

/*
 * The user namespace is made last, by a process that is still root, so root owns it: the
 * user's other processes outside have no capabilities in it, and every other namespace
 * belongs to the host's. Its uid and gid maps must be written by a process outside, with
 * CAP_SETUID and CAP_SETGID there: the parent of a fork. `procfd` is the host's /proc,
 * opened before anything was mounted (a new root may have no /proc, and one for a new PID
 * namespace numbers processes differently); fork() gives the parent the child's pid in the
 * parent's namespace, which is the host's whenever the parent is not itself in a new one.
 */
static int procfd = -1;
static int userns_created[2] = { -1, -1 }, userns_mapped[2] = { -1, -1 };

static void userns_pipes(void)
{
	if (pipe2(userns_created, O_CLOEXEC) < 0 || pipe2(userns_mapped, O_CLOEXEC) < 0)
		fail(126, "pipe", NULL);
}

/* parent side: wait until the child has its user namespace, map it, let it go on */
static void map_userns(const struct options *o, pid_t child)
{
	close(userns_created[1]);
	close(userns_mapped[0]);
	char c = 0;
	if (read(userns_created[0], &c, 1) != 1) {
		int st;
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		end_like(st);
	}
	char path[64], map[64];
	snprintf(path, sizeof path, "%d/uid_map", (int)child);
	snprintf(map, sizeof map, "%lu %ld 1\n", o->ns_uid, o->uid);
	int fd = openat(procfd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map) || close(fd) < 0)
		fail(126, "write", "uid_map");
	snprintf(path, sizeof path, "%d/gid_map", (int)child);
	snprintf(map, sizeof map, "%lu %ld 1\n", o->ns_gid, o->gid);
	fd = openat(procfd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map) || close(fd) < 0)
		fail(126, "write", "gid_map");
	if (write(userns_mapped[1], &c, 1) != 1)
		fail(126, "userns sync", NULL);
	close(userns_created[0]);
	close(userns_mapped[1]);
}

/* child side */
static void enter_userns(void)
{
	close(userns_created[0]);
	close(userns_mapped[1]);
	char c = 0;
	if (unshare(CLONE_NEWUSER) < 0)
		fail(126, "unshare", "user namespace");
	if (write(userns_created[1], &c, 1) != 1 || read(userns_mapped[0], &c, 1) != 1)
		_exit(126);
	close(userns_created[1]);
	close(userns_mapped[0]);
}

/*
 * fork; the parent supervises (after mapping the child's user namespace, if `userns`) and
 * never returns. `child_reports`: the child will be PID 1 of a namespace and reports the
 * program's status through a pipe. `report_fd` is this process's own report pipe, which
 * the child must not keep.
 */
static void fork_supervised(const struct options *o, int child_reports, int userns, int *report_fd)
{
	int p[2] = { -1, -1 };
	if (child_reports && pipe2(p, O_CLOEXEC) < 0)
		fail(126, "pipe", NULL);
	if (userns)
		userns_pipes();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fail(126, "fork", NULL);
	if (pid > 0) {
		if (p[1] >= 0)
			close(p[1]);
		if (userns)
			map_userns(o, pid);
		supervise(pid, *report_fd, p[0]);
	}
	if (p[0] >= 0)
		close(p[0]);
	if (*report_fd >= 0)
		close(*report_fd);
	*report_fd = p[1];
	/* the supervisor above going away (SIGKILL) takes this process with it */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(126, "prctl", "PR_SET_PDEATHSIG");
}

/* ------------------------------------------------------------------ the program */

/* The ELF interpreter of the open program, or NULL for a static one. */
EXEC_ONLY static char *elf_interpreter(int fd)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof eh, 0) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
		errno = ENOEXEC;
		fail(127, "not a 64-bit ELF program", NULL);
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != sizeof ph)
			break;
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz == 0 || ph.p_filesz > PATH_MAX)
			break;
		char *interp = calloc(1, ph.p_filesz + 1);
		if (!interp || pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz)
			break;
		return interp;
	}
	return NULL;
}

/* --exec-host with a dynamic program: see the comment at the top. The options and the
 * user's environment travel in a memfd, as NUL-terminated strings: "argc envc", argv...,
 * environ... */
EXEC_ONLY static void exec_preloaded(int argc, char **argv, const struct options *o, const char *interp)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		fail(126, "readlink", "/proc/self/exe");
	self[n] = 0;
	char *slash = strrchr(self, '/');
	char so[PATH_MAX];
	snprintf(so, sizeof so, "%.*s/lukko-jail.so", (int)(slash - self), self);
	if (access(so, R_OK) < 0)
		fail(126, "jail library", so);
	int fd = memfd_create("lukko-jail", 0); /* no CLOEXEC: the constructor reads it */
	if (fd < 0)
		fail(126, "memfd_create", NULL);
	FILE *f = fdopen(dup(fd), "w");
	int envc = 0;
	while (environ[envc])
		envc++;
	fprintf(f, "%d %d", argc, envc);
	fputc(0, f);
	for (int i = 0; i < argc; i++) {
		fputs(argv[i], f);
		fputc(0, f);
	}
	for (int i = 0; i < envc; i++) {
		fputs(environ[i], f);
		fputc(0, f);
	}
	if (fclose(f) != 0)
		fail(126, "memfd", NULL);
	char env0[32];
	snprintf(env0, sizeof env0, "LUKKO_JAIL_FD=%d", fd);
	char *env[] = { env0, NULL };
	char *args[8 + 4096];
	int k = 0;
	args[k++] = (char *)interp;
	args[k++] = "--preload";
	args[k++] = so;
	args[k++] = "--argv0";
	args[k++] = o->argv0 ? o->argv0 : o->file;
	args[k++] = o->file;
	for (char **a = o->args + 1; *a; a++) {
		if (k == (int)(sizeof args / sizeof args[0]) - 1)
			usage("too many arguments");
		args[k++] = *a;
	}
	args[k] = NULL;
	execve(interp, args, env);
	fail(127, "cannot execute", interp);
}

/* Everything from the namespaces on. Returns in the process that is to become the program. */
static void isolate_and_drop(struct options *o, int *exec_fd)
{
	cur = o;
	int report_fd = -1;
	static gid_t groups[NGROUPS_MAX];
	int ngroups = 0;

	/* Groups are looked up while the host's NSS files are still in view. */
	if (o->uid >= 0) {
		if (o->init_groups) {
			ngroups = NGROUPS_MAX;
			if (getgrouplist(o->init_groups, (gid_t)o->gid, groups, &ngroups) < 0)
				fail(126, "getgrouplist", o->init_groups);
		} else {
			ngroups = (int)parse_groups(o->groups, groups, NGROUPS_MAX);
		}
	}

	if (o->userns) {
		procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (procfd < 0)
			fail(126, "open", "/proc");
	}
	if (o->netns_name) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "/run/netns/%s", o->netns_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			fail(126, "network namespace", o->netns_name);
		close(fd);
	}
	int flags = (mount_ns(o) ? CLONE_NEWNS : 0) | (o->net_ns ? CLONE_NEWNET : 0) |
		    (o->ipc_ns ? CLONE_NEWIPC : 0) | (o->hostname ? CLONE_NEWUTS : 0) |
		    (o->cgroup_ns ? CLONE_NEWCGROUP : 0);
	if (flags && unshare(flags) < 0)
		fail(126, "unshare", NULL);
	if (o->pid_ns) {
		if (unshare(CLONE_NEWPID) < 0)
			fail(126, "unshare", "PID namespace");
		/* The child is PID 1. With a user namespace too, PID 1 makes it (after the
		 * mounts) and this relay, still in the host's PID namespace, maps it. */
		fork_supervised(o, 1, o->userns, &report_fd);
	}
	if (o->hostname && sethostname(o->hostname, strlen(o->hostname)) < 0)
		fail(126, "sethostname", o->hostname);
	if (o->net_ns)
		loopback_up();
	if (mount_ns(o))
		setup_mounts(o);

	if (o->uid >= 0 && setgroups((size_t)ngroups, groups) < 0)
		fail(126, "setgroups", NULL);
	/* before the uid changes: root may raise a hard limit, the user may not */
	apply_rlimits(o->rlimits);

	if (o->pid_ns) {
		if (o->userns)
			enter_userns();
		/* PID 1 stays as init; the program is its child. */
		fork_supervised(o, 0, 0, &report_fd);
	} else if (o->userns) {
		fork_supervised(o, 0, 1, &report_fd);
		enter_userns();
	}
	if (procfd >= 0)
		close(procfd);

	if (o->chroot_dir && (chroot(o->chroot_dir) < 0 || chdir("/") < 0))
		fail(126, "chroot", o->chroot_dir);

	if (o->uid >= 0) {
		gid_t gid = o->userns ? (gid_t)o->ns_gid : (gid_t)o->gid;
		uid_t uid = o->userns ? (uid_t)o->ns_uid : (uid_t)o->uid;
		if (setresgid(gid, gid, gid) < 0)
			fail(126, "setgid", NULL);
		if (setresuid(uid, uid, uid) < 0)
			fail(126, "setuid", NULL);
		/* fail closed: a non-root target must not be able to get root back */
		if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
			fprintf(stderr, "lukko-exec: could regain root after dropping it\r\n");
			_exit(126);
		}
		/*
		 * A user namespace's creator holds every capability in it, and a uid change
		 * there does not clear them (its old uid is not the namespace's root). execve
		 * would; a program from the host in lukko-jail.so never execs. So drop them.
		 */
		if (uid != 0) {
			struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
			struct __user_cap_data_struct d[2];
			memset(d, 0, sizeof d);
			if (syscall(SYS_capset, &h, d) < 0)
				fail(126, "capset", NULL);
			if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
				fail(126, "prctl", "PR_CAP_AMBIENT_CLEAR_ALL");
		}
		/* a fork above cleared it, and a uid change does too */
		if ((o->pid_ns || o->userns) && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			fail(126, "prctl", "PR_SET_PDEATHSIG");
	}

	if (o->dir && chdir(o->dir) < 0) {
		/* as OpenSSH: say so and start in / rather than refuse the session */
		fprintf(stderr, "Could not chdir to home directory %s: %s\r\n", o->dir,
			strerror(errno));
		if (chdir("/") < 0)
			fail(126, "chdir", "/");
	}

	if (o->mask >= 0)
		umask((mode_t)o->mask);

	/* last, so that nothing above is affected by it */
	if (o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(126, "prctl", "PR_SET_NO_NEW_PRIVS");
	(void)exec_fd;
}

static void reset_signals(void)
{
	/* Node ignores SIGPIPE and may block signals; the user's program starts clean. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

#ifndef LUKKO_JAIL

int main(int argc, char **argv)
{
	/* parse_args cuts some values up in place; a dynamic program from the host gets them
	 * as they were given */
	char **given = calloc((size_t)argc + 1, sizeof *given);
	for (int i = 0; given && i < argc; i++)
		given[i] = strdup(argv[i]);
	if (!given)
		fail(126, "malloc", NULL);
	struct options o;
	parse_args(argc, argv, &o);

	/* nothing of the server's (the client socket, logs, key files) reaches the user */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);

	reset_signals();

	if (o.termios_spec)
		apply_termios(o.termios_spec, o.cc, o.ncc);

	if (o.tty_gid >= 0) {
		const char *name = ttyname(0);
		if (!name)
			fail(126, "ttyname", NULL);
		if (o.uid >= 0 && fchown(0, (uid_t)o.uid, (gid_t)o.tty_gid) < 0)
			fail(126, "chown", name);
		if (fchmod(0, 0620) < 0)
			fail(126, "chmod", name);
		setenv("SSH_TTY", name, 1);
	}

	int exec_fd = -1;
	int jailed = new_root(&o) || o.chroot_dir;
	if (o.exec_host && jailed) {
		exec_fd = open(o.file, O_RDONLY | O_CLOEXEC);
		if (exec_fd < 0)
			fail(127, "cannot execute", o.file);
		char *interp = elf_interpreter(exec_fd);
		if (interp)
			exec_preloaded(argc, given, &o, interp);
	}

	isolate_and_drop(&o, &exec_fd);

	if (o.argv0)
		o.args[0] = o.argv0;
	if (exec_fd >= 0) {
		fexecve(exec_fd, o.args, environ);
		fail(127, "cannot execute", o.file);
	}
	execvp(o.file, o.args);
	fail(127, "cannot execute", o.file);
	return 127;
}

#else /* LUKKO_JAIL: the constructor of lukko-jail.so */

static struct passwd jail_pw;
static int have_jail_pw;

/* the account of --passwd-line, for getpwuid/getpwnam in a jail without /etc/passwd */
static void keep_passwd(char *line)
{
	char *f[7];
	int n = 0;
	for (char *s = line; n < 7; n++) {
		f[n] = s;
		char *c = strchr(s, ':');
		if (!c) {
			n++;
			break;
		}
		*c = 0;
		s = c + 1;
	}
	if (n != 7)
		return;
	jail_pw.pw_name = f[0];
	jail_pw.pw_passwd = f[1];
	jail_pw.pw_uid = (uid_t)strtoul(f[2], NULL, 10);
	jail_pw.pw_gid = (gid_t)strtoul(f[3], NULL, 10);
	jail_pw.pw_gecos = f[4];
	jail_pw.pw_dir = f[5];
	jail_pw.pw_shell = f[6];
	have_jail_pw = 1;
}

struct passwd *getpwuid(uid_t uid)
{
	if (have_jail_pw && uid == jail_pw.pw_uid)
		return &jail_pw;
	struct passwd *(*next)(uid_t) = (struct passwd * (*)(uid_t)) dlsym(RTLD_NEXT, "getpwuid");
	return next ? next(uid) : NULL;
}

struct passwd *getpwnam(const char *name)
{
	if (have_jail_pw && strcmp(name, jail_pw.pw_name) == 0)
		return &jail_pw;
	struct passwd *(*next)(const char *) =
		(struct passwd * (*)(const char *)) dlsym(RTLD_NEXT, "getpwnam");
	return next ? next(name) : NULL;
}

/*
 * /dev/null for a program whose jail has no /dev: OpenSSH's sftp-server opens it before
 * anything else ("Couldn't open /dev/null") and gives up without it. It was opened before
 * the jail was entered; every open of that exact path gets a duplicate of it.
 */
static int devnull_fd = -1;

static int jail_open(const char *path, int flags, mode_t mode, const char *name)
{
	if (devnull_fd >= 0 && strcmp(path, "/dev/null") == 0) {
		struct stat st;
		if (stat(path, &st) < 0 && errno == ENOENT)
			return fcntl(devnull_fd, (flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
	}
	int (*next)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, name);
	if (!next) {
		errno = ENOSYS;
		return -1;
	}
	return next(path, flags, mode);
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* by their symbol names: _FILE_OFFSET_BITS makes the header's open() an alias of open64 */
int lukko_open(const char *path, int flags, ...) __asm__("open");
int lukko_open64(const char *path, int flags, ...) __asm__("open64");

int lukko_open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return jail_open(path, flags, mode, "open");
}

int lukko_open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return jail_open(path, flags, mode, "open64");
}

__attribute__((constructor)) static void lukko_jail(void)
{
	const char *v = getenv("LUKKO_JAIL_FD");
	if (!v)
		usage("lukko-jail.so without LUKKO_JAIL_FD");
	int fd = (int)number(v, 65535);
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail(126, "jail options", NULL);
	char *data = malloc((size_t)st.st_size + 1);
	if (!data || pread(fd, data, (size_t)st.st_size, 0) != st.st_size)
		fail(126, "jail options", NULL);
	data[st.st_size] = 0;
	close(fd);
	int argc, envc;
	if (sscanf(data, "%d %d", &argc, &envc) != 2 || argc < 2 || envc < 0)
		usage("bad jail options");
	char **argv = calloc((size_t)argc + 1, sizeof *argv);
	char **env = calloc((size_t)envc + 1, sizeof *env);
	char *p = data + strlen(data) + 1, *end = data + st.st_size;
	for (int i = 0; i < argc + envc; i++) {
		if (p >= end)
			usage("bad jail options");
		if (i < argc)
			argv[i] = p;
		else
			env[i - argc] = p;
		p += strlen(p) + 1;
	}
	/* the user's environment, not the loader's */
	clearenv();
	for (int i = 0; i < envc; i++)
		putenv(env[i]);

	struct options o;
	parse_args(argc, argv, &o);
	if (o.passwd_line)
		keep_passwd(strdup(o.passwd_line));
	reset_signals();
	int exec_fd = -1;
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	isolate_and_drop(&o, &exec_fd);
	devnull_fd = null_fd;
	/* return into the program's main() */
}

#endif
