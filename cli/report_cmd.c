/* `histoplan report build|sign|verify`: the structured report and its sign-off
 * (report/report_dir.h, report/report_sign.h, report/report_verify.h); `report signers` is in
 * cli/report_signers_cmd.c. Messages never print patient identifiers: errors
 * name files and fields, not values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/status.h"
#include "io/slide.h"
#include "report/report_dir.h"
#include "report/report_sign.h"
#include "report/report_verify.h"
#include "report/signer_registry.h"

/* verify: the signatures and every file hold, but no registry or given key says whose keys
 * signed. Distinct from 1 so a lab system cannot take "intact" for "signed by our pathologist". */
enum { EXIT_SIGNER_UNVERIFIED = 4 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan report build CASE.json FINDINGS.json... --out DIR [--slide SLIDE]... [--rules RULES.json]\n"
            "                             [--overwrite] [--assign-case]\n"
            "       histoplan report sign DIR --pathologist ID --key KEY.pem [--amend FILE] [--registry FILE]\n"
            "       histoplan report verify DIR [--pubkey ID=PUB.pem]... [--registry FILE]\n"
            "       histoplan report signers add --pathologist ID --pubkey PUB.pem [--registry FILE]\n"
            "       histoplan report signers list [--registry FILE]\n"
            "       histoplan report signers revoke --pathologist ID (--fingerprint HEX | --pubkey PUB.pem)\n"
            "                                       [--reason TEXT] [--registry FILE]\n"
            "\n"
            "build   makes the preliminary report of one case from its case file (schemas/case.schema.json)\n"
            "        and the findings.json of each of its slides (histoplan analyze): DIR/report.json\n"
            "        (schemas/report.schema.json), DIR/report.fhir.json (FHIR R4 bundle), DIR/report.html\n"
            "        (printable, self-contained), DIR/images/, DIR/build.json (the SHA-256 of each of those\n"
            "        files, itself hashed into the audit log) and DIR/audit.jsonl. The draft care plan comes\n"
            "        from a rule table (default: report/rules/care-plan-rules.json). Findings of another case,\n"
            "        of another model than the case file asks for, or of mixed models are refused. --slide\n"
            "        (repeatable) gives a slide file, matched to its findings by SHA-256, so each leading\n"
            "        region gets a thumbnail of the tissue itself beside the heatmap's. Findings that carry\n"
            "        no case accession (analyze without --case) are refused unless --assign-case states\n"
            "        that they belong to this case (recorded in the audit log). A folder with a signed\n"
            "        report (in revisions/ or in its audit log) is never rebuilt; an unsigned one only with\n"
            "        --overwrite, and only when histoplan made it (its .histoplan-output marker).\n"
            "sign    signs the latest revision with the pathologist's Ed25519 key (PEM, mode 600, e.g. made by\n"
            "        `openssl genpkey -algorithm ed25519 -out KEY.pem`) into DIR/revisions/N/: report.json\n"
            "        (RFC 8785 canonical) with its SHA-256 signed, its HTML and FHIR, and a signed manifest of\n"
            "        every file's SHA-256 and the audit log's head. Refused: a draft changed since report\n"
            "        build, a folder that fails verify, a key others can read, a key the signer registry\n"
            "        binds to another id or revoked. A signed report is never signed again; --amend FILE\n"
            "        signs a new revision (status amended) and keeps the earlier ones. FILE is\n"
            "        {\"reason\": text, \"changes\": [{\"field\": POINTER, \"value\": V}]} where POINTER is\n"
            "        /diagnosis/category or /care_plan/suggestions/N/decision (approved|rejected|pending) or\n"
            "        /care_plan/suggestions/N/note. The first sign-off may carry --amend too.\n"
            "verify  checks the audit log, the draft against its build record, and every revision: both\n"
            "        signatures, every file's SHA-256, the chain of revisions, the audit log's head and sign\n"
            "        events; and who signed: each revision's pathologist id and key against the keys given\n"
            "        (--pubkey ID=PUB.pem, repeatable) and the signer registry. Names every mismatch; changes\n"
            "        nothing.\n"
            "signers the signer registry: which pathologist id each signing key belongs to (default\n"
            "        $HP_CONFIG_DIR/signers.json, else $XDG_CONFIG_HOME/histoplan/signers.json, else\n"
            "        ~/.config/histoplan/signers.json). revoke is for a lost or compromised key: every\n"
            "        signature made with it fails verification from then on.\n"
            "\n"
            "Every output says it was generated by software for research use and is not a diagnosis\n"
            "until a pathologist signs it.\n"
            "\n"
            "exit status: 0 ok, 1 failed (or verify found a mismatch), 2 bad usage, 4 (verify) every\n"
            "signature and file holds but no signer registry or --pubkey verified who signed\n");
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "histoplan report: %s%s%s\n\n", msg, arg ? " " : "", arg ? arg : "");
    usage(stderr);
    return HP_EXIT_USAGE;
}

static int cmd_build(int argc, char **argv)
{
    hp_report_build_opts o = {0};
    const char **findings = calloc((size_t)argc, sizeof *findings);
    const char **slides = calloc((size_t)argc, sizeof *slides);
    const char *case_path = NULL;
    if (!findings || !slides) {
        free(findings);
        free(slides);
        return HP_EXIT_FAILED;
    }
    int n_slides = 0;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--out") || !strcmp(a, "--rules") || !strcmp(a, "--slide")) {
            if (i + 1 >= argc) {
                free(findings);
                free(slides);
                return usage_error("missing value for", a);
            }
            if (!strcmp(a, "--out"))
                o.out_dir = argv[++i];
            else if (!strcmp(a, "--slide"))
                slides[n_slides++] = argv[++i];
            else
                o.rules_path = argv[++i];
        } else if (!strcmp(a, "--overwrite")) {
            o.overwrite = 1;
        } else if (!strcmp(a, "--assign-case")) {
            o.assign_case = 1;
        } else if (a[0] == '-' && a[1]) {
            free(findings);
            free(slides);
            return usage_error("unknown option", a);
        } else if (!case_path) {
            case_path = a;
        } else {
            findings[n++] = a;
        }
    }
    if (!case_path || n == 0 || !o.out_dir) {
        free(findings);
        free(slides);
        return usage_error("build needs CASE.json, at least one FINDINGS.json and --out DIR", NULL);
    }
    o.case_path = case_path;
    o.findings = findings;
    o.n_findings = n;
    o.slides = slides;
    o.n_slides = n_slides;
    hp_error err = {0};
    cJSON *report = NULL;
    hp_status st = HP_OK;
    for (int k = 0; k < n_slides && st == HP_OK; k++) /* a FIFO would hang the hashing */
        st = hp_slide_check_file(slides[k], &err);
    if (st == HP_OK)
        st = hp_report_build(&o, &report, &err);
    free(findings);
    free(slides);
    if (st) {
        fprintf(stderr, "histoplan report build: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(report, "diagnosis");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(report, "confidence");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(report, "care_plan");
    /* Said first, on its own line: the rest of the summary is not a result when this is set. */
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(p, "withheld");
    if (cJSON_IsString(w))
        printf("MODEL NOT VALID FOR THIS SLIDE: no category and no care plan suggested (%s)\n", w->valuestring);
    printf("report %s (preliminary) in %s: %s; confidence %s; %d care-plan suggestion(s)%s%s\n",
           cJSON_GetObjectItemCaseSensitive(report, "report_id")->valuestring, o.out_dir,
           cJSON_GetObjectItemCaseSensitive(d, "display")->valuestring,
           cJSON_GetObjectItemCaseSensitive(c, "level")->valuestring,
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "suggestions")),
           cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "gate_rule_id")) ? ", all waiting for review " : "",
           cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "gate_rule_id"))
               ? cJSON_GetObjectItemCaseSensitive(p, "gate_rule_id")->valuestring
               : "");
    cJSON_Delete(report);
    return HP_EXIT_OK;
}

static int cmd_sign(int argc, char **argv)
{
    hp_report_sign_opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--pathologist") || !strcmp(a, "--key") || !strcmp(a, "--amend") || !strcmp(a, "--registry")) {
            if (i + 1 >= argc)
                return usage_error("missing value for", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--pathologist"))
                o.pathologist_id = v;
            else if (!strcmp(a, "--key"))
                o.key_path = v;
            else if (!strcmp(a, "--registry"))
                o.registry_path = v;
            else
                o.amend_path = v;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else if (!o.dir) {
            o.dir = a;
        } else {
            return usage_error("unexpected argument", a);
        }
    }
    if (!o.dir || !o.pathologist_id || !o.key_path)
        return usage_error("sign needs DIR, --pathologist ID and --key KEY.pem", NULL);
    if (!hp_pathologist_id_valid(o.pathologist_id))
        return usage_error("--pathologist must be 1 to 128 characters, without control characters or '='", NULL);
    hp_error err = {0};
    int rev = 0;
    if (hp_report_sign(&o, &rev, &err)) {
        fprintf(stderr, "histoplan report sign: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }
    printf("signed revision %d of %s (%s): %s/revisions/%d/\n", rev, o.dir, rev == 1 ? "final" : "amended", o.dir,
           rev);
    return HP_EXIT_OK;
}

static int cmd_verify(int argc, char **argv)
{
    enum { MAX_KEYS = 64 };
    hp_report_verify_opts o = {0};
    hp_signer_key keys[MAX_KEYS];
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--pubkey") || !strcmp(a, "--registry")) {
            if (i + 1 >= argc)
                return usage_error("missing value for", a);
            char *v = argv[++i];
            if (!strcmp(a, "--registry")) {
                o.registry_path = v;
                continue;
            }
            /* A key is trusted for one pathologist only: an id-less key would vouch for any id. */
            char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1])
                return usage_error("--pubkey needs ID=PUB.pem (the pathologist id the key belongs to), not", v);
            if (o.n_keys == MAX_KEYS)
                return usage_error("too many --pubkey (at most 64)", NULL);
            *eq = '\0';
            keys[o.n_keys].pathologist_id = v;
            keys[o.n_keys++].pubkey_path = eq + 1;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else if (!dir) {
            dir = a;
        } else {
            return usage_error("unexpected argument", a);
        }
    }
    if (!dir)
        return usage_error("verify needs DIR", NULL);
    o.keys = keys;
    hp_error err = {0};
    hp_report_verify_result res;
    hp_status st = hp_report_verify(dir, &o, stdout, &res, &err);
    if (st) {
        fprintf(stderr, "histoplan report verify: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }
    if (res.unverified) {
        printf("signature valid, signer NOT verified: %s (%d revision(s) signed by keys that no signer registry or "
               "--pubkey ID=PUB.pem vouches for)\n",
               dir, res.unverified);
        return EXIT_SIGNER_UNVERIFIED;
    }
    printf("verified: %s\n", dir);
    return HP_EXIT_OK;
}

int hp_cli_report(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing subcommand (build, sign, verify or signers)", NULL);
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return HP_EXIT_OK;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HP_EXIT_OK;
        }
    if (!strcmp(sub, "build"))
        return cmd_build(argc - 1, argv + 1);
    if (!strcmp(sub, "sign"))
        return cmd_sign(argc - 1, argv + 1);
    if (!strcmp(sub, "verify"))
        return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(sub, "signers"))
        return hp_cli_report_signers(argc - 1, argv + 1);
    return usage_error("unknown subcommand", sub);
}
