"""Regenerate the deck-key blocks of docs/user-guide.md from ``isosim keys MODEL``.

    .venv/bin/python scripts/make_docs_keys.py            # rewrite the blocks in place
    .venv/bin/python scripts/make_docs_keys.py --check    # exit 1 if a block is out of date

Each block sits between ``<!-- keys:MODEL -->`` and ``<!-- /keys -->`` and holds the command's
output in a ``text`` code fence; everything outside the markers is left as it is.
``tests/test_docs.py`` checks the blocks with the same functions.
"""

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "user-guide.md"
MODELS = ("grain_exchange", "capsule", "chamber")
BLOCK = re.compile(r"(<!-- keys:(?P<model>\w+) -->\n)(?P<body>.*?)(<!-- /keys -->)", re.S)


def keys_output(model):
    """What ``isosim keys MODEL`` prints (run in this process; no PETSc needed)."""
    try:
        from isosim.cli import main
    except ImportError:                 # not installed in this interpreter: use the checkout
        sys.path.insert(0, str(ROOT / "src"))
        from isosim.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["keys", model])
    if code not in (None, 0):
        raise SystemExit(f"isosim keys {model} exited with {code}")
    return buf.getvalue()


def block_body(model):
    return "```text\n$ isosim keys " + model + "\n" + keys_output(model).rstrip("\n") + "\n```\n"


def blocks(text):
    """{model: body} of every keys block in ``text``."""
    return {m.group("model"): m.group("body") for m in BLOCK.finditer(text)}


def regenerate(text):
    """``text`` with every keys block replaced by the current output."""
    return BLOCK.sub(lambda m: m.group(1) + block_body(m.group("model")) + m.group(4), text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    args = ap.parse_args(argv)
    text = GUIDE.read_text(encoding="utf-8")
    missing = set(MODELS) - set(blocks(text))
    if missing:
        raise SystemExit(f"{GUIDE}: no keys block for {', '.join(sorted(missing))}")
    new = regenerate(text)
    if args.check:
        if new != text:
            print(f"{GUIDE.relative_to(ROOT)}: deck-key blocks out of date; run scripts/make_docs_keys.py")
            return 1
        return 0
    if new != text:
        GUIDE.write_text(new, encoding="utf-8")
        print(f"rewrote the deck-key blocks of {GUIDE.relative_to(ROOT)}")
    else:
        print(f"{GUIDE.relative_to(ROOT)}: deck-key blocks already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
