#!/usr/bin/env python3
"""Every alert links a runbook, and every link resolves.

For each alerting rule in the rule files given on the command line: the `runbook_url`
annotation exists, has the form <path relative to the repository>#<anchor>, the file
exists, and the anchor is the GitHub-style slug of one of its headings (what GitHub renders
as the heading's id). Links between sections of the runbook files (`](#anchor)` and
`](file.md#anchor)`) are resolved the same way. Exit status 1 with one line per problem.
"""

import pathlib
import re
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]


def github_slugs(markdown_text):
    """The ids GitHub gives the headings of a Markdown text (github-slugger's rules):
    lower case, every character that is not a letter, digit, space, hyphen or underscore
    dropped, spaces turned into hyphens; a repeated slug gets -1, -2, ..."""
    slugs, seen = set(), {}
    in_fence = False
    for line in markdown_text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        match = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        text = re.sub(r"[`*_]{1,2}(.+?)[`*_]{1,2}", r"\1", match.group(1))  # emphasis, code
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def resolve(link, relative_to, problems, where, this_file=None):
    """Checks `link` (path#anchor, path relative to the folder `relative_to`; an empty path
    is `this_file`) and returns the file it names, or None when there is none."""
    path, _, anchor = link.partition("#")
    target = (relative_to / path) if path else this_file
    if target is None or not target.is_file():
        problems.append(f"{where}: {link}: no such file")
        return None
    if not anchor:
        problems.append(f"{where}: {link}: no #section")
        return target
    if anchor not in github_slugs(target.read_text()):
        problems.append(f"{where}: {link}: no heading with the id '{anchor}' in {path}")
    return target


def main(rule_files):
    problems, runbooks, alerts = [], set(), 0
    for rule_file in rule_files:
        for group in yaml.safe_load(open(rule_file))["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                alerts += 1
                where = f"{rule_file}: {rule['alert']}"
                url = rule.get("annotations", {}).get("runbook_url")
                if not url:
                    problems.append(f"{where}: no runbook_url annotation")
                    continue
                if "://" in url or url.startswith("/"):
                    problems.append(f"{where}: {url}: not a path in the repository")
                    continue
                target = resolve(url, REPO, problems, where)
                if target is not None:
                    runbooks.add(target)
    for runbook in sorted(runbooks):
        text = runbook.read_text()
        for link in re.findall(r"\]\(([^)\s]*#[^)\s]+)\)", text):
            if "://" not in link:
                resolve(link, runbook.parent, problems, str(runbook.relative_to(REPO)), runbook)
    if problems:
        sys.exit("check_runbooks: " + "\n  ".join(["problems:"] + problems))
    print(f"SUCCESS: {alerts} alerts, each with a runbook_url that resolves "
          f"({', '.join(str(r.relative_to(REPO)) for r in sorted(runbooks))})")


if __name__ == "__main__":
    main(sys.argv[1:])
