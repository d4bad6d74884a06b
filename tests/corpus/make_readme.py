"""Regenerate tests/corpus/README.md (the corpus table) from cases.yaml: ``python tests/corpus/make_readme.py``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

INTRO = """# The bad-input corpus

Every case below is run by `tests/test_corpus.py` (one parametrized test). The source of truth is
`cases.yaml`; this table is generated from it by `make_readme.py` (a test fails when it is stale).

- **cli** cases run `dormsig <args>` in a subprocess: the real console script for the cases
  marked (console) below, otherwise `dormsig.cli.main(args)` (the script's entry point) in a batch
  subprocess (`cli_batch.py`, imports paid once). They assert the exit code
  (0 ok, 2 bad input, 1 internal, 3 verify mismatch), one `dormsig: error: ...` line containing the
  message, no traceback, no output file and no `.provenance.json` beside it, no `.tmp` leftover,
  and unchanged sha256 of every input.
- **library** cases call the Python API and assert the exception type (a `dormsig.errors` class)
  and the one-line message; "-" means the call must work (an extra check then asserts the result).
- Inputs are generated in a session fixture by `generate.py` from the bundled Aceto 2014 CTC
  example (`dormsig/data/aceto2014_ctc`); `static/` holds the byte-exact truncated `.gz` and `.h5ad`.
- Categories added for issue 13 (no silent misreads, no lost files): **paths** (an output equal to,
  inside or containing an input, even with `--force`; two outputs on one path), **options** (out-of-domain
  values refused by the click types before any work), **real-shapes** (files as Excel, R, pandas,
  htseq-count and RSEM write them: thousands separators, decimal commas, row numbers, empty column
  names, summary rows, per-transcript tables, date-mangled gene names), **species** (mixed or
  contradicting), **meaningless** (all-or-none references, cohort methods on too few samples,
  duplicated names on every path, result tables of the wrong kind), **wrong-file** (binary, empty,
  directory or another format where a file is expected), **leftovers** (nothing written or created
  after an error) and **messages** (one line, the option as typed, lists cut with a count).
  A case may list fragments its message must not contain (`not_in`: Python names such as `species=`).
"""


def main() -> None:
    cases = yaml.safe_load((HERE / "cases.yaml").read_text())
    counts = Counter(c["category"] for c in cases)
    kinds = Counter(c["kind"] for c in cases)
    lines = [INTRO, f"{len(cases)} cases ({kinds['cli']} cli, {kinds['library']} library). By category: "
             + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".\n",
             "| id | category | kind | what | expected | message fragment |", "|---|---|---|---|---|---|"]
    for c in cases:
        if c["kind"] == "cli":
            expected = f"exit {c['exit']}" + (" (console)" if c.get("console") else "")
        else:
            expected = c["raises"] or "works"
        if c.get("xfail"):
            expected += f" (xfail: {c['xfail']})"
        msg = str(c.get("message") or "-").replace("|", "\\|")
        what = str(c["what"]).replace("|", "\\|")
        lines.append(f"| `{c['id']}` | {c['category']} | {c['kind']} | {what} | {expected} | `{msg}` |")
    (HERE / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
