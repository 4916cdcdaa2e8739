/* `histoplan report signers add|list|revoke`: the signer registry (report/signer_registry.h),
 * which binds each report-signing key to one pathologist id. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/utf8.h"
#include "report/signature.h"
#include "report/signer_registry.h"

static int fail_usage(const char *msg, const char *arg)
{
    return hp_cli_usage_error_for("report signers", "report", "%s%s%s", msg, arg ? " " : "", arg ? arg : "");
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int hp_cli_report_signers(int argc, char **argv)
{
    if (argc < 2)
        return fail_usage("missing action (add, list or revoke)", NULL);
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "-h"))
        return hp_cli_report(2, (char *[]){"report", "--help", NULL});
    const char *id = NULL, *pub = NULL, *fpr = NULL, *reason = NULL, *registry = NULL;
    enum { O_PATHOLOGIST = 1, O_PUBKEY, O_FINGERPRINT, O_REASON, O_REGISTRY };
    static const hp_cli_option opts[] = {
        {"pathologist", 0, 1, O_PATHOLOGIST}, {"pubkey", 0, 1, O_PUBKEY}, {"fingerprint", 0, 1, O_FINGERPRINT},
        {"reason", 0, 1, O_REASON},           {"registry", 0, 1, O_REGISTRY}, {0},
    };
    hp_cli_parser p;
    hp_cli_parser_init(&p, "report signers", "report", opts, argc - 1, argv + 1);
    int c;
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_PATHOLOGIST: id = p.value; break;
        case O_PUBKEY: pub = p.value; break;
        case O_FINGERPRINT: fpr = p.value; break;
        case O_REASON: reason = p.value; break;
        case O_REGISTRY: registry = p.value; break;
        case HP_CLI_HELP: return hp_cli_report(2, (char *[]){"report", "--help", NULL});
        case HP_CLI_ARG: return fail_usage("unexpected argument", p.value);
        default: return HP_EXIT_USAGE;
        }
    }
    char path[PATH_MAX];
    hp_error err = {0};
    if (registry)
        snprintf(path, sizeof path, "%s", registry);
    else if (hp_signer_registry_default_path(path, sizeof path, &err)) {
        hp_cli_fail("report signers", "%s", err.msg);
        return HP_EXIT_FAILED;
    }

    if (!strcmp(action, "list")) {
        if (id || pub || fpr || reason)
            return fail_usage("list takes only --registry", NULL);
        hp_signer_registry *r = NULL;
        if (hp_signer_registry_load(path, 1, &r, &err)) {
            hp_cli_fail("report signers", "%s", err.msg);
            return HP_EXIT_FAILED;
        }
        printf("signer registry %s: %d key(s)\n", path, r->n);
        for (int i = 0; i < r->n; i++) {
            const hp_signer *s = &r->signers[i];
            printf("%s  %s  added %s", s->pathologist_id, s->key_fingerprint, s->added_at);
            if (s->revoked_at[0])
                printf("  REVOKED %s%s%s", s->revoked_at, s->revocation_reason ? ": " : "",
                       s->revocation_reason ? s->revocation_reason : "");
            printf("\n");
        }
        hp_signer_registry_free(r);
        return HP_EXIT_OK;
    }
    if (!id)
        return fail_usage("add and revoke need --pathologist ID", NULL);
    if (!hp_pathologist_id_valid(id))
        return fail_usage("--pathologist must be 1 to 128 characters, without control characters or '='", NULL);
    if (!strcmp(action, "add")) {
        if (!pub || fpr || reason)
            return fail_usage("add needs --pubkey PUB.pem (and takes no --fingerprint or --reason)", NULL);
        char got[65];
        if (hp_signer_registry_add(path, id, pub, got, &err)) {
            hp_cli_fail("report signers", "%s", err.msg);
            return HP_EXIT_FAILED;
        }
        printf("added %s's key %s to the signer registry %s\n", id, got, path);
        return HP_EXIT_OK;
    }
    if (!strcmp(action, "revoke")) {
        if (!!pub == !!fpr)
            return fail_usage("revoke needs exactly one of --fingerprint HEX and --pubkey PUB.pem", NULL);
        if (fpr && !is_hex64(fpr))
            return fail_usage("--fingerprint must be 64 lower-case hex digits (as signers list prints), not", fpr);
        if (reason && (strlen(reason) > 500 || hp_utf8_invalid_at(reason, strlen(reason)) != (size_t)-1))
            return fail_usage("--reason must be valid UTF-8 text of at most 500 bytes", NULL);
        char from_pub[65];
        if (pub) {
            unsigned char raw[32];
            if (hp_ed25519_load_public(pub, raw, &err)) {
                hp_cli_fail("report signers", "%s", err.msg);
                return HP_EXIT_FAILED;
            }
            hp_key_fingerprint(raw, from_pub);
            fpr = from_pub;
        }
        if (hp_signer_registry_revoke(path, id, fpr, reason, &err)) {
            hp_cli_fail("report signers", "%s", err.msg);
            return HP_EXIT_FAILED;
        }
        printf("revoked %s's key %s in the signer registry %s: every signature made with it now fails "
               "verification\n",
               id, fpr, path);
        return HP_EXIT_OK;
    }
    return fail_usage("unknown action (add, list or revoke):", action);
}
