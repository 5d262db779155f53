#!/usr/bin/env python3
"""List Rust functions over 100 lines and source files over 800 lines.

Scope: every `.rs` file under `crates/*/` except those in a `tests/` folder (integration
tests may be long; unit-test modules inside `src/` count). A function is exempt when the
doc comment right above it says "flat table" (say why there). A file is exempt when its
`//!` header says "flat table".

Usage: `.ci/size-check.py` prints the offenders and exits 1 if there are any;
`--report` prints them and exits 0 (for a progress report).
"""

import re
import sys
from pathlib import Path

MAX_FN = 100
MAX_FILE = 800
FN_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def strip_code(text):
    """Blank out comments, strings and char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def exempt_above(lines, idx):
    j = idx - 1
    while j >= 0 and (lines[j].strip().startswith("#[") or lines[j].strip().startswith("///")):
        if "flat table" in lines[j]:
            return True
        j -= 1
    return False


def long_functions(path, text):
    raw = text.splitlines()
    code = strip_code(text).splitlines()
    found = []
    for idx, line in enumerate(code):
        m = FN_RE.match(line)
        if not m:
            continue
        depth, start, end = 0, None, None
        for j in range(idx, len(code)):
            for ch in code[j]:
                if ch == "{":
                    depth += 1
                    start = j if start is None else start
                elif ch == "}":
                    depth -= 1
                    if start is not None and depth == 0:
                        end = j
                        break
                elif ch == ";" and start is None:
                    end = -1  # a declaration without a body
                    break
            if end is not None:
                break
        if end is None or end < 0:
            continue
        length = end - idx + 1
        if length > MAX_FN and not exempt_above(raw, idx):
            found.append((length, f"{path}:{idx + 1} fn {m.group(1)}: {length} lines"))
    return found


def main():
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for path in sorted(root.glob("crates/*/**/*.rs")):
        rel = path.relative_to(root)
        if "tests" in rel.parts or "target" in rel.parts:
            continue
        text = path.read_text()
        n = text.count("\n")
        header = "\n".join(l for l in text.splitlines()[:30] if l.startswith("//!"))
        if n > MAX_FILE and "flat table" not in header:
            offenders.append(f"{rel}: {n} lines (file)")
        offenders += [msg for _, msg in long_functions(rel, text)]
    for o in offenders:
        print(o)
    if offenders:
        print(f"{len(offenders)} over the limits (functions > {MAX_FN} lines, files > {MAX_FILE} lines)")
    return 1 if offenders and "--report" not in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
