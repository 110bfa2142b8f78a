"""The documentation stands alone: the README is a front page, every relative link in it and
under docs/ resolves (file and, where given, heading), no tracked file refers to a
specification or papers outside the repository, and the deck-key blocks of
docs/user-guide.md are what ``isosim keys MODEL`` prints now."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_LIMIT = 12_000
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: A reference to the project's old specification or to files beside the checkout.
OUTSIDE = ("SPEC §", "SPEC.md", "../shared")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _make_docs_keys():
    spec = importlib.util.spec_from_file_location("make_docs_keys", ROOT / "scripts" / "make_docs_keys.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _prose(text):
    """``text`` without fenced code blocks (their brackets are not links)."""
    return FENCE.sub("", text)


def _slug(heading):
    """GitHub's anchor of a heading: lower case, inline markup and punctuation dropped
    (letters of any alphabet, digits, '_' and '-' kept), spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)      # a link keeps its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path):
    seen, out = {}, set()
    for h in HEADING.findall(_prose(path.read_text(encoding="utf-8"))):
        s = _slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def _links(path):
    return LINK.findall(_prose(path.read_text(encoding="utf-8")))


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text) <= README_LIMIT, f"README.md has {len(text)} characters (limit {README_LIMIT})"
    # the front page links every documentation page
    linked = {(ROOT / t.split("#")[0]).resolve() for t in _links(ROOT / "README.md")
              if not re.match(r"[a-z]+:", t) and not t.startswith("#")}
    missing = [p.relative_to(ROOT).as_posix() for p in DOC_FILES[1:] if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


@pytest.mark.parametrize("path", DOC_FILES, ids=[p.relative_to(ROOT).as_posix() for p in DOC_FILES])
def test_relative_links_resolve(path):
    bad = []
    for target in _links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):          # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{target}: no such file")
            continue
        try:
            dest.relative_to(ROOT)
        except ValueError:
            bad.append(f"{target}: outside the repository")
            continue
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def test_no_reference_outside_the_repository():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    found = []
    for name in files.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if any(s in line for s in OUTSIDE):
                found.append(f"{name}:{n}: {line.strip()[:100]}")
    # this file names the strings it looks for
    found = [f for f in found if not f.startswith("tests/test_docs.py:")]
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_keys_blocks_are_current():
    mod = _make_docs_keys()
    text = mod.GUIDE.read_text(encoding="utf-8")
    blocks = mod.blocks(text)
    assert set(blocks) == set(mod.MODELS), f"keys blocks for {sorted(blocks)}, expected {sorted(mod.MODELS)}"
    for model in mod.MODELS:
        out = subprocess.run([sys.executable, "-m", "isosim", "keys", model], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout == mod.keys_output(model)          # in-process and command agree
        assert blocks[model] == mod.block_body(model), \
            f"docs/user-guide.md: the {model} deck keys are stale; run scripts/make_docs_keys.py"
