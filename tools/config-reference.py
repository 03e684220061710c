#!/usr/bin/env python3
"""Generate the configuration reference of docs/operations.md from --help.

Usage:
  tools/config-reference.py BUILDDIR            print the reference (markdown)
  tools/config-reference.py BUILDDIR --update F replace the part of F between
                                                the markers with it
  tools/config-reference.py BUILDDIR --check F  exit 1 if F's part differs

Each program's --help is the source of truth (its option table is what the
program parses), so the reference is made from it rather than written by
hand; the deploy/config-reference test runs --check so that the document
cannot drift from the programs.
"""
import os
import re
import subprocess
import sys

BEGIN = "<!-- config-reference: begin (tools/config-reference.py --update) -->"
END = "<!-- config-reference: end -->"

PROGRAMS = [
    ("noetl", "src/noetl/noetl"),
    ("noetl-control", "src/control/noetl-control"),
    ("noetl-repository", "src/repository/noetl-repository"),
    ("noetl-queue", "src/queue/noetl-queue"),
    ("noetl-recorder", "src/recorder/noetl-recorder"),
    ("noetl-listener", "src/listener/noetl-listener"),
    ("noetl-executor", "src/executor/noetl-executor"),
    ("noetlctl", "src/cli/noetlctl"),
]

OPT = re.compile(r"^  (?:-(\w), )?--([\w.-]+)(?: (\S+))?(?:\s{2,}(.*))?$")
META = re.compile(r"^\s+\[(.*)\]$")


def parse(text):
    """Yields (flag, argument, description, key, env, default) per option."""
    opts = []
    cur = None
    in_options = False
    for line in text.splitlines():
        if line.strip() == "options:":
            in_options = True
            continue
        if not in_options:
            continue
        if line and not line.startswith(" "):
            break  # "Precedence: ..." or "commands:"
        m = OPT.match(line)
        if m:
            cur = {"flag": "--" + m.group(2), "arg": m.group(3) or "",
                   "desc": (m.group(4) or "").strip(), "meta": ""}
            opts.append(cur)
            continue
        m = META.match(line)
        if m and cur is not None:
            cur["meta"] = m.group(1)
            continue
        if cur is not None and line.strip():
            cur["desc"] = (cur["desc"] + " " + line.strip()).strip()
    out = []
    for o in opts:
        if o["flag"] in ("--help", "--config"):
            continue
        env = default = ""
        key = o["flag"][2:]
        for part in [p.strip() for p in o["meta"].split(", ")] if o["meta"] else []:
            if part.startswith("env "):
                env = part[4:]
            elif part.startswith("default "):
                default = part[8:]
            elif part.startswith("--"):
                key = part[2:]
        # "default a, b" would have been split: glue the rest back on
        if o["meta"] and "default " in o["meta"]:
            default = o["meta"].split("default ", 1)[1]
        out.append((o["flag"], o["arg"], o["desc"], key, env, default))
    return out


def cell(s):
    return s.replace("|", "\\|") if s else ""


def reference(build):
    lines = []
    for name, path in PROGRAMS:
        exe = os.path.join(build, path)
        text = subprocess.run([exe, "--help"], capture_output=True, text=True,
                              check=False).stdout
        opts = parse(text)
        if not opts:
            sys.exit(f"config-reference: no options parsed from '{exe} --help'")
        lines.append(f"### {name}")
        lines.append("")
        lines.append("| file key | flag | environment | default | meaning |")
        lines.append("|---|---|---|---|---|")
        for flag, arg, desc, key, env, default in opts:
            f = cell(f"`{flag} {arg}`" if arg else f"`{flag}`")
            lines.append(f"| `{key}` | {f} | {('`' + env + '`') if env else ''} "
                         f"| {('`' + cell(default) + '`') if default else ''} | {cell(desc)} |")
        lines.append("")
    return "\n".join(lines)


def splice(doc, ref):
    if BEGIN not in doc or END not in doc:
        sys.exit("config-reference: the document has no reference markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "\n\n" + ref + "\n" + END + tail


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    ref = reference(args[0])
    if len(args) == 1:
        print(ref)
        return
    if len(args) != 3 or args[1] not in ("--update", "--check"):
        sys.exit(__doc__)
    with open(args[2]) as f:
        doc = f.read()
    new = splice(doc, ref)
    if args[1] == "--update":
        with open(args[2], "w") as f:
            f.write(new)
        return
    if new != doc:
        print(f"{args[2]}: the configuration reference differs from the programs' "
              f"--help; run tools/config-reference.py {args[0]} --update {args[2]}")
        sys.exit(1)
    print(f"{args[2]}: configuration reference matches --help")


if __name__ == "__main__":
    main()
