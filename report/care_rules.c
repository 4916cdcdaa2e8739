#include "report/care_rules.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/canonical_json.h"
#include "report/json_file.h"

static const char *const FACTS[] = {"category", "confidence", "qc_failed", "out_of_domain", "invasive_focus_mm", "invasive_evidence_mm2",
                                    "in_situ_extent_mm", "discordant", "age_years", "sex", "procedure",
                                    "birads", "history", "prior_findings", "preferences", NULL};
static const char *const OPS[] = {"equals", "in", "min", "max", "contains", "present", NULL};


const char *hp_care_rules_default_path(void)
{
    /* The source tree's table while developing; the installed copy once installed. */
    static const char *const candidates[] = {
#ifdef HP_RULES_DIR
        HP_RULES_DIR "/care-plan-rules.json",
#endif
#ifdef HP_INSTALLED_RULES_DIR
        HP_INSTALLED_RULES_DIR "/care-plan-rules.json",
#endif
        "report/rules/care-plan-rules.json",
    };
    size_t n = sizeof candidates / sizeof candidates[0];
    for (size_t i = 0; i + 1 < n; i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    return candidates[n - 1];
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

static int all_strings(const cJSON *arr)
{
    if (!cJSON_IsArray(arr) || !arr->child)
        return 0;
    for (const cJSON *it = arr->child; it; it = it->next)
        if (!cJSON_IsString(it) || !it->valuestring[0])
            return 0;
    return 1;
}

static int check_condition(const char *path, const char *rule, const char *list, int i, const cJSON *c,
                           hp_error *err)
{
    const cJSON *fact = cJSON_GetObjectItemCaseSensitive(c, "fact");
    if (!cJSON_IsObject(c) || !cJSON_IsString(fact) || !in_list(fact->valuestring, FACTS)) {
        hp_error_set(err, HP_ERR_INVALID, "rule table %s: rule %s: %s[%d] needs \"fact\", one of the known facts",
                     path, rule, list, i);
        return -1;
    }
    int ops = 0;
    for (const cJSON *m = c->child; m; m = m->next) {
        if (!strcmp(m->string, "fact"))
            continue;
        if (!in_list(m->string, OPS)) {
            hp_error_set(err, HP_ERR_INVALID, "rule table %s: rule %s: %s[%d] has unknown operator '%s'", path, rule,
                         list, i, m->string);
            return -1;
        }
        ops++;
        int ok = 1;
        if (!strcmp(m->string, "equals"))
            ok = cJSON_IsString(m) || cJSON_IsNumber(m) || cJSON_IsBool(m);
        else if (!strcmp(m->string, "in") || !strcmp(m->string, "contains"))
            ok = all_strings(m);
        else if (!strcmp(m->string, "min") || !strcmp(m->string, "max"))
            ok = cJSON_IsNumber(m);
        else
            ok = cJSON_IsBool(m);
        if (!ok) {
            hp_error_set(err, HP_ERR_INVALID, "rule table %s: rule %s: %s[%d]: '%s' has the wrong type", path, rule,
                         list, i, m->string);
            return -1;
        }
    }
    if (ops != 1) {
        hp_error_set(err, HP_ERR_INVALID, "rule table %s: rule %s: %s[%d] must have exactly one operator", path, rule,
                     list, i);
        return -1;
    }
    return 0;
}

static int check_conditions(const char *path, const char *rule, const cJSON *r, const char *list, int required,
                            hp_error *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, list);
    if (!arr && !required)
        return 0;
    if (!cJSON_IsArray(arr) || (required && !arr->child)) {
        hp_error_set(err, HP_ERR_INVALID, "rule table %s: rule %s: '%s' must be a%s list of conditions", path, rule,
                     list, required ? " non-empty" : "");
        return -1;
    }
    int i = 0;
    for (const cJSON *c = arr->child; c; c = c->next, i++)
        if (check_condition(path, rule, list, i, c, err))
            return -1;
    return 0;
}

static int check_text(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0];
}

static int check_rule(const char *path, int index, const cJSON *r, hp_error *err)
{
    static const char *const strengths[] = {"strong", "moderate", "weak", "consensus", NULL};
    static const char *const kinds[] = {"test", "review", "referral", "follow-up", "counselling", NULL};
    static const char *const priorities[] = {"routine", "urgent", NULL};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
    if (!cJSON_IsObject(r) || !cJSON_IsString(id) || !id->valuestring[0] || strlen(id->valuestring) > 64) {
        hp_error_set(err, HP_ERR_INVALID, "rule table %s: rules[%d] needs an \"id\"", path, index);
        return -1;
    }
    const char *rid = id->valuestring;
    const cJSON *sug = cJSON_GetObjectItemCaseSensitive(r, "suggestion");
    const cJSON *gl = cJSON_GetObjectItemCaseSensitive(r, "guideline");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "strength");
    const cJSON *gate = cJSON_GetObjectItemCaseSensitive(r, "gate");
    const char *bad = NULL;
    if (!check_text(r, "title"))
        bad = "title";
    else if (!cJSON_IsObject(sug) || !check_text(sug, "action"))
        bad = "suggestion.action";
    else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sug, "kind")) ||
             !in_list(cJSON_GetObjectItemCaseSensitive(sug, "kind")->valuestring, kinds))
        bad = "suggestion.kind";
    else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sug, "priority")) ||
             !in_list(cJSON_GetObjectItemCaseSensitive(sug, "priority")->valuestring, priorities))
        bad = "suggestion.priority";
    else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(sug, "services")))
        bad = "suggestion.services";
    else if (!cJSON_IsObject(gl) || !check_text(gl, "name") || !check_text(gl, "version"))
        bad = "guideline (name and version)";
    else if (!cJSON_IsString(st) || !in_list(st->valuestring, strengths))
        bad = "strength";
    else if (gate && !cJSON_IsBool(gate))
        bad = "gate";
    if (!bad)
        for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(sug, "services")->child; s; s = s->next)
            if (!cJSON_IsObject(s) || !check_text(s, "system") || !check_text(s, "code") || !check_text(s, "display"))
                bad = "suggestion.services (system, code, display)";
    if (bad) {
        hp_error_set(err, HP_ERR_INVALID, "rule table %s: rule %s: '%s' is missing or malformed", path, rid, bad);
        return -1;
    }
    return check_conditions(path, rid, r, "when", 1, err) || check_conditions(path, rid, r, "context", 0, err) ||
                   check_conditions(path, rid, r, "unless", 0, err)
               ? -1
               : 0;
}

static int get_limit(const char *path, const cJSON *root, const char *section, const char *key, double *out,
                     hp_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, section), key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
        hp_error_set(err, HP_ERR_INVALID, "rule table %s: %s.%s must be a number >= 0", path, section, key);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

hp_status hp_care_rules_load(const char *path, hp_care_rules *rules, hp_error *err)
{
    memset(rules, 0, sizeof *rules);
    hp_status st = hp_json_file_read(path, "rule table", &rules->root, rules->sha256, err);
    if (st)
        return st;
    const cJSON *root = rules->root;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (!cJSON_IsObject(root) || !check_text(root, "name") || !check_text(root, "version") || !cJSON_IsArray(list) ||
        !list->child) {
        hp_error_set(err, HP_ERR_INVALID, "rule table %s: needs \"name\", \"version\" and a non-empty \"rules\" list",
                     path);
        goto fail;
    }
    if (get_limit(path, root, "category", "min_tiles_analysed", &rules->min_tiles_analysed, err) ||
        get_limit(path, root, "category", "invasive_min_focus_mm", &rules->invasive_min_focus_mm, err) ||
        get_limit(path, root, "category", "in_situ_min_extent_mm", &rules->in_situ_min_extent_mm, err) ||
        get_limit(path, root, "category", "benign_min_percent", &rules->benign_min_percent, err) ||
        get_limit(path, root, "category", "invasion_review_min_area_mm2", &rules->invasion_review_min_area_mm2, err) ||
        get_limit(path, root, "confidence", "low_min_tiles_analysed", &rules->low_min_tiles_analysed, err) ||
        get_limit(path, root, "confidence", "low_percent_uncertain_above", &rules->low_percent_uncertain_above, err) ||
        get_limit(path, root, "confidence", "low_mean_entropy_above", &rules->low_mean_entropy_above, err) ||
        get_limit(path, root, "confidence", "moderate_percent_uncertain_above",
                  &rules->moderate_percent_uncertain_above, err) ||
        get_limit(path, root, "confidence", "moderate_mean_entropy_above", &rules->moderate_mean_entropy_above, err) ||
        get_limit(path, root, "confidence", "moderate_support_below", &rules->moderate_support_below, err))
        goto fail;
    int i = 0;
    for (const cJSON *r = list->child; r; r = r->next, i++) {
        if (check_rule(path, i, r, err))
            goto fail;
        for (const cJSON *o = list->child; o != r; o = o->next)
            if (!strcmp(cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring,
                        cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring)) {
                hp_error_set(err, HP_ERR_INVALID, "rule table %s: rule id %s is used twice", path,
                             cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring);
                goto fail;
            }
    }
    rules->name = cJSON_GetObjectItemCaseSensitive(root, "name")->valuestring;
    rules->version = cJSON_GetObjectItemCaseSensitive(root, "version")->valuestring;
    const cJSON *notice = cJSON_GetObjectItemCaseSensitive(root, "notice");
    rules->notice = cJSON_IsString(notice) ? notice->valuestring : NULL;
    return HP_OK;
fail:
    hp_care_rules_free(rules);
    return err && err->code ? err->code : HP_ERR_INVALID;
}

void hp_care_rules_free(hp_care_rules *rules)
{
    if (!rules)
        return;
    cJSON_Delete(rules->root);
    memset(rules, 0, sizeof *rules);
}

/* ---- evaluation ---- */

static int icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int is_absent(const cJSON *v)
{
    return !v || cJSON_IsNull(v) || (cJSON_IsArray(v) && !v->child);
}

/* Appends to `buf` a readable form of the condition: "age_years <= 50". */
static void describe(const cJSON *c, char *buf, size_t cap)
{
    const char *fact = cJSON_GetObjectItemCaseSensitive(c, "fact")->valuestring;
    const cJSON *op = NULL;
    for (const cJSON *m = c->child; m; m = m->next)
        if (strcmp(m->string, "fact"))
            op = m;
    char num[32];
    if (!strcmp(op->string, "equals")) {
        if (cJSON_IsString(op))
            snprintf(buf, cap, "%s = %s", fact, op->valuestring);
        else if (cJSON_IsBool(op))
            snprintf(buf, cap, "%s = %s", fact, cJSON_IsTrue(op) ? "true" : "false");
        else {
            hp_json_format_number(op->valuedouble, num);
            snprintf(buf, cap, "%s = %s", fact, num);
        }
    } else if (!strcmp(op->string, "min") || !strcmp(op->string, "max")) {
        hp_json_format_number(op->valuedouble, num);
        snprintf(buf, cap, "%s %s %s", fact, op->string[1] == 'i' ? ">=" : "<=", num);
    } else if (!strcmp(op->string, "present")) {
        snprintf(buf, cap, "%s %s", fact, cJSON_IsTrue(op) ? "given" : "not given");
    } else {
        int n = snprintf(buf, cap, "%s %s [", fact, !strcmp(op->string, "in") ? "is one of" : "mentions one of");
        for (const cJSON *t = op->child; t && n > 0 && (size_t)n < cap; t = t->next)
            n += snprintf(buf + n, cap - (size_t)n, "%s%s", t->valuestring, t->next ? ", " : "]");
    }
}

/* 1 when condition `c` holds for `facts`. */
static int holds(const cJSON *c, const cJSON *facts)
{
    const char *fact = cJSON_GetObjectItemCaseSensitive(c, "fact")->valuestring;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(facts, fact);
    const cJSON *op = NULL;
    for (const cJSON *m = c->child; m; m = m->next)
        if (strcmp(m->string, "fact"))
            op = m;
    if (!strcmp(op->string, "present"))
        return cJSON_IsTrue(op) ? !is_absent(v) : is_absent(v);
    if (is_absent(v))
        return 0;
    if (!strcmp(op->string, "equals")) {
        if (cJSON_IsString(op))
            return cJSON_IsString(v) && !strcmp(v->valuestring, op->valuestring);
        if (cJSON_IsBool(op))
            return cJSON_IsBool(v) && (cJSON_IsTrue(v) == cJSON_IsTrue(op));
        return cJSON_IsNumber(v) && v->valuedouble == op->valuedouble;
    }
    if (!strcmp(op->string, "min"))
        return cJSON_IsNumber(v) && v->valuedouble >= op->valuedouble;
    if (!strcmp(op->string, "max"))
        return cJSON_IsNumber(v) && v->valuedouble <= op->valuedouble;
    if (!strcmp(op->string, "in")) {
        for (const cJSON *t = op->child; t; t = t->next)
            if (cJSON_IsString(v) && !strcmp(v->valuestring, t->valuestring))
                return 1;
        return 0;
    }
    /* contains: a text, or any item of a list of texts, mentions one of the terms */
    for (const cJSON *t = op->child; t; t = t->next) {
        if (cJSON_IsString(v) && icontains(v->valuestring, t->valuestring))
            return 1;
        if (cJSON_IsArray(v))
            for (const cJSON *it = v->child; it; it = it->next)
                if (cJSON_IsString(it) && icontains(it->valuestring, t->valuestring))
                    return 1;
    }
    return 0;
}

/* Records the facts a rule used: {fact, value, condition}. */
static void add_uses(cJSON *out, const cJSON *conds, const cJSON *facts)
{
    for (const cJSON *c = conds ? conds->child : NULL; c; c = c->next) {
        char text[512];
        describe(c, text, sizeof text);
        const char *fact = cJSON_GetObjectItemCaseSensitive(c, "fact")->valuestring;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(facts, fact);
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "fact", fact);
        cJSON_AddItemToObject(u, "value", v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        cJSON_AddStringToObject(u, "condition", text);
        cJSON_AddItemToArray(out, u);
    }
}

/* The first `when`/`context` condition that fails, or `unless` condition that holds, as a reason. */
static int rule_applies(const cJSON *rule, const cJSON *facts, char *reason, size_t cap)
{
    static const char *const lists[] = {"when", "context"};
    for (int l = 0; l < 2; l++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(rule, lists[l]);
        for (const cJSON *c = arr ? arr->child : NULL; c; c = c->next)
            if (!holds(c, facts)) {
                char d[400];
                describe(c, d, sizeof d);
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(facts, cJSON_GetObjectItemCaseSensitive(c, "fact")->valuestring);
                snprintf(reason, cap, "%s does not hold%s", d, is_absent(v) ? " (not given)" : "");
                return 0;
            }
    }
    const cJSON *unless = cJSON_GetObjectItemCaseSensitive(rule, "unless");
    for (const cJSON *c = unless ? unless->child : NULL; c; c = c->next)
        if (holds(c, facts)) {
            char d[400];
            describe(c, d, sizeof d);
            snprintf(reason, cap, "excluded because %s", d);
            return 0;
        }
    return 1;
}

static void add_statement_ids(cJSON *ids, const cJSON *conds, const cJSON *evidence)
{
    for (const cJSON *c = conds ? conds->child : NULL; c; c = c->next) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(evidence, cJSON_GetObjectItemCaseSensitive(c, "fact")->valuestring);
        for (const cJSON *s = list ? list->child : NULL; s; s = s->next) {
            int dup = 0;
            for (const cJSON *e = ids->child; e; e = e->next)
                dup |= !strcmp(e->valuestring, s->valuestring);
            if (!dup)
                cJSON_AddItemToArray(ids, cJSON_CreateString(s->valuestring));
        }
    }
}

hp_status hp_care_rules_apply(const hp_care_rules *rules, const cJSON *facts, const cJSON *evidence,
                              cJSON *care_plan, hp_error *err)
{
    cJSON_AddStringToObject(care_plan, "status", "draft");
    cJSON_AddStringToObject(care_plan, "intent", "proposal");
    cJSON *ri = cJSON_AddObjectToObject(care_plan, "rules");
    cJSON_AddStringToObject(ri, "name", rules->name);
    cJSON_AddStringToObject(ri, "version", rules->version);
    cJSON_AddStringToObject(ri, "sha256", rules->sha256);
    cJSON_AddNullToObject(care_plan, "gate_rule_id");
    cJSON *sugs = cJSON_AddArrayToObject(care_plan, "suggestions");
    cJSON *skipped = cJSON_AddArrayToObject(care_plan, "not_applied");
    const char *gate_id = NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(rules->root, "rules");
    /* A model outside its domain of validity has said nothing about the tissue: no rule may turn
     * its output into a step of care, not even a review gate built on its category. The plan
     * says so, and every rule is listed as not applied with that reason. */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(facts, "out_of_domain"))) {
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(facts, "out_of_domain_reason");
        char text[1024];
        snprintf(text, sizeof text, "model not valid for this slide: %s",
                 cJSON_IsString(why) ? why->valuestring : "outside its domain of validity");
        cJSON_AddStringToObject(care_plan, "withheld", text);
        for (const cJSON *r = list->child; r; r = r->next) {
            cJSON *n = cJSON_CreateObject();
            cJSON_AddStringToObject(n, "rule_id", cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring);
            cJSON_AddStringToObject(n, "reason", "withheld: the model is not valid for this slide, so no "
                                                 "care plan is drafted");
            cJSON_AddItemToArray(skipped, n);
        }
        (void)err;
        return HP_OK;
    }
    /* Gates first, so every other suggestion can name the one it waits for. */
    for (const cJSON *r = list->child; r; r = r->next) {
        char reason[512];
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "gate")) && rule_applies(r, facts, reason, sizeof reason)) {
            gate_id = cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring;
            break;
        }
    }
    if (gate_id)
        cJSON_ReplaceItemInObjectCaseSensitive(care_plan, "gate_rule_id", cJSON_CreateString(gate_id));
    for (const cJSON *r = list->child; r; r = r->next) {
        const char *id = cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring;
        char reason[512];
        if (!rule_applies(r, facts, reason, sizeof reason)) {
            cJSON *n = cJSON_CreateObject();
            cJSON_AddStringToObject(n, "rule_id", id);
            cJSON_AddStringToObject(n, "reason", reason);
            cJSON_AddItemToArray(skipped, n);
            continue;
        }
        const cJSON *sug = cJSON_GetObjectItemCaseSensitive(r, "suggestion");
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "rule_id", id);
        cJSON_AddStringToObject(s, "title", cJSON_GetObjectItemCaseSensitive(r, "title")->valuestring);
        cJSON_AddStringToObject(s, "kind", cJSON_GetObjectItemCaseSensitive(sug, "kind")->valuestring);
        cJSON_AddStringToObject(s, "priority", cJSON_GetObjectItemCaseSensitive(sug, "priority")->valuestring);
        cJSON_AddStringToObject(s, "action", cJSON_GetObjectItemCaseSensitive(sug, "action")->valuestring);
        cJSON_AddItemToObject(s, "services", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(sug, "services"), 1));
        cJSON_AddItemToObject(s, "guideline", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "guideline"), 1));
        cJSON_AddStringToObject(s, "strength", cJSON_GetObjectItemCaseSensitive(r, "strength")->valuestring);
        add_uses(cJSON_AddArrayToObject(s, "because"), cJSON_GetObjectItemCaseSensitive(r, "when"), facts);
        add_uses(cJSON_AddArrayToObject(s, "personalization"), cJSON_GetObjectItemCaseSensitive(r, "context"), facts);
        cJSON *ids = cJSON_AddArrayToObject(s, "statement_ids");
        add_statement_ids(ids, cJSON_GetObjectItemCaseSensitive(r, "when"), evidence);
        if (gate_id && strcmp(gate_id, id))
            cJSON_AddStringToObject(s, "waits_for", gate_id);
        else
            cJSON_AddNullToObject(s, "waits_for");
        cJSON_AddTrueToObject(s, "requires_clinician_approval");
        cJSON_AddStringToObject(s, "decision", "pending");
        cJSON_AddNullToObject(s, "note");
        cJSON_AddItemToArray(sugs, s);
    }
    (void)err;
    return HP_OK;
}
