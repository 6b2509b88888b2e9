/*
 * html_report.c - the self-contained HTML report (report_html.h): counts in, one HTML5
 * document out, charts drawn as inline SVG by this file.
 *
 * Layout: a header with the totals as tiles, then one <section> per chart in a CSS grid that
 * falls to one column under 700 px (a phone); SVGs have a viewBox and width 100%, so they
 * scale.  Hovering a mark shows its <title>.  No script: the Content-Security-Policy is
 * default-src 'none' with inline styles only, so a browser loads nothing, and a test can
 * treat any console message as a failure.
 *
 * Safety: every string from the data goes through bp_html_text(): GLib validates the UTF-8,
 * invalid bytes, C0/C1 controls, DEL and noncharacters become '?', and & < > " ' become
 * entities; labels are cut at a character boundary.  Numbers are printed by printf.
 *
 * Errors: appends go through out(), which stops at the first failure and remembers it, so
 * that the chart code reads straight; bp_report_html() returns that status.
 *
 * Ownership: borrows the data; writes into the caller's bp_strbuf.
 */
#include "bouncepipe/report_html.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bouncepipe/clock.h"

typedef struct html {
    bp_strbuf *sb;
    bp_status st;
} html;

static void out(html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(html *h, const char *fmt, ...)
{
    if (h->st != BP_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    h->st = bp_strbuf_vprintf(h->sb, fmt, ap);
    va_end(ap);
}

/* Append a constant of this file as it is. */
static void raw(html *h, const char *s)
{
    if (h->st == BP_OK)
        h->st = bp_strbuf_puts(h->sb, s);
}

/* A character the page shows as '?': what the house masking masks (text.h: controls, C1,
 * bidi overrides; white space but the space) and the noncharacters HTML forbids. */
static int masked_char(const char *p, size_t n, gunichar c)
{
    bp_text_kind kind;
    bp_text_char(p, n, &kind, NULL);
    return (kind != BP_TEXT_PLAIN && c != ' ') || (c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE;
}

/* Append at most @p max_chars characters of @p s, masked and escaped ("..." when cut). */
static bp_status text_cut(bp_strbuf *sb, const char *s, size_t max_chars)
{
    bp_status st = BP_OK;
    size_t chars = 0;
    if (s == NULL)
        return BP_OK;
    const char *p = s;
    while (*p != '\0' && st == BP_OK) {
        if (chars == max_chars) {
            st = bp_strbuf_puts(sb, "\xE2\x80\xA6"); /* U+2026 */
            break;
        }
        const char *end = NULL;
        g_utf8_validate(p, -1, &end);
        if (end == p) { /* an invalid byte */
            st = bp_strbuf_putc(sb, '?');
            p++;
            chars++;
            continue;
        }
        /* p .. end is valid UTF-8: one character at a time */
        const char *next = g_utf8_next_char(p);
        gunichar c = g_utf8_get_char(p);
        switch (c) {
        case '&': st = bp_strbuf_puts(sb, "&amp;"); break;
        case '<': st = bp_strbuf_puts(sb, "&lt;"); break;
        case '>': st = bp_strbuf_puts(sb, "&gt;"); break;
        case '"': st = bp_strbuf_puts(sb, "&quot;"); break;
        case '\'': st = bp_strbuf_puts(sb, "&#39;"); break;
        default:
            st = masked_char(p, (size_t)(next - p), c) ? bp_strbuf_putc(sb, '?')
                                                       : bp_strbuf_append(sb, p, (size_t)(next - p));
        }
        p = next;
        chars++;
    }
    return st;
}

bp_status bp_html_text(bp_strbuf *out_sb, const char *s)
{
    return text_cut(out_sb, s, (size_t)-1);
}

static void text(html *h, const char *s, size_t max_chars)
{
    if (h->st == BP_OK)
        h->st = text_cut(h->sb, s, max_chars);
}

/* ---- colours and scales --------------------------------------------------------------- */

static const char *const palette[] = {"#4e79a7", "#e15759", "#f28e2b", "#76b7b2", "#59a14f", "#edc948",
                                      "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#2f4b7c", "#a05195"};
#define N_PALETTE (sizeof(palette) / sizeof(palette[0]))

/* A fixed colour for the event types, so that bounce is always the same red in every report. */
static const char *type_colour(const char *type, size_t i)
{
    static const struct {
        const char *type, *colour;
    } fixed[] = {{"bounce", "#e15759"},    {"delay", "#f28e2b"},     {"complaint", "#b07aa1"},
                 {"autoreply", "#76b7b2"}, {"delivered", "#59a14f"}, {"unrecognized", "#bab0ac"}};
    for (size_t k = 0; type != NULL && k < sizeof(fixed) / sizeof(fixed[0]); k++)
        if (strcmp(type, fixed[k].type) == 0)
            return fixed[k].colour;
    return palette[i % N_PALETTE];
}

/* A round upper bound for an axis that four grid steps divide evenly: 4, 8, 20, 40, 80, 200,
 * ... (2, 4, 8 x 10^k) at or above @p v. */
static long long nice_max(long long v)
{
    static const int steps[] = {2, 4, 8};
    for (long long m = 1;; m *= 10)
        for (int i = 0; i < 3; i++)
            if (steps[i] * m >= 4 && steps[i] * m >= v)
                return steps[i] * m;
}

#define W      640
#define H      240
#define LEFT   48
#define RIGHT  8
#define TOP    10
#define BOTTOM 28

static void no_data(html *h, const char *why)
{
    out(h, "<p class=\"nodata\" data-nodata=\"1\">no data");
    if (why != NULL) {
        out(h, ": ");
        text(h, why, 300);
    }
    out(h, "</p>\n");
}

static void legend(html *h, const char *const *names, size_t n, int types)
{
    out(h, "<ul class=\"legend\">");
    for (size_t i = 0; i < n; i++) {
        out(h, "<li><span class=\"sw\" style=\"background:%s\"></span>",
            types ? type_colour(names[i], i) : palette[i % N_PALETTE]);
        text(h, names[i], 40);
        out(h, "</li>");
    }
    out(h, "</ul>\n");
}

static void y_axis(html *h, long long max)
{
    for (int g = 0; g <= 4; g++) {
        double y = TOP + (H - TOP - BOTTOM) * (1.0 - g / 4.0);
        out(h, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", LEFT, W - RIGHT, y, y);
        out(h, "<text class=\"ax\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%lld</text>", LEFT - 4, y + 4, max * g / 4);
    }
}

/* Columns per row of @p m (days), stacked by column (types). */
static void stacked_columns(html *h, const char *name, const bp_report_matrix *m, int types, const char *label)
{
    size_t first = m->n_rows > BP_REPORT_MAX_DAYS ? m->n_rows - BP_REPORT_MAX_DAYS : 0;
    size_t n = m->n_rows - first;
    long long max = 0;
    for (size_t r = first; r < m->n_rows; r++) {
        long long sum = 0;
        for (size_t c = 0; c < m->n_cols; c++)
            sum += m->cells[r * m->n_cols + c];
        if (sum > max)
            max = sum;
    }
    max = nice_max(max);
    double plot_w = W - LEFT - RIGHT, plot_h = H - TOP - BOTTOM;
    double bw = plot_w / (double)n;
    out(h, "<svg data-chart=\"%s\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", name, W, H);
    text(h, label, 200);
    out(h, "\">");
    y_axis(h, max);
    for (size_t r = first; r < m->n_rows; r++) {
        double x = LEFT + bw * (double)(r - first), y = TOP + plot_h;
        for (size_t c = 0; c < m->n_cols; c++) {
            long long v = m->cells[r * m->n_cols + c];
            if (v <= 0)
                continue;
            double bh = plot_h * (double)v / (double)max;
            y -= bh;
            out(h,
                "<rect class=\"m\" data-value=\"%lld\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "fill=\"%s\"><title>",
                v, x + bw * 0.1, y, bw * 0.8 > 0.5 ? bw * 0.8 : 0.5, bh,
                types ? type_colour(m->cols[c], c) : palette[c % N_PALETTE]);
            text(h, m->rows[r], 40);
            out(h, " ");
            text(h, m->cols[c], 40);
            out(h, ": %lld</title></rect>", v);
        }
    }
    /* first, middle and last day under the axis */
    size_t ticks[3] = {first, first + n / 2, m->n_rows - 1};
    for (int i = 0; i < 3; i++) {
        if (i > 0 && ticks[i] == ticks[i - 1])
            continue;
        double x = LEFT + bw * ((double)(ticks[i] - first) + 0.5);
        out(h, "<text class=\"ax\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">", x, H - 8,
            i == 0   ? "start"
            : i == 2 ? "end"
                     : "middle");
        text(h, m->rows[ticks[i]], 20);
        out(h, "</text>");
    }
    out(h, "</svg>\n");
    legend(h, m->cols, m->n_cols, types);
    long long earlier = 0;
    for (size_t r = 0; r < first; r++)
        for (size_t c = 0; c < m->n_cols; c++)
            earlier += m->cells[r * m->n_cols + c];
    if (first > 0) {
        out(h,
            "<p class=\"note\"><span data-earlier=\"%s\">%lld</span> on %zu earlier day(s) not drawn (the "
            "chart shows the latest %u days)</p>\n",
            name, earlier, first, BP_REPORT_MAX_DAYS);
    }
}

/* The total of row @p i: its count, or the sum of its columns. */
static long long row_total(const bp_report_counts *c, const bp_report_matrix *m, size_t i)
{
    long long t = 0;
    if (c != NULL)
        return c->values[i];
    for (size_t k = 0; m != NULL && k < m->n_cols; k++)
        t += m->cells[i * m->n_cols + k];
    return t;
}

/* One horizontal bar per key (at most BP_REPORT_TOP, the rest as "other"), stacked by the
 * columns of @p m when given, else a single value per key from @p c (one of them is given). */
static void hbars(html *h, const char *name, const bp_report_counts *c, const bp_report_matrix *m, const char *label)
{
    size_t n = c != NULL ? c->n : m != NULL ? m->n_rows : 0;
    size_t shown = n > BP_REPORT_TOP ? BP_REPORT_TOP : n;
    long long other = 0, max = 0;
    long long totals[BP_REPORT_TOP + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        long long t = row_total(c, m, i);
        if (i < shown)
            totals[i] = t;
        else
            other += t;
    }
    size_t rows = shown + (other > 0 ? 1 : 0);
    if (other > 0)
        totals[shown] = other;
    for (size_t i = 0; i < rows; i++)
        if (totals[i] > max)
            max = totals[i];
    max = nice_max(max);
    const int row_h = 22, label_w = 210, value_w = 60;
    int height = (int)rows * row_h + 6;
    double plot_w = W - label_w - value_w;
    out(h, "<svg data-chart=\"%s\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", name, W, height);
    text(h, label, 200);
    out(h, "\">");
    for (size_t i = 0; i < rows; i++) {
        double y = 3 + (double)i * row_h;
        out(h, "<text class=\"lb\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", label_w - 6, y + 15);
        if (i < shown)
            text(h, c != NULL ? c->keys[i] : m->rows[i], 30);
        else
            out(h, "(%zu more)", n - shown);
        out(h, "</text>");
        double x = label_w;
        if (c != NULL || i == shown) {
            double bw = plot_w * (double)totals[i] / (double)max;
            out(h,
                "<rect class=\"m\" data-value=\"%lld\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" "
                "fill=\"%s\"><title>",
                totals[i], x, y + 2, bw, row_h - 6, i == shown ? "#bab0ac" : palette[0]);
            if (i < shown)
                text(h, c->keys[i], 80);
            else
                out(h, "other");
            out(h, ": %lld</title></rect>", totals[i]);
        } else {
            for (size_t k = 0; k < m->n_cols; k++) {
                long long v = m->cells[i * m->n_cols + k];
                if (v <= 0)
                    continue;
                double bw = plot_w * (double)v / (double)max;
                out(h,
                    "<rect class=\"m\" data-value=\"%lld\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" "
                    "fill=\"%s\"><title>",
                    v, x, y + 2, bw, row_h - 6, palette[k % N_PALETTE]);
                text(h, m->rows[i], 80);
                out(h, " ");
                text(h, m->cols[k], 40);
                out(h, ": %lld</title></rect>", v);
                x += bw;
            }
        }
        out(h, "<text class=\"val\" x=\"%d\" y=\"%.1f\">%lld</text>", W - value_w + 4, y + 15, totals[i]);
    }
    out(h, "</svg>\n");
    if (m != NULL)
        legend(h, m->cols, m->n_cols, 0);
}

/* New suppressions per day as columns, the list's size as a line over them. */
static void growth_chart(html *h, const bp_report_data *d)
{
    const bp_report_counts *g = &d->growth;
    size_t first = g->n > BP_REPORT_MAX_DAYS ? g->n - BP_REPORT_MAX_DAYS : 0;
    size_t n = g->n - first;
    long long total = d->growth_base, max = 0;
    for (size_t i = 0; i < first; i++)
        total += g->values[i];
    long long start = total;
    for (size_t i = first; i < g->n; i++)
        total += g->values[i];
    max = nice_max(total);
    double plot_w = W - LEFT - RIGHT, plot_h = H - TOP - BOTTOM;
    double bw = plot_w / (double)n;
    out(h, "<svg data-chart=\"growth\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"suppression list size by day\">",
        W, H);
    y_axis(h, max);
    long long run = start;
    out(h, "<polyline class=\"line\" points=\"");
    for (size_t i = first; i < g->n; i++) {
        run += g->values[i];
        out(h, "%.2f,%.2f ", LEFT + bw * ((double)(i - first) + 0.5), TOP + plot_h * (1.0 - (double)run / max));
    }
    out(h, "\"/>");
    run = start;
    for (size_t i = first; i < g->n; i++) {
        run += g->values[i];
        double bh = plot_h * (double)g->values[i] / (double)max;
        out(h,
            "<rect class=\"m\" data-value=\"%lld\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
            "fill=\"%s\"><title>",
            g->values[i], LEFT + bw * (double)(i - first) + bw * 0.1, TOP + plot_h - bh,
            bw * 0.8 > 0.5 ? bw * 0.8 : 0.5, bh, palette[0]);
        text(h, g->keys[i], 20);
        out(h, ": %lld new, %lld on the list</title></rect>", g->values[i], run);
    }
    out(h, "<text class=\"ax\" x=\"%d\" y=\"%d\">", LEFT, H - 8);
    text(h, g->keys[first], 20);
    out(h, "</text><text class=\"ax\" x=\"%d\" y=\"%d\" text-anchor=\"end\">", W - RIGHT, H - 8);
    text(h, g->keys[g->n - 1], 20);
    out(h, "</text></svg>\n");
    out(h,
        "<p class=\"note\">columns: new suppressions per day (by first evidence); line: the list's size "
        "(<span data-total=\"growth\">%lld</span>, lifted ones included; "
        "<span data-earlier=\"growth\">%lld</span> before the first day drawn)</p>\n",
        total, start);
}

static void rates_chart(html *h, const bp_report_rates *r)
{
    const int row_h = 22, label_w = 210;
    size_t shown = r->n > BP_REPORT_TOP ? BP_REPORT_TOP : r->n;
    int height = (int)shown * row_h + 6;
    double max = 0.001; /* the 0.1 % line is always on the scale */
    for (size_t i = 0; i < shown; i++)
        if (r->den[i] > 0 && (double)r->num[i] / (double)r->den[i] > max)
            max = (double)r->num[i] / (double)r->den[i];
    max *= 1.2;
    double plot_w = W - label_w - 150;
    out(h,
        "<svg data-chart=\"stream-complaints\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"complaint rate per "
        "stream\">",
        W, height);
    double x01 = label_w + plot_w * 0.001 / max;
    out(h, "<line class=\"limit\" x1=\"%.1f\" x2=\"%.1f\" y1=\"0\" y2=\"%d\"><title>0.1 %%</title></line>", x01, x01,
        height);
    for (size_t i = 0; i < shown; i++) {
        double y = 3 + (double)i * row_h;
        double rate = r->den[i] > 0 ? (double)r->num[i] / (double)r->den[i] : 0;
        out(h, "<text class=\"lb\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", label_w - 6, y + 15);
        text(h, r->keys[i], 30);
        out(h,
            "</text><rect class=\"m\" data-value=\"%lld\" x=\"%d\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" "
            "fill=\"%s\"><title>",
            r->num[i], label_w, y + 2, plot_w * rate / max, row_h - 6, rate > 0.001 ? "#e15759" : palette[0]);
        text(h, r->keys[i], 80);
        out(h, ": %lld of %lld</title></rect><text class=\"val\" x=\"%.1f\" y=\"%.1f\">%.3f %% (%lld/%lld)</text>",
            r->num[i], r->den[i], label_w + plot_w + 6, y + 15, rate * 100, r->num[i], r->den[i]);
    }
    out(h, "</svg>\n");
}

static void tile(html *h, const char *name, const char *label, long long v)
{
    out(h, "<div class=\"tile\"><div class=\"num\" data-tile=\"%s\">%lld</div><div class=\"lbl\">", name, v);
    text(h, label, 60);
    out(h, "</div></div>");
}

static void section_start(html *h, const char *id, const char *title, const char *sub)
{
    out(h, "<section id=\"%s\"><h2>", id);
    text(h, title, 100);
    out(h, "</h2>");
    if (sub != NULL) {
        out(h, "<p class=\"sub\">");
        text(h, sub, 300);
        out(h, "</p>");
    }
    out(h, "\n");
}

static void iso_day(long long t, char *buf, size_t size)
{
    if (!bp_utc_format(t, BP_UTC_MINUTE, buf, size))
        snprintf(buf, size, "?");
}

static const char style[] =
    "*{box-sizing:border-box}body{margin:0;font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1d2329;background:#f4f5f7}header{padding:16px 16px 4px}h1{font-size:1.35em;margin:0 0 4px}"
    "h2{font-size:1.05em;margin:0 0 6px}.meta,.sub,.note{color:#5a6570;font-size:.85em;margin:0 0 8px}"
    ".tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px;padding:8px 16px}"
    ".tile{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}"
    ".num{font-size:1.5em;font-weight:600}.lbl{color:#5a6570;font-size:.85em}"
    "main{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px;padding:8px 16px 24px}"
    "section{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:0}"
    "svg{width:100%;height:auto;display:block}.grid{stroke:#e3e6ea;stroke-width:1}"
    ".ax{font-size:13px;fill:#5a6570}.lb,.val{font-size:14px;fill:#1d2329}"
    ".line{fill:none;stroke:#1d2329;stroke-width:2}.limit{stroke:#e15759;stroke-dasharray:4 3}"
    ".legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 12px;font-size:.85em}"
    ".sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}"
    ".nodata{color:#5a6570;font-style:italic}table{border-collapse:collapse;font-size:.9em}"
    "td{padding:2px 8px 2px 0}@media (max-width:700px){main{grid-template-columns:minmax(0,1fr)}}";

bp_status bp_report_html(const bp_report_data *d, bp_strbuf *sb)
{
    html hh = {sb, BP_OK}, *h = &hh;
    char when[40], since[40];
    const char *title = d->title != NULL ? d->title : "bouncepipe report";
    iso_day(d->generated, when, sizeof(when));
    out(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
           "<meta name=\"generator\" content=\"bouncepipe " BP_VERSION "\">\n<title>");
    text(h, title, 100);
    raw(h, "</title>\n<style>");
    raw(h, style);
    raw(h, "</style>\n</head>\n<body>\n<header><h1>");
    text(h, title, 100);
    out(h, "</h1><p class=\"meta\">generated %s", when);
    if (d->since > 0) {
        iso_day(d->since, since, sizeof(since));
        out(h, " &middot; events since %s", since);
    }
    if (d->source != NULL) {
        out(h, " &middot; ");
        text(h, d->source, 200);
    }
    out(h, "</p></header>\n<div class=\"tiles\">");
    long long suppressed = 0;
    for (size_t i = 0; i < d->suppressed.n; i++)
        suppressed += d->suppressed.values[i];
    tile(h, "events", "events", d->events);
    for (size_t i = 0; i < d->by_action.n; i++) {
        char label[80];
        snprintf(label, sizeof(label), "action %s", d->by_action.keys[i]);
        out(h, "<div class=\"tile\"><div class=\"num\" data-tile=\"action:");
        text(h, d->by_action.keys[i], 20);
        out(h, "\">%lld</div><div class=\"lbl\">", d->by_action.values[i]);
        text(h, label, 60);
        out(h, "</div></div>");
    }
    tile(h, "suppressed", "suppressed now", suppressed);
    tile(h, "lifted", "lifted by an operator", d->lifted);
    if (d->quarantine >= 0)
        tile(h, "quarantine", "in quarantine", d->quarantine);
    out(h, "</div>\n<main>\n");

    section_start(h, "per-day", "Events per day", "by type, UTC days of the evidence");
    if (d->day_type.n_rows > 0 && d->day_type.n_cols > 0)
        stacked_columns(h, "events-per-day", &d->day_type, 1, "events per day by type");
    else
        no_data(h, "no events in the ledger for this period");
    out(h, "</section>\n");

    section_start(h, "receivers", "Receivers by category", "busiest receiving domains, events by category");
    if (d->domain_category.n_rows > 0 && d->domain_category.n_cols > 0)
        hbars(h, "receivers", NULL, &d->domain_category, "receiving domains by category");
    else
        no_data(h, "no events with a recipient domain");
    out(h, "</section>\n");

    section_start(h, "growth", "Suppression list", "growth of the list");
    if (d->growth.n > 0)
        growth_chart(h, d);
    else
        no_data(h, "nothing suppressed yet");
    out(h, "</section>\n");

    section_start(h, "streams", "Complaint rate per stream", "complaints per delivery; the dashed line is 0.1 %");
    if (d->stream_complaints.n > 0)
        rates_chart(h, &d->stream_complaints);
    else
        no_data(h, d->stream_missing);
    out(h, "</section>\n");

    section_start(h, "blocklists", "Blocklist hits", "rejections naming a blocklist: a signal about the sender");
    if (d->ip_blocklist.n_rows > 0 && d->ip_blocklist.n_cols > 0)
        hbars(h, "ip-blocklists", NULL, &d->ip_blocklist, "blocklist hits per sending IP");
    else
        no_data(h, d->ip_missing);
    if (d->blocklists.n > 0) {
        out(h, "<p class=\"sub\">by list</p>");
        hbars(h, "blocklists", &d->blocklists, NULL, "blocklist hits by list");
    } else {
        no_data(h, "no rejection named a blocklist");
    }
    out(h, "</section>\n");

    section_start(h, "rules", "Top rules", "events by the rule that decided their category");
    if (d->rules.n > 0)
        hbars(h, "rules", &d->rules, NULL, "events by deciding rule");
    else
        no_data(h, "no event was decided by a rule");
    out(h, "</section>\n");

    section_start(h, "quarantine", "Quarantine", "messages nothing was recognised in, kept to be replayed");
    if (d->quarantine >= 0) {
        out(h, "<p><span class=\"num\" data-value=\"%lld\">%lld</span> message(s)", d->quarantine, d->quarantine);
        if (d->quarantine_dir != NULL) {
            out(h, " in <code>");
            text(h, d->quarantine_dir, 200);
            out(h, "</code>");
        }
        out(h, "</p>\n");
    } else {
        no_data(h, "the quarantine directory could not be read");
    }
    out(h, "</section>\n</main>\n</body>\n</html>\n");
    return h->st;
}
