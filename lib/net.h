/* net.h - framed blocking socket I/O: whole reads and writes, connect, listen, one request/reply
 * exchange. */
#ifndef SD_NET_H
#define SD_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/sd_proto.h"

/* Read or write exactly len bytes, retrying on EINTR and short transfers.
 * Return 0, -ECONNRESET when the peer closed first, or -errno. */
int sd_read_full(int fd, void *buf, size_t len);
int sd_write_full(int fd, const void *buf, size_t len);
int sd_writev_full(int fd, struct iovec *iov, int iovcnt);

/* TCP connect to host:port with a timeout in milliseconds (0 = none).
 * Returns a blocking fd with TCP_NODELAY set, or -errno. */
int sd_connect(const char *host, uint16_t port, int timeout_ms);
/* Listening TCP socket on addr (NULL or "" = any) and port; -errno on error. */
int sd_listen(const char *addr, uint16_t port, int backlog);

int sd_set_nonblock(int fd, int on);
int sd_set_nodelay(int fd);
/* Send and receive timeouts for a blocking socket, in milliseconds. */
int sd_set_timeout(int fd, int ms);

/*
 * One exchange on a blocking socket: send hdr (and data_length bytes of
 * data when hdr has SD_FLAG_CMD_WRITE), then read the reply header and up to
 * rlen payload bytes into rbuf. A reply longer than rlen is an error
 * (-EMSGSIZE) and the connection must be dropped. Returns 0 (look at
 * rsp->result) or -errno for transport errors.
 */
int sd_exec(int fd, struct sd_req *hdr, const void *data, struct sd_rsp *rsp, void *rbuf,
	    size_t rlen);

#endif
