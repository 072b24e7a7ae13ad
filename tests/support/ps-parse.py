#!/usr/bin/env python3
"""Parses a PowerShell script with tree-sitter's PowerShell grammar (no
PowerShell runs here): prints each syntax error's line and exits 1 if any."""

import sys

import tree_sitter_powershell
from tree_sitter import Language, Parser

source = open(sys.argv[1], "rb").read()
tree = Parser(Language(tree_sitter_powershell.language())).parse(source)
errors = []


def walk(node):
    if node.type == "ERROR" or node.is_missing:
        errors.append(node)
    for child in node.children:
        walk(child)


walk(tree.root_node)
for e in errors:
    line = source.splitlines()[e.start_point[0]].decode()
    print(f"{sys.argv[1]}:{e.start_point[0] + 1}:{e.start_point[1] + 1}: syntax error: {line.strip()}")
sys.exit(1 if errors else 0)
