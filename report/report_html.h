/* The printable HTML report, rendered from report.json alone (schemas/report.schema.json).
 *
 * One self-contained page: inline CSS (with print rules), no JavaScript, no external resource;
 * the report's images are embedded as data: URIs after their SHA-256 is checked against the
 * report. Every number on the page is a <span class="num" data-pointer="..."> whose text is
 * the value at that JSON Pointer of report.json as hp_json_format_number writes it; identifiers,
 * hashes, dates, codes and versions are in elements of class "ref"; no other text holds a digit.
 *
 * Thread-safe: no shared state. */
#ifndef HP_REPORT_HTML_H
#define HP_REPORT_HTML_H

#include <cjson/cJSON.h>

#include "common/status.h"

/* Writes the HTML of `report` (a parsed report.json) to `path` through a temporary and a rename.
 * `report_dir` is the folder the report's image paths (images/...png) are relative to; each
 * image is read, its SHA-256 compared with the report's and embedded.
 * Refuses, naming the member or file, and leaving nothing at `path`: a required member missing or
 * of the wrong type, a status that disagrees with sign_off, a statement whose text is not its
 * template with its values put in or whose value differs from the one at its pointer, an image
 * that is missing, unreadable, not a PNG, outside images/ or whose hash differs. */
hp_status hp_report_write_html(const cJSON *report, const char *report_dir, const char *path,
                               hp_error *err);

#endif
