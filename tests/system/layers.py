#!/usr/bin/env python3
"""layers.py OBJECT... - the one-way flow of DESIGN.md, checked on the tree and the build.

Run from the project root with the object files of the core and command-line libraries
(tests/CMakeLists.txt passes $<TARGET_OBJECTS:...>).

1. Includes: no file of src/ includes the header of a module in a layer above its own.  The
   layers, top to bottom: cli (and tools) -> core -> source, report, deliver -> classify ->
   store, emit -> util.  A header belongs to the layer of the src/ file of the same name
   (include/bouncepipe/store.h to src/store/store.c); a header with no such file (limits.h,
   status.h) is the ground floor's.
2. Calls: no circle of files that call each other.  From the object files' symbol tables
   (nm): an edge a -> b when a refers to a function or object that b defines; every strongly
   connected component of more than one file is a circle, printed with the symbols that close it.
Exit status 0 when both hold, 1 otherwise.
"""
import collections
import glob
import os
import re
import subprocess
import sys

RANK = {"cli": 0, "tools": 0, "core": 1, "source": 2, "report": 2, "deliver": 2, "classify": 3,
        "store": 4, "emit": 4, "util": 5}


def layer_of(path):
    return path.split("/")[1]


def include_violations():
    owner = {}
    for f in sorted(glob.glob("src/*/*.c")) + sorted(glob.glob("src/*/*.h")):
        owner.setdefault(os.path.basename(f).rsplit(".", 1)[0], layer_of(f))
    bad = []
    for f in sorted(glob.glob("src/*/*.[ch]")):
        mine = layer_of(f)
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        for m in re.finditer(r'^#include "(?:bouncepipe/)?([A-Za-z0-9_]+)\.h"', text, re.M):
            theirs = owner.get(m.group(1))
            if theirs is not None and RANK[theirs] < RANK[mine]:
                bad.append(f"{f} ({mine}) includes {m.group(1)}.h ({theirs})")
    return bad


def call_circles(objects):
    defined, refs = {}, collections.defaultdict(set)
    for o in objects:
        # name an object by its source: .../bpcore.dir/store/store.c.o -> store/store
        name = re.sub(r"^.*\.dir/", "", o)
        name = re.sub(r"\.c\.o$", "", name)
        out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TDBR":
                defined[parts[2]] = name
            elif len(parts) == 2 and parts[0] == "U":
                refs[name].add(parts[1])
    graph = collections.defaultdict(set)
    for a, symbols in refs.items():
        for s in symbols:
            b = defined.get(s)
            if b is not None and b != a:
                graph[a].add(b)
    # Tarjan's strongly connected components, iteratively
    index, low, on_stack, stack, circles = {}, {}, set(), [], []
    counter = 0
    for root in sorted(set(graph) | {b for bs in graph.values() for b in bs}):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        circles.append(sorted(comp))
    lines = []
    for comp in circles:
        lines.append("circle: " + " <-> ".join(comp))
        for a in comp:
            for b in comp:
                closing = sorted(s for s in refs[a] if defined.get(s) == b) if a != b else []
                if closing:
                    lines.append(f"  {a} -> {b}: {', '.join(closing)}")
    return lines


def main():
    objects = [o for o in sys.argv[1:] if o.endswith(".o")]
    if not objects:
        print("layers.py: no object files given", file=sys.stderr)
        return 1
    bad = include_violations()
    circles = call_circles(objects)
    for line in bad + circles:
        print(line)
    print(f"layers: {len(bad)} upward includes, "
          f"{sum(1 for c in circles if c.startswith('circle'))} circles of calls "
          f"({len(objects)} object files)")
    return 1 if bad or circles else 0


if __name__ == "__main__":
    sys.exit(main())
