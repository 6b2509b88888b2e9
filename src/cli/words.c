/*
 * words.c - the words for people that the lower layers leave to the CLI: why the policy
 * chose an action (explain, patterns test).  The policy says which step decided
 * (bp_policy_step); how that reads is the front end's business.
 */
#include "cli.h"

const char *bp_cli_policy_words(bp_policy_step step)
{
    switch (step) {
    case BP_POLICY_UNRECOGNIZED: return "nothing to act on";
    case BP_POLICY_DELAY: return "a delay is never acted on: the MTA is still trying";
    case BP_POLICY_AUTOREPLY: return "an auto-reply proves the mailbox is alive";
    case BP_POLICY_DELIVERED: return "a delivery report is good news";
    case BP_POLICY_COMPLAINT_SUPPRESS: return "policy: this complaint type suppresses";
    case BP_POLICY_COMPLAINT_RECORD: return "policy: this complaint type is recorded only";
    case BP_POLICY_TEMPORARY: return "policy: the category suppresses, but the failure was temporary: counted as soft";
    case BP_POLICY_SUPPRESS: return "policy: a final failure of this category suppresses";
    case BP_POLICY_SOFT: return "policy: this category is counted; repeated soft bounces suppress";
    case BP_POLICY_IGNORE: return "policy: this category says nothing about the recipient: recorded only";
    case BP_POLICY_CUSTOM:
        return "a custom category of an operator's rule file, not one of bouncepipe's: counted as soft (set its "
               "action with [policy] NAME = suppress|soft|ignore)";
    }
    return "-";
}
