/*
 * report_html.h - the self-contained HTML report: plain counts in, one HTML file out.
 *
 * The renderer knows nothing of the store: the command (or a test) fills a bp_report_data
 * with counts and names, and bp_report_html() writes one HTML5 document with inline CSS and
 * inline SVG charts - no script, no font, no image, nothing fetched (a Content-Security-Policy
 * of default-src 'none' says so to the browser), a viewport and a one-column layout on narrow
 * screens.  Every string of the data, whatever bytes it holds, is written masked (control
 * bytes and invalid UTF-8 as '?') and escaped for HTML, so the document stays valid.
 *
 * A section whose data is absent (n == 0 and have == 0) is shown as "no data" with the reason
 * given, never as an empty chart.  Charts carry data-chart="NAME" and each mark carries
 * data-value, so that a test reading the DOM can compare what was drawn with what was given.
 *
 * Ownership: the renderer borrows everything in bp_report_data; it writes into the caller's
 * bp_strbuf.
 */
#ifndef BOUNCEPIPE_REPORT_HTML_H
#define BOUNCEPIPE_REPORT_HTML_H

#include <stddef.h>

#include "bouncepipe/status.h"
#include "bouncepipe/text.h"

/* Bars drawn per ranked chart (receivers, rules, streams, IPs); the rest is summed as "other". */
#define BP_REPORT_TOP 12u
/* Days drawn in the daily charts: the latest 366; older days are summed in the totals only. */
#define BP_REPORT_MAX_DAYS 366u

/** Named counts, largest first (or in the order to draw). */
typedef struct bp_report_counts {
    const char *const *keys;
    const long long *values;
    size_t n;
} bp_report_counts;

/** A table of counts: rows x cols, row-major (cells[r * n_cols + c]). */
typedef struct bp_report_matrix {
    const char *const *rows;
    size_t n_rows;
    const char *const *cols;
    size_t n_cols;
    const long long *cells;
} bp_report_matrix;

/** A rate per key: numerator / denominator (complaints / deliveries of a stream). */
typedef struct bp_report_rates {
    const char *const *keys;
    const long long *num;
    const long long *den;
    size_t n;
} bp_report_rates;

typedef struct bp_report_data {
    const char *title;                 /**< e.g. "bouncepipe report" */
    const char *source;                /**< the store it came from (already free of secrets), or NULL */
    long long generated;               /**< Unix seconds */
    long long since;                   /**< 0: everything */
    long long events;                  /**< event rows counted */
    bp_report_counts by_action;        /**< suppress, soft, ignore, none */
    bp_report_counts suppressed;       /**< active suppressions by source kind */
    long long lifted;                  /**< suppressions an operator lifted */
    bp_report_matrix day_type;         /**< rows: days "YYYY-MM-DD" ascending; cols: event types */
    bp_report_matrix domain_category;  /**< rows: receiving domains, busiest first; cols: categories */
    bp_report_counts growth;           /**< new suppressions per day "YYYY-MM-DD", ascending */
    long long growth_base;             /**< suppressions older than the first day of growth */
    bp_report_rates stream_complaints; /**< complaint rate per traffic stream */
    const char *stream_missing;        /**< why there are no streams (shown instead), or NULL */
    bp_report_matrix ip_blocklist;     /**< rows: sending IPs; cols: blocklists */
    const char *ip_missing;            /**< why there are no sending IPs, or NULL */
    bp_report_counts blocklists;       /**< blocklist hits by list */
    bp_report_counts rules;            /**< events by deciding rule, largest first */
    long long quarantine;              /**< messages in the quarantine Maildir, or -1 when unknown */
    const char *quarantine_dir;        /**< its path, or NULL */
} bp_report_data;

/**
 * Append the HTML document for @p d to @p out.
 * @return BP_OK, BP_ERR_NOMEM.
 */
bp_status bp_report_html(const bp_report_data *d, bp_strbuf *out);

/** Append @p s to @p out masked and escaped for HTML text and attribute values; NULL is "". */
bp_status bp_html_text(bp_strbuf *out, const char *s);

#endif
