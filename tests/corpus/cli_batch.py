"""Run many ``dormsig`` command lines in one process (the corpus's fast path).

``python cli_batch.py cases.json results.json``: each case is ``{"id", "args", "env", "cwd"}``; each
result holds the exit code of :func:`dormsig.cli.main` (the console script's entry point, which the
script wraps in ``sys.exit``) and what it printed. Imports are paid once instead of once per case;
the corpus runs a subset of the cases through the real console script as well.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def run(cases: list[dict]) -> dict[str, dict]:
    from dormsig.cli import main

    results = {}
    for case in cases:
        saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
        os.environ.pop("DORMSIG_MAX_TABLE_BYTES", None)
        os.environ.update(case.get("env") or {})
        os.chdir(case["cwd"])
        sys.argv = ["dormsig", *case["args"]]
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(case["args"])
                except SystemExit as exc:  # pragma: no cover - main() maps SystemExit itself
                    rc = int(exc.code or 0)
                except BaseException as exc:  # noqa: BLE001 - what the console script would show
                    import traceback

                    traceback.print_exc()
                    rc = f"uncaught {type(exc).__name__}"
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)
            sys.argv = saved_argv
        results[case["id"]] = {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}
    return results


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        todo = json.load(handle)
    with open(sys.argv[2], "w") as handle:
        json.dump(run(todo), handle)
