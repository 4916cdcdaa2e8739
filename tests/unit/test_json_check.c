/* common/json_check.h: what cJSON accepts but other readers read differently (duplicate member
 * names, \u0000) or a signature cannot cover (invalid UTF-8, numbers out of range) is refused,
 * with the place named as a JSON Pointer and no value quoted; and the readers built on it refuse
 * it too: model cards (a duplicate inside "metrics", which the card's own checks never looked
 * at) and stain parameters. Python's json module is the other reader: it keeps the last of two
 * equal names, cJSON the first. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/json_check.h"
#include "models/card.h"
#include "pipeline/stain.h"
#include "util/testutil.h"

static int passed;

/* Parses `text` as the readers do and runs the check; returns its verdict, `what` its message. */
static int check_text(const char *text, char *what, size_t n)
{
    cJSON *root = cJSON_ParseWithLengthOpts(text, strlen(text) + 1, NULL, 1);
    CHECK_MSG(root != NULL, "cJSON accepts %s", text);
    int rc = hp_json_check(text, strlen(text), root, what, n);
    cJSON_Delete(root);
    return rc;
}

static void refused(const char *text, const char *want)
{
    char what[512];
    int rc = check_text(text, what, sizeof what);
    CHECK_MSG(rc == -1 && strstr(what, want), "%s: got %d '%s', want '%s'", text, rc, what, want);
    passed += rc == -1 && strstr(what, want) != NULL;
}

static void accepted(const char *text)
{
    char what[512];
    int rc = check_text(text, what, sizeof what);
    CHECK_MSG(rc == 0, "%s refused: %s", text, what);
    passed += rc == 0;
}

static void test_check(void)
{
    accepted("{\"a\": 1, \"b\": [1, 2, {\"a\": 2}], \"c\": {\"a\": 3}}");
    accepted("[\"caf\xc3\xa9\", \"\xf0\x9f\x94\xac\", \"\\u00e9\", \"\\ud83d\\udd2c\"]");
    accepted("{\"text\": \"a backslash then u0000: \\\\u0000\"}");
    accepted("1.7976931348623157e308");

    refused("{\"a\": 1, \"a\": 2}", "member name \"a\" appears more than once at the top level");
    refused("{\"x\": {\"y\": [0, {\"k\": 1, \"z\": 0, \"k\": 2}]}}", "member name \"k\" appears more than once in /x/y/1");
    refused("{\"a/b~\": {\"q\": 1, \"q\": 1}}", "in /a~1b~0");
    refused("{\"a\": \"x\xff\"}", "the text at /a is not valid UTF-8");
    refused("[\"ok\", \"\xc0\xaf\"]", "/1 is not valid UTF-8");              /* overlong '/' */
    refused("[\"\xed\xa0\x80\"]", "/0 is not valid UTF-8");                  /* a surrogate in UTF-8 */
    refused("[\"\xf4\x90\x80\x80\"]", "/0 is not valid UTF-8");              /* past U+10FFFF */
    refused("{\"a\xff\": 1}", "a member name at the top level is not valid UTF-8");
    refused("{\"a\": \"x\\u0000y\"}", "\\u0000");
    refused("{\"n\": [1, 1e999]}", "the number at /n/1 is out of range");
    refused("{\"n\": -1e400}", "the number at /n is out of range");

    /* Many members: found without comparing every pair (sorted), whichever two are equal. */
    size_t cap = 200000;
    char *big = malloc(cap);
    size_t at = (size_t)snprintf(big, cap, "{");
    for (int i = 0; i < 5000; i++)
        at += (size_t)snprintf(big + at, cap - at, "%s\"m%d\": %d", i ? ", " : "", i, i);
    snprintf(big + at, cap - at, "}");
    accepted(big);
    big[at] = '\0';
    snprintf(big + at, cap - at, ", \"m1234\": 0}");
    refused(big, "member name \"m1234\" appears more than once");
    free(big);

    /* A message never quotes a value: the text here stands for a patient's name. */
    char what[512];
    check_text("{\"patient\": {\"name\": \"Quixley \xff Zanthorpe\"}}", what, sizeof what);
    CHECK_MSG(!strstr(what, "Quixley"), "the message quotes the value: %s", what);
    passed += !strstr(what, "Quixley");
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/hp_test_json_check_%d_%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_readers(void)
{
    hp_error err = {0};
    hp_card card;
    /* The card's own checks look at the top level and "normalization"; "metrics" is free-form. */
    const char *ok = write_tmp("ok.card.json",
                               "{\"name\": \"m\", \"classes\": [\"a\", \"b\"], \"metrics\": {\"accuracy\": 0.9}}");
    CHECK(ok && hp_card_load(ok, &card, &err) == HP_OK);
    hp_card_free(&card);
    unlink(ok);
    const char *dup = write_tmp("dup.card.json",
                                "{\"name\": \"m\", \"classes\": [\"a\", \"b\"], "
                                "\"metrics\": {\"accuracy\": 0.2, \"accuracy\": 0.99}}");
    hp_error_clear(&err);
    hp_status st = dup ? hp_card_load(dup, &card, &err) : HP_ERR_IO;
    CHECK_MSG(st == HP_ERR_INVALID && strstr(err.msg, "\"accuracy\"") && strstr(err.msg, "/metrics"),
              "a card with a duplicate metric: %d %s", st, err.msg);
    passed += st == HP_ERR_INVALID;
    hp_card_free(&card);
    if (dup)
        unlink(dup);
    const char *utf = write_tmp("utf.card.json", "{\"name\": \"m\xff\", \"classes\": [\"a\", \"b\"]}");
    hp_error_clear(&err);
    st = utf ? hp_card_load(utf, &card, &err) : HP_ERR_IO;
    CHECK_MSG(st == HP_ERR_INVALID && strstr(err.msg, "/name is not valid UTF-8"), "%d %s", st, err.msg);
    passed += st == HP_ERR_INVALID;
    hp_card_free(&card);
    if (utf)
        unlink(utf);

    hp_stain_params sp;
    hp_error_clear(&err);
    st = hp_stain_params_from_json("{\"method\": \"reinhard\", \"mean\": [1, 2, 3], \"std\": [1, 1, 1], "
                                   "\"method\": \"macenko\"}",
                                   &sp, &err);
    CHECK_MSG(st == HP_ERR_INVALID && strstr(err.msg, "\"method\""), "stain parameters: %d %s", st, err.msg);
    passed += st == HP_ERR_INVALID;
}

int main(void)
{
    test_check();
    test_readers();
    return hp_test_finish("test_json_check", passed);
}
