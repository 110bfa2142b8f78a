"""Result files that prove they belong together and are intact.

A ``results.h5`` is sealed (SHA-256 of its bytes in its HDF5 user block, see
:func:`isosim.io.distributed.check_seal`), and the ``summary.json`` written beside it names
that digest (``results_sha256``) and carries a digest of its own content
(``summary_sha256``: SHA-256 of the parsed summary without that key, canonical JSON). So a
reader (``isosim merge``) can tell a damaged file, a ``results.h5`` swapped in from another
run or slice, and an edited summary from the real thing. Local.
"""

import hashlib
import json
from pathlib import Path

from .distributed import check_seal, read_seal

SUMMARY_DIGEST = "summary_sha256"
RESULTS_DIGEST = "results_sha256"


def _canonical(summary):
    body = {k: v for k, v in summary.items() if k != SUMMARY_DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal_summary(summary, run_dir, dumps):
    """The text of ``summary`` (a dict) with ``results_sha256`` (the seal of
    ``run_dir/results.h5``, if sealed) and ``summary_sha256``; ``dumps`` is the JSON writer.
    The digest is taken over the summary as a reader parses it back (non-finite values as
    written, null), so that :func:`verify_summary` recomputes exactly it."""
    digest = read_seal(Path(run_dir) / "results.h5")
    if digest:
        summary[RESULTS_DIGEST] = digest
    parsed = json.loads(dumps(summary))
    summary[SUMMARY_DIGEST] = _canonical(parsed)
    return dumps(summary, indent=1) + "\n"


def verify_pair(run_dir):
    """Why ``run_dir``'s summary.json and results.h5 are not an intact pair, or None."""
    run_dir = Path(run_dir)
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"summary.json cannot be read ({exc})"
    if SUMMARY_DIGEST not in summary:
        return "summary.json carries no digest (written by an older isosim, or edited)"
    if _canonical(summary) != summary[SUMMARY_DIGEST]:
        return "summary.json does not match its digest (edited or damaged)"
    damage = check_seal(run_dir / "results.h5")
    if damage:
        return f"results.h5 {damage}"
    if read_seal(run_dir / "results.h5") != summary.get(RESULTS_DIGEST):
        return "results.h5 is not the file its summary.json was written with (swapped in from elsewhere?)"
    return None
