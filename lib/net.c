/* net.c - blocking socket helpers for dog, peers and tests. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/net.h"

int sd_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sd_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOTSOCK) {
				n = write(fd, p, len);
				if (n < 0) {
					if (errno == EINTR)
						continue;
					return -errno;
				}
			} else {
				return -errno;
			}
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sd_writev_full(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int sd_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int sd_set_nodelay(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

int sd_set_timeout(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (timeout_ms > 0)
		sd_set_nonblock(fd, 1);
	int ret = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (ret < 0 && errno == EINPROGRESS) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ret = poll(&pfd, 1, timeout_ms);
		if (ret == 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		int err = 0;
		socklen_t el = sizeof(err);
		if (ret < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			close(fd);
			return -err;
		}
	} else if (ret < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (timeout_ms > 0)
		sd_set_nonblock(fd, 0);
	sd_set_nodelay(fd);
	return fd;
}

int sd_connect(const char *host, uint16_t port, int timeout_ms)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	char pstr[8];
	snprintf(pstr, sizeof(pstr), "%u", port);
	int ret = getaddrinfo(host, pstr, &hints, &res);
	if (ret)
		return -EHOSTUNREACH;
	int fd = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, timeout_ms);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

int sd_listen(const char *addr, uint16_t port, int backlog)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res;
	char pstr[8];
	snprintf(pstr, sizeof(pstr), "%u", port);
	if (addr && !*addr)
		addr = NULL;
	if (getaddrinfo(addr, pstr, &hints, &res))
		return -EADDRNOTAVAIL;
	int fd = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			fd = -errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
			int e = -errno;
			close(fd);
			fd = e;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	return fd;
}

int sd_exec(int fd, struct sd_req *hdr, const void *data, struct sd_rsp *rsp, void *rbuf,
	    size_t rlen)
{
	int ret;
	if ((hdr->flags & SD_FLAG_CMD_WRITE) && hdr->data_length) {
		struct iovec iov[2] = {{hdr, sizeof(*hdr)}, {(void *)data, hdr->data_length}};
		ret = sd_writev_full(fd, iov, 2);
	} else {
		ret = sd_write_full(fd, hdr, sizeof(*hdr));
	}
	if (ret)
		return ret;
	ret = sd_read_full(fd, rsp, sizeof(*rsp));
	if (ret)
		return ret;
	if (rsp->data_length > rlen)
		return -EMSGSIZE;
	if (rsp->data_length)
		return sd_read_full(fd, rbuf, rsp->data_length);
	return 0;
}
