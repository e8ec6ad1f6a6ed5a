/* SPDX-License-Identifier: Apache-2.0 */

/* One DNS exchange with the configured Resolver=: UDP, retried within the deadline, and TCP
 * when the answer is truncated.
 *
 * We do not hand this to res_nsend(): glibc drops NOERROR answers that carry neither AA nor RA
 * nor records as "lame referrals" and keeps waiting, which is exactly what small authoritative
 * test servers (pebble-challtestsrv) send for a name without records; and its timeouts are
 * whole seconds per try, where ours follow the validation's deadline. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/va/va-internal.h"
#include "shared/macro.h"

#define VA_DNS_RETRANSMIT_MS 1000
#define DNS_HEADER_SIZE 12

int va_dns_parse_server(const char *resolver, struct sockaddr_storage *ret, socklen_t *ret_len) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *port_text = NULL;
        unsigned long port = 53;
        struct sockaddr_storage ss = {};
        socklen_t len;

        if (!resolver)
                return -EINVAL;

        /* "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:5353", "2001:db8::1" */
        if (resolver[0] == '[') {
                const char *end = strchr(resolver, ']');

                if (!end || (size_t) (end - resolver - 1) >= sizeof(host))
                        return -EINVAL;
                memcpy(host, resolver + 1, end - resolver - 1);
                host[end - resolver - 1] = 0;
                if (end[1] == ':')
                        port_text = end + 2;
                else if (end[1] != 0)
                        return -EINVAL;
        } else {
                const char *colon = strchr(resolver, ':');

                if (colon && !strchr(colon + 1, ':')) {
                        if ((size_t) (colon - resolver) >= sizeof(host))
                                return -EINVAL;
                        memcpy(host, resolver, colon - resolver);
                        host[colon - resolver] = 0;
                        port_text = colon + 1;
                } else {
                        if (strlen(resolver) >= sizeof(host))
                                return -EINVAL;
                        strcpy(host, resolver);
                }
        }

        if (port_text) {
                char *end;

                errno = 0;
                port = strtoul(port_text, &end, 10);
                if (errno != 0 || end == port_text || *end != 0 || port == 0 || port > 65535)
                        return -EINVAL;
        }

        if (inet_pton(AF_INET, host, &((struct sockaddr_in *) &ss)->sin_addr) == 1) {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;

                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                len = sizeof(*in);
        } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) &ss)->sin6_addr) == 1) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                len = sizeof(*in6);
        } else
                return -EINVAL;

        *ret = ss;
        *ret_len = len;
        return 0;
}

static int va_dns_poll(int fd, short events, int64_t max_ms, va_usec_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int64_t left = va_remaining_ms(deadline);
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) MIN(left, max_ms));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                return r;      /* 0: max_ms passed */
        }
}

/* The answer must be a response to this very query: same ID, same question. */
static bool va_dns_matches(const unsigned char *query, size_t qlen, const unsigned char *answer, size_t alen) {
        if (alen < DNS_HEADER_SIZE || qlen < DNS_HEADER_SIZE)
                return false;
        if (answer[0] != query[0] || answer[1] != query[1] || !(answer[2] & 0x80))
                return false;
        /* Questions are copied verbatim by servers; compare name, type and class byte by byte
         * (case-insensitively, as servers may change the case). */
        if (alen < qlen || answer[4] != 0 || answer[5] != 1)
                return false;
        for (size_t i = DNS_HEADER_SIZE; i < qlen; i++) {
                unsigned char a = answer[i], q = query[i];

                if (a >= 'A' && a <= 'Z')
                        a += 'a' - 'A';
                if (q >= 'A' && q <= 'Z')
                        q += 'a' - 'A';
                if (a != q)
                        return false;
        }
        return true;
}

static int va_dns_udp(const struct sockaddr *server, socklen_t server_len, const unsigned char *query,
                      size_t qlen, va_usec_t deadline, unsigned char *answer, size_t answer_max,
                      size_t *ret_len) {
        _cleanup_(closep) int fd = -EBADF;

        fd = socket(server->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* Connected, so that only the server's datagrams arrive and "port unreachable" shows. */
        if (connect(fd, server, server_len) < 0)
                return -errno;

        for (;;) {
                int r;

                if (send(fd, query, qlen, 0) < 0)
                        return -errno;

                for (;;) {
                        ssize_t n;

                        r = va_dns_poll(fd, POLLIN, VA_DNS_RETRANSMIT_MS, deadline);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;          /* retransmit */
                        n = recv(fd, answer, answer_max, 0);
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (va_dns_matches(query, qlen, answer, n)) {
                                *ret_len = n;
                                return 0;
                        }
                }
        }
}

static int va_dns_io(int fd, bool writing, unsigned char *buf, size_t size, va_usec_t deadline) {
        size_t done = 0;

        while (done < size) {
                ssize_t n;
                int r;

                r = va_dns_poll(fd, writing ? POLLOUT : POLLIN, INT64_MAX, deadline);
                if (r < 0)
                        return r;
                n = writing ? send(fd, buf + done, size - done, MSG_NOSIGNAL) : recv(fd, buf + done, size - done, 0);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -ECONNRESET;
                done += n;
        }
        return 0;
}

static int va_dns_tcp(const struct sockaddr *server, socklen_t server_len, const unsigned char *query,
                      size_t qlen, va_usec_t deadline, unsigned char *answer, size_t answer_max,
                      size_t *ret_len) {
        _cleanup_free_ unsigned char *out = NULL;
        _cleanup_(closep) int fd = -EBADF;
        unsigned char prefix[2];
        size_t n;
        int r;

        fd = socket(server->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, server, server_len) < 0) {
                int err = 0;
                socklen_t errlen = sizeof(err);

                if (errno != EINPROGRESS)
                        return -errno;
                r = va_dns_poll(fd, POLLOUT, INT64_MAX, deadline);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }

        /* RFC 1035 §4.2.2: a two-byte length before each message. */
        out = malloc(qlen + 2);
        if (!out)
                return -ENOMEM;
        out[0] = qlen >> 8;
        out[1] = qlen & 0xff;
        memcpy(out + 2, query, qlen);
        r = va_dns_io(fd, true, out, qlen + 2, deadline);
        if (r < 0)
                return r;

        r = va_dns_io(fd, false, prefix, 2, deadline);
        if (r < 0)
                return r;
        n = (size_t) prefix[0] << 8 | prefix[1];
        if (n > answer_max)
                return -EMSGSIZE;
        r = va_dns_io(fd, false, answer, n, deadline);
        if (r < 0)
                return r;
        if (!va_dns_matches(query, qlen, answer, n))
                return -EBADMSG;

        *ret_len = n;
        return 0;
}

int va_dns_exchange(const struct sockaddr *server, socklen_t server_len, const unsigned char *query,
                    size_t qlen, va_usec_t deadline, unsigned char *answer, size_t answer_max,
                    size_t *ret_len) {
        size_t n = 0;
        int r;

        r = va_dns_udp(server, server_len, query, qlen, deadline, answer, answer_max, &n);
        if (r < 0)
                return r;
        /* TC: the answer did not fit a datagram; ask again over TCP. */
        if (answer[2] & 0x02)
                r = va_dns_tcp(server, server_len, query, qlen, deadline, answer, answer_max, &n);
        if (r < 0)
                return r;

        *ret_len = n;
        return 0;
}
