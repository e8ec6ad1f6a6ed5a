/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The HTTP layer's view for front ends (acme/, scep/, cmp/, est/). The layer (libevent evhttp +
 * bufferevent_openssl) owns connections, TLS, limits and routing; a front end sees one
 * HttpRequest and fills one HttpResponse, synchronously, on the worker thread that accepted the
 * connection. Slow work (ACME challenge validation) never runs here: hand it to va/. A handler
 * that wants to answer with the result of such work may hold its reply for a bounded time
 * (http_request_defer()) without blocking the loop. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/x509.h>

#include "shared/macro.h"

#define HTTP_BODY_MAX_DEFAULT     (64u * 1024u)
#define HTTP_HEADERS_MAX_DEFAULT  (16u * 1024u)
#define HTTP_RESPONSE_HEADERS_MAX 32

typedef struct ServerWorker ServerWorker;     /* server/server-worker.h */

typedef struct HttpRequest {
        const char *method;           /* "GET" "HEAD" "POST" … */
        const char *path;             /* percent-decoded path, no query */
        const char *query;            /* raw query string or NULL */
        const char *base_url;         /* "https://host:port" as the client addressed us (Host header) */
        const char *url;              /* base_url + path (what an ACME JWS "url" must equal) */
        const uint8_t *body;          /* NUL-terminated for convenience; body_size excludes it */
        size_t body_size;
        bool tls;
        X509 *client_cert;            /* borrowed, NULL without a verified TLS client certificate */
        const char *remote_address;   /* "127.0.0.1" */
        ServerWorker *worker;         /* store handle, config snapshot: server/server-worker.h */
        void *impl;                   /* the layer's own */
        bool body_too_large;          /* over the body limit: body is empty (only for routes that
                                         set accepts_oversized_body) */
} HttpRequest;

/* Header lookup, case-insensitive. NULL if absent. */
const char *http_request_get_header(const HttpRequest *req, const char *name);

typedef struct HttpHeader {
        char *name;
        char *value;
} HttpHeader;

typedef struct HttpResponse {
        int status;                    /* 200 unless set */
        HttpHeader headers[HTTP_RESPONSE_HEADERS_MAX];
        size_t n_headers;
        char *content_type;
        uint8_t *body;
        size_t body_size;
} HttpResponse;

/* Adds a header (repeatable: several Link headers). -E2BIG past HTTP_RESPONSE_HEADERS_MAX. */
int http_response_add_header(HttpResponse *resp, const char *name, const char *value);
int http_response_add_headerf(HttpResponse *resp, const char *name, const char *format, ...)
        _printf_(3, 4);
/* Replaces the body (copied). */
int http_response_set_body(HttpResponse *resp, int status, const char *content_type,
                           const void *body, size_t size);
/* Serializes obj compactly with the given content type ("application/json",
 * "application/problem+json"). */
int http_response_set_json(HttpResponse *resp, int status, const char *content_type,
                           json_object *obj);
void http_response_done(HttpResponse *resp);

/* A front end's entry point for every request under its prefix. Return 0 after filling resp;
 * a negative return makes the layer answer 500 with a plain body (front ends should map their
 * own errors to protocol errors instead). */
typedef int (*HttpHandler)(const HttpRequest *req, HttpResponse *resp, void *userdata);

/* Bodies over the limit but within HTTP_BODY_HARD_CAP_FACTOR times it are read and dropped, so that
 * a front end that accepts_oversized_body can refuse them in its own protocol (an ACME problem
 * document with a fresh nonce). Larger ones are refused by the layer from the Content-Length
 * alone with a plain 413, like every oversized body on other routes. */
#define HTTP_BODY_HARD_CAP_FACTOR 4

typedef struct HttpRoute {
        const char *prefix;            /* "/api/v1/protocols/acme/" — longest prefix wins */
        HttpHandler handler;
        void *userdata;
        bool accepts_oversized_body;   /* call handler with body_too_large instead of a plain 413 */
} HttpRoute;

/* Held replies. A handler calls http_request_defer() and returns 0 (whatever it put in resp is
 * discarded); the layer then calls resume on the worker thread that owns the connection, between
 * the usual request_start/request_end hooks, once http_deferred_wake() was called (from any
 * thread) or timeout_usec passed, whichever comes first, and sends the response resume filled.
 * The HttpRequest resume sees carries method, path, query-less url, base_url, remote_address,
 * tls and worker of the original request; no body and no client certificate.
 *
 * A reply is also resumed at once when the server stops. If the client closes the connection
 * while its reply is held, resume is never called. Either way the handle stays valid for whoever
 * holds a reference, and waking a finished handle does nothing. */
typedef struct HttpDeferred HttpDeferred;

typedef int (*HttpResumeHandler)(const HttpRequest *req, HttpResponse *resp, void *userdata);

/* Holds the reply to req (only from within its handler, once). On success userdata belongs to the
 * handle (userdata_free, optional, runs with the last reference, on whichever thread drops it) and
 * *ret is a reference for the caller. -EBUSY if the reply is already held, -EINVAL if req did not
 * come from the layer. */
int http_request_defer(const HttpRequest *req, uint64_t timeout_usec, HttpResumeHandler resume,
                       void *userdata, void (*userdata_free)(void *userdata), HttpDeferred **ret);
/* Thread-safe. */
void http_deferred_wake(HttpDeferred *d);
HttpDeferred *http_deferred_ref(HttpDeferred *d);
HttpDeferred *http_deferred_unref(HttpDeferred *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpDeferred *, http_deferred_unref);
