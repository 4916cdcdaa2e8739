/* Internal helpers of the HTML report renderer (report/report_html.c): a growing text buffer,
 * HTML escaping, and the three ways a value of report.json reaches the page.
 *
 * The page must never show a number that is not tied to report.json, so:
 * - numbers are printed only by hw_num, as <span class="num" data-pointer="P">, with the text
 *   hp_json_format_number writes (the same text report.json holds);
 * - identifiers, hashes, dates, codes and versions go in <code class="ref" data-pointer="P">;
 * - free text from the report (sentences, names) is escaped; when it holds a digit it is wrapped
 *   in <span class="ref" data-pointer="P"> so that a reader (and the tests) can tell quoted text
 *   from numbers the page works out itself, which it never does.
 * Labels written by the renderer itself contain no digit.
 *
 * Member access goes through hw_get, which records the first missing or mistyped member (named
 * by its JSON Pointer) on the writer; rendering goes on quietly after that (NULL nodes render as
 * nothing) and the caller writes no file. Not thread-safe per writer; writers share nothing. */
#ifndef HP_HTML_WRITER_H
#define HP_HTML_WRITER_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/status.h"

#define HW_PTR_MAX 512

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
    int failed;
    hp_status code; /* of the first failure */
    hp_error *err;
} hp_hw;

/* Types hw_get accepts (a mask). HW_INT is a number with no fractional part. */
enum { HW_STR = 1, HW_NUM = 2, HW_INT = 4, HW_BOOL = 8, HW_NULL = 16, HW_OBJ = 32, HW_ARR = 64 };

void hw_init(hp_hw *w, hp_error *err);
void hw_free(hp_hw *w);

/* Records a failure (first one wins) and returns its code. */
hp_status hw_fail(hp_hw *w, hp_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Markup, appended as is. */
void hw_raw(hp_hw *w, const char *s);
void hw_rawn(hp_hw *w, const char *s, size_t n);
/* `n` bytes (or all of `s`) escaped for text and attribute values (& < > " '). */
void hw_text(hp_hw *w, const char *s);
void hw_textn(hp_hw *w, const char *s, size_t n);

/* `base` + "/" + `key` with ~ and / escaped (RFC 6901); `base` + "/" + `i`. */
void hw_ptr(char out[HW_PTR_MAX], const char *base, const char *key);
void hw_ptr_i(char out[HW_PTR_MAX], const char *base, int i);

/* The member `key` of `obj` (at pointer `base`) when its type is in `types`; NULL and a recorded
 * failure when it is missing or of another type. NULL `obj` gives NULL with nothing recorded
 * (the failure that made it NULL is already recorded). A JSON null member also gives NULL. */
const cJSON *hw_get(hp_hw *w, const cJSON *obj, const char *base, const char *key, int types);
/* The member's string, or NULL (null member, or a failure recorded). */
const char *hw_get_str(hp_hw *w, const cJSON *obj, const char *base, const char *key, int nullable);

/* A number node: <span class="num" data-pointer="ptr">text</span>; JSON null: `if_null` as
 * plain text (it must hold no digit). */
void hw_num(hp_hw *w, const cJSON *node, const char *ptr, const char *if_null);
/* hw_num of member `key` of `obj` (at `base`); the member must be a number (or null when
 * `if_null` is not NULL). */
void hw_num_at(hp_hw *w, const cJSON *obj, const char *base, const char *key, const char *if_null);

/* A string node as an identifier: <code class="ref" data-pointer="ptr">text</code>; JSON null:
 * `if_null`. */
void hw_ref(hp_hw *w, const cJSON *node, const char *ptr, const char *if_null);
void hw_ref_at(hp_hw *w, const cJSON *obj, const char *base, const char *key, const char *if_null);
/* A string from the report as free text (see above); JSON null: `if_null`. */
void hw_str(hp_hw *w, const cJSON *node, const char *ptr, const char *if_null);
void hw_str_at(hp_hw *w, const cJSON *obj, const char *base, const char *key, const char *if_null);
/* Any JSON value: numbers as hw_num, strings as hw_ref, true/false/null as words, arrays and
 * objects as their compact JSON in a ref element. */
void hw_value(hp_hw *w, const cJSON *node, const char *ptr);

/* An image object of the report (schema $defs/image) at `ptr`: reads `report_dir`/file, checks
 * its name (images/NAME.png), PNG signature and SHA-256 against the report's, and writes an <img>
 * with the file as a base64 data: URI; a failure names the file. `alt` holds no digit. */
void hw_image(hp_hw *w, const cJSON *image, const char *ptr, const char *report_dir,
              const char *alt);

/* Statement `st` (at `ptr`) rendered from its template and values: numbers as hw_num with the
 * value's own pointer (which must hold the same value), string values as refs, units after
 * them as the statement's text has them. The rendered text must equal the statement's `text`,
 * else a failure is recorded. Written as <span class="stext">...</span>. */
void hw_statement(hp_hw *w, const cJSON *root, const cJSON *st, const char *ptr);

/* 1 when `s` holds an ASCII digit. */
int hw_has_digit(const char *s);

/* Parts of the page (report/report_html_parts.c): the findings (case level, then per slide with
 * images and regions), the statements by section, and the draft care plan. */
void hw_findings_section(hp_hw *w, const cJSON *root, const char *report_dir);
void hw_statements_section(hp_hw *w, const cJSON *root);
void hw_plan_section(hp_hw *w, const cJSON *root);
/* The isolated tiles of `parent`/isolated_tiles (case level) as a table row, with the tiles'
 * locations or only their counts and areas. */
void hw_isolated_row(hp_hw *w, const cJSON *parent, const char *base, int with_locations);
/* The per-class table of `parent`/classes. */
void hw_class_table(hp_hw *w, const cJSON *parent, const char *base);
/* The invasive or in situ summary at `parent`/`key` as a table row headed `label`. */
void hw_disease_summary(hp_hw *w, const cJSON *parent, const char *base, const char *key,
                        const char *label, int in_situ);
/* The synoptic summary (report/report_html_summary.c): the case's QC and out-of-domain flags
 * (any flag, by name and reason), tissue, largest invasive focus, in situ extent, isolated tiles,
 * uncertainty, the class table with the class-versus-region-area note and each slide's overlay
 * with its legend; and the sign-off block (blank lines to sign on a preliminary report). */
void hw_synoptic_findings(hp_hw *w, const cJSON *root, const char *report_dir);
void hw_synoptic_signoff(hp_hw *w, const cJSON *root);

#endif
