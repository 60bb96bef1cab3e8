/*
 * lukko-netns: TCP for port forwarding of an account that lives in a named network
 * namespace (NETWORK_NAMESPACE_NAME). Node cannot call setns(2), and a socket belongs for
 * its whole life to the network namespace it was made in, so the sockets are made here,
 * after joining /run/netns/NAME and dropping to the account (docs/design.md, "Forwarding
 * inside a network namespace"; the Node side is src/forward/netns.ts).
 *
 * Usage: lukko-netns --netns NAME --uid N --gid N (--groups a,b,.. | --init-groups USER)
 *                    connect HOST PORT
 *        lukko-netns ... listen ADDR PORT ABSTRACT-NAME ID MAX
 *
 * Fd 3 is the status pipe: one line, before anything else happens on the data fds:
 *   "ok" (connect) or "ok PORT" (listen), or "fail STAGE CODE" (STAGE: netns, privileges,
 *   resolve, connect, listen; CODE: errno name or a getaddrinfo error).
 * A failure to enter the namespace ends the helper: nothing here ever falls back to the
 * network namespace it was started in.
 *
 * connect: relays stdin -> socket and socket -> stdout, half-closes passed on.
 * listen:  reads a token line on stdin, then a child joins the namespace and listens; each
 *   accepted connection goes (SCM_RIGHTS) to this process, which stayed in the instance's
 *   namespace, and a per-connection child connects to the instance's abstract Unix socket
 *   ABSTRACT-NAME, sends "TOKEN ID ORIGIN-ADDR ORIGIN-PORT\n" and relays. EOF on stdin stops
 *   the listening; connections already forwarded run on. At most MAX of them at once.
 *
 * Every relay holds at most one buffer per direction and reads only when that buffer is
 * empty, so a stalled side stops the other instead of filling memory. Every process here
 * has PR_SET_PDEATHSIG(SIGKILL) towards its parent, set after the uid change (which
 * clears it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD 3
#define BUF_SIZE 65536

struct options {
	const char *netns, *init_user, *groups;
	long uid, gid;
	const char *mode;
	char *const *rest;
	int nrest;
};

static void usage(const char *why)
{
	fprintf(stderr, "lukko-netns: %s\n", why);
	exit(2);
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "EUNKNOWN";
}

/* The one status line; later calls do nothing (only the first report counts). */
static int status_sent;
static void status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void status(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	if (status_sent)
		return;
	status_sent = 1;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(STATUS_FD, line, (size_t)n) < 0) {
		/* the instance is gone: nobody to serve */
		_exit(1);
	}
}

static void fail(const char *stage, const char *code)
{
	status("fail %s %s", stage, code);
	_exit(1);
}

static long number(const char *s, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		usage("bad number");
	return v;
}

/* The same rule the translation parser applies: a plain name, never a path. */
static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return 0;
	return 1;
}

static void parse(int argc, char **argv, struct options *o)
{
	int i = 1;
	o->uid = o->gid = -1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage("option without a value");
		const char *v = argv[++i];
		if (strcmp(a, "--netns") == 0)
			o->netns = v;
		else if (strcmp(a, "--uid") == 0)
			o->uid = number(v, INT_MAX);
		else if (strcmp(a, "--gid") == 0)
			o->gid = number(v, INT_MAX);
		else if (strcmp(a, "--groups") == 0)
			o->groups = v;
		else if (strcmp(a, "--init-groups") == 0)
			o->init_user = v;
		else
			usage("unknown option");
	}
	if (!o->netns || !valid_name(o->netns))
		usage("--netns NAME is required");
	if (o->uid < 0 || o->gid < 0 || (!o->groups == !o->init_user))
		usage("--uid, --gid and one of --groups/--init-groups are required");
	if (i >= argc)
		usage("no mode");
	o->mode = argv[i++];
	o->rest = argv + i;
	o->nrest = argc - i;
}

static void enter_netns(const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("netns", errname(errno));
	if (setns(fd, CLONE_NEWNET) < 0)
		fail("netns", errname(errno));
	close(fd);
}

static void drop_privileges(const struct options *o)
{
	uid_t uid = (uid_t)o->uid;
	gid_t gid = (gid_t)o->gid;
	if (o->init_user) {
		if (initgroups(o->init_user, gid) < 0)
			fail("privileges", errname(errno));
	} else {
		gid_t groups[NGROUPS_MAX];
		size_t n = 0;
		const char *p = o->groups;
		while (*p) {
			char *end;
			errno = 0;
			unsigned long g = strtoul(p, &end, 10);
			if (errno || end == p || g > INT_MAX || n >= NGROUPS_MAX || (*end && *end != ','))
				usage("bad --groups");
			groups[n++] = (gid_t)g;
			p = *end ? end + 1 : end;
		}
		if (setgroups(n, groups) < 0)
			fail("privileges", errname(errno));
	}
	if (setgid(gid) < 0 || setuid(uid) < 0)
		fail("privileges", errname(errno));
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
		fail("privileges", "EPERM");
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		fail("privileges", "EPERM");
}

/* Die with the parent; the setting does not survive a uid change, so call it after one. */
static void die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(1);
}

struct direction {
	int in, out;
	int eof, done;
	size_t len, off;
	char buf[BUF_SIZE];
};

/* The write side of a direction is over: pass the EOF on (shutdown, or close for a pipe). */
static void end_out(struct direction *d)
{
	d->done = 1;
	if (shutdown(d->out, SHUT_WR) < 0 && errno == ENOTSOCK)
		close(d->out);
}

static void add_poll(struct pollfd *p, int *n, int fd, short events)
{
	for (int i = 0; i < *n; i++)
		if (p[i].fd == fd) {
			p[i].events |= events;
			return;
		}
	p[*n].fd = fd;
	p[*n].events = events;
	p[*n].revents = 0;
	(*n)++;
}

static short revents_of(const struct pollfd *p, int n, int fd)
{
	for (int i = 0; i < n; i++)
		if (p[i].fd == fd)
			return p[i].revents;
	return 0;
}

static void step(struct direction *d, const struct pollfd *p, int n)
{
	if (d->done)
		return;
	if (d->len > 0) {
		short r = revents_of(p, n, d->out);
		if (!(r & (POLLOUT | POLLERR | POLLHUP)))
			return;
		ssize_t w = write(d->out, d->buf + d->off, d->len);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				return;
			/* the receiver is gone: this direction is over, the other may go on */
			d->done = 1;
			return;
		}
		d->off += (size_t)w;
		d->len -= (size_t)w;
		if (d->len == 0 && d->eof)
			end_out(d);
		return;
	}
	short r = revents_of(p, n, d->in);
	if (!(r & (POLLIN | POLLERR | POLLHUP))) {
		/* the receiver went away while there was nothing to send */
		if (revents_of(p, n, d->out) & (POLLERR | POLLHUP))
			d->done = 1;
		return;
	}
	ssize_t got = read(d->in, d->buf, sizeof d->buf);
	if (got < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (got <= 0) {
		d->eof = 1;
		end_out(d);
		return;
	}
	d->len = (size_t)got;
	d->off = 0;
}

/* a.in -> a.out and b.in -> b.out until both directions are over. */
static void relay(int in0, int out0, int in1, int out1)
{
	static struct direction d[2];
	d[0] = (struct direction){ .in = in0, .out = out0 };
	d[1] = (struct direction){ .in = in1, .out = out1 };
	signal(SIGPIPE, SIG_IGN);
	while (!d[0].done || !d[1].done) {
		struct pollfd p[4];
		int n = 0;
		for (int i = 0; i < 2; i++) {
			if (d[i].done)
				continue;
			if (d[i].len > 0)
				add_poll(p, &n, d[i].out, POLLOUT);
			else
				add_poll(p, &n, d[i].in, POLLIN);
			add_poll(p, &n, d[i].out, 0); /* POLLERR/POLLHUP: the receiver is gone */
		}
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		step(&d[0], p, n);
		step(&d[1], p, n);
	}
}

static int connect_to(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		fail("resolve", rc == EAI_NONAME ? "ENOTFOUND" : rc == EAI_AGAIN ? "EAI_AGAIN" : "EAI_FAIL");
	int err = EHOSTUNREACH;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			freeaddrinfo(res);
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			return fd;
		}
		err = errno;
		close(fd);
	}
	freeaddrinfo(res);
	fail("connect", errname(err));
	return -1;
}

static int run_connect(const struct options *o)
{
	if (o->nrest != 2)
		usage("connect HOST PORT");
	number(o->rest[1], 65535);
	pid_t parent = getppid();
	enter_netns(o->netns);
	drop_privileges(o);
	die_with_parent(parent);
	int fd = connect_to(o->rest[0], o->rest[1]);
	status("ok");
	close(STATUS_FD);
	relay(0, fd, fd, 1);
	return 0;
}

/* The child that lives in the namespace: listen, hand every connection to the parent. */
static void listener(const struct options *o, pid_t parent, int to_parent)
{
	const char *addr = o->rest[0];
	int port = (int)number(o->rest[1], 65535);
	enter_netns(o->netns);
	drop_privileges(o);
	die_with_parent(parent);
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} sa;
	memset(&sa, 0, sizeof sa);
	socklen_t len;
	if (inet_pton(AF_INET, addr, &sa.in.sin_addr) == 1) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons((uint16_t)port);
		len = sizeof sa.in;
	} else if (inet_pton(AF_INET6, addr, &sa.in6.sin6_addr) == 1) {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons((uint16_t)port);
		len = sizeof sa.in6;
	} else {
		usage("listen needs a numeric address");
	}
	int fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		fail("listen", errname(errno));
	if (bind(fd, &sa.sa, len) < 0 || listen(fd, 511) < 0)
		fail("listen", errname(errno));
	len = sizeof sa;
	if (getsockname(fd, &sa.sa, &len) < 0)
		fail("listen", errname(errno));
	status("ok %d", ntohs(sa.sa.sa_family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port));
	close(STATUS_FD);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				continue;
			_exit(1);
		}
		char byte = 0;
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} control;
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &c, sizeof c);
		/* blocks while the parent is busy: the kernel's backlog holds the rest */
		if (sendmsg(to_parent, &msg, MSG_NOSIGNAL) < 0)
			_exit(0);
		close(c);
	}
}

static int receive_fd(int from)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
	ssize_t n = recvmsg(from, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n == 0 ? -2 : -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	return fd;
}

/* One forwarded connection: to the instance, the header, then the relay. */
static void forward_one(int conn, const char *abstract_name, const char *token, const char *id)
{
	char host[INET6_ADDRSTRLEN] = "0.0.0.0";
	int port = 0;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	if (getpeername(conn, (struct sockaddr *)&peer, &plen) == 0) {
		if (peer.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&peer;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
			port = ntohs(in->sin_port);
		} else if (peer.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&peer;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
			port = ntohs(in6->sin6_port);
		}
	}
	int one = 1;
	setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	size_t nlen = strlen(abstract_name);
	if (nlen + 1 > sizeof un.sun_path)
		_exit(1);
	memcpy(un.sun_path + 1, abstract_name, nlen); /* sun_path[0] == 0: abstract */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nlen)) < 0)
		_exit(1);
	char header[256];
	int h = snprintf(header, sizeof header, "%s %s %s %d\n", token, id, host, port);
	if (h < 0 || h >= (int)sizeof header)
		_exit(1);
	for (int off = 0; off < h;) {
		ssize_t w = write(fd, header + off, (size_t)(h - off));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		off += (int)w;
	}
	relay(conn, fd, fd, conn);
	_exit(0);
}

static int run_listen(const struct options *o)
{
	if (o->nrest != 5)
		usage("listen ADDR PORT ABSTRACT-NAME ID MAX");
	const char *abstract_name = o->rest[2], *id = o->rest[3];
	long max = number(o->rest[4], 65535);
	if (strlen(id) > 20 || strchr(id, ' ') || strchr(abstract_name, ' '))
		usage("bad ID or name");

	/* The token that proves to the instance that a connection comes from here. */
	char token[129];
	size_t tlen = 0;
	for (;;) {
		char ch;
		ssize_t n = read(0, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		if (ch == '\n')
			break;
		if (tlen >= sizeof token - 1 || ch == ' ')
			usage("bad token");
		token[tlen++] = ch;
	}
	token[tlen] = 0;

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		fail("listen", errname(errno));
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	pid_t self = getpid(), parent = getppid();
	pid_t listener_pid = fork();
	if (listener_pid < 0)
		fail("listen", errname(errno));
	if (listener_pid == 0) {
		close(sp[0]);
		close(0);
		listener(o, self, sp[1]);
		_exit(1);
	}
	close(sp[1]);
	close(STATUS_FD); /* the listener reports; if it dies first the instance reads EOF */
	status_sent = 1;
	drop_privileges(o);
	die_with_parent(parent);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
	if (sfd < 0)
		_exit(1);

	long live = 0;
	int listening = 1;
	while (listening || live > 0) {
		struct pollfd p[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = listening ? 0 : -1, .events = POLLIN },
			{ .fd = listening ? sp[0] : -1, .events = POLLIN },
		};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) < 0) { /* drained by waitpid below */
			}
			int st;
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
				if (w == listener_pid) {
					listener_pid = 0;
					listening = 0;
				} else {
					live--;
				}
			}
		}
		if (listening && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			/* EOF (or anything) on stdin: the forward is cancelled; stop listening */
			listening = 0;
		}
		if (listening && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			int conn = receive_fd(sp[0]);
			if (conn == -2) {
				listening = 0;
			} else if (conn >= 0) {
				if (live >= max) {
					close(conn);
					continue;
				}
				pid_t c = fork();
				if (c == 0) {
					close(sp[0]);
					close(sfd);
					close(0);
					sigprocmask(SIG_UNBLOCK, &chld, NULL);
					die_with_parent(self);
					forward_one(conn, abstract_name, token, id);
				}
				if (c > 0)
					live++;
				close(conn);
			}
		}
		if (!listening && listener_pid > 0) {
			kill(listener_pid, SIGKILL);
			close(sp[0]);
			sp[0] = -1;
			/* reaped through the signalfd; counted out of the loop then */
			int st;
			if (waitpid(listener_pid, &st, 0) == listener_pid)
				listener_pid = 0;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	parse(argc, argv, &o);
	/* the status pipe must be there: without it nothing could be confirmed */
	if (fcntl(STATUS_FD, F_GETFD) < 0)
		usage("fd 3 (status) is not open");
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	if (strcmp(o.mode, "connect") == 0)
		return run_connect(&o);
	if (strcmp(o.mode, "listen") == 0)
		return run_listen(&o);
	usage("mode is connect or listen");
	return 2;
}
