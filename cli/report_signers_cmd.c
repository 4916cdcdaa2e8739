/* `histoplan report signers add|list|revoke`: the signer registry (report/signer_registry.h),
 * which binds each report-signing key to one pathologist id. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "report/canonical_json.h"
#include "report/signature.h"
#include "report/signer_registry.h"

static int fail_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "histoplan report signers: %s%s%s\n(see histoplan report --help)\n", msg, arg ? " " : "",
            arg ? arg : "");
    return HP_EXIT_USAGE;
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
    const char *id = NULL, *pub = NULL, *fpr = NULL, *reason = NULL, *registry = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--pathologist") ? &id
                            : !strcmp(a, "--pubkey")    ? &pub
                            : !strcmp(a, "--fingerprint") ? &fpr
                            : !strcmp(a, "--reason")      ? &reason
                            : !strcmp(a, "--registry")    ? &registry
                                                          : NULL;
        if (!slot)
            return fail_usage(a[0] == '-' ? "unknown option" : "unexpected argument", a);
        if (i + 1 >= argc)
            return fail_usage("missing value for", a);
        *slot = argv[++i];
    }
    char path[PATH_MAX];
    hp_error err = {0};
    if (registry)
        snprintf(path, sizeof path, "%s", registry);
    else if (hp_signer_registry_default_path(path, sizeof path, &err)) {
        fprintf(stderr, "histoplan report signers: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }

    if (!strcmp(action, "list")) {
        if (id || pub || fpr || reason)
            return fail_usage("list takes only --registry", NULL);
        hp_signer_registry *r = NULL;
        if (hp_signer_registry_load(path, 1, &r, &err)) {
            fprintf(stderr, "histoplan report signers: %s\n", err.msg);
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
            fprintf(stderr, "histoplan report signers: %s\n", err.msg);
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
                fprintf(stderr, "histoplan report signers: %s\n", err.msg);
                return HP_EXIT_FAILED;
            }
            hp_key_fingerprint(raw, from_pub);
            fpr = from_pub;
        }
        if (hp_signer_registry_revoke(path, id, fpr, reason, &err)) {
            fprintf(stderr, "histoplan report signers: %s\n", err.msg);
            return HP_EXIT_FAILED;
        }
        printf("revoked %s's key %s in the signer registry %s: every signature made with it now fails "
               "verification\n",
               id, fpr, path);
        return HP_EXIT_OK;
    }
    return fail_usage("unknown action (add, list or revoke):", action);
}
