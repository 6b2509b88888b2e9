#!/usr/bin/env python3
"""dmarc_gen.py - write a month of DMARC aggregate reports, as receivers send them.

usage: dmarc_gen.py OUT [--days 30] [--domains example.com,example.net,example.org]
                        [--receivers N] [--reports N] [--start 2023-11-01] [--seed 1]
                        [--truth FILE.json]

OUT is a directory (one .eml per report) or a file ending in .mbox (one mboxrd).  Each day,
each receiver sends one report per domain.  The six large receivers come in their shapes
(Google: the message is a zip; Microsoft: gzip after a text part, base64 on one line; Yahoo:
gzip, the XML on one line; Mail.ru: application/x-gzip; Fastmail: the DMARCbis schema;
Comcast: application/x-zip-compressed, CRLF); --receivers N adds N-6 smaller ones sending
application/xml, gzip or zip in turn.  --reports N sets the number of receivers so that at least N
reports are written (and stops at N): `--reports 10000` is the benchmark's month.

The traffic, the same for every domain and receiver (counts vary by day and receiver):
  - our sending IPs 192.0.2.10, .11, .12 and 2001:db8::10: DKIM and SPF pass and align
    (a few messages forwarded by a mailing list on 198.51.100.25 pass DKIM only);
  - our IP 192.0.2.13 signs with a broken key: DKIM fails; SPF passes and aligns for most
    of its mail, so DMARC still passes, but some of it goes out with a third party's envelope
    sender (bounces.mailer.example) and fails DMARC (red flag: one of our IPs failing DKIM), more of it for the third
    domain (readiness: example.com and example.net pass the 98 % bar, example.org does not);
  - 203.0.113.66, which is not ours, sends as each domain: SPF passes for its own domain,
    DMARC fails (red flag: an unknown IP spoofing the domain).
--truth writes what a summary of the reports must find: per domain the messages, those
passing DMARC, the pass rate of our own IPs, the spoofing IP and our IP failing DKIM.

The output is deterministic for a given --seed (gzip mtime 0, fixed zip dates, fixed
Message-IDs).  Addresses and IPs are documentation ones (RFC 2606, RFC 5737, RFC 3849).
"""
import argparse
import base64
import datetime
import gzip
import io
import json
import os
import random
import sys
import zipfile

OUR_IPS = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10"]
BAD_DKIM_IP = "192.0.2.13"
FORWARDER_IP = "198.51.100.25"
SPOOFER_IP = "203.0.113.66"
# per domain (in --domains order, cycled): messages of BAD_DKIM_IP that fail SPF alignment too
# (sent with a third party's envelope sender), so DMARC fails for them: our own pass rate
# is about 99 % for the first two domains, about 93 % for the third (below the 98 % bar)
BROKEN_SPF = (10, 10, 120)

LARGE = [
    # name, submitter, org_name, email, shape
    ("google", "google.com", "google.com", "noreply-dmarc-support@google.com", "zip-single"),
    ("microsoft", "protection.outlook.com", "Enterprise Outlook", "dmarcreport@microsoft.com", "gzip-oneline"),
    ("yahoo", "yahoo.com", "Yahoo", "dmarchelp@yahooinc.com", "gzip-compact"),
    ("mailru", "mail.ru", "Mail.Ru", "dmarc_support@corp.mail.ru", "x-gzip"),
    ("fastmail", "fastmail.com", "Fastmail Pty Ltd", "dmarc-reports@fastmail.com", "bis"),
    ("comcast", "comcast.net", "comcast.net", "dmarc_report@comcast.net", "x-zip-crlf"),
]


def receivers(n):
    out = list(LARGE[:n])
    for i in range(len(out), n):
        host = f"mx{i - len(LARGE) + 1}.receiver{i}.example.org"
        out.append((f"small{i}", host, host, f"dmarc@{host}", ("xml", "small-gzip", "small-zip")[i % 3]))
    return out


def records(rng, domain, weight, broken_spf):
    """(ip, count, dkim, spf, auth, envelope_from) tuples of one report.  @broken_spf: how many
    (relative) messages of the IP with the broken DKIM key also fail SPF alignment."""
    def n(base):
        return max(1, int(base * weight * rng.uniform(0.7, 1.3)))
    recs = []
    for ip in OUR_IPS:
        recs.append((ip, n(400), "pass", "pass",
                     [("dkim", domain, "s2023", "pass"), ("spf", "bounces." + domain, "mfrom", "pass")],
                     "bounces." + domain))
    recs.append((BAD_DKIM_IP, n(60), "fail", "pass",
                 [("dkim", domain, "s2023", "fail"), ("spf", "bounces." + domain, "mfrom", "pass")],
                 "bounces." + domain))
    recs.append((BAD_DKIM_IP, n(broken_spf), "fail", "fail",
                 [("dkim", domain, "s2023", "fail"), ("spf", "bounces.mailer.example", "mfrom", "pass")],
                 "bounces.mailer.example"))
    recs.append((FORWARDER_IP, n(8), "pass", "fail",
                 [("dkim", domain, "s2023", "pass"), ("spf", "lists.example.net", "mfrom", "pass")],
                 "lists.example.net"))
    recs.append((SPOOFER_IP, n(15), "fail", "fail", [("spf", "spoofer.example.net", "mfrom", "pass")],
                 "spoofer.example.net"))
    return recs


def render_xml(rcv, domain, report_id, begin, end, recs, compact, bis, crlf):
    nl = "" if compact else ("\r\n" if crlf else "\n")
    ind = "" if compact else "  "
    out = [f'<?xml version="1.0" encoding="UTF-8"?>{nl}']
    out.append('<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">' if bis else "<feedback>")
    out.append(nl)
    if bis or rcv[0] == "microsoft":
        out.append(f"{ind}<version>1.0</version>{nl}")
    out.append(f"{ind}<report_metadata>{nl}{ind*2}<org_name>{rcv[2]}</org_name>{nl}"
               f"{ind*2}<email>{rcv[3]}</email>{nl}{ind*2}<report_id>{report_id}</report_id>{nl}"
               f"{ind*2}<date_range>{nl}{ind*3}<begin>{begin}</begin>{nl}{ind*3}<end>{end}</end>{nl}"
               f"{ind*2}</date_range>{nl}")
    if bis:
        out.append(f"{ind*2}<generator>{rcv[2]} reporter</generator>{nl}")
    out.append(f"{ind}</report_metadata>{nl}{ind}<policy_published>{nl}{ind*2}<domain>{domain}</domain>{nl}")
    if bis:
        out.append(f"{ind*2}<discovery_method>treewalk</discovery_method>{nl}")
    out.append(f"{ind*2}<adkim>r</adkim>{nl}{ind*2}<aspf>r</aspf>{nl}{ind*2}<p>none</p>{nl}{ind*2}<sp>none</sp>{nl}")
    out.append(f"{ind*2}<np>none</np>{nl}{ind*2}<testing>n</testing>{nl}" if bis else f"{ind*2}<pct>100</pct>{nl}")
    out.append(f"{ind}</policy_published>{nl}")
    for ip, count, dkim, spf, auth, env_from in recs:
        out.append(f"{ind}<record>{nl}{ind*2}<row>{nl}{ind*3}<source_ip>{ip}</source_ip>{nl}"
                   f"{ind*3}<count>{count}</count>{nl}{ind*3}<policy_evaluated>{nl}"
                   f"{ind*4}<disposition>none</disposition>{nl}{ind*4}<dkim>{dkim}</dkim>{nl}"
                   f"{ind*4}<spf>{spf}</spf>{nl}")
        if ip == FORWARDER_IP:
            out.append(f"{ind*4}<reason>{nl}{ind*5}<type>mailing_list</type>{nl}{ind*4}</reason>{nl}")
        out.append(f"{ind*3}</policy_evaluated>{nl}{ind*2}</row>{nl}{ind*2}<identifiers>{nl}")
        if rcv[0] == "microsoft":
            out.append(f"{ind*3}<envelope_to>outlook.com</envelope_to>{nl}")
        out.append(f"{ind*3}<envelope_from>{env_from}</envelope_from>{nl}"
                   f"{ind*3}<header_from>{domain}</header_from>{nl}{ind*2}</identifiers>{nl}"
                   f"{ind*2}<auth_results>{nl}")
        for a in auth:
            out.append(f"{ind*3}<{a[0]}>{nl}{ind*4}<domain>{a[1]}</domain>{nl}")
            out.append(f"{ind*4}<{'selector' if a[0] == 'dkim' else 'scope'}>{a[2]}"
                       f"</{'selector' if a[0] == 'dkim' else 'scope'}>{nl}")
            out.append(f"{ind*4}<result>{a[3]}</result>{nl}{ind*3}</{a[0]}>{nl}")
        out.append(f"{ind*2}</auth_results>{nl}{ind}</record>{nl}")
    out.append(f"</feedback>{nl}")
    return "".join(out).encode()


def b64(data, one_line=False):
    s = base64.b64encode(data).decode()
    if one_line:
        return s + "\n"
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\n"


def zipped(name, data, when):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)
    return buf.getvalue()


def message(rcv, domain, report_id, begin, end, xml, sent):
    """The report mail of receiver @rcv, as text."""
    name, submitter, _org, email, shape = rcv
    base = f"{submitter}!{domain}!{begin}!{end}"
    date = sent.strftime("%a, %d %b %Y %H:%M:%S +0000")
    subject = f"Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>"
    if name == "google":
        subject = f"Report domain: {domain} Submitter: {submitter} Report-ID: {report_id}"
    head = (f"From: {email}\nTo: dmarc@bounces.{domain}\nSubject: {subject}\nDate: {date}\n"
            f"Message-ID: <{report_id}.{domain}@{submitter}>\nMIME-Version: 1.0\n")
    boundary = f"=_{name}_{report_id}"

    def attach(ctype, fname, data, one_line=False):
        return (f"--{boundary}\nContent-Type: {ctype}; name=\"{fname}\"\n"
                f"Content-Disposition: attachment; filename=\"{fname}\"\nContent-Transfer-Encoding: base64\n\n"
                + b64(data, one_line))

    text = (f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n"
            f"This is an aggregate report from {submitter}.\n")
    if shape == "zip-single":
        fname = base + ".zip"
        return (head + f"Content-Type: application/zip; name=\"{fname}\"\n"
                f"Content-Disposition: attachment; filename=\"{fname}\"\nContent-Transfer-Encoding: base64\n\n"
                + b64(zipped(base + ".xml", xml, sent)))
    gz = gzip.compress(xml, compresslevel=6, mtime=0)
    mp = head + f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n"
    if shape == "gzip-oneline":
        return mp + text + attach("application/gzip", base + ".xml.gz", gz, one_line=True) + f"--{boundary}--\n"
    if shape in ("gzip-compact", "bis"):
        return mp + text + attach("application/gzip", base + ".xml.gz", gz) + f"--{boundary}--\n"
    if shape == "x-gzip":
        return mp + text + attach("application/x-gzip", base + ".xml.gz", gz) + f"--{boundary}--\n"
    if shape == "x-zip-crlf":
        m = mp + attach("application/x-zip-compressed", base + ".zip", zipped(base + ".xml", xml, sent))
        return (m + f"--{boundary}--\n").replace("\n", "\r\n")
    if shape == "small-gzip":
        return mp + attach("application/gzip", base + ".xml.gz", gz) + f"--{boundary}--\n"
    if shape == "small-zip":
        return mp + attach("application/zip", base + ".zip", zipped(base + ".xml", xml, sent)) + f"--{boundary}--\n"
    return mp + attach("application/xml", base + ".xml", xml) + f"--{boundary}--\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="a directory (one .eml per report) or FILE.mbox")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--domains", default="example.com,example.net,example.org")
    ap.add_argument("--receivers", type=int, default=len(LARGE))
    ap.add_argument("--reports", type=int, default=0, help="write this many (more receivers if needed)")
    ap.add_argument("--start", default="2023-11-01")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--truth", help="write the expected summary as JSON here")
    args = ap.parse_args()

    domains = [d.strip().lower() for d in args.domains.split(",") if d.strip()]
    n_rcv = args.receivers
    if args.reports:
        per_receiver = args.days * len(domains)
        n_rcv = max(n_rcv, -(-args.reports // per_receiver))
    rcvs = receivers(n_rcv)
    rng = random.Random(args.seed)
    start = datetime.datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    to_mbox = args.out.endswith(".mbox")
    os.makedirs(os.path.dirname(args.out) or "." if to_mbox else args.out, exist_ok=True)
    mbox = open(args.out, "w", newline="") if to_mbox else None
    truth = {d: {"messages": 0, "messages_pass": 0, "own_messages": 0, "own_pass": 0, "reports": 0} for d in domains}
    written = 0
    for day in range(args.days):
        begin_dt = start + datetime.timedelta(days=day)
        begin = int(begin_dt.timestamp())
        end = begin + 86399
        sent = begin_dt + datetime.timedelta(days=1, minutes=31)
        for ri, rcv in enumerate(rcvs):
            # large receivers see more of the traffic than small ones
            weight = 1.0 if ri < len(LARGE) else 0.05
            for domain in domains:
                if args.reports and written >= args.reports:
                    break
                report_id = f"{begin}.{ri}.{domains.index(domain)}.{args.seed}"
                recs = records(rng, domain, weight, BROKEN_SPF[domains.index(domain) % len(BROKEN_SPF)])
                xml = render_xml(rcv, domain, report_id, begin, end, recs, compact=rcv[4] == "gzip-compact",
                                 bis=rcv[4] == "bis", crlf=rcv[4] == "x-zip-crlf")
                text = message(rcv, domain, report_id, begin, end, xml, sent)
                if to_mbox:
                    mbox.write(f"From {rcv[3]} {sent.strftime('%a %b %d %H:%M:%S %Y')}\n")
                    for line in text.split("\n"):
                        stripped = line.lstrip(">")
                        mbox.write((">" + line if stripped.startswith("From ") else line) + "\n")
                else:
                    with open(os.path.join(args.out, f"{written:05d}-{rcv[0]}-{domain}.eml"), "w", newline="") as f:
                        f.write(text)
                t = truth[domain]
                t["reports"] += 1
                for ip, count, dkim, spf, _auth, _env in recs:
                    passes = dkim == "pass" or spf == "pass"
                    t["messages"] += count
                    t["messages_pass"] += count if passes else 0
                    if ip in OUR_IPS or ip == BAD_DKIM_IP:
                        t["own_messages"] += count
                        t["own_pass"] += count if passes else 0
                written += 1
    if mbox:
        mbox.close()
    for d, t in truth.items():
        t["pass_rate"] = round(t["messages_pass"] / t["messages"], 4) if t["messages"] else None
        t["own_pass_rate"] = round(t["own_pass"] / t["own_messages"], 4) if t["own_messages"] else None
        t["own_ips"] = OUR_IPS + [BAD_DKIM_IP]
        t["spoofing_ips"] = [SPOOFER_IP]
        t["own_ips_failing_dkim"] = [BAD_DKIM_IP]
        t["forwarders"] = [FORWARDER_IP]
    if args.truth:
        with open(args.truth, "w") as f:
            json.dump({"reports": written, "receivers": len(rcvs), "days": args.days, "domains": truth}, f, indent=2)
            f.write("\n")
    print(f"dmarc_gen: {written} reports ({args.days} days x {len(domains)} domains x {len(rcvs)} receivers) "
          f"-> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
