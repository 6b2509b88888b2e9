/*
 * textbounce_families.c - the table of non-standard bounce formats (see text_families.h
 * for what each field means).
 *
 * Grouped by family: MTAs (qmail, Exim, Sendmail, Postfix, Courier, OpenSMTPD, DragonFly),
 * groupware and gateways (Lotus Notes/Domino, GroupWise, Exchange 2003/2007, IMail,
 * MailMarshal, McAfee/MXLogic, Barracuda, Trend Micro, m-FILTER, Active!Hunter, Zoho,
 * MailFoundry), services (SendGrid, Google Groups and Gmail,
 * Mail.ru, Yahoo, Verizon), Japanese carriers (au/KDDI, EZweb, NTT docomo, SoftBank,
 * Biglobe) and European providers (GMX, 1&1, Orange).  Order matters only where two
 * signatures could both match: the more specific entry comes first.
 *
 * Pattern conventions: a recipient pattern is anchored at a line start (^) so that an
 * address quoted inside a diagnostic is not taken for another recipient; "rcpt" captures
 * the address (brackets and quotes are dropped by the address normaliser).
 *
 * Ownership: the table is static, read-only data.
 */
#include "text_families.h"

/* An address inside optional <> or quotes, as the "rcpt" group. */
#define RCPT_ANY "[\"<]?(?<rcpt>[^\\s<>\"@]+@[^\\s<>\":;,]+?)[\">]?"

const bp_text_family bp_text_families[] = {
    /* ---- Google: Groups and Workspace name the recipient only in X-Failed-Recipients ---
     * A Groups notice is recognised by its help link (groups.google.com/support), in
     * whatever language its prose is. */
    {
        .name = "googlegroups",
        .from = "mailer-daemon@google(?:mail)?\\.com",
        .body = "groups\\.google\\.com",
        .end = "^-{3,} Original message -{3,}",
        .diag_mode = BP_TEXT_DIAG_SECTION,
        .default_category = "policy-related", /* the group refused the post; it may exist */
    },
    {
        .name = "gmail",
        .from = "mailer-daemon@google(?:mail)?\\.com",
        .start = "^\\*\\* (?:Message not delivered|Address not found|Message blocked|Delivery incomplete) \\*\\*"
                 "|^Delivery to the following recipients? (?:failed|has been delayed)"
                 "|^Delivery to these recipients or (?:groups|distribution lists) is complete",
        .end = "^-{3,} Original message -{3,}",
        .rcpt = "^[^\\S\\n]+" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
        .shared_diag = "^(?:The (?:error that the other server returned was|response (?:from the remote server )?was):"
                       "|Technical details of (?:permanent|temporary) failure:)",
    },
    {
        .name = "gmail",
        .from = "mailer-daemon@google(?:mail)?\\.com",
        .body = "^\\*\\* (?:Message not delivered|Address not found|Message blocked) \\*\\*",
        .end = "^-{3,} Original message -{3,}",
        .diag_mode = BP_TEXT_DIAG_SECTION,
    },
    /* ---- qmail and the providers that run it (Yahoo, EZweb) --------------------------- */
    {
        .name = "qmail",
        .body = "^Hi\\. This is the qmail|qmail-send program|^Hi\\. This is the .{1,80} program at"
                "|I'm afraid I wasn't able to deliver your message to the following addresses",
        .start = "I'm afraid I wasn't able to deliver|wasn't able to deliver your message|^Hi\\. This is the",
        .end = "^--- Below this line is a copy of the message|^--- Enclosed (?:is a copy|are the original)",
        .rcpt = "^<(?<rcpt>[^\\s<>][^\\s<>@]*+@[^\\s<>]+)>:",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {
        .name = "yahoo",
        .body = "^Sorry, we were unable to deliver your message to the following address",
        .start = "^Sorry, we were unable to deliver your message",
        .end = "^--- Below this line is a copy of the message",
        .rcpt = "^<(?<rcpt>[^\\s<>][^\\s<>@]*+@[^\\s<>]+)>:",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {
        .name = "ezweb",
        .from = "(?:mailer-daemon|postmaster)@(?:[\\w.-]+\\.)?(?:ezweb\\.ne\\.jp|au\\.com)",
        .body = "The user\\(s\\) account is|The following recipients? did not receive this message"
                "|Each of the following recipients was rejected by a remote mail server"
                "|Your message was not delivered within",
        .end = "^-{20,}\\s*$|^--- Below this line is a copy of the message",
        .rcpt = "^[^\\S\\n]*(?:Recipient:\\s*)?<(?<rcpt>[^\\s<>][^\\s<>@]*+@[^\\s<>]+)>:?",
        .diag_mode = BP_TEXT_DIAG_SECTION,
        .default_category = "policy-related", /* its prose "user unknown" is also its filter's */
        .default_unless_rcpt = 1,
    },
    {
        .name = "zoho",
        .from = "mailer-daemon@(?:[\\w.-]+\\.)?zoho(?:mail)?\\.",
        .rcpt = "^" RCPT_ANY "\\s+(?<diag>(?:Invalid Address|Error|Mailbox full|Mail rejected)[^\\n]*)",
        .diag_mode = BP_TEXT_DIAG_GROUP,
    },
    {
        .name = "gmx",
        .from = "@(?:gmx|web|1und1|kundenserver)\\.(?:de|net|com)|@(?:mail|mailerdaemon)\\.gmx",
        .body = "A message that you (?:have )?sent could not be delivered to one or more of"
                "|Die folgenden Empf[aä]nger",
        .start = "following address\\(es\\) failed:|^Die folgenden Empf",
        .end = "^-{3,} The header of the original message|^-{3,} (?:Original message|Kopie der Nachricht)",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY ":?\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    /* ---- Exim and its users (Mail.ru, GMX, 1&1, MXLogic) ------------------------------ */
    {
        .name = "exim",
        .body = "This message was created automatically by mail delivery software"
                "|^A message that you (?:have )?sent (?:could not|has not yet) been delivered"
                "|^A message that you sent contained one or more recipient addresses",
        .start = "^A message that you (?:have )?sent (?:could not be|has not yet been) delivered"
                 "|^Message .{1,160} could not be delivered"
                 "|^A message that you sent contained one or more recipient addresses",
        .end = "^-{3,} This is a copy of the message|^-{3,} The header of the original message"
               "|^Included is a copy of the message header|^-{3,} This is a copy of your message"
               "|^-{3,} Original message|^The original message headers",
        .rcpt = "^(?:  |\\t|)" RCPT_ANY "(?:\\s+\\((?:generated|expanded) from [^)\\n]*\\))?:?(?:\\s|$)",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    /* ---- Postfix without a delivery-status part, OpenSMTPD, DragonFly, Courier --------- */
    {
        .name = "postfix",
        .body = "^This is the (?:mail system|Postfix program) at host"
                "|I'm sorry to have to inform you that your message could not",
        .start = "^[^\\S\\n]+The (?:mail system|Postfix program)\\s*$",
        .rcpt = "^<(?<rcpt>[^\\s<>][^\\s<>@]*+@[^\\s<>]+)>(?: \\((?:expanded|generated) from <[^>\\n]*>\\))?:",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    {
        .name = "opensmtpd",
        .body = "This is the MAILER-DAEMON, please DO NOT REPLY to this e-?mail",
        .start = "following list of recipients:",
        .end = "^[^\\S\\n]*Below is a copy of the original message",
        .rcpt = "^[^\\S\\n]*(?<rcpt>[^\\s<>:][^\\s<>:@]*+@[^\\s<>:]+):\\s+(?<diag>.+)$",
        .diag_mode = BP_TEXT_DIAG_GROUP,
    },
    {
        .name = "dragonfly",
        .body = "^This is the DragonFly Mail Agent",
        .start = "^This is the DragonFly Mail Agent",
        .end = "^Message headers follow",
        .rcpt = "There was an error delivering your mail to <(?<rcpt>[^\\s<>]+)>",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {
        .name = "courier",
        .body = "running the Courier mail server|^This is a delivery status notification from",
        .start = "^This is a delivery status notification from",
        .rcpt = "^<(?<rcpt>[^\\s<>][^\\s<>@]*+@[^\\s<>]+)>:",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    /* ---- Sendmail (text only), Active!Hunter, V5 sendmail ----------------------------- */
    {
        .name = "sendmail",
        .body = "^[^\\S\\n]*-{3,} The following addresses had (?:permanent fatal errors|transient non-fatal errors)",
        .start = "^[^\\S\\n]*-{3,} The following addresses had",
        .end = "^[^\\S\\n]*-{3,} (?:Original message follows|Unsent message follows|Message header follows)",
        .rcpt = "^(?:>>> )?" RCPT_ANY "(?:\\s+<[^>\\n]*>)?\\s*(?:\\(|$)",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
        .shared_diag = "^[^\\S\\n]*-{3,} Transcript of session follows -{3,}",
    },
    /* ---- groupware and gateways -------------------------------------------------------- */
    {
        .name = "notes",
        .body = "^-{3,} Failure Reasons\\s*-{3,}",
        .start = "^-{3,} Failure Reasons\\s*-{3,}",
        .end = "^-{3,} Returned Message -{3,}",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_SECTION,
    },
    {
        .name = "domino",
        .body = "^Your message\\s*$[\\s\\S]{0,400}^[^\\S\\n]*was not delivered to:",
        .start = "was not delivered to:",
        .end = "^Reporting-MTA:|^-{3,}",
        .rcpt = "^[^\\S\\n]+" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {
        .name = "groupwise",
        .subject = "^Message status - undeliverable",
        .start = "^[^\\S\\n]*The message (?:that you sent )?(?:was|could) not (?:be )?delivered",
        .end = "^-{3,} Original message|^[^\\S\\n]*Original Message",
        .rcpt = "^[^\\S\\n]+" RCPT_ANY "(?:\\s+\\((?<diag>[^)\\n]*)\\))?\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {
        .name = "exchange2003",
        .body = "did not reach the following recipient\\(s\\):"
                "|^The following recipient\\(s\\) could not be reached:",
        .start = "did not reach the following recipient\\(s\\):"
                 "|^The following recipient\\(s\\) could not be reached:",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY " on .{6,60}$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {
        .name = "exchange2007",
        .body = "(?:Delivery has failed|Delivery is delayed) to these recipients or (?:groups|distribution lists):",
        .start = "(?:Delivery has failed|Delivery is delayed) to these recipients or (?:groups|distribution lists):",
        .end = "^Original message headers:|^_{5,}\\s*$|^Sent by Microsoft Exchange",
        .rcpt = "^[^\\S\\n]*(?:[^<>()\\n]{1,80}\\s)?[(<\"]?(?<rcpt>[^\\s<>()\"@]+@[^\\s<>()\":;,]+?)[)>\"]?\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
        .shared_diag = "^Diagnostic information for administrators:|^Remote Server returned",
    },
    {
        /* Exchange 2007 and later in any language: the administrators' section names each
         * recipient on a line of its own and the reply below it as "#550 5.1.1 ... ##"; the
         * code line decides, never the localised prose around it */
        .name = "exchange",
        .body = "^[^\\S\\n]*#[45]\\d\\d[ -][245]\\.\\d{1,3}\\.\\d{1,3}\\b[^\\n]*##",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY
                "[^\\S\\n]*\\n[^\\S\\n]*#(?<diag>[45]\\d\\d[ -][245]\\.\\d{1,3}\\.\\d{1,3}\\b[^\\n]*)",
        .diag_mode = BP_TEXT_DIAG_GROUP,
        .self_evident = 1,
    },
    {
        .name = "imail",
        .body = "^(?:Unknown user|User mailbox exceeds allowed size|Invalid final delivery userid"
                "|Delivery failed \\d+ attempts|undeliverable to|Body of message generated response)\\s*:?\\s*\\S+@",
        .rcpt = "^(?<diag>(?:Unknown user|User mailbox exceeds allowed size|Invalid final delivery userid"
                "|Delivery failed \\d+ attempts|undeliverable to|Body of message generated response)"
                "[^\\n]*?)\\s*:?\\s*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    {
        .name = "mailmarshal",
        .body = "^The following recipients were affected:",
        .start = "^The following recipients were affected:",
        .end = "^Additional information|^-{3,}|^=+\\s*$|^[^\\S\\n]*$\\n\\s*$",
        .rcpt = "^[^\\S\\n]+" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
        .shared_diag = "^Could not be delivered because of",
    },
    {
        .name = "biglobe",
        .from = "postmaster@(?:[\\w.-]+\\.)?(?:biglobe|inacatv|tmtv|ttv)\\.ne\\.jp",
        .subject = "^Returned mail:",
        .start = "^[^\\S\\n]*-{3,} The following addresses had delivery problems -{3,}",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
        .shared_diag = "^[^\\S\\n]*-{3,} Non-delivered information -{3,}",
    },
    {
        .name = "mcafee",
        .body = "^[^\\S\\n]*-{3,} The following addresses had delivery problems -{3,}",
        .start = "^[^\\S\\n]*-{3,} The following addresses had delivery problems -{3,}",
        .end = "^-{3,} Original message|^Content-Type:|^-{10,}",
        .rcpt = "^" RCPT_ANY "\\s+\\((?<diag>.*?)\\)?\\s*$",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    {
        .name = "barracuda",
        .subject = "our bulk email filter",
        .start = "^Your message to:",
        .rcpt = "^Final-Recipient:\\s*rfc822;\\s*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {
        .name = "barracuda",
        .body = "^Your message (?:could not be delivered|was not delivered) to the following recipients?"
                "|Barracuda (?:Networks|Email Security)",
        .start = "^Your message (?:could not be delivered|was not delivered) to the following recipients?",
        .end = "^-{3,}|^Original message",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY "(?:\\s*[:(-]\\s*(?<diag>.+))?$",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    {
        .name = "trendmicro",
        .body = "^\\*+ Message from InterScan|InterScan Messaging Security",
        .start = "^The following mail could not be delivered",
        .end = "^\\*+\\s+End of message\\s+\\*+",
        .rcpt = "Unable to deliver message to " RCPT_ANY,
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    {
        .name = "mfilter",
        .body = "^-+server message\\s*$",
        .end = "^-+original message\\s*$",
        .rcpt = "^" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
        .shared_diag = "^-+server message\\s*$",
    },
    {
        .name = "mailfoundry",
        .body = "^Unable to deliver message to: <[^>\\n]+>\\s*$",
        .rcpt = "^Unable to deliver message to: " RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    /* ---- services ------------------------------------------------------------------------ */
    {
        .name = "sendgrid",
        .body = "This is an automatically generated message from SendGrid",
        .start = "This is an automatically generated message from SendGrid",
        .rcpt = "^" RCPT_ANY ":\\s*(?<diag>.*)$",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    {
        .name = "verizon",
        .body = "^Error: .{1,80}\\n(?:\\s*\\n)?Error message below:",
        .start = "^Error message below:",
        .rcpt = "^[^\\S\\n]*RCPT TO:\\s*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_GROUP,
        .self_evident = 1,
        .shared_diag = "^Error message below:",
    },
    {
        .name = "verizon",
        .from = "(?:mailer-daemon|postmaster|post_master|sysadmin)@(?:[\\w.-]+\\.)?(?:vzwpix|vtext)\\.com",
        .body = "Message could not be delivered to mobile",
        .rcpt = "^To:\\s*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_SECTION,
    },
    {
        .name = "fml",
        .from = "-admin@|owner-",
        .subject = "Loop Alert|Rejected|Error",
        .rcpt = "<(?<rcpt>[^\\s<>][^\\s<>@]*+@[^\\s<>]+)>",
        .diag_mode = BP_TEXT_DIAG_PARAGRAPH,
    },
    {
        /* a list server's notice to the poster (Mailman, Sympa, LISTSERV, Majordomo, ezmlm,
         * Lyris): from the list's administrative address, with the refused post attached;
         * the list refused it, the list may well exist */
        .name = "listserver",
        .from = "(?:[-+](?:owner|bounces?|request|admin|help)|\\bowner-[^@\\s<>\"]+"
                "|[<\\s\"](?:listserv|sympa|mailman|majordomo|lyris|ecartis))@",
        .diag_mode = BP_TEXT_DIAG_SECTION,
        .default_category = "policy-related",
        .rcpt_from_original = 1,
    },
    /* ---- Japanese carriers and providers ------------------------------------------------ */
    {
        .name = "kddi",
        .body = "^Your mail (?:sent on|attempted to be delivered on):",
        .start = "^Your mail (?:sent on|attempted to be delivered on):",
        .rcpt = "Could not be delivered to:\\s*" RCPT_ANY,
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
        .default_category = "policy-related", /* its prose "user unknown" is also its filter's */
        .default_unless_rcpt = 1,
    },
    {
        .name = "docomo",
        .from = "(?:mailer-daemon|postmaster)@(?:[\\w.-]+\\.)?(?:docomo\\.ne\\.jp|mopera\\.net)",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_SECTION,
        .default_category = "policy-related", /* its prose "user unknown" is also its filter's */
        .default_unless_rcpt = 1,
    },
    {
        .name = "softbank",
        .from = "(?:mailer-daemon|postmaster)@(?:[\\w.-]+\\.)?(?:softbank\\.ne\\.jp|vodafone\\.ne\\.jp|softbank\\.jp)",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY "\\s*$",
        .diag_mode = BP_TEXT_DIAG_SECTION,
        .default_category = "policy-related", /* its prose "user unknown" is also its filter's */
        .default_unless_rcpt = 1,
    },
    /* ---- European providers ------------------------------------------------------------- */
    {
        .name = "orange",
        .from = "(?:mailer-daemon|postmaster)@(?:[\\w.-]+\\.)?(?:orange|wanadoo)\\.fr",
        .body = "Nous n'avons pas pu|Votre message n'a pas pu|n'a pas pu .tre remis",
        .rcpt = "^[^\\S\\n]*" RCPT_ANY "\\s*:?\\s*$",
        .diag_mode = BP_TEXT_DIAG_TO_NEXT,
    },
    {.name = NULL},
};

size_t bp_text_family_count(void)
{
    return sizeof(bp_text_families) / sizeof(bp_text_families[0]) - 1;
}

const char *bp_text_family_pattern(const bp_text_family *f, int which)
{
    switch (which) {
    case BP_TEXT_PAT_FROM: return f->from;
    case BP_TEXT_PAT_SUBJECT: return f->subject;
    case BP_TEXT_PAT_BODY: return f->body;
    case BP_TEXT_PAT_START: return f->start;
    case BP_TEXT_PAT_END: return f->end;
    case BP_TEXT_PAT_RCPT: return f->rcpt;
    case BP_TEXT_PAT_SHARED: return f->shared_diag;
    default: break;
    }
    return NULL;
}

size_t bp_text_pattern_position(size_t family, int which)
{
    size_t pos = 0;
    for (size_t i = 0; i <= family && bp_text_families[i].name != NULL; i++)
        for (int k = 0; k < BP_TEXT_PAT_N && !(i == family && k == which); k++)
            pos += bp_text_family_pattern(&bp_text_families[i], k) != NULL;
    return pos;
}
