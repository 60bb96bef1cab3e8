/*
 * lukko-control-recv: the companion's control sockets (lukko.conf `control` blocks). Node has
 * no AF_UNIX datagram sockets, cannot read SCM_CREDENTIALS and cannot set SO_BINDTODEVICE, so
 * this helper binds (or inherits) every control socket, receives the datagrams and hands each
 * one, with who sent it, to the companion on stdout. It never interprets a datagram and never
 * replies: decoding and the permission decision stay in TypeScript (control-*.ts).
 *
 * Usage: lukko-control-recv SOCKET...
 *   SOCKET is one of
 *     --unix PATH              AF_UNIX datagram socket at PATH (a stale socket is removed,
 *                              a live one or a file that is not a socket is an error)
 *     --abstract NAME          AF_UNIX datagram socket in the abstract namespace
 *     --udp HOST PORT          UDP; HOST numeric (IPv4, IPv6, "::" = dual-stack wildcard)
 *     --fd N                   an already bound datagram socket (from systemd)
 *   optionally followed by, for that socket:
 *     --interface NAME         SO_BINDTODEVICE (UDP only)
 *     --group HOST             join this multicast group (UDP only); an IPv6 group may
 *                              carry %SCOPE; joined on --interface if given, else on "any"
 *
 * SO_PASSCRED is switched on for every AF_UNIX socket, so the kernel attaches the sender's
 * pid/uid/gid to every datagram: they cannot be forged by an unprivileged sender.
 *
 * Output on stdout, all numbers big-endian, one frame per event:
 *   u32 length of what follows
 *   u8  kind: 'R' (all sockets bound; nothing follows) or 'D' (a datagram):
 *       u16 socket index (order of the command line)
 *       u8  family: 0 AF_UNIX, 4 IPv4, 6 IPv6
 *       u8  flags: 1 credentials present, 2 datagram was longer than the buffer
 *       u32 uid, u32 gid, u32 pid (0xffffffff without credentials)
 *       u16 source port, 16 bytes source address (IPv4 in the first 4)
 *       the datagram (at most 65535 bytes)
 * File descriptors passed with SCM_RIGHTS are closed unread.
 * Exits 0 on SIGTERM/SIGINT or when stdin reaches EOF (the companion is gone), removing the
 * socket files it created; 1 with a message on stderr when a socket cannot be set up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SOCKETS 64
#define MAX_DATAGRAM 65535
#define HEADER_SIZE (4 + 1 + 2 + 1 + 1 + 12 + 2 + 16)
/* Datagrams read from one socket before the others get their turn. */
#define BURST 64

struct control_socket {
	int fd;
	int family;          /* of the bound address */
	const char *unlink_path; /* a socket file we created, removed at exit */
};

static struct control_socket sockets[MAX_SOCKETS];
static int n_sockets;
static volatile sig_atomic_t stop_requested;

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "lukko-control-recv: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
		strerror(errno));
	exit(1);
}

static void usage(const char *why)
{
	fprintf(stderr, "lukko-control-recv: %s\n", why);
	exit(1);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void cleanup(void)
{
	for (int i = 0; i < n_sockets; i++)
		if (sockets[i].unlink_path)
			unlink(sockets[i].unlink_path);
}

static int set_int(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value));
}

/* The same rule as the companion's stream sockets: remove only a socket nobody serves. */
static void prepare_path(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return;
		die("cannot inspect", path);
	}
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		die("exists and is not a socket:", path);
	}
	int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		die("socket", NULL);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	int r = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
	int err = errno;
	close(probe);
	if (r == 0 || err != ECONNREFUSED) {
		errno = EADDRINUSE;
		die("another process has bound", path);
	}
	if (unlink(path) < 0 && errno != ENOENT)
		die("cannot remove the stale socket", path);
}

static struct control_socket *add_socket(int fd, int family)
{
	if (n_sockets >= MAX_SOCKETS)
		usage("too many sockets");
	struct control_socket *s = &sockets[n_sockets++];
	s->fd = fd;
	s->family = family;
	s->unlink_path = NULL;
	return s;
}

static void bind_unix(const char *name, int abstract)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	if (len == 0 || len >= sizeof(sun.sun_path) - 1)
		usage("bad AF_UNIX socket name");
	if (!abstract)
		prepare_path(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket", NULL);
	if (set_int(fd, SOL_SOCKET, SO_PASSCRED, 1) < 0)
		die("SO_PASSCRED on", name);
	socklen_t addrlen;
	if (abstract) {
		memcpy(sun.sun_path + 1, name, len);
		addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
	} else {
		memcpy(sun.sun_path, name, len);
		addrlen = (socklen_t)sizeof(sun);
	}
	if (bind(fd, (struct sockaddr *)&sun, addrlen) < 0)
		die("cannot bind", abstract ? "an abstract socket" : name);
	struct control_socket *s = add_socket(fd, AF_UNIX);
	if (!abstract)
		s->unlink_path = name;
}

static int parse_numeric(const char *host, const char *port, struct addrinfo **out)
{
	struct addrinfo hints = {
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_DGRAM,
	};
	return getaddrinfo(host, port, &hints, out);
}

static void bind_udp(const char *host, const char *port, const char *interface, const char *group)
{
	struct addrinfo *ai;
	int r = parse_numeric(host, port, &ai);
	if (r != 0) {
		fprintf(stderr, "lukko-control-recv: bad address %s port %s: %s\n", host, port, gai_strerror(r));
		exit(1);
	}
	int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket", NULL);
	if (ai->ai_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr) &&
	    set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0) < 0)
		die("IPV6_V6ONLY", NULL);
	if (interface && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, interface, (socklen_t)strlen(interface)) < 0)
		die("SO_BINDTODEVICE", interface);
	if (group && set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
		die("SO_REUSEADDR", NULL);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		die("cannot bind UDP", host);
	if (group) {
		unsigned ifindex = 0;
		if (interface && (ifindex = if_nametoindex(interface)) == 0)
			die("no such interface", interface);
		struct addrinfo *g;
		r = parse_numeric(group, port, &g);
		if (r != 0) {
			fprintf(stderr, "lukko-control-recv: bad multicast group %s: %s\n", group, gai_strerror(r));
			exit(1);
		}
		if (g->ai_family == AF_INET) {
			struct ip_mreqn m = {
				.imr_multiaddr = ((struct sockaddr_in *)g->ai_addr)->sin_addr,
				.imr_ifindex = (int)ifindex,
			};
			if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) < 0)
				die("cannot join multicast group", group);
		} else {
			struct sockaddr_in6 *g6 = (struct sockaddr_in6 *)g->ai_addr;
			struct ipv6_mreq m = {
				.ipv6mr_multiaddr = g6->sin6_addr,
				.ipv6mr_interface = g6->sin6_scope_id ? g6->sin6_scope_id : ifindex,
			};
			if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof(m)) < 0)
				die("cannot join multicast group", group);
		}
		freeaddrinfo(g);
	}
	add_socket(fd, ai->ai_family);
	freeaddrinfo(ai);
}

static void adopt_fd(const char *text)
{
	char *end;
	long fd = strtol(text, &end, 10);
	if (*text == '\0' || *end != '\0' || fd < 3 || fd > 65535)
		usage("bad --fd");
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type;
	socklen_t tlen = sizeof(type);
	if (getsockname((int)fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0)
		die("inherited fd is not a socket:", text);
	if (type != SOCK_DGRAM) {
		errno = EPROTOTYPE;
		die("inherited fd is not a datagram socket:", text);
	}
	if (ss.ss_family == AF_UNIX && set_int((int)fd, SOL_SOCKET, SO_PASSCRED, 1) < 0)
		die("SO_PASSCRED on fd", text);
	int flags = fcntl((int)fd, F_GETFL);
	if (flags < 0 || fcntl((int)fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
		die("fcntl on fd", text);
	add_socket((int)fd, ss.ss_family);
}

static void put16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void write_all(const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			/* The companion is gone (EPIPE) or stdout is broken: nobody to hand datagrams to. */
			cleanup();
			exit(errno == EPIPE ? 0 : 1);
		}
		p += w;
		n -= (size_t)w;
	}
}

static unsigned char frame[HEADER_SIZE + MAX_DATAGRAM];

/* Reads one datagram from socket i; returns 0 when there is none left. */
static int receive_one(int i)
{
	struct control_socket *s = &sockets[i];
	unsigned char *payload = frame + HEADER_SIZE;
	struct sockaddr_storage from = { 0 };
	union {
		struct cmsghdr align;
		unsigned char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 64)];
	} control;
	struct iovec iov = { .iov_base = payload, .iov_len = MAX_DATAGRAM };
	struct msghdr msg = {
		.msg_name = &from,
		.msg_namelen = sizeof(from),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n = recvmsg(s->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		/* A transient error (e.g. an ICMP error queued on UDP): skip it, keep the socket. */
		fprintf(stderr, "lukko-control-recv: recvmsg on socket %d: %s\n", i, strerror(errno));
		return 0;
	}
	int have_creds = 0;
	struct ucred cred = { 0 };
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(cred))) {
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			have_creds = 1;
		} else if (c->cmsg_type == SCM_RIGHTS) {
			size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t k = 0; k < count; k++) {
				int passed;
				memcpy(&passed, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				close(passed);
			}
		}
	}
	memset(frame, 0, HEADER_SIZE);
	put32(frame, (uint32_t)(HEADER_SIZE - 4 + (size_t)n));
	frame[4] = 'D';
	put16(frame + 5, (uint32_t)i);
	unsigned char family = 0;
	if (from.ss_family == AF_INET && msg.msg_namelen >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in *a = (struct sockaddr_in *)&from;
		family = 4;
		put16(frame + 21, ntohs(a->sin_port));
		memcpy(frame + 23, &a->sin_addr, 4);
	} else if (from.ss_family == AF_INET6 && msg.msg_namelen >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&from;
		family = 6;
		put16(frame + 21, ntohs(a->sin6_port));
		memcpy(frame + 23, &a->sin6_addr, 16);
	} else if (s->family != AF_UNIX) {
		return 1; /* an IP datagram without a source address: cannot be judged, dropped */
	}
	frame[7] = family;
	frame[8] = (unsigned char)((have_creds ? 1 : 0) | ((msg.msg_flags & MSG_TRUNC) ? 2 : 0));
	put32(frame + 9, have_creds ? (uint32_t)cred.uid : 0xffffffffu);
	put32(frame + 13, have_creds ? (uint32_t)cred.gid : 0xffffffffu);
	put32(frame + 17, have_creds ? (uint32_t)cred.pid : 0xffffffffu);
	write_all(frame, HEADER_SIZE + (size_t)n);
	return 1;
}

int main(int argc, char **argv)
{
	/* Ends with the companion even if it is killed without closing our stdin. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	atexit(cleanup);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *interface = NULL, *group = NULL;
		int kind; /* 0 unix, 1 abstract, 2 udp, 3 fd */
		const char *x = NULL, *y = NULL;
		if (!strcmp(a, "--unix") && i + 1 < argc) {
			kind = 0;
			x = argv[++i];
		} else if (!strcmp(a, "--abstract") && i + 1 < argc) {
			kind = 1;
			x = argv[++i];
		} else if (!strcmp(a, "--udp") && i + 2 < argc) {
			kind = 2;
			x = argv[++i];
			y = argv[++i];
		} else if (!strcmp(a, "--fd") && i + 1 < argc) {
			kind = 3;
			x = argv[++i];
		} else {
			usage("usage: lukko-control-recv (--unix PATH | --abstract NAME | --udp HOST PORT [--interface IF] [--group G] | --fd N)...");
		}
		while (i + 2 < argc) {
			if (!strcmp(argv[i + 1], "--interface") && i + 2 < argc) {
				interface = argv[i + 2];
				i += 2;
			} else if (!strcmp(argv[i + 1], "--group") && i + 2 < argc) {
				group = argv[i + 2];
				i += 2;
			} else {
				break;
			}
		}
		if ((interface || group) && kind != 2)
			usage("--interface and --group apply to --udp only");
		switch (kind) {
		case 0: bind_unix(x, 0); break;
		case 1: bind_unix(x, 1); break;
		case 2: bind_udp(x, y, interface, group); break;
		default: adopt_fd(x); break;
		}
	}
	if (n_sockets == 0)
		usage("no sockets");

	unsigned char ready[5] = { 0, 0, 0, 1, 'R' };
	write_all(ready, sizeof(ready));

	struct pollfd pfd[MAX_SOCKETS + 1];
	for (int i = 0; i < n_sockets; i++)
		pfd[i] = (struct pollfd){ .fd = sockets[i].fd, .events = POLLIN };
	pfd[n_sockets] = (struct pollfd){ .fd = 0, .events = POLLIN };
	while (!stop_requested) {
		int r = poll(pfd, (nfds_t)n_sockets + 1, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll", NULL);
		}
		if (pfd[n_sockets].revents) {
			char b[256];
			ssize_t n = read(0, b, sizeof(b));
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				break; /* the companion closed our stdin: it is stopping */
		}
		for (int i = 0; i < n_sockets; i++) {
			if (!pfd[i].revents)
				continue;
			for (int k = 0; k < BURST && !stop_requested; k++)
				if (!receive_one(i))
					break;
		}
	}
	return 0;
}
