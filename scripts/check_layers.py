#!/usr/bin/env python3
"""Fails when the library's folders depend on each other against the declared layering.

Each folder of src/fullbatch/ sits on a layer (LAYERS below, lowest first). A file may include
headers of its own folder and of folders on lower layers only; folders on one layer never
include each other. That forbids every include cycle between folders, and keeps dependencies
pointing one way as docs/architecture.md describes. apps/ may include anything.

Usage: check_layers.py [REPO_ROOT]   (prints every offending include; exit 1 if any)
"""
import pathlib
import re
import sys

# Lowest first. Folders on one line share a layer and must not include each other.
LAYERS = [
    ["common"],
    ["config", "data", "models"],
    ["distributed"],
    ["optim"],
    ["training"],
    ["analysis"],
    ["run", "bench"],
    ["report"],
]
INCLUDE = re.compile(r'^\s*#\s*include\s+"fullbatch/([a-z_]+)/[^"]+"', re.MULTILINE)


def layer_of():
    return {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}


def check(root):
    ranks = layer_of()
    src = root / "src" / "fullbatch"
    problems = []
    folders = sorted(p.name for p in src.iterdir() if p.is_dir())
    for folder in folders:
        if folder not in ranks:
            problems.append(f"src/fullbatch/{folder}/: folder not placed in a layer "
                            f"(add it to LAYERS in scripts/check_layers.py and docs/architecture.md)")
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cpp") or path.parent == src:
            continue
        folder = path.relative_to(src).parts[0]
        if folder not in ranks:
            continue
        for target in INCLUDE.findall(path.read_text(errors="replace")):
            if target == folder:
                continue
            if target not in ranks:
                problems.append(f"{path.relative_to(root)}: includes unknown folder '{target}'")
            elif ranks[target] >= ranks[folder]:
                how = "the same layer as" if ranks[target] == ranks[folder] else "a higher layer than"
                problems.append(f"{path.relative_to(root)}: includes fullbatch/{target}/, "
                                f"{how} {folder}/")
    return problems


def self_test():
    """The checker itself must catch a cycle and an upward include, and accept a clean tree."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        def write(rel, text):
            path = root / "src" / "fullbatch" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        write("common/a.h", "#pragma once\n")
        write("training/t.h", '#include "fullbatch/common/a.h"\n')
        if check(root):
            print("self-test: a clean tree was refused")
            return 1
        write("common/b.cpp", '#include "fullbatch/training/t.h"\n')   # upward: a cycle
        write("config/c.cpp", '#include "fullbatch/models/m.h"\n')     # same layer
        problems = check(root)
        if len(problems) != 2:
            print(f"self-test: expected 2 problems, got {problems}")
            return 1
    print("check_layers self-test: a cycle and a same-layer include are caught")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    problems = check(root.resolve())
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) against the layering")
        return 1
    print("check_layers: every include points down the layers " +
          " <- ".join("/".join(layer) for layer in LAYERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
