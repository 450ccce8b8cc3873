"""Runs Cloudsplaining, Parliament and Sagedeck on the same authorization
details and writes docs/iam-comparison.md: per role, what each tool found,
and for each finding of the other two the Sagedeck rule that covers it.

    .venv/bin/pip install cloudsplaining parliament "setuptools<81"
    .venv/bin/python docs/iam/make_account.py
    .venv/bin/python docs/iam/compare.py target/debug/sagedeck   (or scripts/iam-compare.sh)

Coverage is judged per role: a finding of theirs is covered when Sagedeck
reports, on the same role, a rule that names the same risk (the map below).
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)

# Their category (or issue) → the Sagedeck rules that name the same risk.
WILD = {"action-wildcard", "service-wildcard"}
COVERS = {
    "PrivilegeEscalation": {"escalation-passrole", "escalation-lambda", "self-modify", "action-wildcard"},
    "DataExfiltration": {"unscoped-exposure"} | WILD,
    "ResourceExposure": {"resource-exposure", "passrole-wildcard"} | WILD,
    "ServiceWildcard": WILD,
    "CredentialsExposure": {"credentials-exposure"} | WILD,
    "InfrastructureModification": {"resource-wildcard", "passrole-wildcard", "unscoped-exposure", "resource-exposure"} | WILD,
    "RESOURCE_STAR": {"resource-wildcard", "unscoped-exposure", "passrole-wildcard", "resource-exposure"} | WILD,
}


def sagedeck(binary, details):
    out = subprocess.run([binary, "iam-review", details], check=True, capture_output=True, text=True).stdout
    return {r["name"]: sorted({f["rule"] for f in r["findings"]}) for r in json.loads(out)}


def cloudsplaining(details):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([os.path.join(BIN, "cloudsplaining"), "scan", "--input-file", details, "--output", out, "--skip-open-report"],
                       check=True, capture_output=True)
        found = json.load(open(os.path.join(out, "iam-findings-account.json")))
    per_role = {}
    for role in found["roles"].values():
        items = []
        for kind, ids in (("inline_policies", role["inline_policies"]), ("aws_managed_policies", role["aws_managed_policies"]),
                          ("customer_managed_policies", role["customer_managed_policies"])):
            for pid in ids:
                policy = found[kind][pid]
                for category in COVERS:
                    v = policy.get(category)
                    for f in (v or {}).get("findings", []) if isinstance(v, dict) else (v or []):
                        items.append((category, f if isinstance(f, str) else f.get("type", "?")))
        per_role[role["name"]] = sorted(set(items))
    return per_role


def parliament(details):
    out = subprocess.run([os.path.join(BIN, "parliament"), "--auth-details-file", details, "--json"],
                         capture_output=True, text=True).stdout
    per_role = {}
    for line in out.splitlines():
        j = json.loads(line)
        where = j["location"].get("filepath", "")
        role = where.rsplit("/", 1)[-1] if ":role/" in where else where
        per_role.setdefault(role, []).append((j["issue"], ", ".join(j.get("detail") or []) if isinstance(j.get("detail"), list) else str(j.get("detail"))))
    return per_role


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "sagedeck")
    details = os.path.join(HERE, "account.json")
    ours, cs, pm = sagedeck(binary, details), cloudsplaining(details), parliament(details)
    lines = [
        "# IAM review: Sagedeck, Cloudsplaining and Parliament side by side",
        "",
        "The same account (docs/iam/account.json, made in moto by docs/iam/make_account.py: the seeds' Lambda role with",
        "AmazonSageMakerFullAccess, a scoped Lambda role, a wildcard role another account may assume, a SageMaker role",
        "with a PassRole escalation and unscoped secrets), reviewed by the three tools. Command:",
        "`.venv/bin/python docs/iam/compare.py target/debug/sagedeck` (Cloudsplaining 0.9.1, Parliament 1.6.4).",
        "",
        "A finding of theirs counts as covered when Sagedeck reports, on the same role, a rule naming the same risk.",
        "",
    ]
    total_theirs = covered = 0
    groups_total = groups_covered = 0
    only_ours = 0
    for role in sorted(set(ours) | set(cs) | set(pm)):
        mine = set(ours.get(role, []))
        lines += [f"## {role}", "", "| Tool | Finding | Sagedeck rule that covers it |", "|---|---|---|"]
        for tool, items in (("Cloudsplaining", cs.get(role, [])), ("Parliament", pm.get(role, []))):
            groups = {}
            for category, what in items:
                groups.setdefault(category, []).append(what)
            for category, whats in sorted(groups.items()):
                total_theirs += len(whats)
                hit = sorted(mine & COVERS.get(category, set()))
                covered += len(whats) if hit else 0
                groups_total += 1
                groups_covered += bool(hit)
                examples = ", ".join(whats[:4]) + (f", … ({len(whats)} in all)" if len(whats) > 4 else "")
                lines.append(f"| {tool} | {category}: {examples} | {', '.join(hit) if hit else '**not covered**'} |")
        theirs_rules = set().union(*[COVERS.get(c, set()) for c, _ in cs.get(role, []) + pm.get(role, [])]) if (cs.get(role) or pm.get(role)) else set()
        extra = sorted(mine - theirs_rules)
        only_ours += len(extra)
        lines.append(f"| Sagedeck | all rules: {', '.join(sorted(mine)) or '—'} | |")
        if extra:
            lines.append(f"| Sagedeck only | {', '.join(extra)} | |")
        lines.append("")
    lines.insert(9, f"**Counts:** Cloudsplaining and Parliament report {total_theirs} findings on these roles ({groups_total} kinds of finding"
                    f" per role and tool; {max(len(v) for v in cs.values())} of them are the actions Cloudsplaining lists for the one role with `Action: *`);"
                    f" Sagedeck covers {covered} of them ({groups_covered} of {groups_total} kinds)"
                    f" and reports {only_ours} rule(s) on these roles that neither names (trust policies, managed FullAccess on a"
                    f" Lambda role, PassRole conditions and the like).\n")
    out = os.path.join(ROOT, "docs", "iam-comparison.md")
    open(out, "w").write("\n".join(lines) + "\n")
    print(f"{covered}/{total_theirs} covered ({groups_covered}/{groups_total} kinds), {only_ours} Sagedeck-only rules; written to {out}")
    return 0 if covered == total_theirs else 1


if __name__ == "__main__":
    sys.exit(main())
