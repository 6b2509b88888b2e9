/*
 * dmarc_report.h - the DMARC aggregate report as data: what the reader (dmarc.h) fills in,
 * what an event of type dmarc-report points to (event.h), what the store keeps
 * (dmarc_store.h) and what the printer prints.
 *
 * On the ground floor with event.h: the report stage makes these, the core hands them on in
 * events, and the store and the printers read them, so the header depends on nothing (the
 * MIME part a report was read from is only named, as struct bp_part).
 *
 * Ownership: a report and everything it points to belong to one arena (the message's, or the
 * one a store reader was given); the types own nothing.
 */
#ifndef BOUNCEPIPE_DMARC_REPORT_H
#define BOUNCEPIPE_DMARC_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "bouncepipe/status.h"

struct bp_part;

/** What the reader made of a message. */
typedef enum bp_dmarc_outcome {
    BP_DMARC_NOT_REPORT = 0, /**< no aggregate report in the message (nothing was decompressed) */
    BP_DMARC_READ,           /**< a report, read: the fields below are filled in */
    BP_DMARC_REFUSED,        /**< a report, refused: refusal and reason say why */
} bp_dmarc_outcome;

/** How the report's XML was packed, found from its bytes. */
typedef enum bp_dmarc_packing {
    BP_DMARC_PACK_NONE = 0, /**< not known (nothing read) */
    BP_DMARC_PACK_XML,      /**< plain XML */
    BP_DMARC_PACK_GZIP,
    BP_DMARC_PACK_ZIP,
} bp_dmarc_packing;

/** A <reason> of <policy_evaluated>: why the disposition differs from the policy. */
typedef struct bp_dmarc_reason {
    const char *type;    /**< lower case: forwarded, sampled_out, local_policy, ... */
    const char *comment; /**< free text, or NULL */
} bp_dmarc_reason;

/** A <dkim> of <auth_results>: one signature checked, uninterpreted with respect to DMARC. */
typedef struct bp_dmarc_dkim {
    const char *domain;       /**< d=, lower case */
    const char *selector;     /**< s=, or NULL */
    const char *result;       /**< lower case: pass, fail, none, policy, neutral, temperror, permerror */
    const char *human_result; /**< or NULL */
} bp_dmarc_dkim;

/** An <spf> of <auth_results>. */
typedef struct bp_dmarc_spf {
    const char *domain; /**< lower case */
    const char *scope;  /**< mfrom, helo, or NULL */
    const char *result; /**< lower case: pass, fail, softfail, neutral, none, temperror, permerror */
    const char *human_result;
} bp_dmarc_spf;

/** One <record>: messages from one source IP with the same results and identifiers. */
typedef struct bp_dmarc_record {
    const char *source_ip; /**< validated, in its canonical text form (inet_ntop) */
    uint64_t count;        /**< messages */
    /* <policy_evaluated> */
    const char *disposition; /**< lower case: none, quarantine, reject (DMARCbis also pass); or NULL */
    const char *dkim;        /**< DMARC-aligned DKIM result: pass, fail, or NULL when absent */
    const char *spf;         /**< DMARC-aligned SPF result: pass, fail, or NULL */
    bp_dmarc_reason *reasons;
    size_t n_reasons;
    /* <identifiers>, lower case */
    const char *header_from;
    const char *envelope_from; /**< NULL when absent; "" when present but empty (null reverse-path) */
    const char *envelope_to;
    /* <auth_results> */
    bp_dmarc_dkim *dkim_results;
    size_t n_dkim;
    bp_dmarc_spf *spf_results;
    size_t n_spf;
    /* alignment, as RFC 7489 defines it: policy_evaluated's dkim and spf are the results of
     * the aligned identifiers, and DMARC passes when either passes */
    int dkim_aligned; /**< policy_evaluated dkim is pass */
    int spf_aligned;  /**< policy_evaluated spf is pass */
    int dmarc_pass;   /**< dkim_aligned || spf_aligned */
} bp_dmarc_record;

typedef struct bp_dmarc_report {
    bp_dmarc_outcome outcome;
    bp_status refusal;  /**< when refused: BP_ERR_LIMIT (a limit of limits.h) or BP_ERR_PARSE */
    const char *reason; /**< when refused: why, in words, naming the limit; NULL otherwise */

    /* the attachment */
    const struct bp_part *attachment; /**< the part read (mime.h), or NULL; never stored */
    const char *filename;             /**< its file name (cleaned), or NULL */
    bp_dmarc_packing packing;
    size_t packed_bytes; /**< bytes of the attachment */
    size_t xml_bytes;    /**< bytes of XML read (after decompression) */
    /* what the message says besides the XML, lower case (NULL when absent) */
    const char *subject_domain;    /**< Subject "Report Domain: X" */
    const char *subject_submitter; /**< Subject "Submitter: X" */
    const char *subject_report_id; /**< Subject "Report-ID: X", without <> (case kept) */
    const char *name_receiver;     /**< file name receiver!domain!begin!end[!id].ext: receiver */
    const char *name_domain;       /**< ... and policy domain */

    /* <feedback> */
    const char *xml_namespace; /**< the root's namespace (DMARCbis: urn:ietf:params:xml:ns:dmarc-2.0) or NULL */
    const char *version;       /**< <version>, or NULL */
    /* <report_metadata> */
    const char *org_name; /**< required */
    const char *email;    /**< or NULL */
    const char *extra_contact_info;
    const char *report_id; /**< required; with org_name, the report's identity */
    const char *generator; /**< DMARCbis */
    int64_t begin;         /**< date_range, seconds since the epoch (required) */
    int64_t end;
    const char **errors; /**< <error> texts */
    size_t n_errors;
    /* <policy_published>; strings lower case, NULL when absent */
    const char *domain; /**< required */
    const char *adkim;  /**< r, s */
    const char *aspf;
    const char *p; /**< none, quarantine, reject */
    const char *sp;
    const char *np;               /**< RFC 9091 / DMARCbis */
    int pct;                      /**< 0-100, or -1 when absent or not a number (gone in DMARCbis) */
    const char *fo;               /**< as published, e.g. "0", "1:d" */
    const char *testing;          /**< DMARCbis: y, n */
    const char *discovery_method; /**< DMARCbis: psl, treewalk */

    bp_dmarc_record *records;
    size_t n_records;
    size_t cap_records;
    uint64_t messages;      /**< sum of the records' counts (saturating) */
    uint64_t messages_pass; /**< of them, in records that pass DMARC */
} bp_dmarc_report;

#endif
