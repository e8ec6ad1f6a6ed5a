/* SPDX-License-Identifier: Apache-2.0 */
/* The RA's decision logic for ApprovalRequired=yes profiles: queue once, pending until decided,
 * rejected is unauthorized, approved issues exactly once with every policy check run again. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/ca/ca.h"
#include "server/ra/ra-profile.h"
#include "server/ra/ra.h"
#include "server/store/store-approval.h"
#include "server/store/store.h"
#include "shared/conf.h"
#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/key.h"
#include "shared/strv.h"

static char tmpdir[] = "/tmp/test-ra-approval-XXXXXX";
static char cadir[sizeof tmpdir + 8];
static ProfileSet *profiles;
static unsigned db_counter;

static const char config_fmt[] =
        "[CA internal]\n"
        "Directory=%s\n"
        "[RAProfile gated]\n"
        "CA=internal\n"
        "AllowedIdentifiers=*.internal.example\n"
        "ApprovalRequired=yes\n"
        "[RAProfile open]\n"
        "CA=internal\n"
        "AllowedIdentifiers=*.internal.example\n";

static int setup(void **state) {
        ConfError err = {};
        char *config = NULL, *error = NULL;
        int r;

        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(cadir, sizeof cadir, "%s/ca", tmpdir);
        if (ca_local_init(cadir, KEY_EC_P256, "test", false) < 0)
                return -1;
        if (asprintf(&config, config_fmt, cadir) < 0 || profile_set_new(&profiles) < 0)
                return -1;
        r = conf_load_string("test.conf", config, strlen(config), NULL, NULL, profile_set_section_handler,
                             profiles, &err);
        free(config);
        if (r < 0) {
                fprintf(stderr, "%s\n", err.message);
                return -1;
        }
        conf_error_done(&err);
        r = profile_set_finish(profiles, NULL, &error);
        if (r < 0) {
                fprintf(stderr, "%s\n", error);
                free(error);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        char cmd[256];

        profile_set_unref(profiles);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static Store *open_store_path(char **ret_path) {
        Store *s = NULL;
        char *path;

        assert_true(asprintf(&path, "%s/db-%u.sqlite", tmpdir, ++db_counter) > 0);
        assert_int_equal(store_open(path, &s), 0);
        if (ret_path)
                *ret_path = path;
        else
                free(path);
        return s;
}

static Store *open_store(void) {
        return open_store_path(NULL);
}

static X509_REQ *make_csr(EVP_PKEY *key, char **dns) {
        X509_REQ *csr = NULL;
        CsrRequest req = { .key = key, .common_name = dns[0], .dns = dns };

        assert_int_equal(csr_build(&req, &csr), 0);
        return csr;
}

static size_t inventory_count(Store *s) {
        InventoryCert **l = NULL;
        size_t n = 0;

        assert_int_equal(store_inventory_list(s, NULL, &l), 0);
        while (l[n])
                n++;
        inventory_cert_list_free(l);
        return n;
}

static size_t queue_count(Store *s) {
        ApprovalRequest **l = NULL;
        size_t n = 0;

        assert_int_equal(store_approval_list(s, false, &l), 0);
        while (l[n])
                n++;
        approval_request_list_free(l);
        return n;
}

static RaEnrollRequest gated_request(X509_REQ *csr, char **dns, const char *reference) {
        return (RaEnrollRequest) {
                .protocol = "acme", .protocol_profile = "gated", .ra = profile_set_get_ra(profiles, "gated"),
                .csr = csr, .dns = dns, .account_id = 3, .reference = reference,
        };
}

static void test_approval_queue_pending_then_approved_issues_once(void **state) {
        char *dns[] = { (char *) "a.internal.example", NULL };
        Store *s = open_store();
        EVP_PKEY *key = NULL;
        X509_REQ *csr;
        RaEnrollResult *res = NULL, *again = NULL;
        ApprovalRequest *a = NULL;
        ApprovalState st;
        RaEnrollRequest req;

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        csr = make_csr(key, dns);
        req = gated_request(csr, dns, "41");

        /* Not queued yet: queued now, pending; asking again neither issues nor queues twice. */
        assert_int_equal(ra_approval_state(s, "acme", "41", &st, NULL), -ENOENT);
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_APPROVAL_PENDING);
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_APPROVAL_PENDING);
        assert_null(res);
        assert_int_equal(queue_count(s), 1);
        assert_int_equal(inventory_count(s), 0);
        assert_int_equal(ra_approval_state(s, "acme", "41", &st, NULL), 0);
        assert_int_equal(st, APPROVAL_PENDING);

        /* What the administrator decides on. */
        assert_int_equal(store_approval_get_by_reference(s, "acme", "41", &a), 0);
        assert_string_equal(a->ra_profile, "gated");
        assert_string_equal(a->protocol_profile, "gated");
        assert_int_equal(a->account_id, 3);
        assert_int_equal(strv_length(a->identifiers), 1);
        assert_string_equal(a->identifiers[0], "dns:a.internal.example");
        assert_string_equal(a->key, "EC P-256");
        assert_non_null(strstr(a->subject, "a.internal.example"));
        assert_true(a->csr_size > 0);

        /* Approved: the next attempt issues and records the serial with the certificate. */
        assert_int_equal(store_approval_decide(s, a->id, APPROVAL_APPROVED, NULL, time_now()), 0);
        assert_int_equal(ra_enroll(s, profiles, &req, &res), 0);
        assert_non_null(res->serial);
        assert_non_null(res->cert);
        assert_int_equal(inventory_count(s), 1);
        approval_request_free(a);
        assert_int_equal(store_approval_get_by_reference(s, "acme", "41", &a), 0);
        assert_string_equal(a->cert_serial, res->serial);

        /* Asking again (a client polling again, or a second one at the same time) gets the same
         * certificate, not a second one. */
        assert_int_equal(ra_enroll(s, profiles, &req, &again), 0);
        assert_string_equal(again->serial, res->serial);
        assert_string_equal(again->pem_fullchain, res->pem_fullchain);
        assert_int_equal(X509_cmp(again->cert, res->cert), 0);
        assert_int_equal(inventory_count(s), 1);

        ra_enroll_result_free(again);
        ra_enroll_result_free(res);
        approval_request_free(a);
        X509_REQ_free(csr);
        EVP_PKEY_free(key);
        store_close(s);
}

static void test_approval_rejected_is_unauthorized(void **state) {
        char *dns[] = { (char *) "b.internal.example", NULL };
        Store *s = open_store();
        EVP_PKEY *key = NULL;
        X509_REQ *csr;
        RaEnrollResult *res = NULL;
        ApprovalRequest *a = NULL;
        ApprovalState st;
        char *reason = NULL;
        RaEnrollRequest req;

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        csr = make_csr(key, dns);
        req = gated_request(csr, dns, "42");
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_APPROVAL_PENDING);
        assert_int_equal(store_approval_get_by_reference(s, "acme", "42", &a), 0);
        assert_int_equal(store_approval_decide(s, a->id, APPROVAL_REJECTED, "unknown host", time_now()), 0);

        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_UNAUTHORIZED);
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_UNAUTHORIZED);
        assert_null(res);
        assert_int_equal(inventory_count(s), 0);
        assert_int_equal(ra_approval_state(s, "acme", "42", &st, &reason), 0);
        assert_int_equal(st, APPROVAL_REJECTED);
        assert_string_equal(reason, "unknown host");

        free(reason);
        approval_request_free(a);
        X509_REQ_free(csr);
        EVP_PKEY_free(key);
        store_close(s);
}

static void test_approval_policy_runs_before_queueing_and_at_issue(void **state) {
        char *dns[] = { (char *) "c.internal.example", NULL };
        char *outside[] = { (char *) "c.elsewhere.example", NULL };
        char *other[] = { (char *) "d.internal.example", NULL };
        Store *s = open_store();
        EVP_PKEY *key = NULL, *key2 = NULL;
        X509_REQ *csr, *bad, *csr2;
        RaEnrollResult *res = NULL;
        ApprovalRequest *a = NULL;
        RaEnrollRequest req;

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &key2), 0);

        /* A request the policy refuses is refused at once, never queued. */
        bad = make_csr(key, outside);
        req = gated_request(bad, outside, "43");
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_REJECTED_IDENTIFIER);
        assert_int_equal(queue_count(s), 0);
        X509_REQ_free(bad);

        /* The approval covers the CSR that was queued: another CSR under the same reference
         * is not approved. */
        csr = make_csr(key, dns);
        req = gated_request(csr, dns, "44");
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_APPROVAL_PENDING);
        assert_int_equal(store_approval_get_by_reference(s, "acme", "44", &a), 0);
        assert_int_equal(store_approval_decide(s, a->id, APPROVAL_APPROVED, NULL, time_now()), 0);
        csr2 = make_csr(key2, dns);
        req.csr = csr2;
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_UNAUTHORIZED);
        X509_REQ_free(csr2);

        /* Checks still run at issue time: names that do not match the CSR are refused. */
        req.csr = csr;
        req.dns = other;
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_BAD_CSR);
        assert_int_equal(inventory_count(s), 0);
        req.dns = dns;
        assert_int_equal(ra_enroll(s, profiles, &req, &res), 0);
        assert_int_equal(inventory_count(s), 1);

        /* Without a reference nothing can be queued, so nothing is ever approved. */
        req.reference = NULL;
        assert_int_equal(ra_enroll(s, profiles, &(RaEnrollRequest) { .protocol = "acme",
                                   .ra = profile_set_get_ra(profiles, "gated"), .csr = csr, .dns = dns },
                                   &res), -CF_E_APPROVAL_PENDING);

        ra_enroll_result_free(res);
        approval_request_free(a);
        X509_REQ_free(csr);
        EVP_PKEY_free(key);
        EVP_PKEY_free(key2);
        store_close(s);
}

static void test_profile_without_approval_never_queues(void **state) {
        char *dns[] = { (char *) "e.internal.example", NULL };
        Store *s = open_store();
        EVP_PKEY *key = NULL;
        X509_REQ *csr;
        RaEnrollResult *res = NULL;
        RaEnrollRequest req;

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        csr = make_csr(key, dns);
        req = gated_request(csr, dns, "45");
        req.ra = profile_set_get_ra(profiles, "open");
        assert_int_equal(ra_enroll(s, profiles, &req, &res), 0);
        assert_int_equal(queue_count(s), 0);
        assert_int_equal(inventory_count(s), 1);

        ra_enroll_result_free(res);
        X509_REQ_free(csr);
        EVP_PKEY_free(key);
        store_close(s);
}

/* Another connection (another worker, another server instance) that issues for the request
 * while this one is between its read of the approval and its transaction. */
typedef struct Rival {
        Store *store;
        int64_t id;
        const char *serial;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool in_transaction;
} Rival;

static void *rival_issue(void *userdata) {
        Rival *r = userdata;
        int q;

        q = store_begin(r->store);
        if (q >= 0)
                q = store_approval_set_issued(r->store, r->id, r->serial);
        pthread_mutex_lock(&r->lock);
        r->in_transaction = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        /* Long enough for the other side to read the approval and run its checks. */
        usleep(300 * 1000);
        if (q >= 0)
                q = store_commit(r->store);
        return (void *) (intptr_t) q;
}

static void test_approval_concurrent_issue_signs_once(void **state) {
        char *dns[] = { (char *) "f.internal.example", NULL };
        char *path = NULL;
        Store *s = open_store_path(&path), *t = NULL;
        EVP_PKEY *key = NULL;
        X509_REQ *csr;
        RaEnrollResult *first = NULL, *res = NULL;
        ApprovalRequest *a = NULL;
        RaEnrollRequest req;
        Rival rival = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        pthread_t thread;
        void *rv;

        assert_int_equal(store_open(path, &t), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        csr = make_csr(key, dns);

        /* A certificate the rival "issued": any inventory row serves. */
        req = gated_request(csr, dns, "46");
        req.ra = profile_set_get_ra(profiles, "open");
        assert_int_equal(ra_enroll(s, profiles, &req, &first), 0);

        req = gated_request(csr, dns, "46");
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_APPROVAL_PENDING);
        assert_int_equal(store_approval_get_by_reference(s, "acme", "46", &a), 0);
        assert_int_equal(store_approval_decide(s, a->id, APPROVAL_APPROVED, NULL, time_now()), 0);
        assert_int_equal(inventory_count(s), 1);

        rival.store = t;
        rival.id = a->id;
        rival.serial = first->serial;
        assert_int_equal(pthread_create(&thread, NULL, rival_issue, &rival), 0);
        pthread_mutex_lock(&rival.lock);
        while (!rival.in_transaction)
                pthread_cond_wait(&rival.cond, &rival.lock);
        pthread_mutex_unlock(&rival.lock);

        /* Reads "approved, not issued" (the rival has not committed), waits for the write lock,
         * then must see the rival's serial and answer with that certificate. */
        assert_int_equal(ra_enroll(s, profiles, &req, &res), 0);
        assert_int_equal(pthread_join(thread, &rv), 0);
        assert_int_equal((int) (intptr_t) rv, 0);
        assert_string_equal(res->serial, first->serial);
        assert_int_equal(inventory_count(s), 1);

        ra_enroll_result_free(res);
        ra_enroll_result_free(first);
        approval_request_free(a);
        X509_REQ_free(csr);
        EVP_PKEY_free(key);
        store_close(t);
        store_close(s);
        free(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_approval_queue_pending_then_approved_issues_once),
                cmocka_unit_test(test_approval_rejected_is_unauthorized),
                cmocka_unit_test(test_approval_policy_runs_before_queueing_and_at_issue),
                cmocka_unit_test(test_profile_without_approval_never_queues),
                cmocka_unit_test(test_approval_concurrent_issue_signs_once),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
