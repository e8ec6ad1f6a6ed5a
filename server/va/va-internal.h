/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals shared by the validators of server/va/. Every step of one validation works against
 * one deadline (CLOCK_MONOTONIC, microseconds), so DNS, connect, TLS and HTTP together never
 * take longer than the configured Timeout=. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/x509.h>

#include "server/va/va.h"

#define VA_DEFAULT_HTTP_PORT 80u
#define VA_DEFAULT_TLS_PORT 443u
#define VA_DEFAULT_WORKERS 4u
#define VA_MAX_WORKERS 256u
#define VA_DEFAULT_TIMEOUT 10
#define VA_DEFAULT_QUEUE_SIZE 1024u

#define VA_HTTP_BODY_MAX 8192u      /* a key authorization is ~90 bytes; read no more than this */
#define VA_HTTP_MAX_REDIRECTS 10
#define VA_DNS_ANSWER_MAX 65536     /* largest DNS message (TCP) */
#define VA_TXT_RECORDS_MAX 64       /* TXT records considered at one name */
#define VA_ADDRESSES_MAX 16         /* A + AAAA answers used for one name */
#define VA_TOKEN_MAX 256
#define VA_KEY_AUTHORIZATION_MAX 1024
#define VA_IDENTIFIER_MAX 253

typedef uint64_t va_usec_t;

static inline unsigned va_http_port(const VaConfig *config) {
        return config->http_port ?: VA_DEFAULT_HTTP_PORT;
}

static inline unsigned va_tls_port(const VaConfig *config) {
        return config->tls_port ?: VA_DEFAULT_TLS_PORT;
}

va_usec_t va_now(void);
va_usec_t va_deadline(const VaConfig *config);
/* Milliseconds left until deadline, at least 1 while time is left, 0 once it has passed. */
int64_t va_remaining_ms(va_usec_t deadline);

/* Writes an allocated, printf-formatted message to *ret_detail (if ret_detail is not NULL) and
 * returns error. */
int va_fail(int error, char **ret_detail, const char *format, ...) __attribute__((format(printf, 3, 4)));

typedef struct VaAddress {
        int family;                  /* AF_INET, AF_INET6 */
        char text[46];               /* INET6_ADDRSTRLEN, without brackets */
} VaAddress;

/* true for an IPv4 or IPv6 literal; fills *ret (if not NULL). */
bool va_parse_ip(const char *s, VaAddress *ret);

/* Resolves name (A and AAAA; IPv6 answers first) with the configured resolver, or with
 * getaddrinfo() when none is configured. -CF_E_DNS with a detail if nothing usable came back. */
int va_resolve_addresses(const VaConfig *config, const char *name, va_usec_t deadline,
                         VaAddress **ret, size_t *ret_n, char **ret_detail);

/* The TXT records at name (each record's character-strings concatenated), NULL-terminated;
 * an empty list when the name exists without TXT records. NXDOMAIN, SERVFAIL and timeouts:
 * -CF_E_DNS with a detail. */
int va_resolve_txt(const VaConfig *config, const char *name, va_usec_t deadline,
                   char ***ret, char **ret_detail);

/* Addresses found so far: list has VA_ADDRESSES_MAX slots, n are used. */
typedef struct VaAddressList {
        VaAddress *list;
        size_t n;
} VaAddressList;
/* Adds one raw in_addr/in6_addr, skipping duplicates and anything beyond VA_ADDRESSES_MAX. */
int va_address_list_add(VaAddressList *l, int family, const void *raw);
/* The A (type ns_t_a) or AAAA records of a DNS answer added to l; -EBADMSG if the answer is
 * malformed (records added before the bad one stay). */
int va_dns_answer_addresses(const unsigned char *answer, size_t size, int type, VaAddressList *l);
/* TXT records found so far: records has VA_TXT_RECORDS_MAX + 1 slots (NULL-terminated). */
typedef struct VaTxtList {
        char **records;
        size_t n;
} VaTxtList;
/* Each TXT record of a DNS answer (its character-strings joined) appended to l, at most
 * VA_TXT_RECORDS_MAX; -EBADMSG if malformed; the caller frees what was appended either way. */
int va_dns_answer_txt(const unsigned char *answer, size_t size, VaTxtList *l);
/* Resolver= syntax: "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:5353", "2001:db8::1". */
int va_dns_parse_server(const char *resolver, struct sockaddr_storage *ret, socklen_t *ret_len);
/* Sends query to server (UDP; TCP if the answer is truncated) and waits for the matching answer
 * until deadline: -ETIMEDOUT, -ECONNREFUSED, other negative errno. */
int va_dns_exchange(const struct sockaddr *server, socklen_t server_len, const unsigned char *query,
                    size_t qlen, va_usec_t deadline, unsigned char *answer, size_t answer_max,
                    size_t *ret_len);

/* The reverse-mapping name of an IP address (RFC 8738 §6): "4.3.2.1.in-addr.arpa" or the
 * ip6.arpa nibble form. */
int va_reverse_name(const VaAddress *address, char **ret);

/* SHA-256 of the key authorization: the dns-01 TXT value (base64url) and the tls-alpn-01
 * acmeIdentifier extension value. */
int va_key_authorization_digest(const char *key_authorization, unsigned char ret[static 32]);

int va_validate_http01(const VaConfig *config, const VaRequest *req, va_usec_t deadline, char **ret_detail);
int va_validate_dns01(const VaConfig *config, const VaRequest *req, va_usec_t deadline, char **ret_detail);
int va_validate_tlsalpn01(const VaConfig *config, const VaRequest *req, va_usec_t deadline, char **ret_detail);
/* What the tls-alpn-01 peer's certificate must hold (RFC 8737 §3): one subjectAltName naming the
 * identifier (ip: the IP identifier's address, NULL for a DNS name) and one critical
 * acmeIdentifier extension with the key authorization's digest. */
int va_tlsalpn01_check_certificate(X509 *cert, const VaRequest *req, const VaAddress *ip, char **ret_detail);
