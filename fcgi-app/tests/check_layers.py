#!/usr/bin/env python3
"""Checks that fcgi-app's layers only include the layers they link (the CTest test `layers`).

Each folder src/<layer>/ is the CMake library hashd_<layer>, and fcgi-app/CMakeLists.txt says
which layers it links. A file of src/<layer>/ may include headers of its own layer and of the
layers hashd_<layer> links, nothing else; and the links must have no cycle. So a lower layer
that includes a higher one fails here even when it happens to build (headers need no link),
and so does a link added to make such an include build (it closes a cycle).

A program's main.cc lives in a layer's folder but is no part of its library: it belongs to the
executable that `add_executable(<name> src/<layer>/main.cc)` builds, and may include exactly
the layers that executable links (so hashd-fcgi's main may use hashd_daemon although the
server layer does not).

Usage: check_layers.py FCGI_APP_DIR [--order]
--order prints the layers lowest first (each after every layer it links) instead.
"""

import pathlib
import re
import sys

LINKS = re.compile(r"target_link_libraries\(\s*hashd_(\w+)\b(.*?)\)", re.S)
LAYER = re.compile(r"\bhashd_(\w+)\b")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
EXECUTABLE = re.compile(r"add_executable\(\s*([\w-]+)\s+src/(\w+/main\.cc)\s*\)")
TARGET_LINKS = re.compile(r"target_link_libraries\(\s*([\w-]+)\b(.*?)\)", re.S)


def read_links(cmake_text, layers):
    """{layer: set of layers it links}, from every target_link_libraries of a hashd_<layer>
    (the unit tests and other hashd_ targets that are no folder are not layers)."""
    links = {}
    for target, arguments in LINKS.findall(cmake_text):
        if target in layers:
            linked = set(LAYER.findall(arguments)) & layers
            links.setdefault(target, set()).update(linked)
    return links


def read_mains(cmake_text, layers):
    """{"<layer>/main.cc": set of layers its executable links}, for each add_executable of a
    main.cc under src/."""
    mains = {}
    executables = dict(EXECUTABLE.findall(cmake_text))
    for target, arguments in TARGET_LINKS.findall(cmake_text):
        if target in executables:
            linked = set(LAYER.findall(arguments)) & layers
            mains.setdefault(executables[target], set()).update(linked)
    return mains


def lowest_first(links):
    """The layers in an order where each follows the layers it links, otherwise in the order
    CMakeLists.txt links them (so the order reads as its list of layers); None on a cycle."""
    order, done, visiting = [], set(), set()

    def visit(layer):
        if layer in done:
            return True
        if layer in visiting:
            return False
        visiting.add(layer)
        for lower in sorted(links.get(layer, ())):
            if not visit(lower):
                return False
        visiting.discard(layer)
        done.add(layer)
        order.append(layer)
        return True

    for layer in links:
        if not visit(layer):
            return None
    return order


def main(argv):
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--order"):
        print(__doc__, file=sys.stderr)
        return 2
    app = pathlib.Path(argv[1])
    src = app / "src"
    folders = sorted(p for p in src.iterdir() if p.is_dir())
    cmake_text = (app / "CMakeLists.txt").read_text()
    links = read_links(cmake_text, {p.name for p in folders})
    mains = read_mains(cmake_text, {p.name for p in folders})
    order = lowest_first(links)
    if order is None:
        print("layers: the links of the hashd_ layers form a cycle:", file=sys.stderr)
        for layer in sorted(links):
            lower = " ".join(f"hashd_{name}" for name in sorted(links[layer]))
            print(f"  hashd_{layer} links {lower or '-'}", file=sys.stderr)
        return 1
    if len(argv) == 3:
        for layer in order:
            lower = ", ".join(f"hashd_{name}" for name in sorted(links[layer])) or "-"
            print(f"hashd_{layer}: {lower}")
        return 0

    problems = []
    for folder in folders:
        layer = folder.name
        if layer not in links:
            problems.append(f"src/{layer}/ has no hashd_{layer} library linking its layers")
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".h", ".cc"):
                continue
            main = path.relative_to(src).as_posix()
            allowed = mains[main] if main in mains else links[layer] | {layer}
            linker = "its executable" if main in mains else f"hashd_{layer}"
            for include in INCLUDE.findall(path.read_text()):
                target = include.split("/", 1)[0] if "/" in include else None
                if target is None:
                    problems.append(f"{path.relative_to(app)}: \"{include}\" is not "
                                    "layer-qualified (src/ is the include root)")
                elif target in links and target not in allowed:
                    why = ("link it there" if main in mains
                           else "a lower layer may not include a higher one")
                    problems.append(f"{path.relative_to(app)}: includes \"{include}\", but "
                                    f"{linker} does not link hashd_{target} ({why})")
    for problem in problems:
        print(f"layers: {problem}", file=sys.stderr)
    if not problems:
        print(f"layers: {len(order)} layers, lowest first: "
              + " ".join(f"hashd_{layer}" for layer in order))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
