#!/usr/bin/env python3
"""Reads the zone checkers' output for scripts/zonecheck.sh.

  report.py dnsviz GROK.json    every error and warning in `dnsviz grok -l warning`
                                output, one a line; exit 1 if there is any
  report.py zonemaster          `zonemaster-cli --raw --no-time --show-testcase`
                                lines on stdin, each with what causes it (below);
                                exit 0 whatever they say
"""

import json
import sys

# What causes each Zonemaster message this check is known to get, by tag.
# "sandbox": amldns listens on loopback in a namespace with no internet.
# "design": amldns as docs/answers.md has it (a forwarder that owns private-link apexes,
# one NS name, unsigned local names, its SOA timers); the reason follows.
CAUSES = {
    "NAMESERVER_IP_PRIVATE_NETWORK": "sandbox: 127.0.0.1 (in a VNet the address is RFC 1918, flagged alike)",
    "NO_RESPONSE_PTR_QUERY": "sandbox: no reverse zone for the listen address",
    "Z01_MNAME_HAS_LOCALHOST_ADDR": "sandbox: ns.<apex> is the listen address, 127.0.0.1",
    "NO_IPV6_NS_CHILD": "sandbox: amldns listens on IPv4 only here",
    "NO_IPV6_NS_DEL": "sandbox: amldns listens on IPv4 only here",
    "IS_A_RECURSOR": "design: amldns forwards every name it does not hold",
    "NOT_ENOUGH_NS_DEL": "design: one NS name, ns.<apex>",
    "NOT_ENOUGH_NS_CHILD": "design: one NS name, ns.<apex>",
    "NOT_ENOUGH_IPV4_NS_CHILD": "design: one NS name, ns.<apex>",
    "NOT_ENOUGH_IPV4_NS_DEL": "design: one NS name, ns.<apex>",
    "NEITHER_DNSKEY_NOR_DS": "design: local names are unsigned",
    "NOT_SIGNED": "design: local names are unsigned",
    "RNAME_MAIL_DOMAIN_INVALID": "design: hostmaster.<apex> has no mail server",
    "Z09_MISSING_MAIL_TARGET": "design: the apex has no MX",
    "REFRESH_MINIMUM_VALUE_LOWER": "design: amldns's SOA refresh",
    "RETRY_MINIMUM_VALUE_LOWER": "design: amldns's SOA retry",
    "EXPIRE_MINIMUM_VALUE_LOWER": "design: amldns's SOA expire",
    "SOA_DEFAULT_TTL_MAXIMUM_VALUE_LOWER": "design: amldns's SOA minimum (the negative TTL)",
}


def dnsviz_findings(node, path):
    """(kind, where, code, description, servers, options) for every finding under node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("errors", "warnings", "error", "warning") and isinstance(value, list):
                kind = "error" if key.startswith("error") else "warning"
                for item in value:
                    yield (kind, "/".join(path), item.get("code", "?"), item.get("description", ""),
                           ",".join(item.get("servers", [])), ",".join(item.get("query_options", [])))
            else:
                yield from dnsviz_findings(value, path + [key])
    elif isinstance(node, list):
        for item in node:
            yield from dnsviz_findings(item, path)


def dnsviz(path):
    with open(path, encoding="utf-8") as file:
        text = file.read()
    findings = list(dnsviz_findings(json.loads(text), [])) if text.strip() else []
    for kind, where, code, description, servers, options in findings:
        print(f"  {kind.upper()} {code} at {where} (server {servers}; {options}): {description}")
    errors = sum(1 for f in findings if f[0] == "error")
    print(f"  dnsviz: {errors} errors, {len(findings) - errors} warnings")
    return 1 if findings else 0


def zonemaster():
    counts = {}
    for line in sys.stdin:
        fields = line.split()
        # --raw prints the seconds since the start first, even with --no-time.
        if fields and fields[0].replace(".", "", 1).isdigit():
            fields = fields[1:]
        if len(fields) < 3 or fields[0] not in ("CRITICAL", "ERROR", "WARNING", "NOTICE"):
            continue
        level, testcase, tag = fields[:3]
        cause = CAUSES.get(tag, "unclassified: look at it")
        kind = cause.split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
        print(f"  {level:8} {testcase:13} {tag} [{cause}] {' '.join(fields[3:])}")
    print("  zonemaster: " + (", ".join(f"{n} {c}" for c, n in sorted(counts.items())) or "no messages"))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["dnsviz"] and len(sys.argv) == 3:
        sys.exit(dnsviz(sys.argv[2]))
    if sys.argv[1:] == ["zonemaster"]:
        sys.exit(zonemaster())
    sys.exit(__doc__)
