#!/usr/bin/env python3
"""Parses a PowerShell script with tree-sitter's PowerShell grammar (no
PowerShell runs here): prints each syntax error's line and exits 1 if any.
With --commands first, prints instead (when it parses) the commands the
script calls, as a JSON list of {"name", "args", "when"}: the command's name,
its arguments' text with spaces collapsed, and the conditions of the `if`
statements whose first block holds it, outermost first. That is what the
tests check of a script they cannot run: which cmdlets it calls, with what,
and under which condition."""

import json
import sys

import tree_sitter_powershell
from tree_sitter import Language, Parser

commands = sys.argv[1] == "--commands"
path = sys.argv[-1]
source = open(path, "rb").read()
tree = Parser(Language(tree_sitter_powershell.language())).parse(source)
errors = []
calls = []


def walk(node, when):
    if node.type == "ERROR" or node.is_missing:
        errors.append(node)
    if node.type == "command":
        name = node.child_by_field_name("command_name")
        args = node.child_by_field_name("command_elements")
        calls.append({
            "name": name.text.decode() if name else "",
            "args": " ".join(args.text.decode().split()) if args else "",
            "when": when,
        })
    for i, child in enumerate(node.children):
        inner = when
        # The block right after an `if`'s condition runs only when it holds.
        if node.type == "if_statement" and child.type == "statement_block" \
                and node.children[i - 2].type == "pipeline":
            inner = when + [node.children[i - 2].text.decode()]
        walk(child, inner)


walk(tree.root_node, [])
for e in errors:
    line = source.splitlines()[e.start_point[0]].decode()
    print(f"{path}:{e.start_point[0] + 1}:{e.start_point[1] + 1}: syntax error: {line.strip()}")
if commands and not errors:
    print(json.dumps(calls, indent=1))
sys.exit(1 if errors else 0)
