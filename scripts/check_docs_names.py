#!/usr/bin/env python3
"""Fails when the docs name code that is not there.

1. Every backticked identifier in docs/*.md (and README.md) that looks like a call, `name(` or
   `Class::name(`, must appear as `name(` somewhere in src/ or apps/ (the C++ library and CLI),
   unless it is on WHITELIST (names of torch, Python or the reference implementation that the
   docs cite for comparison).
2. A ```cpp block right after a line that names a source file (`training/full_batch_step.cpp`:)
   is an excerpt of that file: its code must appear in the file as written, up to whitespace
   (a line "..." stands for lines left out; the pieces between appear in order).

Usage: check_docs_names.py [REPO_ROOT]   (prints every problem; exit 1 if any)
       check_docs_names.py --self-test   (the checker catches a missing name and a stale excerpt)
"""
import pathlib
import re
import sys

# A pattern such as `*_names()` names no one function and is skipped.
# Not fullbatch's: torch's and Python's API, the reference's Python, formulas, CMake.
WHITELIST = {
    "CrossEntropyLoss", "RandomCrop", "_Select", "torch.utils.data.DataLoader", "var",
    "find_package", "print", "torch.manual_seed",
}

SPAN = re.compile(r"`([^`\n]+)`")
CALL = re.compile(r"(?<![\w.:*])((?:[A-Za-z_]\w*(?:::|\.))*[A-Za-z_]\w*)\(")
FILE_LINE = re.compile(r"^`([\w/]+\.(?:cpp|h))`:\s*$")


def doc_files(root):
    return sorted((root / "docs").glob("*.md")) + [p for p in [root / "README.md"] if p.exists()]


def code_text(root):
    parts = []
    for folder in ("src", "apps"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".h", ".cpp"):
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def called_names(markdown):
    """(qualified name, line number) of every backticked call outside ``` blocks."""
    out = []
    fenced = False
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        for span in SPAN.findall(line):
            for name in CALL.findall(span):
                out.append((name, number))
    return out


def excerpts(markdown):
    """(source path, excerpt lines, line number) of every ```cpp block after a file line."""
    lines = markdown.splitlines()
    out = []
    previous = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```cpp") and FILE_LINE.match(previous.strip()):
            path = FILE_LINE.match(previous.strip()).group(1)
            body = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                body.append(lines[j])
                j += 1
            out.append((path, body, i + 1))
            i = j + 1
            previous = ""
            continue
        if line.strip():
            previous = line
        i += 1
    return out


def is_excerpt(body, source):
    """Whether `body` occurs in `source`: each run of lines between "..." lines (which stand for
    code left out) as one piece, the pieces in order. Whitespace, line breaks included, is
    ignored, so reformatting the file does not break the excerpt; any change of code does."""
    pieces, current = [], []
    for line in body:
        if line.strip() == "...":
            pieces.append(current)
            current = []
        else:
            current.append(line)
    pieces.append(current)
    squeezed = re.sub(r"\s+", "", source)
    at = 0
    for piece in pieces:
        text = re.sub(r"\s+", "", "".join(piece))
        if not text:
            continue
        found = squeezed.find(text, at)
        if found < 0:
            return False, next(l.strip() for l in piece if l.strip())
        at = found + len(text)
    return True, None


def check(root):
    code = code_text(root)
    defined = set(re.findall(r"(?<![\w])([A-Za-z_]\w*)\s*\(", code))
    problems = []
    for doc in doc_files(root):
        text = doc.read_text(errors="replace")
        rel = doc.relative_to(root)
        for name, number in called_names(text):
            if name in WHITELIST:
                continue
            leaf = re.split(r"::|\.", name)[-1]
            if leaf not in defined:
                problems.append(f"{rel}:{number}: `{name}(` names nothing in src/ or apps/")
        for path, body, number in excerpts(text):
            source = root / "src" / "fullbatch" / path
            if not source.exists():
                problems.append(f"{rel}:{number}: excerpt of {path}, which does not exist")
                continue
            ok, missing = is_excerpt(body, source.read_text(errors="replace"))
            if not ok:
                problems.append(f"{rel}:{number}: excerpt of {path} no longer matches the file "
                                f"(the piece starting {missing!r} is not in it)")
    return problems


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "src" / "fullbatch" / "training").mkdir(parents=True)
        (root / "apps").mkdir()
        (root / "docs").mkdir()
        (root / "src" / "fullbatch" / "training" / "step.cpp").write_text(
            "void Trainer::step(int s) {\n  run_block(s);\n  finish();\n}\n")
        good = ("Calls `Trainer::step(s)` and `run_block(s)`, like `find_package(Torch)`.\n\n"
                "`training/step.cpp`:\n\n```cpp\nvoid Trainer::step(int s) {\n  ...\n"
                "  finish();\n```\n")
        (root / "docs" / "a.md").write_text(good)
        if check(root):
            print(f"self-test: a correct doc was refused: {check(root)}")
            return 1
        (root / "docs" / "a.md").write_text(good.replace("run_block(s)`", "run_blocks(s)`")
                                            .replace("  finish();", "  finish(s);"))
        problems = check(root)
        if len(problems) != 2:
            print(f"self-test: expected a missing name and a stale excerpt, got {problems}")
            return 1
    print("check_docs_names self-test: a missing name and a stale excerpt are caught")
    return 0


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    root = pathlib.Path(argv[1] if len(argv) > 1 else pathlib.Path(__file__).parent.parent)
    problems = check(root.resolve())
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} name(s) in the docs not found in the code")
        return 1
    print("every function the docs name exists, and every excerpt matches its file")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
