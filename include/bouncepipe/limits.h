/*
 * limits.h - every limit bouncepipe puts on untrusted input, with its reason.
 *
 * Modelled on SQLite's sqliteLimit.h: each limit has a value, a ceiling the value may not
 * exceed (checked at compile time), and the reason it exists.  A message over a limit is
 * never a crash or unbounded memory: it is processed as far as is safe and flagged, or
 * quarantined.  Override a value with -DBP_MAX_...=N at build time.
 */
#ifndef BOUNCEPIPE_LIMITS_H
#define BOUNCEPIPE_LIMITS_H

/* Bytes read of one message.  Bounces quote the original message; 64 MiB covers a bounced
 * message with large attachments.  Beyond it we read no further: the report parts come first
 * in every format we know, and the rest is the quoted original. */
#ifndef BP_MAX_MESSAGE_BYTES
#define BP_MAX_MESSAGE_BYTES (64u * 1024u * 1024u)
#endif
#if BP_MAX_MESSAGE_BYTES > 1024u * 1024u * 1024u
#error "BP_MAX_MESSAGE_BYTES must not exceed 1 GiB"
#endif

/* Bytes of one header field (unfolded) that we keep.  Postfix accepts 102400 bytes of
 * headers in total (header_size_limit); no legitimate field we read is longer than that. */
#ifndef BP_MAX_HEADER_BYTES
#define BP_MAX_HEADER_BYTES 102400u
#endif
#if BP_MAX_HEADER_BYTES > 1048576u
#error "BP_MAX_HEADER_BYTES must not exceed 1 MiB"
#endif

/* Header fields kept per MIME part; a bounce has a few dozen, 1000 bounds the walk. */
#ifndef BP_MAX_HEADERS_PER_PART
#define BP_MAX_HEADERS_PER_PART 1000u
#endif
#if BP_MAX_HEADERS_PER_PART > 100000u
#error "BP_MAX_HEADERS_PER_PART must not exceed 100000"
#endif

/* MIME nesting depth walked.  A report is at most depth 3 (report > message/rfc822 >
 * multipart of the original); Postfix allows 100 (mime_nesting_limit), GMime stops at 1024.
 * Deeper parts are ignored: recursion stays bounded. */
#ifndef BP_MAX_MIME_DEPTH
#define BP_MAX_MIME_DEPTH 32u
#endif
#if BP_MAX_MIME_DEPTH > 1024u
#error "BP_MAX_MIME_DEPTH must not exceed GMime's own 1024"
#endif

/* MIME parts walked per message; parts after this are ignored. */
#ifndef BP_MAX_MIME_PARTS
#define BP_MAX_MIME_PARTS 1000u
#endif
#if BP_MAX_MIME_PARTS > 100000u
#error "BP_MAX_MIME_PARTS must not exceed 100000"
#endif

/* What GMime is shown of one message.  GMime builds an object per header field and per MIME
 * part, about 650 bytes for a 7-byte "X-H: v" line and 2 KiB for a 15-byte empty part, and
 * keeps several copies of a long header: measured, 3.5 MB of header lines cost 320 MB and
 * 6 MB of empty parts 420 MB.  So before parsing, the input is cut (at a line start) where
 * it exceeds any of these; what comes before the cut is processed as usual and the message
 * is flagged (bp_mime_message.input_cut).  Counted over the whole message, body included,
 * because telling header from body needs the parse being protected: a report's own header
 * and field lines come first and are a few hundred; a DSN for 6,000 recipients still fits.
 *   BP_MAX_MIME_HEADER_LINES  lines that look like a header field ("Name:") or continue one
 *                             (start with white space)
 *   BP_MAX_MIME_HEADER_BYTES  bytes of those lines (a 4 MiB header field costs GMime ~25 MB)
 *   BP_MAX_MIME_DASH_LINES    lines starting with "--": every MIME boundary is one */
#ifndef BP_MAX_MIME_HEADER_LINES
#define BP_MAX_MIME_HEADER_LINES 25000u
#endif
#if BP_MAX_MIME_HEADER_LINES > 1000000u
#error "BP_MAX_MIME_HEADER_LINES must not exceed 1 million"
#endif
#ifndef BP_MAX_MIME_HEADER_BYTES
#define BP_MAX_MIME_HEADER_BYTES (4u * 1024u * 1024u)
#endif
#if BP_MAX_MIME_HEADER_BYTES > 64u * 1024u * 1024u
#error "BP_MAX_MIME_HEADER_BYTES must not exceed 64 MiB"
#endif
#if BP_MAX_MIME_HEADER_BYTES < BP_MAX_HEADER_BYTES
#error "BP_MAX_MIME_HEADER_BYTES must leave room for one BP_MAX_HEADER_BYTES field"
#endif
#ifndef BP_MAX_MIME_DASH_LINES
#define BP_MAX_MIME_DASH_LINES (4u * BP_MAX_MIME_PARTS)
#endif
#if BP_MAX_MIME_DASH_LINES > 400000u
#error "BP_MAX_MIME_DASH_LINES must not exceed 400000"
#endif

/* Bytes of one text part decoded for scanning.  The bounce explanation is at the top of its
 * part; a quoted original can be large, and is never needed past this. */
#ifndef BP_MAX_TEXT_BYTES
#define BP_MAX_TEXT_BYTES (1024u * 1024u)
#endif
#if BP_MAX_TEXT_BYTES > 64u * 1024u * 1024u
#error "BP_MAX_TEXT_BYTES must not exceed 64 MiB"
#endif

/* Bytes decoded from all parts of one message together.  A message of many text parts (or
 * of text in a charset that doubles in UTF-8) could otherwise decode several times its own
 * size into memory; parts past the budget keep an empty body, flagged truncated. */
#ifndef BP_MAX_DECODED_BYTES
#define BP_MAX_DECODED_BYTES (8u * 1024u * 1024u)
#endif
#if BP_MAX_DECODED_BYTES > 256u * 1024u * 1024u
#error "BP_MAX_DECODED_BYTES must not exceed 256 MiB"
#endif
#if BP_MAX_DECODED_BYTES < BP_MAX_TEXT_BYTES
#error "BP_MAX_DECODED_BYTES must hold at least one BP_MAX_TEXT_BYTES part"
#endif

/* Recipient blocks per report.  An MTA bounces at most its recipient limit per message
 * (Postfix smtpd_recipient_limit 1000); more is an attack, and the rest are counted, not kept. */
#ifndef BP_MAX_RECIPIENTS
#define BP_MAX_RECIPIENTS 1000u
#endif
#if BP_MAX_RECIPIENTS > 100000u
#error "BP_MAX_RECIPIENTS must not exceed 100000"
#endif

/* Bytes of diagnostic text kept per event.  SMTP replies are at most 512 bytes per line
 * (RFC 5321 4.5.3.1.5); multi-line replies and text bounces run longer; 1000 keeps the
 * reason and bounds the ledger and the regex work. */
#ifndef BP_MAX_DIAGNOSTIC_BYTES
#define BP_MAX_DIAGNOSTIC_BYTES 1000u
#endif
#if BP_MAX_DIAGNOSTIC_BYTES > 65536u
#error "BP_MAX_DIAGNOSTIC_BYTES must not exceed 64 KiB"
#endif

/* Bytes of an e-mail address kept: RFC 5321 4.5.3.1.3 limits a path to 256 octets. */
#ifndef BP_MAX_ADDRESS_BYTES
#define BP_MAX_ADDRESS_BYTES 320u
#endif
#if BP_MAX_ADDRESS_BYTES > 4096u
#error "BP_MAX_ADDRESS_BYTES must not exceed 4096"
#endif

/* PCRE2 effort per search (util/regex.c sets these on every match context).
 *   BP_PCRE2_MATCH_LIMIT     steps of the matcher (pcre2_set_match_limit).  PCRE2 counts them
 *                            afresh at each start position, and a step may be followed by a
 *                            scan of a run of characters that is not counted, so this limit
 *                            alone does not bound a search's time: a 300 KB line made one
 *                            search run 1.4 s before hitting it.  What bounds the time is this
 *                            limit per start position, the search window below (start
 *                            positions per call), linear family patterns, and the per-message
 *                            budget (BP_EFFORT_*) checked between calls.
 *   BP_PCRE2_DEPTH_LIMIT     nested backtracking points (pcre2_set_depth_limit).
 *   BP_PCRE2_HEAP_LIMIT_KIB  heap for the interpreter's backtracking frames, in KiB
 *                            (pcre2_set_heap_limit; PCRE2's default is 20 GB).
 * A search that hits a limit counts as no match: a text built to make a pattern backtrack
 * never decides anything. */
#ifndef BP_PCRE2_MATCH_LIMIT
#define BP_PCRE2_MATCH_LIMIT 10000u
#endif
#if BP_PCRE2_MATCH_LIMIT > 10000000u
#error "BP_PCRE2_MATCH_LIMIT must not exceed 10 million"
#endif
#ifndef BP_PCRE2_DEPTH_LIMIT
#define BP_PCRE2_DEPTH_LIMIT 1000u
#endif
#if BP_PCRE2_DEPTH_LIMIT > 100000u
#error "BP_PCRE2_DEPTH_LIMIT must not exceed 100000"
#endif
#ifndef BP_PCRE2_HEAP_LIMIT_KIB
#define BP_PCRE2_HEAP_LIMIT_KIB 8192u
#endif
#if BP_PCRE2_HEAP_LIMIT_KIB > 262144u
#error "BP_PCRE2_HEAP_LIMIT_KIB must not exceed 256 MiB"
#endif

/* Long subjects (util/regex.c).
 *   BP_REGEX_JIT_SUBJECT_BYTES  a search with more text than this after its start offset is
 *                               run JIT-compiled: under PCRE2_MATCH_INVALID_UTF the interpreter
 *                               validates the whole rest of the subject at every call, so a
 *                               loop of searches through a text (one per recipient line)
 *                               would be quadratic; JIT code does not.  Real explanation texts
 *                               are a few kB and keep the lazy JIT of their callers.
 *   BP_REGEX_WINDOW_BYTES       start positions one call to pcre2_match() may try for a
 *                               windowed pattern (the text-bounce families) before the search
 *                               yields to the effort budget and goes on with the next window. */
#ifndef BP_REGEX_JIT_SUBJECT_BYTES
#define BP_REGEX_JIT_SUBJECT_BYTES (16u * 1024u)
#endif
#if BP_REGEX_JIT_SUBJECT_BYTES > BP_MAX_TEXT_BYTES
#error "BP_REGEX_JIT_SUBJECT_BYTES must not exceed BP_MAX_TEXT_BYTES"
#endif
#ifndef BP_REGEX_WINDOW_BYTES
#define BP_REGEX_WINDOW_BYTES (4u * 1024u)
#endif
#if BP_REGEX_WINDOW_BYTES < 1024u || BP_REGEX_WINDOW_BYTES > BP_MAX_TEXT_BYTES
#error "BP_REGEX_WINDOW_BYTES must lie between 1 KiB and BP_MAX_TEXT_BYTES"
#endif

/* The effort budget of one message (effort.h): after it the rest of the message is treated
 * as unrecognised text (recorded as such, or quarantined; never lost), and explain says so.
 *   BP_EFFORT_MILLISECONDS     CPU time spent reading the report and matching rules (the
 *                              thread's: a loaded host must not cut a message short).  Pipe
 *                              mode must answer within 0.5 s a message of up to 1 MiB on this
 *                              2-core host (bench/hostile.py); process start, GMime and the
 *                              store's commit take the rest.  A backstop: real reports take a
 *                              few ms (a text bounce for 1,000 recipients about 50), and the
 *                              work budget below is met first.
 *   BP_EFFORT_REGEX_SEARCHES   PCRE2 searches (calls of up to BP_REGEX_WINDOW_BYTES start
 *                              positions each): deterministic, unlike time, so a hostile
 *                              message is cut at the same place on every machine. */
#ifndef BP_EFFORT_MILLISECONDS
#define BP_EFFORT_MILLISECONDS 250u
#endif
#if BP_EFFORT_MILLISECONDS > 60000u
#error "BP_EFFORT_MILLISECONDS must not exceed one minute"
#endif
#ifndef BP_EFFORT_REGEX_SEARCHES
#define BP_EFFORT_REGEX_SEARCHES 100000u
#endif
#if BP_EFFORT_REGEX_SEARCHES > 100000000u
#error "BP_EFFORT_REGEX_SEARCHES must not exceed 100 million"
#endif

/* Bytes of one rule-file line and of one regex: rule files are written by people. */
#ifndef BP_MAX_RULE_LINE_BYTES
#define BP_MAX_RULE_LINE_BYTES 8192u
#endif
#if BP_MAX_RULE_LINE_BYTES > 65536u
#error "BP_MAX_RULE_LINE_BYTES must not exceed 64 KiB"
#endif

/* Bytes of one accounting CSV record (all its lines).  PowerMTA records are a few hundred
 * bytes; quoted diagnostics can span lines; 64 KiB bounds a record cut mid-quote. */
#ifndef BP_MAX_ACCT_LINE_BYTES
#define BP_MAX_ACCT_LINE_BYTES 65536u
#endif
#if BP_MAX_ACCT_LINE_BYTES > 1048576u
#error "BP_MAX_ACCT_LINE_BYTES must not exceed 1 MiB"
#endif

/* Columns of one accounting record: record-fields lists at most a few dozen. */
#ifndef BP_MAX_ACCT_FIELDS
#define BP_MAX_ACCT_FIELDS 256u
#endif
#if BP_MAX_ACCT_FIELDS > 4096u
#error "BP_MAX_ACCT_FIELDS must not exceed 4096"
#endif

/* Bytes of report attachments decoded per message (mime.c; all such parts together): the
 * compressed DMARC aggregate report, or its XML when sent uncompressed.  A report past the
 * XML limit below is ~1.3 MiB gzip-compressed at the ~50:1 a real report compresses to
 * (measured on generated reports of 1,000 and 50,000 records), so 4 MiB leaves room and still
 * bounds what libzip allocates for a zip's central directory (an entry needs 46 bytes of it;
 * 95,000 entries in 8 MiB cost libzip 28 MB). */
#ifndef BP_MAX_ATTACHMENT_BYTES
#define BP_MAX_ATTACHMENT_BYTES (4u * 1024u * 1024u)
#endif
#if BP_MAX_ATTACHMENT_BYTES > 64u * 1024u * 1024u
#error "BP_MAX_ATTACHMENT_BYTES must not exceed 64 MiB"
#endif

/* DMARC aggregate reports (src/report/dmarc*.c, docs/dmarc.md).  A report over one of these
 * is refused as a whole, with a reason naming the limit: it is quarantined, never half read.
 *   BP_MAX_DMARC_XML_BYTES     XML bytes read of one report, after decompression.  The XML is
 *                              streamed through the parser, so this bounds time, not memory:
 *                              50,000 records are about 30 MB.
 *   BP_MAX_DMARC_RATIO         decompressed : compressed bytes, checked once the output passes
 *                              BP_DMARC_RATIO_GRACE_BYTES.  Real reports compress 15-50:1, a
 *                              report of identical records 200:1; deflate's own ceiling is
 *                              1032:1, which is what a bomb uses, so it stops at the first MiB.
 *   BP_MAX_DMARC_ZIP_ENTRIES   entries of a zip: a report zip holds one XML file.
 *   BP_MAX_DMARC_RECORDS       <record> elements: one per source IP and result tuple; a large
 *                              sender's daily Google report has a few thousand.  Each kept
 *                              record costs ~400 bytes of the message's arena.
 *   BP_MAX_DMARC_AUTH_RESULTS  <dkim> and <spf> results of one record together: DMARCbis asks
 *                              for at most 100 signatures per row, and one or two SPF results.
 *   BP_MAX_DMARC_LIST_ITEMS    <error> elements of a report, <reason> elements of a record.
 *   BP_MAX_DMARC_FIELD_BYTES   bytes kept of one text field (org_name, human_result, comment,
 *                              error, ...): longer text is cut, not refused; domains are at
 *                              most 253 bytes. */
#ifndef BP_MAX_DMARC_XML_BYTES
#define BP_MAX_DMARC_XML_BYTES (64u * 1024u * 1024u)
#endif
#if BP_MAX_DMARC_XML_BYTES > 512u * 1024u * 1024u
#error "BP_MAX_DMARC_XML_BYTES must not exceed 512 MiB"
#endif
#ifndef BP_MAX_DMARC_RATIO
#define BP_MAX_DMARC_RATIO 300u
#endif
#if BP_MAX_DMARC_RATIO > 1032u || BP_MAX_DMARC_RATIO < 10u
#error "BP_MAX_DMARC_RATIO must lie between 10 and deflate's 1032"
#endif
#ifndef BP_DMARC_RATIO_GRACE_BYTES
#define BP_DMARC_RATIO_GRACE_BYTES (1024u * 1024u)
#endif
#if BP_DMARC_RATIO_GRACE_BYTES > BP_MAX_DMARC_XML_BYTES
#error "BP_DMARC_RATIO_GRACE_BYTES must not exceed BP_MAX_DMARC_XML_BYTES"
#endif
#ifndef BP_MAX_DMARC_ZIP_ENTRIES
#define BP_MAX_DMARC_ZIP_ENTRIES 16u
#endif
#if BP_MAX_DMARC_ZIP_ENTRIES > 1000u
#error "BP_MAX_DMARC_ZIP_ENTRIES must not exceed 1000"
#endif
#ifndef BP_MAX_DMARC_RECORDS
#define BP_MAX_DMARC_RECORDS 50000u
#endif
#if BP_MAX_DMARC_RECORDS > 1000000u
#error "BP_MAX_DMARC_RECORDS must not exceed 1 million"
#endif
#ifndef BP_MAX_DMARC_AUTH_RESULTS
#define BP_MAX_DMARC_AUTH_RESULTS 128u
#endif
#if BP_MAX_DMARC_AUTH_RESULTS > 10000u
#error "BP_MAX_DMARC_AUTH_RESULTS must not exceed 10000"
#endif
#ifndef BP_MAX_DMARC_LIST_ITEMS
#define BP_MAX_DMARC_LIST_ITEMS 32u
#endif
#if BP_MAX_DMARC_LIST_ITEMS > 10000u
#error "BP_MAX_DMARC_LIST_ITEMS must not exceed 10000"
#endif
#ifndef BP_MAX_DMARC_FIELD_BYTES
#define BP_MAX_DMARC_FIELD_BYTES 512u
#endif
#if BP_MAX_DMARC_FIELD_BYTES > 65536u || BP_MAX_DMARC_FIELD_BYTES < 256u
#error "BP_MAX_DMARC_FIELD_BYTES must lie between 256 (a domain name) and 64 KiB"
#endif

/* What the store keeps of a DMARC aggregate report (src/store/dmarc_store.c, docs/dmarc.md):
 *   BP_MAX_DMARC_STORE_BYTES   text one report writes (its records' identifiers, auth results
 *                              and reasons).  A report of the largest real size (a few thousand
 *                              records, two or three auth results each) writes well under 1 MB;
 *                              a hostile one could otherwise store its 64 MiB of XML.  Past it
 *                              the records are still stored whole for the counts (source IP,
 *                              count, results, alignment, header_from) but without their auth
 *                              results, reasons and envelope identifiers, and the report says
 *                              how many (detail_cut).
 *   BP_MAX_DMARC_STORED_COUNT  messages one record may claim; a larger count is stored as this
 *                              (a record is one IP's day at one receiver: a billion is beyond any
 *                              real sender), so that sums over 9 billion records cannot overflow
 *                              the 64-bit integers of either backend. */
#ifndef BP_MAX_DMARC_STORE_BYTES
#define BP_MAX_DMARC_STORE_BYTES (4u * 1024u * 1024u)
#endif
#if BP_MAX_DMARC_STORE_BYTES > 64u * 1024u * 1024u
#error "BP_MAX_DMARC_STORE_BYTES must not exceed 64 MiB"
#endif
#ifndef BP_MAX_DMARC_STORED_COUNT
#define BP_MAX_DMARC_STORED_COUNT 1000000000ull
#endif
#if BP_MAX_DMARC_STORED_COUNT > 1000000000000ull
#error "BP_MAX_DMARC_STORED_COUNT must not exceed 10^12"
#endif

/* Reverse DNS of `bouncepipe dmarc --resolve` (src/cli/cmd_dmarc.c): each lookup is one
 * getnameinfo() with the resolver held to one try of one second per server (RES_OPTIONS), and
 * the run to BP_DMARC_RESOLVE_SECONDS of lookups and BP_DMARC_RESOLVE_MAX addresses (the
 * busiest first); the rest stay unresolved until the next run, the names found are cached in
 * the store for BP_DMARC_RESOLVE_TTL_DAYS.  An operator command must answer in seconds
 * whatever DNS does. */
#ifndef BP_DMARC_RESOLVE_SECONDS
#define BP_DMARC_RESOLVE_SECONDS 10u
#endif
#if BP_DMARC_RESOLVE_SECONDS > 300u
#error "BP_DMARC_RESOLVE_SECONDS must not exceed 300"
#endif
#ifndef BP_DMARC_RESOLVE_MAX
#define BP_DMARC_RESOLVE_MAX 200u
#endif
#if BP_DMARC_RESOLVE_MAX > 10000u
#error "BP_DMARC_RESOLVE_MAX must not exceed 10000"
#endif
#ifndef BP_DMARC_RESOLVE_TTL_DAYS
#define BP_DMARC_RESOLVE_TTL_DAYS 7u
#endif
#if BP_DMARC_RESOLVE_TTL_DAYS > 365u
#error "BP_DMARC_RESOLVE_TTL_DAYS must not exceed 365"
#endif

/* ---- What the store keeps (src/store/store.c; docs/store.md "Bounds") --------------------
 * Anyone can mail the bounce domain, and every byte the store writes stays there: each field
 * it writes has a cap (longer text is cut at a UTF-8 character boundary), a message's own
 * facts (Message-ID, source, original Message-ID, Reporting-MTA, Envelope-Id, Arrival-Date)
 * are kept once per message instead of on each of its rows, and the text one message adds
 * is bounded as a whole.  A recipient longer than BP_MAX_ADDRESS_BYTES is not an address: its
 * row is kept without one (evidence only). */

/* Message-IDs (the report's and the original's).  RFC 5322 lines are at most 998 bytes; real
 * ids are under 250.  A 100 KB Message-ID copied onto 1,000 rows was 100 MB. */
#ifndef BP_MAX_STORED_ID_BYTES
#define BP_MAX_STORED_ID_BYTES 512u
#endif
#if BP_MAX_STORED_ID_BYTES > 998u
#error "BP_MAX_STORED_ID_BYTES must not exceed RFC 5322's 998-byte line"
#endif

/* MTA names (Reporting-MTA, Remote-MTA): "dns; " and a domain name (at most 253 bytes) or an
 * address literal. */
#ifndef BP_MAX_STORED_HOST_BYTES
#define BP_MAX_STORED_HOST_BYTES 320u
#endif
#if BP_MAX_STORED_HOST_BYTES > 4096u
#error "BP_MAX_STORED_HOST_BYTES must not exceed 4096"
#endif

/* Envelope ids: RFC 3461 ENVID is at most 100 characters, xtext-encoded at most 300 bytes. */
#ifndef BP_MAX_STORED_ENVID_BYTES
#define BP_MAX_STORED_ENVID_BYTES 300u
#endif
#if BP_MAX_STORED_ENVID_BYTES > 4096u
#error "BP_MAX_STORED_ENVID_BYTES must not exceed 4096"
#endif

/* Where a unit came from: a file path (PATH_MAX is 4096), PATH#N, "-". */
#ifndef BP_MAX_STORED_SOURCE_BYTES
#define BP_MAX_STORED_SOURCE_BYTES 1024u
#endif
#if BP_MAX_STORED_SOURCE_BYTES > 4096u
#error "BP_MAX_STORED_SOURCE_BYTES must not exceed PATH_MAX (4096)"
#endif

/* Short fields: status, SMTP code, category, feedback type, rule id, family, recipient_from,
 * Arrival-Date, source IP, job id, blocklist, the MTA's category.  The longest legitimate one
 * is a date with its comment (about 40 bytes). */
#ifndef BP_MAX_STORED_TOKEN_BYTES
#define BP_MAX_STORED_TOKEN_BYTES 128u
#endif
#if BP_MAX_STORED_TOKEN_BYTES > 1024u
#error "BP_MAX_STORED_TOKEN_BYTES must not exceed 1024"
#endif

/* An operator's reason (remove --reason, import --reason): a sentence. */
#ifndef BP_MAX_STORED_NOTE_BYTES
#define BP_MAX_STORED_NOTE_BYTES 1000u
#endif
#if BP_MAX_STORED_NOTE_BYTES > 65536u
#error "BP_MAX_STORED_NOTE_BYTES must not exceed 64 KiB"
#endif

/* A VMTA or stream name kept as a signal (signal_fields.h): PowerMTA's virtual-mta names and
 * the values of an X-Traffic-Type header are short words ("vmta-pool-3", "transactional");
 * 64 bytes leaves room, and keeps each such name a sane Prometheus label value and argument
 * of an alert's command (signals.h).  Anyone can mail the bounce domain a forged original:
 * a longer value is no signal and is left out. */
#ifndef BP_MAX_SIGNAL_TOKEN_BYTES
#define BP_MAX_SIGNAL_TOKEN_BYTES 64u
#endif
#if BP_MAX_SIGNAL_TOKEN_BYTES > BP_MAX_STORED_TOKEN_BYTES
#error "BP_MAX_SIGNAL_TOKEN_BYTES must not exceed BP_MAX_STORED_TOKEN_BYTES (the store keeps it whole)"
#endif

/* Text one unit (a message, an accounting record) adds to the ledger, all its rows together.
 * A report for 1,000 recipients with their full diagnostics needs about 1 MB of it at the
 * caps above; 256 KiB keeps every diagnostic of an ordinary report (a few hundred bytes each
 * for up to a few hundred recipients).  Rows written after the budget is spent keep what the
 * suppression list and lookups need (recipient, type, action, category, feedback type,
 * status, SMTP code, rule, family, blocklist) and store the free text (diagnostic, MTA names,
 * ids, dates) as NULL.  With it, a message grows the store by at most this plus about 2 KB per
 * recipient row (the address in the ledger, its index, the suppression list and the fold
 * state), well under ten times the message's own size plus 1 MB (tests/system/store_safety.py). */
#ifndef BP_MAX_UNIT_STORE_BYTES
#define BP_MAX_UNIT_STORE_BYTES (256u * 1024u)
#endif
#if BP_MAX_UNIT_STORE_BYTES > 16u * 1024u * 1024u
#error "BP_MAX_UNIT_STORE_BYTES must not exceed 16 MiB"
#endif
#if BP_MAX_UNIT_STORE_BYTES < 4u * BP_MAX_DIAGNOSTIC_BYTES
#error "BP_MAX_UNIT_STORE_BYTES must hold a few full diagnostics"
#endif

/* An address's identity key (src/store/identity.c): the address case-folded (Unicode full
 * case folding, NFC).  Folding can make a string longer (U+0390 is 2 bytes, its folding 6):
 * at most three times the address.  A fold longer than this is not used: the key is then
 * the address with its ASCII letters lowered, as for text that is not UTF-8. */
#ifndef BP_MAX_ADDRESS_KEY_BYTES
#define BP_MAX_ADDRESS_KEY_BYTES (3u * BP_MAX_ADDRESS_BYTES)
#endif
#if BP_MAX_ADDRESS_KEY_BYTES > 3u * BP_MAX_ADDRESS_BYTES || BP_MAX_ADDRESS_KEY_BYTES < BP_MAX_ADDRESS_BYTES
#error "BP_MAX_ADDRESS_KEY_BYTES must lie between BP_MAX_ADDRESS_BYTES and three times it"
#endif

/* One delivery failure reported through two channels (docs/store.md "Two channels"):
 * PowerMTA writes the accounting record when it gives up and mails its own DSN at once, so
 * the two evidence times (timeLogged, the DSN's Date) lie seconds apart, minutes when the
 * DSN waits in a queue.  Reports of the same recipient and status further apart than this
 * are two failures.  The ceiling: beyond a few hours two real failures (a retry later the same
 * day) would be taken for one, and soft bounces count distinct days. */
#ifndef BP_PAIR_WINDOW_SECONDS
#define BP_PAIR_WINDOW_SECONDS 1800
#endif
#if BP_PAIR_WINDOW_SECONDS < 60 || BP_PAIR_WINDOW_SECONDS > 4 * 3600
#error "BP_PAIR_WINDOW_SECONDS must lie between a minute and four hours"
#endif

/* Reports of the other channel read as candidates for one new report, nearest in time first.
 * Anyone can mail the bounce domain: a flood of forged DSNs for one recipient must not make
 * each new report read them all.  A real failure has one report per channel. */
#ifndef BP_MAX_PAIR_CANDIDATES
#define BP_MAX_PAIR_CANDIDATES 32
#endif
#if BP_MAX_PAIR_CANDIDATES < 2 || BP_MAX_PAIR_CANDIDATES > 1000
#error "BP_MAX_PAIR_CANDIDATES must lie between 2 and 1000"
#endif

#endif
