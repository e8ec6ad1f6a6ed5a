/* SPDX-License-Identifier: Apache-2.0 */

/* acme-load: N concurrent ACME clients through the whole RFC 8555 flow (account, order, http-01,
 * finalize, download) against one server, for D seconds or M orders. Prints orders/s, latency
 * percentiles, errors by type, and the server's CPU milliseconds per issued certificate, read from
 * /proc/PID/stat — the figure that does not depend on the driver. Human-readable output first,
 * then one JSON line. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#include "bench/bench-acme.h"
#include "bench/bench-http01.h"
#include "bench/bench-proc.h"
#include "shared/json-util.h"
#include "shared/random-util.h"

#define CLIENTS_MAX 1024u
#define ERROR_TYPES_MAX 64u

typedef struct Options {
        const char *directory_url;
        const char *ca_file;
        const char *label;
        const char *domain;
        const char *http_address;
        const char *json_path;
        unsigned clients;
        double duration;
        uint64_t max_orders;
        uint16_t http_port;
        unsigned responder_threads;
        pid_t server_pid;
        unsigned poll_min_ms, poll_max_ms, poll_timeout_ms;
        bool new_key_per_order;
        bool verbose;
        bool trace;
} Options;

typedef struct ErrorType {
        char type[80];
        char first_detail[512];
        uint64_t count;
} ErrorType;

typedef struct Run {
        const Options *o;
        BenchDirectory directory;
        Http01Responder *responder;
        char run_id[16];
        pthread_barrier_t barrier;
        atomic_bool stop;
        atomic_uint_fast64_t started;
        atomic_uint running;

        pthread_mutex_t lock;           /* guards errors */
        ErrorType errors[ERROR_TYPES_MAX];
        size_t n_errors;
        uint64_t errors_total, setup_errors;
} Run;

typedef struct Worker {
        Run *run;
        unsigned index;
        pthread_t thread;
        double *latencies;              /* ms of each successful order */
        size_t n_latencies, n_alloc;
        uint64_t failed;
        BenchClientStats stats;
} Worker;

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double self_cpu_ms(void) {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void record_error(Run *run, const BenchError *err, bool setup) {
        char type[80];
        size_t i;

        snprintf(type, sizeof(type), "%s%s", setup ? "setup:" : "", err->type);
        pthread_mutex_lock(&run->lock);
        run->errors_total++;
        if (setup)
                run->setup_errors++;
        for (i = 0; i < run->n_errors; i++)
                if (strcmp(run->errors[i].type, type) == 0)
                        break;
        if (i == run->n_errors && run->n_errors < ERROR_TYPES_MAX) {
                snprintf(run->errors[i].type, sizeof(run->errors[i].type), "%s", type);
                snprintf(run->errors[i].first_detail, sizeof(run->errors[i].first_detail), "%s", err->detail);
                run->n_errors++;
        }
        if (i < run->n_errors)
                run->errors[i].count++;
        pthread_mutex_unlock(&run->lock);
        if (run->o->verbose)
                fprintf(stderr, "acme-load: %s: %s\n", type, err->detail);
}

static int worker_add_latency(Worker *w, double ms) {
        if (w->n_latencies == w->n_alloc) {
                size_t a = MAX(w->n_alloc * 2, (size_t) 1024);
                double *l = realloc(w->latencies, a * sizeof(double));

                if (!l)
                        return -ENOMEM;
                w->latencies = l;
                w->n_alloc = a;
        }
        w->latencies[w->n_latencies++] = ms;
        return 0;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        Run *run = w->run;
        const Options *o = run->o;
        _cleanup_(bench_client_freep) BenchClient *c = NULL;
        BenchClientOptions co = {
                .directory = &run->directory,
                .ca_file = o->ca_file,
                .responder = run->responder,
                .poll_min_ms = o->poll_min_ms,
                .poll_max_ms = o->poll_max_ms,
                .poll_timeout_ms = o->poll_timeout_ms,
                .new_key_per_order = o->new_key_per_order,
                .trace = o->trace,
        };
        BenchError err = {};
        bool ready;
        int r;

        /* Account creation is set-up, outside the measured window: every client registers, then all
         * start ordering together. */
        r = bench_client_new(&co, &c);
        if (r < 0)
                err = (BenchError) { .type = "client-new" };
        else
                r = bench_client_register(c, &err);
        ready = r >= 0;
        if (!ready)
                record_error(run, &err, true);
        pthread_barrier_wait(&run->barrier);
        if (!ready)
                goto finish;

        for (unsigned seq = 0; !run->stop; seq++) {
                char name[256];
                double t0;

                if (o->max_orders > 0 && run->started++ >= o->max_orders)
                        break;
                snprintf(name, sizeof(name), "c%u-o%u-%s.%s", w->index, seq, run->run_id, o->domain);
                t0 = now_s();
                r = bench_client_issue(c, name, &err);
                if (r >= 0) {
                        if (worker_add_latency(w, (now_s() - t0) * 1e3) < 0)
                                break;
                } else {
                        w->failed++;
                        record_error(run, &err, false);
                        /* A failing server must not turn the driver into a busy loop. */
                        struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                        nanosleep(&ts, NULL);
                }
        }

finish:
        if (c)
                w->stats = *bench_client_get_stats(c);
        run->running--;
        return NULL;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p) {
        size_t rank;

        if (n == 0)
                return NAN;
        rank = (size_t) ceil(p / 100.0 * (double) n);
        return sorted[rank > 0 ? rank - 1 : 0];
}

static json_object *json_number(double v) {
        /* NaN/inf are not JSON. */
        char buf[64];

        if (!isfinite(v))
                return NULL;
        /* Three decimals, as printed: json-c's default "%.17g" shows binary noise. */
        snprintf(buf, sizeof(buf), "%.3f", v);
        return json_object_new_double_s(v, buf);
}

static void help(void) {
        printf("acme-load --directory URL --http-port PORT [OPTIONS]\n\n"
               "  -d --directory URL       ACME directory\n"
               "     --cacert FILE         trust these CA certificates for the server's TLS\n"
               "  -c --clients N           concurrent clients (threads), default 1\n"
               "  -t --duration SEC        stop starting orders after SEC seconds, default 20\n"
               "  -n --orders M            stop after M orders in total (0: no limit)\n"
               "  -p --http-port PORT      port of the driver's http-01 responder (the server validates there)\n"
               "     --http-address ADDR   address of the responder, default 127.0.0.1\n"
               "     --responder-threads N default 8\n"
               "  -P --server-pid PID      read the server's CPU time from /proc/PID/stat (and its children)\n"
               "  -l --label NAME          name of this run in the output\n"
               "     --domain SUFFIX       identifiers are cC-oN-RUN.SUFFIX, default bench.test\n"
               "     --poll-min-ms MS      first poll delay, default 5 (×1.5 per poll)\n"
               "     --poll-max-ms MS      longest poll delay, default 20\n"
               "     --poll-timeout-ms MS  give up polling one resource after MS, default 30000\n"
               "     --new-key-per-order   a fresh P-256 key per CSR (default: one per client)\n"
               "     --json FILE           also write the JSON line to FILE\n"
               "  -v --verbose             print every error\n"
               "     --trace               print every request and its duration\n");
}

static int parse_unsigned(const char *s, unsigned long long max, unsigned long long *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || v > max || s[0] == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_args(int argc, char *argv[], Options *o) {
        enum {
                ARG_CACERT = 0x100,
                ARG_HTTP_ADDRESS,
                ARG_RESPONDER_THREADS,
                ARG_DOMAIN,
                ARG_POLL_MIN,
                ARG_POLL_MAX,
                ARG_POLL_TIMEOUT,
                ARG_NEW_KEY,
                ARG_JSON,
                ARG_TRACE,
        };
        static const struct option options[] = {
                { "directory",         required_argument, NULL, 'd' },
                { "cacert",            required_argument, NULL, ARG_CACERT },
                { "clients",           required_argument, NULL, 'c' },
                { "duration",          required_argument, NULL, 't' },
                { "orders",            required_argument, NULL, 'n' },
                { "http-port",         required_argument, NULL, 'p' },
                { "http-address",      required_argument, NULL, ARG_HTTP_ADDRESS },
                { "responder-threads", required_argument, NULL, ARG_RESPONDER_THREADS },
                { "server-pid",        required_argument, NULL, 'P' },
                { "label",             required_argument, NULL, 'l' },
                { "domain",            required_argument, NULL, ARG_DOMAIN },
                { "poll-min-ms",       required_argument, NULL, ARG_POLL_MIN },
                { "poll-max-ms",       required_argument, NULL, ARG_POLL_MAX },
                { "poll-timeout-ms",   required_argument, NULL, ARG_POLL_TIMEOUT },
                { "new-key-per-order", no_argument,       NULL, ARG_NEW_KEY },
                { "json",              required_argument, NULL, ARG_JSON },
                { "verbose",           no_argument,       NULL, 'v' },
                { "trace",             no_argument,       NULL, ARG_TRACE },
                { "help",              no_argument,       NULL, 'h' },
                {}
        };
        unsigned long long v;
        char *end;
        int c;

        *o = (Options) {
                .label = "acme",
                .domain = "bench.test",
                .http_address = "127.0.0.1",
                .clients = 1,
                .duration = 20,
                .responder_threads = 8,
                .poll_min_ms = 5,
                .poll_max_ms = 20,
                .poll_timeout_ms = 30000,
        };

        while ((c = getopt_long(argc, argv, "d:c:t:n:p:P:l:vh", options, NULL)) >= 0) {
                int r = 0;

                switch (c) {
                case 'd': o->directory_url = optarg; break;
                case ARG_CACERT: o->ca_file = optarg; break;
                case 'c':
                        r = parse_unsigned(optarg, CLIENTS_MAX, &v);
                        o->clients = (unsigned) v;
                        if (r >= 0 && v == 0)
                                r = -EINVAL;
                        break;
                case 't':
                        errno = 0;
                        o->duration = strtod(optarg, &end);
                        if (errno != 0 || *end || !(o->duration > 0))
                                r = -EINVAL;
                        break;
                case 'n': r = parse_unsigned(optarg, UINT64_MAX, &v); o->max_orders = v; break;
                case 'p':
                        r = parse_unsigned(optarg, 65535, &v);
                        o->http_port = (uint16_t) v;
                        if (r >= 0 && v == 0)
                                r = -EINVAL;
                        break;
                case ARG_HTTP_ADDRESS: o->http_address = optarg; break;
                case ARG_RESPONDER_THREADS:
                        r = parse_unsigned(optarg, 64, &v);
                        o->responder_threads = (unsigned) v;
                        if (r >= 0 && v == 0)
                                r = -EINVAL;
                        break;
                case 'P': r = parse_unsigned(optarg, INT32_MAX, &v); o->server_pid = (pid_t) v; break;
                case 'l': o->label = optarg; break;
                case ARG_DOMAIN: o->domain = optarg; break;
                case ARG_POLL_MIN: r = parse_unsigned(optarg, 10000, &v); o->poll_min_ms = (unsigned) v; break;
                case ARG_POLL_MAX: r = parse_unsigned(optarg, 10000, &v); o->poll_max_ms = (unsigned) v; break;
                case ARG_POLL_TIMEOUT: r = parse_unsigned(optarg, 3600000, &v); o->poll_timeout_ms = (unsigned) v; break;
                case ARG_NEW_KEY: o->new_key_per_order = true; break;
                case ARG_JSON: o->json_path = optarg; break;
                case 'v': o->verbose = true; break;
                case ARG_TRACE: o->trace = true; break;
                case 'h': help(); exit(EXIT_SUCCESS);
                default: return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "acme-load: invalid value '%s' for option.\n", optarg);
                        return -EINVAL;
                }
        }
        if (optind < argc || !o->directory_url || o->http_port == 0) {
                fprintf(stderr, "acme-load: --directory and --http-port are required (see --help).\n");
                return -EINVAL;
        }
        if (o->poll_max_ms < o->poll_min_ms)
                o->poll_max_ms = o->poll_min_ms;
        return 0;
}

static void add(json_object *obj, const char *key, json_object *v) {
        /* json-c takes ownership; on failure the value is dropped with it. */
        if (json_object_object_add(obj, key, v) < 0)
                json_object_put(v);
}

/* Everything one run prints, computed once for both output forms. */
typedef struct Report {
        const Options *o;
        const Run *run;
        double elapsed, setup;
        uint64_t ok, failed;
        double p50, p90, p99, max, mean;
        double server_cpu0, server_cpu1, driver_cpu_ms;
        BenchClientStats sum;
        Http01Stats responder;
} Report;

static int report_collect_latencies(Report *rep, Worker *workers) {
        _cleanup_free_ double *all = NULL;
        size_t n = 0;

        for (unsigned i = 0; i < rep->o->clients; i++) {
                rep->ok += workers[i].n_latencies;
                rep->failed += workers[i].failed;
                rep->sum.requests += workers[i].stats.requests;
                rep->sum.connects += workers[i].stats.connects;
                rep->sum.nonce_fetches += workers[i].stats.nonce_fetches;
                rep->sum.bad_nonce_retries += workers[i].stats.bad_nonce_retries;
                rep->sum.polls += workers[i].stats.polls;
        }
        all = malloc(MAX(rep->ok, (uint64_t) 1) * sizeof(double));
        if (!all)
                return -ENOMEM;
        for (unsigned i = 0; i < rep->o->clients; i++) {
                if (workers[i].n_latencies > 0)
                        memcpy(all + n, workers[i].latencies, workers[i].n_latencies * sizeof(double));
                n += workers[i].n_latencies;
        }
        qsort(all, n, sizeof(double), cmp_double);
        rep->mean = n > 0 ? 0 : NAN;
        for (size_t i = 0; i < n; i++)
                rep->mean += all[i] / (double) n;
        rep->p50 = percentile(all, n, 50);
        rep->p90 = percentile(all, n, 90);
        rep->p99 = percentile(all, n, 99);
        rep->max = n > 0 ? all[n - 1] : NAN;
        return 0;
}

static double per_order(double total, uint64_t n) {
        return n > 0 ? total / (double) n : NAN;
}

static void report_print(const Report *rep) {
        const Options *o = rep->o;
        const Run *run = rep->run;
        double server_ms = rep->server_cpu1 - rep->server_cpu0;

        printf("== %s: %u client%s, %.1f s (set-up %.1f s), run %s\n", o->label, o->clients,
               o->clients == 1 ? "" : "s", rep->elapsed, rep->setup, run->run_id);
        printf("orders ok          %" PRIu64 "\n", rep->ok);
        printf("errors             %" PRIu64 "%s\n", run->errors_total, run->setup_errors ? " (some in set-up)" : "");
        for (size_t i = 0; i < run->n_errors; i++)
                printf("  %-24s %" PRIu64 "  first: %s\n", run->errors[i].type, run->errors[i].count,
                       run->errors[i].first_detail);
        printf("orders/s           %.1f\n", (double) rep->ok / rep->elapsed);
        printf("latency ms         p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  mean %.1f\n",
               rep->p50, rep->p90, rep->p99, rep->max, rep->mean);
        if (o->server_pid > 0)
                printf("server CPU         %.0f ms (pid %d: %.0f → %.0f ms) → %.3f ms per certificate\n",
                       server_ms, (int) o->server_pid, rep->server_cpu0, rep->server_cpu1,
                       per_order(server_ms, rep->ok));
        printf("driver CPU         %.0f ms → %.3f ms per certificate\n", rep->driver_cpu_ms,
               per_order(rep->driver_cpu_ms, rep->ok));
        printf("requests/order     %.1f (polls %.1f, connections %" PRIu64 ", nonce fetches %" PRIu64
               ", badNonce retries %" PRIu64 ")\n",
               per_order((double) rep->sum.requests, rep->ok + rep->failed),
               per_order((double) rep->sum.polls, rep->ok + rep->failed),
               rep->sum.connects, rep->sum.nonce_fetches, rep->sum.bad_nonce_retries);
        printf("http-01 responder  served %" PRIu64 ", not found %" PRIu64 ", bad %" PRIu64 "\n",
               rep->responder.served, rep->responder.not_found, rep->responder.bad_request);
}

static json_object *json_count(uint64_t v) {
        return json_object_new_int64((int64_t) MIN(v, (uint64_t) INT64_MAX));
}

static int report_to_json(const Report *rep, json_object **ret) {
        _cleanup_(json_object_putp) json_object *js = NULL;
        const Options *o = rep->o;
        const Run *run = rep->run;
        double server_ms = rep->server_cpu1 - rep->server_cpu0;
        bool pid = o->server_pid > 0;
        json_object *lat, *errs;

        js = json_object_new_object();
        if (!js)
                return -ENOMEM;
        lat = json_object_new_object();
        add(js, "label", json_object_new_string(o->label));
        add(js, "clients", json_count(o->clients));
        add(js, "duration_s", json_number(rep->elapsed));
        add(js, "orders_ok", json_count(rep->ok));
        add(js, "errors", json_count(run->errors_total));
        errs = json_object_new_object();
        for (size_t i = 0; errs && i < run->n_errors; i++)
                add(errs, run->errors[i].type, json_count(run->errors[i].count));
        add(js, "error_types", errs);
        add(js, "orders_per_s", json_number((double) rep->ok / rep->elapsed));
        if (lat) {
                add(lat, "p50", json_number(rep->p50));
                add(lat, "p90", json_number(rep->p90));
                add(lat, "p99", json_number(rep->p99));
                add(lat, "max", json_number(rep->max));
                add(lat, "mean", json_number(rep->mean));
        }
        add(js, "latency_ms", lat);
        add(js, "server_pid", pid ? json_count((uint64_t) o->server_pid) : NULL);
        add(js, "server_cpu_ms", pid ? json_number(server_ms) : NULL);
        add(js, "server_cpu_ms_start", pid ? json_number(rep->server_cpu0) : NULL);
        add(js, "server_cpu_ms_end", pid ? json_number(rep->server_cpu1) : NULL);
        add(js, "server_cpu_ms_per_cert", pid ? json_number(per_order(server_ms, rep->ok)) : NULL);
        add(js, "driver_cpu_ms_per_cert", json_number(per_order(rep->driver_cpu_ms, rep->ok)));
        add(js, "requests", json_count(rep->sum.requests));
        add(js, "polls", json_count(rep->sum.polls));
        add(js, "connections", json_count(rep->sum.connects));
        add(js, "nonce_fetches", json_count(rep->sum.nonce_fetches));
        add(js, "bad_nonce_retries", json_count(rep->sum.bad_nonce_retries));
        add(js, "http01_served", json_count(rep->responder.served));
        *ret = TAKE_PTR(js);
        return 0;
}

/* Starts the clients, waits until they have all registered, measures the window in which they
 * order, and fills rep with what is not in the workers. */
static int run_clients(Run *run, Worker *workers, Report *rep) {
        const Options *o = run->o;
        double setup0, t0, self0;
        int r;

        r = pthread_barrier_init(&run->barrier, NULL, o->clients + 1);
        if (r != 0)
                return -r;
        run->running = o->clients;
        setup0 = now_s();
        for (unsigned i = 0; i < o->clients; i++) {
                workers[i] = (Worker) { .run = run, .index = i };
                r = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
                if (r != 0) {
                        /* The barrier can never complete now; nothing sensible to measure. */
                        fprintf(stderr, "acme-load: pthread_create(): %s\n", strerror(r));
                        exit(EXIT_FAILURE);
                }
        }
        pthread_barrier_wait(&run->barrier);
        t0 = now_s();
        self0 = self_cpu_ms();
        rep->setup = t0 - setup0;
        if (o->server_pid > 0 && proc_tree_cpu_ms(o->server_pid, &rep->server_cpu0) < 0)
                rep->server_cpu0 = NAN;

        while (run->running > 0 && now_s() - t0 < o->duration) {
                struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        run->stop = true;   /* orders in flight finish and count */
        for (unsigned i = 0; i < o->clients; i++)
                pthread_join(workers[i].thread, NULL);

        rep->elapsed = now_s() - t0;
        rep->driver_cpu_ms = self_cpu_ms() - self0;
        if (o->server_pid > 0 && proc_tree_cpu_ms(o->server_pid, &rep->server_cpu1) < 0) {
                fprintf(stderr, "acme-load: server process %d is gone.\n", (int) o->server_pid);
                rep->server_cpu1 = NAN;
        }
        pthread_barrier_destroy(&run->barrier);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *js = NULL;
        _cleanup_free_ Worker *workers = NULL;
        Options o;
        Run run = {};
        Report rep = {};
        BenchError err = {};
        double cpu;
        uint8_t id[3];
        int r;

        if (parse_args(argc, argv, &o) < 0)
                return 2;
        run.o = &o;
        rep = (Report) { .o = &o, .run = &run };
        pthread_mutex_init(&run.lock, NULL);

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "acme-load: curl_global_init() failed.\n");
                return 1;
        }
        if (random_bytes(id, sizeof(id)) < 0)
                return 1;
        snprintf(run.run_id, sizeof(run.run_id), "%02x%02x%02x", id[0], id[1], id[2]);

        if (o.server_pid > 0 && proc_tree_cpu_ms(o.server_pid, &cpu) < 0) {
                fprintf(stderr, "acme-load: cannot read /proc/%d/stat.\n", (int) o.server_pid);
                return 1;
        }
        r = http01_responder_new(o.http_address, o.http_port, o.responder_threads, &run.responder);
        if (r < 0) {
                fprintf(stderr, "acme-load: cannot listen on %s:%u: %s\n", o.http_address, o.http_port, strerror(-r));
                return 1;
        }
        r = bench_directory_fetch(o.directory_url, o.ca_file, &run.directory, &err);
        if (r < 0) {
                fprintf(stderr, "acme-load: %s: %s\n", err.type, err.detail);
                http01_responder_free(run.responder);
                return 1;
        }

        workers = calloc(o.clients, sizeof(Worker));
        if (!workers)
                return 1;
        r = run_clients(&run, workers, &rep);
        if (r < 0)
                return 1;
        http01_responder_get_stats(run.responder, &rep.responder);
        run.responder = http01_responder_free(run.responder);

        r = report_collect_latencies(&rep, workers);
        for (unsigned i = 0; i < o.clients; i++)
                free(workers[i].latencies);
        if (r < 0)
                return 1;
        report_print(&rep);
        if (report_to_json(&rep, &js) < 0)
                return 1;
        printf("%s\n", json_to_string_compact(js));
        if (o.json_path) {
                _cleanup_(fclosep) FILE *f = fopen(o.json_path, "we");

                if (!f || fprintf(f, "%s\n", json_to_string_compact(js)) < 0) {
                        fprintf(stderr, "acme-load: cannot write %s: %m\n", o.json_path);
                        return 1;
                }
        }

        bench_directory_done(&run.directory);
        pthread_mutex_destroy(&run.lock);
        curl_global_cleanup();
        return run.errors_total > 0 ? 3 : 0;
}
