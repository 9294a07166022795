#!/usr/bin/env python3
"""Fail on import cycles between the crate's modules, so the layering stays.

Usage: check_layers.py [--edges] [SRC_DIR]      (SRC_DIR defaults to `src`)

Two kinds of graph are checked, both as "folder graphs":

  (a) src/ itself: its nodes are the top-level modules (src/X.rs or src/X/ as one
      unit: `cache`, `fuse`, `mount`, ...) plus `lib` (src/lib.rs, the crate root)
      and `main` (src/main.rs, the binary);
  (b) every other module folder: its nodes are its direct children (files and
      subfolders as units) plus `mod`, the folder's own module file (its mod.rs,
      or foo.rs for a folder foo/ with a sibling foo.rs).

An edge X -> Y exists in a folder graph when a file inside unit X refers to an
item inside unit Y of the same folder (X != Y).  Exit status 1 if any folder
graph has a cycle (one line per cycle, with one example file:line per edge),
0 otherwise.  `--edges` also prints every module file and every folder-graph
edge (`module <path> <file>` and `edge <folder> X -> Y <file>:<line> uses
<path>` lines) before the verdict.

What counts as a reference (the edge rule):
  * `mod child;` declarations are NOT edges (a module has to declare its
    children; that alone is no dependency on them);
  * every path that names an item of another module IS an edge, wherever it
    appears in code: `use` trees (`use crate::{a, b::{c, d}}`, `pub use`
    re-exports, `use super::*`, `use child::X`), and inline paths in
    signatures, expressions, attributes and macro invocations
    (`crate::mount::options::MountOptions`, `super::soap::escape(...)`,
    `view::FrozenVm` in a mod.rs whose child is `view`).
    So a mod.rs that re-exports a child's item (`pub use view::FrozenVm`) or
    calls into it, while that child uses `super::Something` from the mod.rs,
    is a mod <-> child cycle.
  * Recognised path starts: `crate::`, `$crate::`, `super::`, `self::`, a child
    module of the file's own module (`view::X` in fuse/mod.rs), and, in
    src/main.rs and src/bin/, the library's own crate name (`vmsnapfs::`).
    Other paths (std, extern crates, local items) are not edges.
  * A path resolves to the longest prefix that is a module file of the crate:
    `crate::fuse::view::FrozenVm` -> module fuse::view (src/fuse/view.rs);
    `super::Handle` from src/fuse/ops.rs -> module fuse (src/fuse/mod.rs).
  * Comments (//, /* */ nested, doc comments) and string/char literals
    (including raw and byte strings) are ignored; so is `pub(in crate::x)`.
  * Inline modules (`mod tests { ... }`) belong to their file: `super::` inside
    them resolves relative to the inline module, so `#[cfg(test)] mod tests {
    use super::*; }` refers to the file itself and is no edge.
"""

import os
import re
import sys
from collections import deque

IDENT_START = re.compile(r"[A-Za-z_\u0080-\U0010ffff]")
IDENT_CHAR = re.compile(r"[A-Za-z0-9_\u0080-\U0010ffff]")


# ---------------------------------------------------------------- lexing


def tokenize(text):
    """Tokens (kind, value, line) of Rust source, without comments and literals.

    kind is 'id' (identifiers and keywords, raw identifiers without `r#`),
    'lit' (any string, char or number literal: value is empty), or 'p'
    (punctuation; `::` is one token, every other punctuation char its own).
    """
    toks = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        line += 1
                    i += 1
        elif c == '"' or (
            c in "bcr" and _string_prefix(text, i) is not None
        ):
            start_line = line
            i, line = _skip_string(text, i, line)
            toks.append(("lit", "", start_line))
        elif c == "'" or (c == "b" and text.startswith("b'", i)):
            j = i + 1 if c == "'" else i + 2
            if j < n and text[j] == "\\":
                # escaped char literal: '\n', '\'', '\u{1F600}'
                k = j + 2
                while k < n and text[k] != "'" and text[k] != "\n":
                    k += 1
                toks.append(("lit", "", line))
                i = k + 1
            elif j + 1 < n and text[j + 1] == "'" and text[j] != "\n":
                toks.append(("lit", "", line))  # 'x'
                i = j + 2
            else:
                i = j  # lifetime or label: the name lexes as an identifier
        elif c == "r" and text.startswith("r#", i) and i + 2 < n and IDENT_START.match(text[i + 2]):
            j = i + 2
            while j < n and IDENT_CHAR.match(text[j]):
                j += 1
            toks.append(("id", text[i + 2 : j], line))
            i = j
        elif IDENT_START.match(c):
            j = i + 1
            while j < n and IDENT_CHAR.match(text[j]):
                j += 1
            toks.append(("id", text[i:j], line))
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and (IDENT_CHAR.match(text[j]) or (text[j] == "." and j + 1 < n and text[j + 1].isdigit())):
                j += 1
            toks.append(("lit", "", line))
            i = j
        elif text.startswith("$crate", i) and not (i + 6 < n and IDENT_CHAR.match(text[i + 6])):
            toks.append(("id", "crate", line))  # $crate in macro_rules: the crate root
            i += 6
        elif text.startswith("::", i):
            toks.append(("p", "::", line))
            i += 2
        else:
            toks.append(("p", c, line))
            i += 1
    return toks


def _string_prefix(text, i):
    """Length of a string prefix (b, c, r, br, cr, r#.., br#..) at i followed by a quote."""
    m = re.compile(r'(?:b|c)?r#*"|(?:b|c)"').match(text, i)
    if m and (i == 0 or not IDENT_CHAR.match(text[i - 1])):
        return m.end() - i - 1
    return None


def _skip_string(text, i, line):
    n = len(text)
    k = _string_prefix(text, i) if text[i] != '"' else 0
    prefix = text[i : i + k]
    i += k + 1  # past the opening quote
    if "r" in prefix:
        close = '"' + "#" * prefix.count("#")
        j = text.find(close, i)
        j = n if j < 0 else j
        line += text.count("\n", i, j)
        return j + len(close), line
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                line += 1
            i += 2
            continue
        if ch == "\n":
            line += 1
        elif ch == '"':
            return i + 1, line
        i += 1
    return n, line


# ---------------------------------------------------------------- the crate's modules


def lib_crate_name(src_dir):
    """The library's crate name from ../Cargo.toml ([lib] name, else [package] name)."""
    path = os.path.join(os.path.dirname(os.path.abspath(src_dir)), "Cargo.toml")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    section, names = None, {}
    for raw in text.splitlines():
        s = raw.strip()
        m = re.match(r"^\[([^\]]+)\]$", s)
        if m:
            section = m.group(1).strip()
            continue
        m = re.match(r'^name\s*=\s*"([^"]+)"', s)
        if m and section in ("lib", "package") and section not in names:
            names[section] = m.group(1)
    name = names.get("lib") or names.get("package")
    return name.replace("-", "_") if name else None


class SourceFile:
    def __init__(self, rel, mod_path, unit_path, is_bin):
        self.rel = rel  # path relative to the src dir, with /
        self.mod_path = mod_path  # module path used to resolve paths (tuple)
        self.unit_path = unit_path  # where the file sits in the folder graphs (tuple)
        self.is_bin = is_bin


def collect_files(src_dir):
    has_lib = os.path.isfile(os.path.join(src_dir, "lib.rs"))
    files = []
    for dirpath, dirnames, filenames in os.walk(src_dir):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, fn), src_dir).replace(os.sep, "/")
            parts = rel[:-3].split("/")
            if rel == "lib.rs":
                files.append(SourceFile(rel, (), (), False))
            elif rel == "main.rs":
                if has_lib:
                    files.append(SourceFile(rel, (), ("main",), True))
                else:  # a binary-only crate: main.rs is the crate root
                    files.append(SourceFile(rel, (), (), False))
            elif parts[0] == "bin" and has_lib and (len(parts) == 2 or (len(parts) == 3 and parts[2] == "main")):
                # src/bin/x.rs, src/bin/x/main.rs: each its own binary crate
                files.append(SourceFile(rel, (), ("bin", parts[1]), True))
            else:
                if parts[-1] == "mod":
                    parts = parts[:-1]
                files.append(SourceFile(rel, tuple(parts), tuple(parts), False))
    return files


# ---------------------------------------------------------------- paths in a file


def parse_use_tree(toks, i, prefix, out):
    """Parse one use tree at toks[i]; append (segments, line) leaves to out; return next i."""
    segs = list(prefix)
    line = toks[i][2] if i < len(toks) else 0
    if i < len(toks) and toks[i][1] == "::":  # leading :: (extern crate path)
        segs.append("::")
        i += 1
    while i < len(toks):
        kind, val, line = toks[i]
        if kind == "id" and val != "as":
            segs.append(val)
            i += 1
            if i < len(toks) and toks[i][1] == "::":
                i += 1
                continue
            break
        if val == "{":
            i += 1
            while i < len(toks) and toks[i][1] != "}":
                if toks[i][1] == ",":
                    i += 1
                    continue
                before = i
                i = parse_use_tree(toks, i, segs, out)
                if i == before:
                    i += 1
            return i + 1
        if val == "*":
            out.append((segs, line))
            return i + 1
        break
    if segs and segs[-1] == "self":
        segs = segs[:-1]
    if segs:
        out.append((segs, line))
    if i < len(toks) and toks[i][1] == "as":
        i += 2
    return i


def file_paths(sf, toks, child_names, lib_name):
    """(segments, line, inline_mod_stack) of every path in the file that may name a module."""
    found = []
    stack = []  # inline modules: (name, brace depth inside them)
    depth = 0
    starts = {"crate", "super", "self"}
    if sf.is_bin and lib_name:
        starts.add(lib_name)
    i, n = 0, len(toks)
    while i < n:
        kind, val, line = toks[i]
        if kind == "p":
            if val == "{":
                depth += 1
            elif val == "}":
                depth -= 1
                if stack and depth < stack[-1][1]:
                    stack.pop()
            i += 1
            continue
        if kind != "id":
            i += 1
            continue
        if val == "mod" and i + 2 < n and toks[i + 1][0] == "id":
            if toks[i + 2][1] == "{":
                stack.append((toks[i + 1][1], depth + 1))
                depth += 1
                i += 3
                continue
            if toks[i + 2][1] == ";":  # `mod child;`: a declaration, no edge
                i += 3
                continue
        if val == "use":
            leaves = []
            j = parse_use_tree(toks, i + 1, [], leaves)
            for segs, ln in leaves:
                if segs and segs[0] != "::" and (segs[0] in starts or segs[0] in child_names):
                    found.append((segs, ln, tuple(s for s, _ in stack)))
            # skip to the end of the use item
            while j < n and toks[j][1] != ";":
                j += 1
            i = j + 1
            continue
        prev = toks[i - 1][1] if i > 0 else ""
        if (
            i + 1 < n
            and toks[i + 1][1] == "::"
            and prev not in ("::", ".")
            and (val in starts or val in child_names)
            and not (prev == "in" and i >= 3 and toks[i - 2][1] == "(" and toks[i - 3][1] == "pub")
        ):
            segs = [val]
            j = i + 1
            while j + 1 < n and toks[j][1] == "::" and toks[j + 1][0] == "id":
                segs.append(toks[j + 1][1])
                j += 2
            found.append((segs, line, tuple(s for s, _ in stack)))
            i = j
            continue
        i += 1
    return found


def resolve(sf, segs, inline, lib_name):
    """Absolute segments of a path (crate root = ()), or None if it is no crate path."""
    here = list(sf.mod_path) + list(inline)
    first = segs[0]
    if first in ("crate",) or (sf.is_bin and first == lib_name):
        return tuple(segs[1:])
    if first in ("super", "self"):
        cur = here
        k = 0
        while k < len(segs) and segs[k] in ("super", "self"):
            if segs[k] == "super":
                if not cur:
                    return None
                cur = cur[:-1]
            k += 1
        return tuple(cur) + tuple(segs[k:])
    # a child module of the file's own module
    return tuple(sf.mod_path) + tuple(segs)


# ---------------------------------------------------------------- graphs


def find_cycles(nodes, edges):
    """Cycles covering every edge in a non-trivial strongly connected component."""
    succ = {v: sorted(w for (u, w) in edges if u == v) for v in nodes}
    index, low, on, st, sccs, counter = {}, {}, set(), [], [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        st.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = st.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            strong(v)
    cycles = []
    for comp in sccs:
        if len(comp) < 2:
            continue
        comp_edges = sorted((u, w) for (u, w) in edges if u in comp and w in comp)
        covered = set()
        for u, v in comp_edges:
            if (u, v) in covered:
                continue
            # shortest path v -> u inside the component
            prev = {v: None}
            q = deque([v])
            while q:
                x = q.popleft()
                if x == u:
                    break
                for y in succ[x]:
                    if y in comp and y not in prev:
                        prev[y] = x
                        q.append(y)
            path = [u]
            x = u
            while x != v:
                x = prev[x]
                path.append(x)
            path.reverse()  # v ... u
            cyc = [u] + path  # u -> v -> ... -> u
            for a, b in zip(cyc, cyc[1:]):
                covered.add((a, b))
            ring = cyc[:-1]
            k = ring.index(min(ring))
            ring = ring[k:] + ring[:k]
            cycles.append(ring + [ring[0]])
    cycles.sort()
    return cycles


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    show_edges = "--edges" in argv
    unknown = [a for a in argv if a.startswith("--") and a != "--edges"]
    if unknown or len(args) > 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    src_dir = args[0] if args else "src"
    if not os.path.isdir(src_dir):
        print(f"check_layers: {src_dir}: not a directory", file=sys.stderr)
        return 2
    label = os.path.basename(os.path.normpath(os.path.abspath(src_dir))) or "src"
    lib_name = lib_crate_name(src_dir)
    files = collect_files(src_dir)
    modules = {sf.mod_path: sf for sf in files if not sf.is_bin}
    root_name = modules[()].rel[:-3] if () in modules else "lib"

    def show(rel):
        return f"{label}/{rel}"

    # module -> module edges, with the first example of each
    mod_edges = {}
    for sf in files:
        with open(os.path.join(src_dir, sf.rel), encoding="utf-8", errors="replace") as f:
            toks = tokenize(f.read())
        own = sf.mod_path if not sf.is_bin else None
        child_names = set()
        if own is not None:
            child_names = {m[-1] for m in modules if len(m) == len(own) + 1 and m[: len(own)] == own}
        for segs, line, inline in file_paths(sf, toks, child_names, lib_name):
            target = resolve(sf, segs, inline, lib_name)
            if target is None:
                continue
            k = len(target)
            while k > 0 and target[:k] not in modules:
                k -= 1
            tmod = target[:k]
            if tmod not in modules or (not sf.is_bin and tmod == sf.mod_path):
                continue
            key = (sf.unit_path, tmod)
            if key not in mod_edges:
                mod_edges[key] = (sf, line, "::".join(segs))

    # folder graphs
    folders = sorted({m[:d] for m in modules for d in range(len(m))} | {()})
    graphs = {}
    for (src_unit, tmod), ex in sorted(mod_edges.items(), key=lambda kv: (kv[0], kv[1][0].rel, kv[1][1])):
        for folder in folders:
            d = len(folder)
            if src_unit[:d] != folder or tmod[:d] != folder:
                continue
            a = src_unit[d] if len(src_unit) > d else "mod"
            b = tmod[d] if len(tmod) > d else "mod"
            if folder == ():
                a = root_name if a == "mod" else a
                b = root_name if b == "mod" else b
            if a == b:
                continue
            g = graphs.setdefault(folder, {})
            if (a, b) not in g:
                g[(a, b)] = ex

    def folder_label(folder):
        return label + "/" + "".join(p + "/" for p in folder)

    if show_edges:
        for m, sf in sorted(modules.items()):
            print(f"module {'::'.join(('crate',) + m)} {show(sf.rel)}")
        for folder in sorted(graphs):
            for (a, b), (sf, line, path) in sorted(graphs[folder].items()):
                print(f"edge {folder_label(folder)} {a} -> {b} {show(sf.rel)}:{line} uses {path}")

    n_cycles = 0
    for folder in sorted(graphs):
        g = graphs[folder]
        nodes = {a for a, _ in g} | {b for _, b in g}
        for cyc in find_cycles(nodes, set(g)):
            n_cycles += 1
            ev = []
            for a, b in zip(cyc, cyc[1:]):
                sf, line, path = g[(a, b)]
                ev.append(f"{show(sf.rel)}:{line} uses {path}")
            print(f"cycle in {folder_label(folder)}: {' -> '.join(cyc)} ({'; '.join(ev)})")
    n_edges = len({(u, t) for (u, t) in mod_edges})
    if n_cycles:
        print(f"layers: {len(modules)} modules, {n_edges} edges, {n_cycles} import cycle(s)")
        return 1
    print(f"layers: {len(modules)} modules, {n_edges} edges, no import cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
