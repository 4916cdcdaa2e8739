/* RFC 8785 canonical JSON: the number table of RFC 8785 Appendix B, its sorting example
 * (§3.2.3) and its full example with string escaping (§3.2.2); refusals (NaN, infinity,
 * duplicate member names, invalid UTF-8, raw nodes); and a round-trip property over random
 * doubles: the text reads back as the same double and is never longer than "%.17g". */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "report/canonical_json.h"
#include "util/testutil.h"

static int passed;

#define OK(cond) CHECK_COUNT(passed, cond) /* evaluates cond once */

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* RFC 8785 Appendix B (finite values) and a few more from ES6's rules. */
static const struct {
    uint64_t bits;
    const char *text;
} numbers[] = {
    {0x0000000000000000ull, "0"},
    {0x8000000000000000ull, "0"},
    {0x0000000000000001ull, "5e-324"},
    {0x8000000000000001ull, "-5e-324"},
    {0x7fefffffffffffffull, "1.7976931348623157e+308"},
    {0xffefffffffffffffull, "-1.7976931348623157e+308"},
    {0x4340000000000000ull, "9007199254740992"},
    {0xc340000000000000ull, "-9007199254740992"},
    {0x4430000000000000ull, "295147905179352830000"},
    {0x44b52d02c7e14af5ull, "9.999999999999997e+22"},
    {0x44b52d02c7e14af6ull, "1e+23"},
    {0x44b52d02c7e14af7ull, "1.0000000000000001e+23"},
    {0x444b1ae4d6e2ef4eull, "999999999999999700000"},
    {0x444b1ae4d6e2ef4full, "999999999999999900000"},
    {0x444b1ae4d6e2ef50ull, "1e+21"},
    {0x3eb0c6f7a0b5ed8cull, "9.999999999999997e-7"},
    {0x3eb0c6f7a0b5ed8dull, "0.000001"},
    {0x41b3de4355555553ull, "333333333.3333332"},
    {0x41b3de4355555554ull, "333333333.33333325"},
    {0x41b3de4355555555ull, "333333333.3333333"},
    {0x41b3de4355555556ull, "333333333.3333334"},
    {0x41b3de4355555557ull, "333333333.33333343"},
    {0xbecbf647612f3696ull, "-0.0000033333333333333333"},
    {0x43143ff3c1cb0959ull, "1424953923781206.2"},
};

static const struct {
    double v;
    const char *text;
} more_numbers[] = {
    {1.0, "1"},           {-1.5, "-1.5"},        {0.1, "0.1"},       {100.0, "100"},
    {1e20, "100000000000000000000"},              {1e21, "1e+21"},    {1e-7, "1e-7"},
    {1.5e-7, "1.5e-7"},   {123e-20, "1.23e-18"}, {0.5, "0.5"},       {2e-3, "0.002"},
    {1e30, "1e+30"},      {4.5, "4.5"},          {1e-27, "1e-27"},   {0.3, "0.3"},
    {0.1 + 0.2, "0.30000000000000004"},          {5e-324, "5e-324"}, {1e308, "1e+308"},
    {2.2250738585072014e-308, "2.2250738585072014e-308"},
    {9007199254740993.0, "9007199254740992"},    {-0.0000001, "-1e-7"},
};

static void test_numbers(void)
{
    char out[32];
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        hp_json_format_number(from_bits(numbers[i].bits), out);
        CHECK_MSG(strcmp(out, numbers[i].text) == 0, "0x%016llx: got %s, want %s",
                  (unsigned long long)numbers[i].bits, out, numbers[i].text);
        passed += strcmp(out, numbers[i].text) == 0;
    }
    for (size_t i = 0; i < sizeof more_numbers / sizeof more_numbers[0]; i++) {
        hp_json_format_number(more_numbers[i].v, out);
        CHECK_MSG(strcmp(out, more_numbers[i].text) == 0, "%.17g: got %s, want %s",
                  more_numbers[i].v, out, more_numbers[i].text);
        passed += strcmp(out, more_numbers[i].text) == 0;
    }
    hp_json_format_number(NAN, out);
    OK(strcmp(out, "NaN") == 0);
    hp_json_format_number(-INFINITY, out);
    OK(strcmp(out, "-Infinity") == 0);
}

/* xorshift64* over all bit patterns, plus values of everyday magnitudes. */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static void test_round_trip(void)
{
    int bad = 0, n = 0;
    char out[32], g17[40];
    for (int i = 0; i < 6000; i++) {
        double v;
        if (i % 3 == 0) {
            v = from_bits(next_u64());
        } else if (i % 3 == 1) {
            v = (double)(next_u64() >> 11) / 9007199254740992.0 * pow(10, (int)(next_u64() % 40) - 20);
        } else { /* neighbours of powers of two, where rounding intervals are lopsided */
            v = ldexp(1.0, (int)(next_u64() % 2000) - 1000);
            int step = (int)(next_u64() % 3) - 1;
            v = step < 0 ? nextafter(v, 0) : step > 0 ? nextafter(v, INFINITY) : v;
        }
        if (!isfinite(v))
            continue;
        n++;
        hp_json_format_number(v, out);
        snprintf(g17, sizeof g17, "%.17g", v);
        double back = strtod(out, NULL);
        /* Never longer than "%.17g", except that ES6 writes 1e-6 <= |v| < 1e-4 in plain form
         * ("0.000012345678901234567"), up to two characters longer than %.17g's exponent form. */
        double a = fabs(v);
        size_t slack = a >= 1e-6 && a < 1e-4 ? 2 : 0;
        int ok = back == v && strlen(out) <= strlen(g17) + slack && strlen(out) < 32;
        /* No shorter %.{p}e form reads back (shortest digits). */
        for (int prec = 1; ok && prec < 17; prec++) {
            char t[40];
            snprintf(t, sizeof t, "%.*e", prec - 1, v);
            if (strtod(t, NULL) == v) {
                /* out's significant digits cannot exceed prec (zeros padding plain forms aside) */
                char sig[40];
                int k = 0;
                for (const char *p = out; *p && *p != 'e'; p++)
                    if (*p >= '0' && *p <= '9' && (k || *p != '0'))
                        sig[k++] = *p;
                while (k > 0 && sig[k - 1] == '0')
                    k--;
                ok = k <= prec;
                break;
            }
        }
        if (!ok && bad++ < 5)
            fprintf(stderr, "round trip: %.17g (%a) -> %s\n", v, v, out);
    }
    CHECK_MSG(bad == 0, "%d of %d doubles failed the round trip", bad, n);
    passed += bad == 0;
}

static char *canon(const char *json, hp_error *err)
{
    cJSON *root = cJSON_Parse(json);
    CHECK_MSG(root != NULL, "cJSON_Parse failed: %s", json);
    if (!root)
        return NULL;
    size_t len = 0;
    char *out = hp_json_canonicalize(root, &len, err);
    if (out)
        CHECK(len == strlen(out));
    cJSON_Delete(root);
    return out;
}

static void test_rfc_examples(void)
{
    hp_error err = {0};
    /* §3.2.2: numbers, escaping, literals. */
    char *out = canon("{\n"
                      "  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n"
                      "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
                      "  \"literals\": [null, true, false]\n"
                      "}",
                      &err);
    const char *want = "{\"literals\":[null,true,false],"
                       "\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
                       "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    CHECK_MSG(out && strcmp(out, want) == 0, "got %s\nwant %s", out ? out : err.msg, want);
    passed += out && strcmp(out, want) == 0;
    free(out);

    /* §3.2.3: sorting by UTF-16 code units (U+1F600 is D83D DE00, before U+FB33). */
    out = canon("{\n"
                "  \"\\u20ac\": \"Euro Sign\",\n"
                "  \"\\r\": \"Carriage Return\",\n"
                "  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n"
                "  \"1\": \"One\",\n"
                "  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n"
                "  \"\\u0080\": \"Control\",\n"
                "  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n"
                "}",
                &err);
    want = "{\"\\r\":\"Carriage Return\","
           "\"1\":\"One\","
           "\"\xc2\x80\":\"Control\","
           "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
           "\"\xe2\x82\xac\":\"Euro Sign\","
           "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
           "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}";
    CHECK_MSG(out && strcmp(out, want) == 0, "got %s\nwant %s", out ? out : err.msg, want);
    passed += out && strcmp(out, want) == 0;
    free(out);

    /* Every control character escape, nesting, empty containers, a prefix key sorting first. */
    out = canon("{\"b\":[{},[],\"\\b\\f\\n\\r\\t\\u0001\\u001f \\u007f\"],\"ab\":{\"z\":-0.0,\"a\":1e-7},\"a\":true}",
                &err);
    want = "{\"a\":true,\"ab\":{\"a\":1e-7,\"z\":0},\"b\":[{},[],\"\\b\\f\\n\\r\\t\\u0001\\u001f \x7f\"]}";
    CHECK_MSG(out && strcmp(out, want) == 0, "got %s\nwant %s", out ? out : err.msg, want);
    passed += out && strcmp(out, want) == 0;
    free(out);

    out = canon("\"top-level string\"", &err);
    OK(out && strcmp(out, "\"top-level string\"") == 0);
    free(out);
    out = canon("[]", &err);
    OK(out && strcmp(out, "[]") == 0);
    free(out);
    /* Idempotent: canonical text canonicalizes to itself. */
    out = canon("{\"x\":[1,2.5,{\"\\u00e9\":null,\"e\":\"\\ud83d\\ude00\"}],\"\\u0000k\":0.000001}", &err);
    char *again = out ? canon(out, &err) : NULL;
    OK(out && again && strcmp(out, again) == 0);
    free(out);
    free(again);
}

static void test_refusals(void)
{
    hp_error err = {0};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean_area", NAN);
    char *out = hp_json_canonicalize(o, NULL, &err);
    OK(out == NULL && err.code == HP_ERR_INVALID && strstr(err.msg, "NaN") &&
       strstr(err.msg, "mean_area"));
    cJSON_Delete(o);

    hp_error_clear(&err);
    o = cJSON_CreateArray();
    cJSON_AddItemToArray(o, cJSON_CreateNumber(INFINITY));
    out = hp_json_canonicalize(o, NULL, &err);
    OK(out == NULL && strstr(err.msg, "infinite"));
    cJSON_Delete(o);

    hp_error_clear(&err);
    out = canon("{\"a\":1,\"inner\":{\"slide_id\":1,\"b\":2,\"slide_id\":3}}", &err);
    OK(out == NULL && err.code == HP_ERR_INVALID && strstr(err.msg, "\"slide_id\"") &&
       strstr(err.msg, "twice"));
    free(out);

    hp_error_clear(&err);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "caf\xe9"); /* Latin-1, not UTF-8 */
    out = hp_json_canonicalize(o, NULL, &err);
    OK(out == NULL && strstr(err.msg, "UTF-8"));
    cJSON_Delete(o);

    hp_error_clear(&err);
    o = cJSON_CreateObject();
    cJSON_AddNullToObject(o, "\xc0\xaf"); /* overlong '/' as a member name */
    out = hp_json_canonicalize(o, NULL, &err);
    OK(out == NULL && strstr(err.msg, "member name") && strstr(err.msg, "UTF-8"));
    cJSON_Delete(o);

    hp_error_clear(&err);
    o = cJSON_CreateObject();
    cJSON_AddRawToObject(o, "pre", "{\"x\":1}");
    out = hp_json_canonicalize(o, NULL, &err);
    OK(out == NULL && strstr(err.msg, "raw"));
    cJSON_Delete(o);

    hp_error_clear(&err);
    OK(hp_json_canonicalize(NULL, NULL, &err) == NULL && err.code == HP_ERR_INVALID);

    /* UTF-8 validator edge cases. */
    OK(hp_utf8_invalid_at("\xed\xa0\x80", 3) == 0);         /* a surrogate */
    OK(hp_utf8_invalid_at("\xf4\x90\x80\x80", 4) == 0);     /* above U+10FFFF */
    OK(hp_utf8_invalid_at("ab\xe2\x82", 4) == 2);           /* truncated */
    OK(hp_utf8_invalid_at("\xe0\x80\xaf", 3) == 0);         /* overlong */
    OK(hp_utf8_invalid_at("\xf0\x9f\x98\x80\xef\xbf\xbf", 7) == (size_t)-1);
}

int main(void)
{
    test_numbers();
    test_round_trip();
    test_rfc_examples();
    test_refusals();
    return hp_test_finish("test_canonical_json", passed);
}
