/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "shared/base64.h"
#include "shared/macro.h"

/* RFC 4648 §10. */
static const struct {
        const char *plain, *b64;
} rfc4648_vectors[] = {
        { "", "" },
        { "f", "Zg==" },
        { "fo", "Zm8=" },
        { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" },
        { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
};

static void check_decodes(int (*dec)(const char *, size_t, void **, size_t *), const char *in,
                          const void *expect, size_t expect_size) {
        _cleanup_free_ void *out = NULL;
        size_t size = 12345;

        assert_int_equal(dec(in, strlen(in), &out, &size), 0);
        assert_int_equal(size, expect_size);
        assert_memory_equal(out, expect, expect_size);
        assert_int_equal(((char *) out)[size], 0);
}

static void check_rejects(int (*dec)(const char *, size_t, void **, size_t *), const char *in, size_t len) {
        void *out = (void *) 0x1;
        size_t size = 777;

        assert_int_equal(dec(in, len, &out, &size), -EINVAL);
        /* Output parameters untouched on failure. */
        assert_ptr_equal(out, (void *) 0x1);
        assert_int_equal(size, 777);
}

static void test_base64_rfc4648_vectors(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(rfc4648_vectors); i++) {
                _cleanup_free_ char *enc = NULL;

                assert_int_equal(base64_encode(rfc4648_vectors[i].plain, strlen(rfc4648_vectors[i].plain), &enc), 0);
                assert_string_equal(enc, rfc4648_vectors[i].b64);
                check_decodes(base64_decode, rfc4648_vectors[i].b64,
                              rfc4648_vectors[i].plain, strlen(rfc4648_vectors[i].plain));
        }
}

static void test_base64url_rfc4648_vectors_unpadded(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(rfc4648_vectors); i++) {
                _cleanup_free_ char *enc = NULL;
                char expect[32];
                size_t n;

                /* base64url never pads: the same vector with the '=' removed. */
                snprintf(expect, sizeof expect, "%s", rfc4648_vectors[i].b64);
                n = strcspn(expect, "=");
                expect[n] = 0;

                assert_int_equal(base64url_encode(rfc4648_vectors[i].plain, strlen(rfc4648_vectors[i].plain), &enc), 0);
                assert_string_equal(enc, expect);
                check_decodes(base64url_decode, expect, rfc4648_vectors[i].plain, strlen(rfc4648_vectors[i].plain));
        }
}

static void test_base64url_uses_dash_and_underscore(void **state) {
        /* 0xfb 0xff 0xbf → 111110 111111 111110 111111: indexes 62, 63, 62, 63. */
        static const uint8_t data[] = { 0xfb, 0xef, 0xbe };
        static const uint8_t data2[] = { 0xff, 0xff, 0xff };
        _cleanup_free_ char *url = NULL, *std = NULL, *url2 = NULL;

        assert_int_equal(base64url_encode(data, sizeof data, &url), 0);
        assert_string_equal(url, "----");
        assert_int_equal(base64_encode(data, sizeof data, &std), 0);
        assert_string_equal(std, "++++");
        assert_int_equal(base64url_encode(data2, sizeof data2, &url2), 0);
        assert_string_equal(url2, "____");

        check_decodes(base64url_decode, "--__", (const uint8_t[]) { 0xfb, 0xef, 0xff }, 3);
        check_decodes(base64_decode, "++//", (const uint8_t[]) { 0xfb, 0xef, 0xff }, 3);
        /* Each alphabet refuses the other's two characters. */
        check_rejects(base64url_decode, "++//", 4);
        check_rejects(base64url_decode, "ab+c", 4);
        check_rejects(base64url_decode, "ab/c", 4);
        check_rejects(base64_decode, "--__", 4);
        check_rejects(base64_decode, "ab-c", 4);
        check_rejects(base64_decode, "ab_c", 4);
}

static void test_base64_rejects_bad_characters(void **state) {
        static const char *const bad[] = {
                "Zm9v Yg==", "Zm9v\nYg==", " Zm9vYg=", "Zm9vYg=\n", "Zm\t9", "Zm9*", "Zm9.", "Zm9\x80",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                check_rejects(base64_decode, bad[i], strlen(bad[i]));
                check_rejects(base64url_decode, bad[i], strlen(bad[i]));
        }
        /* An embedded NUL is a bad character too, not the end of the input. */
        check_rejects(base64_decode, "Zm9\0", 4);
        check_rejects(base64url_decode, "Zm\0v", 4);
}

static void test_base64_rejects_bad_padding(void **state) {
        static const char *const bad[] = {
                "Zg",           /* padding missing */
                "Zm8",          /* padding missing */
                "Zg=",          /* too little padding */
                "Zg===",        /* too much */
                "Zm8==",        /* too much */
                "Zm9v=",        /* padding on a full group */
                "Zm9v====",     /* a group of padding */
                "====",
                "Z===",         /* one character can't make a byte */
                "Zg==Zm8=",     /* padding in the middle */
                "Zg=a",         /* misplaced */
                "Z=g=",
                "=Zg=",
                "Zm9vY",        /* length 5: impossible mod 4 */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_rejects(base64_decode, bad[i], strlen(bad[i]));
}

static void test_base64url_rejects_padding_and_impossible_length(void **state) {
        static const char *const bad[] = {
                "Zg==", "Zm8=", "Zg=", "=", "Zm9vYg==", "Zm9v=",
                "Z", "Zm9vY", "Zm9vYmFyZ",   /* length 1 mod 4 */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_rejects(base64url_decode, bad[i], strlen(bad[i]));
}

static void test_base64_rejects_nonzero_trailing_bits(void **state) {
        /* "Zg==" is 'f'; "Zh==" .. "Zv==" carry the same byte with non-zero spare bits. */
        check_decodes(base64_decode, "Zg==", "f", 1);
        check_rejects(base64_decode, "Zh==", 4);
        check_rejects(base64_decode, "Zv==", 4);
        check_decodes(base64_decode, "Zm8=", "fo", 2);
        check_rejects(base64_decode, "Zm9=", 4);
        check_rejects(base64_decode, "Zm/=", 4);
        check_rejects(base64url_decode, "Zh", 2);
        check_rejects(base64url_decode, "Zm9", 3);
        check_rejects(base64url_decode, "Zm_", 3);
}

static void test_base64_rejects_oversized_input(void **state) {
        void *out = NULL;
        size_t size;

        /* The length check comes before reading anything, so a short buffer is enough. */
        assert_int_equal(base64_decode("AAAA", BASE64_DECODE_MAX + 4, &out, &size), -E2BIG);
        assert_int_equal(base64url_decode("AAAA", BASE64_DECODE_MAX + 1, &out, &size), -E2BIG);
        assert_null(out);
}

/* Cross-check with OpenSSL's encoder, and decode back, for every length 0…300. */
static void test_base64_round_trip_random(void **state) {
        uint8_t buf[300];

        for (size_t len = 0; len <= sizeof buf; len++) {
                _cleanup_free_ char *std = NULL, *url = NULL;
                _cleanup_free_ void *back = NULL, *back_url = NULL;
                unsigned char ossl[512];
                size_t size = 0, size_url = 0;

                assert_int_equal(RAND_bytes(buf, (int) (len ?: 1)), 1);

                assert_int_equal(base64_encode(buf, len, &std), 0);
                assert_int_equal(EVP_EncodeBlock(ossl, buf, (int) len), (int) strlen(std));
                assert_string_equal(std, (char *) ossl);

                assert_int_equal(base64url_encode(buf, len, &url), 0);
                assert_null(strchr(url, '='));
                assert_null(strchr(url, '+'));
                assert_null(strchr(url, '/'));
                assert_int_equal(strlen(url), (len * 4 + 2) / 3);

                assert_int_equal(base64_decode(std, strlen(std), &back, &size), 0);
                assert_int_equal(size, len);
                assert_memory_equal(back, buf, len);

                assert_int_equal(base64url_decode(url, strlen(url), &back_url, &size_url), 0);
                assert_int_equal(size_url, len);
                assert_memory_equal(back_url, buf, len);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_rfc4648_vectors),
                cmocka_unit_test(test_base64url_rfc4648_vectors_unpadded),
                cmocka_unit_test(test_base64url_uses_dash_and_underscore),
                cmocka_unit_test(test_base64_rejects_bad_characters),
                cmocka_unit_test(test_base64_rejects_bad_padding),
                cmocka_unit_test(test_base64url_rejects_padding_and_impossible_length),
                cmocka_unit_test(test_base64_rejects_nonzero_trailing_bits),
                cmocka_unit_test(test_base64_rejects_oversized_input),
                cmocka_unit_test(test_base64_round_trip_random),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
