/* `histoplan report build|sign|verify`: the structured report and its sign-off
 * (report/report_dir.h, report/report_sign.h, report/report_verify.h); `report signers` is in
 * cli/report_signers_cmd.c. Messages never print patient identifiers: errors
 * name files and fields, not values. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/options.h"
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
            "usage: histoplan report build CASE.json FINDINGS.json... -o|--out DIR [--slide SLIDE]... [--rules RULES.json]\n"
            "                             [--overwrite] [--assign-case]\n"
            "       histoplan report sign DIR --pathologist ID --key KEY.pem [--amend FILE] [--rules RULES.json]\n"
            "                             [--registry FILE]\n"
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
            "        signs a new revision (status amended) and keeps the earlier ones. FILE names what it\n"
            "        changes by the ids report.html shows, and says why:\n"
            "          {\"category\": \"in-situ\", \"reason\": TEXT}\n"
            "          {\"suggestion\": \"CP-INV-HER2\", \"decision\": \"declined\", \"note\": TEXT, \"reason\": TEXT}\n"
            "          {\"reason\": TEXT, \"changes\": [CHANGE, ...]}\n"
            "        Categories: invasive, review-for-invasion, in-situ, benign, normal, indeterminate;\n"
            "        decisions: approved, declined, pending. A new category derives the statements and the\n"
            "        rule table's suggestions again (decisions on suggestions that remain are kept) and the\n"
            "        revision lists what changed as a result; that needs the rule table the report was\n"
            "        built with (default: histoplan's; else --rules). The first sign-off may carry --amend.\n"
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


static int cmd_build(int argc, char **argv)
{
    enum { O_OUT = 1, O_RULES, O_SLIDE, O_OVERWRITE, O_ASSIGN_CASE };
    static const hp_cli_option opts[] = {
        {"out", 'o', 1, O_OUT},           {"rules", 0, 1, O_RULES},
        {"slide", 0, 1, O_SLIDE},         {"overwrite", 0, 0, O_OVERWRITE},
        {"assign-case", 0, 0, O_ASSIGN_CASE}, {0},
    };
    hp_report_build_opts o = {0};
    const char **findings = calloc((size_t)argc, sizeof *findings);
    const char **slides = calloc((size_t)argc, sizeof *slides);
    const char *case_path = NULL;
    int n_slides = 0, n = 0, opt, rc = HP_EXIT_USAGE;
    if (!findings || !slides) {
        rc = HP_EXIT_FAILED;
        goto out;
    }
    hp_cli_parser ps;
    hp_cli_parser_init(&ps, "report build", "report", opts, argc, argv);
    while ((opt = hp_cli_next(&ps)) != HP_CLI_END) {
        switch (opt) {
        case O_OUT: o.out_dir = ps.value; break;
        case O_RULES: o.rules_path = ps.value; break;
        case O_SLIDE: slides[n_slides++] = ps.value; break;
        case O_OVERWRITE: o.overwrite = 1; break;
        case O_ASSIGN_CASE: o.assign_case = 1; break;
        case HP_CLI_HELP: usage(stdout); rc = HP_EXIT_OK; goto out;
        case HP_CLI_ARG:
            if (!case_path)
                case_path = ps.value;
            else
                findings[n++] = ps.value;
            break;
        default: goto out;
        }
    }
    if (!case_path || n == 0 || !o.out_dir) {
        rc = hp_cli_usage_error(&ps, "build needs CASE.json, at least one FINDINGS.json and --out DIR");
        goto out;
    }
    if ((rc = hp_cli_refuse_dir("report build", case_path, "a case file (CASE.json)")))
        goto out;
    for (int k = 0; k < n; k++)
        if ((rc = hp_cli_refuse_dir("report build", findings[k], "a findings file (FINDINGS.json)")))
            goto out;
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
    if (st) {
        hp_cli_fail("report build", "%s", err.msg);
        rc = HP_EXIT_FAILED;
        goto out;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(report, "diagnosis");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(report, "confidence");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(report, "care_plan");
    /* Said first, on its own line: the rest of the summary is not a result when this is set. */
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(p, "withheld");
    if (cJSON_IsString(w))
        printf("MODEL NOT VALID FOR THIS SLIDE: no category and no care plan suggested (%s)\n", w->valuestring);
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "case_findings"),
                                                       "super_resolution");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sr, "used")))
        printf("SUPER-RESOLVED EVIDENCE: the model classified tiles generated by a super-resolution network, not "
               "the scanned image (report.json case_findings.super_resolution)\n");
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
    rc = HP_EXIT_OK;
out:
    free(findings);
    free(slides);
    return rc;
}

static int cmd_sign(int argc, char **argv)
{
    enum { O_PATHOLOGIST = 1, O_KEY, O_AMEND, O_REGISTRY, O_RULES };
    static const hp_cli_option opts[] = {
        {"pathologist", 0, 1, O_PATHOLOGIST}, {"key", 0, 1, O_KEY}, {"amend", 0, 1, O_AMEND},
        {"registry", 0, 1, O_REGISTRY},       {"rules", 0, 1, O_RULES}, {0},
    };
    hp_report_sign_opts o = {0};
    hp_cli_parser p;
    hp_cli_parser_init(&p, "report sign", "report", opts, argc, argv);
    int c;
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_PATHOLOGIST: o.pathologist_id = p.value; break;
        case O_KEY: o.key_path = p.value; break;
        case O_AMEND: o.amend_path = p.value; break;
        case O_REGISTRY: o.registry_path = p.value; break;
        case O_RULES: o.rules_path = p.value; break;
        case HP_CLI_HELP: usage(stdout); return HP_EXIT_OK;
        case HP_CLI_ARG:
            if (o.dir)
                return hp_cli_usage_error(&p, "unexpected argument '%s' (one report folder)", p.value);
            o.dir = p.value;
            break;
        default: return HP_EXIT_USAGE;
        }
    }
    if (!o.dir || !o.pathologist_id || !o.key_path)
        return hp_cli_usage_error(&p, "sign needs DIR, --pathologist ID and --key KEY.pem");
    if (!hp_pathologist_id_valid(o.pathologist_id))
        return hp_cli_usage_error(&p, "--pathologist must be 1 to 128 characters, without control characters or '='");
    if (!hp_cli_is_dir(o.dir)) {
        hp_cli_fail("report sign", "%s is not a report folder: %s", o.dir,
                    access(o.dir, F_OK) == 0 ? "not a directory" : strerror(errno));
        return HP_EXIT_FAILED;
    }
    hp_error err = {0};
    int rev = 0;
    if (hp_report_sign(&o, &rev, &err)) {
        hp_cli_fail("report sign", "%s", err.msg);
        return HP_EXIT_FAILED;
    }
    printf("signed revision %d of %s (%s): %s/revisions/%d/\n", rev, o.dir, rev == 1 ? "final" : "amended", o.dir,
           rev);
    return HP_EXIT_OK;
}

static int cmd_verify(int argc, char **argv)
{
    enum { MAX_KEYS = 64 };
    enum { O_PUBKEY = 1, O_REGISTRY };
    static const hp_cli_option opts[] = {{"pubkey", 0, 1, O_PUBKEY}, {"registry", 0, 1, O_REGISTRY}, {0}};
    hp_report_verify_opts o = {0};
    hp_signer_key keys[MAX_KEYS];
    const char *dir = NULL;
    hp_cli_parser p;
    hp_cli_parser_init(&p, "report verify", "report", opts, argc, argv);
    int c;
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_REGISTRY: o.registry_path = p.value; break;
        case O_PUBKEY: {
            /* A key is trusted for one pathologist only: an id-less key would vouch for any id. */
            char *v = (char *)p.value, *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1])
                return hp_cli_usage_error(&p, "--pubkey needs ID=PUB.pem (the pathologist id the key belongs to), not %s", v);
            if (o.n_keys == MAX_KEYS)
                return hp_cli_usage_error(&p, "too many --pubkey (at most %d)", MAX_KEYS);
            *eq = '\0';
            keys[o.n_keys].pathologist_id = v;
            keys[o.n_keys++].pubkey_path = eq + 1;
            break;
        }
        case HP_CLI_HELP: usage(stdout); return HP_EXIT_OK;
        case HP_CLI_ARG:
            if (dir)
                return hp_cli_usage_error(&p, "unexpected argument '%s' (one report folder)", p.value);
            dir = p.value;
            break;
        default: return HP_EXIT_USAGE;
        }
    }
    if (!dir)
        return hp_cli_usage_error(&p, "verify needs DIR");
    if (!hp_cli_is_dir(dir)) {
        hp_cli_fail("report verify", "%s is not a report folder: %s", dir,
                    access(dir, F_OK) == 0 ? "not a directory" : strerror(errno));
        return HP_EXIT_FAILED;
    }
    o.keys = keys;
    hp_error err = {0};
    hp_report_verify_result res;
    hp_status st = hp_report_verify(dir, &o, stdout, &res, &err);
    if (st) {
        hp_cli_fail("report verify", "%s", err.msg);
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
        return hp_cli_usage_error_for("report", "report", "missing subcommand (build, sign, verify or signers)");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
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
    return hp_cli_usage_error_for("report", "report", "unknown subcommand '%s' (build, sign, verify or signers)", sub);
}
