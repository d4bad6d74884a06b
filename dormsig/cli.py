"""The ``dormsig`` command line: a thin shell over the library.

Exit codes: 0 success, 2 bad input or usage (one line on stderr, no traceback), 1 internal error,
3 ``verify`` found that an output no longer matches its inputs, 130 interrupted (SIGINT), 143 terminated
(SIGTERM); an interrupted or terminated command removes what it wrote.
Every output gets a ``<output>.provenance.json`` beside it; outputs are written atomically and an
existing output is replaced only with ``--force``; an input is never overwritten.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from dormsig import _interrupt
from dormsig import _keys as K
from dormsig._version import __version__
from dormsig.cli_types import (
    DESIGN,
    FORMAT,
    FRACTION,
    H5AD,
    HTML,
    METHOD_OR_AUTO,
    PERMUTATIONS,
    QUANTILE,
    SEED,
    TABLE,
    THREADS,
    CellsArg,
    Float,
    IndexArg,
    InputPath,
    Int,
    Key,
    Name,
    OutputPath,
    Scheduler,
    SignaturesArg,
    as_flags,
    for_people,
    plan_paths,
)
from dormsig.errors import DesignError, DormsigError, InputError, MissingInputError

log = logging.getLogger("dormsig")

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_VERIFY_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


# --------------------------------------------------------------------------- plumbing
def _setup_logging(quiet: bool, verbose: bool) -> None:
    """dormsig's messages from INFO up (errors only with -q); other libraries' only with -v.

    Libraries log what is news to their developers, not to a user of dormsig (anndata's "storing
    'x' as categorical", gseapy's progress); their records and warnings are shown with ``--verbose``.
    """
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_ours)
        # anndata and gseapy log through handlers of their own (propagate=False): quiet them at the logger
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    logging.captureWarnings(True)
    warnings.showwarning = functools.partial(_show_warning, verbose=verbose)


def _ours(record: logging.LogRecord) -> bool:
    return record.name == "dormsig" or record.name.startswith(("dormsig.", "py.warnings"))


def _show_warning(message, category, filename, lineno, file=None, line=None, *, verbose: bool) -> None:
    """dormsig's own warnings as one line for people; other libraries' only with --verbose."""
    mine = category.__module__.startswith("dormsig") or (
        category.__module__ == "builtins" and issubclass(category, UserWarning)
        and Path(filename).resolve().is_relative_to(_PACKAGE_DIR))
    if mine or verbose:
        logging.getLogger("py.warnings").warning("dormsig: warning: %s", message)


_PACKAGE_DIR = Path(__file__).resolve().parent
_LIBRARY_LOGGERS = ("anndata", "scanpy", "gseapy", "pydeseq2", "numba", "matplotlib", "fontTools", "h5py")


class _ForPeople(logging.Filter):
    """dormsig's log lines name the command's options, not Python arguments ("pass orientation=")."""

    def __init__(self, command: click.Command) -> None:
        super().__init__()
        self.command = command

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "dormsig" or record.name.startswith("dormsig."):
            record.msg, record.args = as_flags(record.getMessage(), self.command), ()
        return True


def _log_for_people(command: click.Command) -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ForPeople(command))


def _say(text: str, *, err: bool = False) -> None:
    """A summary line (on stdout; a warning on stderr), unless --quiet (which prints nothing on success)."""
    if not click.get_current_context().meta.get("quiet"):
        click.echo(text, err=err)


PLAN = "dormsig.plan"


def _subject(ctx: click.Context, values: dict[str, Any]) -> str | None:
    """The main input as typed (named in front of a library message that names no file)."""
    for param in ctx.command.params:
        if isinstance(param.type, InputPath) and values.get(param.name):
            value = values[param.name]
            return str(value[0] if isinstance(value, list | tuple) else value)
    return None


def guarded(func: Callable) -> Callable:
    """Declare and check every path of the command before it runs (dormsig.cli_types.plan_paths); on any
    error or interrupt remove what it wrote; turn library messages into command-line ones."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            plan = plan_paths(ctx, kwargs, force=bool(kwargs.get("force")))
        except DormsigError as exc:
            exc.args = (for_people(str(exc), ctx.command),)
            raise
        ctx.meta[PLAN] = plan
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            plan.rollback()
            if isinstance(exc, DormsigError):
                exc.args = (for_people(str(exc), ctx.command, subject=_subject(ctx, kwargs)),)
            raise

    return wrapper


def common(func: Callable) -> Callable:
    """Options every command shares: --force, --quiet/--verbose; paths declared and checked (see guarded)."""

    @click.option("--force", is_flag=True, help="Replace existing outputs.")
    @click.option("--quiet", "-q", is_flag=True, help="Print nothing on success (errors only).")
    @click.option("--verbose", "-v", is_flag=True, help="Debug messages (and tracebacks on internal errors).")
    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool, verbose: bool, **kwargs: Any) -> Any:
        _setup_logging(quiet, verbose)
        _log_for_people(click.get_current_context().command)
        click.get_current_context().meta["verbose"] = verbose
        click.get_current_context().meta["quiet"] = quiet
        return guarded(func)(*args, **kwargs)

    return wrapper


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise MissingInputError("no such file or directory", path=p)
    return p


def Outputs(step: str, params: dict[str, Any], inputs: Sequence[str | os.PathLike | None], force: bool):
    """The outputs of one command (see :class:`dormsig.io.write.OutputSet`), in the command's declared paths."""
    from dormsig.io.write import OutputSet

    plan = click.get_current_context().meta.get(PLAN)
    return OutputSet(f"cli.{step}", params, inputs, force=force, plan=plan)


def _signature_arg(value: str | None) -> Any:
    """--signatures: None (the command's default), a file path (GMT/GMX/YAML/JSON), or comma-separated names."""
    if value is None:
        return None
    from dormsig.signatures import as_library

    return as_library(value)


def _read_h5ad(path: str | os.PathLike, *, backed: bool = False, what: str = ""):
    """anndata.read_h5ad with its errors (h5py OSError, KeyError...) turned into one-line InputErrors."""
    import anndata as ad

    from dormsig.io.singlecell import check_names

    path = _existing(path)
    try:
        adata = ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as exc:  # h5py raises OSError/KeyError subclasses for truncated or foreign files
        raise InputError(f"cannot read {what + ' ' if what else ''}.h5ad ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                         path=path) from None
    check_names(adata, path)  # backed or not: duplicated names would give a table with duplicated IDs
    return adata


def _read_any(path: Path, **options: Any):
    """An .h5ad written by dormsig is loaded as is; any other file goes through io.read."""
    from dormsig.io import read

    if path.suffix == ".h5ad":
        adata = _read_h5ad(path)
        if "dormsig" in adata.uns and "input" in adata.uns["dormsig"]:
            return adata
    return read(path, **options)


# --------------------------------------------------------------------------- the group
class DormsigGroup(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)


@click.group(cls=DormsigGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dormsig")
def cli() -> None:
    """dormsig: find dormant (NOTCH2-niche) breast-cancer cells in RNA-seq data.

    \b
    Start with:  dormsig demo --out dormsig_demo
    """


# --------------------------------------------------------------------------- read
@cli.command("read")
@click.argument("inputs", nargs=-1, required=True, type=InputPath())
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=H5AD), help="Output .h5ad.")
@click.option("--sample-sheet", type=InputPath("file"), help="CSV/TSV joined into obs (first column = sample).")
@click.option("--format", "fmt", default=None, type=FORMAT, help="Force the input format instead of detecting it.")
@click.option("--orientation", type=click.Choice(["genes_x_samples", "samples_x_genes"]), default=None)
@click.option("--tx2gene", type=InputPath("file"), default=None, help="Transcript-to-gene table (Salmon/kallisto).")
@click.option("--strand", type=click.Choice(["unstranded", "forward", "reverse"]), default=None,
              help="STAR ReadsPerGene column (default: inferred and reported).")
@click.option("--species", type=click.Choice(["human", "mouse"]), default=None)
@click.option("--no-harmonise", is_flag=True, help="Keep the identifiers as they are in the file.")
@common
def read_cmd(inputs, out, sample_sheet, fmt, orientation, tx2gene, strand, species, no_harmonise, force):
    """Read any supported expression format into an .h5ad (counts layer + log-normalised X).

    \b
    Example:
      dormsig read GSE51827_data.txt --sample-sheet samples.csv --out ctc.h5ad
    """
    from dormsig.io import read, write_h5ad

    paths = [_existing(p) for p in inputs]
    params = {"format": fmt, "orientation": orientation, "tx2gene": tx2gene, "strand": strand,
              "species": species, "harmonise": not no_harmonise, "sample_sheet": sample_sheet}
    outs = Outputs("read", params, [*paths, sample_sheet, tx2gene], force)
    out = outs.add(out)
    options = {k: v for k, v in params.items() if v is not None}
    adata = read(paths[0] if len(paths) == 1 else paths, **options)
    write_h5ad(adata, out)
    outs.extra["summary"] = {"n_obs": adata.n_obs, "n_vars": adata.n_vars}
    outs.finish()
    _say(f"{out}: {adata.n_obs} samples/cells x {adata.n_vars} genes")


_TUMOUR_OPTIONS = (
    click.option("--tumour-check", type=click.Choice(["auto", "epithelial", "none"]), default="auto",
                 show_default=True,
                 help="Group and call only samples/cells holding tumour (epithelial) RNA: EPCAM+KRT8+KRT18+KRT19 "
                      "at --min-epithelial-cpm or more; the others are labelled no_tumour_rna. auto: not with "
                      "--cells or sample-sheet groups, log-scale data, or when < 5% hold such RNA (non-epithelial "
                      "tumours); none: use all."),
    click.option("--min-epithelial-cpm", default=K.MIN_EPITHELIAL_CPM, show_default=True, type=Float(min=0),
                 help="Threshold of the tumour check (counts per million of the library)."),
)


def _tumour_options(func: Callable) -> Callable:
    for option in reversed(_TUMOUR_OPTIONS):
        func = option(func)
    return func


# --------------------------------------------------------------------------- groups
@cli.command("groups")
@click.argument("input_h5ad", type=InputPath("file"))
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=H5AD), help="Output .h5ad with the group column.")
@click.option("--high", default="NOTCH2", type=Name(), show_default=True, help="Gene whose HIGH cells are the test group.")
@click.option("--versus", default="NOTCH1", type=Name(), show_default=True, help="A second gene, or 'low' for high vs low.")
@click.option("--by", default=None, type=Name(), help="obs column: compute thresholds within each sample.")
@click.option("--method", type=click.Choice(["quantile", "threshold", "mixture"]), default="quantile",
              show_default=True)
@click.option("--from-column", default=None, type=Name(), help="Take groups from this obs column (sorted bulk populations).")
@click.option("--key-added", default="dormsig_group", show_default=True, type=Key())
@click.option("--min-detection", default=0.1, show_default=True, type=FRACTION,
              help="Each gene must be non-zero in at least this fraction of samples/cells.")
@_tumour_options
@common
def groups_cmd(input_h5ad, out, high, versus, by, method, from_column, key_added, min_detection, tumour_check,
               min_epithelial_cpm, force):
    """Label samples/cells NOTCH2_high / NOTCH1_high / double_high / double_low (or high / low).

    \b
    Example:
      dormsig groups ctc.h5ad --high NOTCH2 --versus NOTCH1 --out ctc_groups.h5ad
    """
    from dormsig.de import define_groups
    from dormsig.io import write_h5ad

    path = _existing(input_h5ad)
    params = {"high": high, "versus": versus, "by": by, "method": method, "from_column": from_column,
              "key_added": key_added, "min_detection": min_detection, "tumour_check": tumour_check,
              "min_epithelial_cpm": min_epithelial_cpm}
    outs = Outputs("groups", params, [path], force)
    out = outs.add(out)
    adata = _read_any(path)
    kwargs = {"from_column": from_column} if from_column else {}
    define_groups(adata, high=high, versus=versus, by=by, method=method, key_added=key_added,
                  min_detection=min_detection, tumour_check=tumour_check, min_epithelial_cpm=min_epithelial_cpm,
                  **kwargs)
    write_h5ad(adata, out)
    outs.finish()
    counts = adata.obs[key_added].value_counts().sort_index()
    _say(f"{out}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if adata.uns["dormsig"]["groups"].get("single_cell"):
        _say(f"note: {adata.n_obs} observations look like single cells, which are not independent replicates: "
                   f"run 'dormsig de {out} --sample-key <obs column of samples>' to sum them into pseudobulk samples",
                   err=True)


# --------------------------------------------------------------------------- de
@cli.command("de")
@click.argument("input_h5ad", type=InputPath("file"))
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=TABLE), help="Results table (.tsv or .csv).")
@click.option("--group-key", default="dormsig_group", show_default=True, type=Name())
@click.option("--test", "test_level", default="NOTCH2_high", show_default=True, type=Name(), help="First-named group (log2FC > 0 = higher here).")
@click.option("--reference", default="NOTCH1_high", show_default=True, type=Name(), help="Reference group.")
@click.option("--covariate", multiple=True, type=Name(), help="Design covariate (repeatable), e.g. --covariate patient.")
@click.option("--sample-key", default=None, type=Name(), help="Single-cell data: obs column of samples for pseudobulk.")
@click.option("--min-cells", default=10, show_default=True, type=Int(min=1))
@click.option("--shrink/--no-shrink", default=True, show_default=True,
              help="Add apeglm-shrunken log2FC (log2FoldChange_shrunk) beside the MLE; plots use it.")
@click.option("--design", default=None, type=DESIGN,
              help="Design formula over obs columns replacing '~ covariates + group' (must name --group-key).")
@click.option("--size-factors", default="ratio", show_default=True, type=click.Choice(["ratio", "poscounts", "iterative"]),
              help="ratio: R's median of ratios; poscounts: R's for sparse data (genes with zeros everywhere).")
@click.option("--alpha", default=0.05, show_default=True, type=FRACTION,
              help="FDR target of R's independent filtering (R's results() default is 0.1).")
@click.option("--inference", default="r", show_default=True, type=click.Choice(["r", "fast", "pydeseq2"]),
              help="r: R DESeq2's numerics; fast/pydeseq2: plain pydeseq2 (for comparison).")
@click.option("--lrt", is_flag=True,
              help="R's likelihood-ratio test of the design against --reduced (all levels of the groups at once).")
@click.option("--reduced", default=None, type=DESIGN,
              help="Reduced design of --lrt (default: the design without --group-key), e.g. '~ patient'.")
@click.option("--h5ad-out", type=OutputPath(suffixes=H5AD), default=None, help="Also write the (pseudo)bulk AnnData with normalised/VST layers.")
@click.option("--threads", type=THREADS, default=None)
@click.option("--allow-cells-as-replicates", is_flag=True, help="Run DESeq2 on single cells (not recommended).")
@common
def de_cmd(input_h5ad, out, group_key, test_level, reference, covariate, sample_key, min_cells, shrink,
           design, size_factors, alpha, inference, lrt, reduced, h5ad_out, threads, allow_cells_as_replicates, force):
    """Differential expression (pydeseq2; pseudobulk for single cells): TEST vs REFERENCE.

    \b
    Example:
      dormsig de ctc_groups.h5ad --test NOTCH2_high --reference NOTCH1_high --covariate patient --out de.tsv
    """
    from dormsig.de import run_de
    from dormsig.io import write_h5ad, write_table

    path = _existing(input_h5ad)
    params = {"group_key": group_key, "test": test_level, "reference": reference, "covariates": list(covariate),
              "sample_key": sample_key, "min_cells": min_cells, "shrink": shrink, "design": design,
              "size_factors": size_factors, "alpha": alpha, "inference": inference, "lrt": lrt, "reduced": reduced,
              "threads": threads,
              "allow_cells_as_replicates": allow_cells_as_replicates}
    outs = Outputs("de", params, [path], force)
    out = outs.add(out)
    h5ad_out = outs.add(h5ad_out)
    adata = _read_any(path)
    if sample_key is None and not allow_cells_as_replicates:
        from dormsig.de.groups import looks_single_cell

        if looks_single_cell(adata):
            raise DesignError(f"{adata.n_obs} observations look like single cells, not replicates: add --sample-key "
                              "<obs column of samples> for pseudobulk samples, or --allow-cells-as-replicates",
                              path=path)
    table, bulk = run_de(adata, group_key=group_key, test=test_level, reference=reference,
                         covariates=tuple(covariate), sample_key=sample_key, min_cells=min_cells,
                         shrink=shrink, design=design, size_factors=size_factors, alpha=alpha,
                         inference=inference, test_type="lrt" if lrt else "wald", reduced=reduced, threads=threads,
                         force=allow_cells_as_replicates)
    write_table(table, out, index=False)
    if h5ad_out is not None:
        write_h5ad(bulk, h5ad_out)
    de_rec = bulk.uns.get("dormsig", {}).get("dormsig_de", {})
    outs.extra["de"] = {k: v for k, v in de_rec.items() if k != "table"}  # the table is the output itself
    # How the groups were defined: `dormsig enrich` flags the sets that contain the grouping genes.
    outs.extra["groups"] = bulk.uns.get("dormsig", {}).get("groups") or bulk.uns.get("dormsig", {}).get("source_groups")
    outs.finish()
    n_sig = int((table["padj"] < 0.05).sum())
    _say(f"{out}: {len(table)} genes, {n_sig} with padj < 0.05 ({test_level} vs {reference})")
    if de_rec.get("cells_as_replicates"):
        _say("warning: DE treated single cells as independent replicates (--allow-cells-as-replicates): "
                   "p-values are optimistic; --sample-key aggregates cells to pseudobulk samples", err=True)


# --------------------------------------------------------------------------- enrich
@cli.command("enrich")
@click.argument("de_table", type=InputPath("file"))
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=TABLE), help="Enrichment table (.tsv or .csv).")
@click.option("--signatures", default=None, type=SignaturesArg(), help="Library set names (comma-separated) or a GMT/YAML/JSON file.")
@click.option("--stat", default=None, type=Name(),
              help="Ranking column (default: stat/t/z/score, else sign(log2FC) * -log10(p), else the log2FC).")
@click.option("--gene-column", default=None, type=Name(), help="Gene column of the table (default: detected).")
@click.option("--partial/--no-partial", default=None,
              help="The table is filtered (rank test, no GSEA) / complete (default: detected).")
@click.option("--grouping-genes", default=None, type=Name(),
              help="Genes that defined the groups, e.g. NOTCH2,NOTCH1: sets containing them are flagged circular "
                   "(default: from the table's .provenance.json).")
@click.option("--permutations", default=1000, show_default=True, type=PERMUTATIONS)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--threads", type=THREADS, default=None)
@common
def enrich_cmd(de_table, out, signatures, stat, gene_column, partial, grouping_genes, permutations, seed, threads,
               force):
    """Enrichment of a DE ranking (dormsig's or anyone's) in the dormancy and Hallmark sets.

    \b
    Example:
      dormsig enrich de.tsv --out enrichment.tsv
    """
    from dormsig.de import enrich, read_de_table
    from dormsig.io import write_table

    path = _existing(de_table)
    params = {"signatures": signatures, "stat": stat, "gene_column": gene_column, "partial": partial,
              "grouping_genes": grouping_genes, "permutations": permutations, "seed": seed, "threads": threads}
    outs = Outputs("enrich", params, [path], force)
    out = outs.add(out)
    grouping = [g.strip() for g in grouping_genes.split(",") if g.strip()] if grouping_genes else None
    with warnings.catch_warnings(record=True) as caught:  # shown as one clean line each, below
        warnings.simplefilter("always", UserWarning)
        table = read_de_table(path, gene_column=gene_column, stat=stat, partial=partial)
        result = enrich(table, _signature_arg(signatures), seed=seed, permutations=permutations, threads=threads,
                        grouping_genes=grouping)
    for w in caught:
        log.warning("warning: %s", w.message)
    write_table(result, out, index=False)
    rec = result.attrs["provenance"]
    outs.extra["enrich"] = rec
    outs.finish()
    tested = result[result["method"] != "not_tested"]
    _say(f"{out}: {len(result)} sets, {len(tested)} tested on {rec['n_genes_ranked']} genes "
               f"({'filtered table: rank test' if rec['partial_universe'] else 'GSEA + rank test'}), "
               f"{int((tested['fdr'] < 0.05).sum())} with FDR < 0.05, {int(result['circular'].sum())} circular")


# --------------------------------------------------------------------------- score
_CELLS_OPTION = click.option(
    "--cells", default=None, type=CellsArg(),
    help="Score, rank and call only these cells: an obs column (or sample-sheet column) and value(s), e.g. "
         "--cells malignant=yes or --cells cell_type=malignant_*; others get NaN and the call not_scored.")


def _cells_arg(adata, value: str | None):
    """--cells checked against the data up front, so that a typo is one line naming the flag."""
    if value is None:
        return None
    from dormsig.tl.cells import parse_cells, select_cells

    spec = parse_cells(value, what="--cells")
    select_cells(adata, spec, what="--cells")
    return spec


def _compartment_check(adata) -> dict:
    """Where the dormant calls fall (shipped compartment markers): echoed, and returned for provenance."""
    from dormsig.tl.compartment import check_compartments, compartment_message
    from dormsig.tl.epithelial import check_epithelial

    summary = check_compartments(adata)
    _say(compartment_message(summary, advice="cli"))
    epithelial = check_epithelial(adata)
    if epithelial is not None and (epithelial.low or epithelial.excluded):
        _say(as_flags(epithelial.message, click.get_current_context().command))
    return {**summary.to_dict(), "epithelial": None if epithelial is None else epithelial.to_dict()}


def _score_options(func: Callable) -> Callable:
    for option in reversed([
        click.option("--method", default="auto", show_default=True, type=METHOD_OR_AUTO,
                     help="Scoring method (see 'dormsig methods'); auto: singscore on bulk samples, ucell on cells."),
        click.option("--data-kind", type=click.Choice(["auto", "bulk", "single_cell"]), default="auto",
                     show_default=True, help="Bulk samples or single cells (auto: detected, as for DE)."),
        click.option("--min-detection", default=0.05, show_default=True, type=FRACTION,
                     help="A signature gene is detected when non-zero in at least this fraction of samples/cells."),
        click.option("--signatures", default=None, type=SignaturesArg(), help="Library set names (comma-separated) or a GMT/YAML/JSON file; default: the dormancy index sets."),
        click.option("--index", "index_name", default="default", show_default=True, type=IndexArg(),
                     help="Dormancy index name or YAML file; default: quiescence (the index with evidence, docs/evidence.md); also notch2_niche."),
        click.option("--threads", type=THREADS, default=None),
        click.option("--seed", default=0, show_default=True, type=SEED),
        click.option("--backed", is_flag=True, help="Read an .h5ad in backed mode (large data; bounded memory)."),
        _CELLS_OPTION,
        *_TUMOUR_OPTIONS,
    ]):
        func = option(func)
    return func


def _score(path: Path, method, signatures, index_name, threads, seed, backed, data_kind="auto", min_detection=0.05,
           max_rank=None, cells=None, scheduler=None):

    from dormsig.tl import score

    if scheduler is not None:
        if backed:
            raise InputError("--backed and --scheduler exclude each other: --scheduler reads the store lazily itself")
        from dormsig.io.lazy import read_lazy

        adata = read_lazy(path)
    elif backed:
        if path.suffix != ".h5ad":
            raise InputError("--backed needs an .h5ad file", path=path)
        adata = _read_h5ad(path, backed=True)
    else:
        adata = _read_any(path)
    with _dask_scheduler(scheduler):
        score(adata, _signature_arg(signatures), method=method, index=index_name, threads=threads, seed=seed,
              data_kind=data_kind, min_detection=min_detection, max_rank=max_rank, cells=_cells_arg(adata, cells))
    params = adata.uns["dormsig"]["score"]["params"]
    if params.get("method_requested") == "auto":
        log.info("scoring with %s (%s)", params["method"], str(params["method_reason"]).split(";")[0])
    return adata


@contextlib.contextmanager
def _dask_scheduler(scheduler: str | None):
    """Run the block with a dask scheduler: threads/processes/synchronous, or a dask.distributed address."""
    if scheduler is None:
        yield
        return
    import dask

    if scheduler in Scheduler.LOCAL:
        with dask.config.set(scheduler=scheduler):
            yield
        return
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler ADDRESS needs dask.distributed: pip install 'dormsig[dask]'") from None
    try:
        client = Client(scheduler, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"--scheduler {scheduler}: cannot connect to a dask scheduler there "
                         f"({type(exc).__name__}); start one (dask scheduler) or give its address") from None
    try:
        with client.as_current(), dask.config.set(scheduler=client):
            yield
    finally:
        client.close()


def _index_note(adata, step: str = "score") -> str:
    """Which dormancy index a step used, for the one-line summary (the provenance has the full record)."""
    rec = adata.uns.get("dormsig", {}).get(step, {}).get("index")
    if not isinstance(rec, dict) or not rec.get("name"):
        return "no dormancy index"
    done = "" if rec.get("computed", True) else ", not computed: a component has no gene in the data"
    return f"dormancy index {rec['name']} {rec.get('version', '')}".rstrip() + done


def _evidence_note(adata) -> str | None:
    """The index's evidence in one line (two primary datasets against proliferation alone and Wiecek), or None."""
    from dormsig.errors import DormsigError
    from dormsig.signatures import load_index

    rec = adata.uns.get("dormsig", {}).get("score", {}).get("index")
    if not isinstance(rec, dict) or not rec.get("name"):
        return None
    try:
        index = load_index(str(rec["name"]))
    except DormsigError:  # a user's index file: no shipped evidence
        return None
    if index.evidence is None or index.version != str(rec.get("version", "")):
        return None
    rows = [r for r in index.evidence.results if str(r.role).startswith("primary")
            and r.value is not None and r.proliferation is not None][:2]
    if not rows:
        return None
    parts = [f"{r.dataset} {r.metric} {r.value:.2f} (proliferation alone {r.proliferation:.2f}"
             + (f", Wiecek z-score {r.wiecek_zscore:.2f})" if r.wiecek_zscore is not None else ")") for r in rows]
    return f"index {index.name} {index.version} on labelled public data: {'; '.join(parts)}; more in docs/evidence.md"


@cli.command("score")
@click.argument("input_path", type=InputPath())
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=TABLE), help="Per-sample scores (.tsv or .csv).")
@click.option("--h5ad-out", type=OutputPath(suffixes=H5AD), default=None, help="Also write the scored AnnData.")
@click.option("--reference", type=InputPath("file"), default=None, help="Reference built with 'dormsig reference'.")
@click.option("--scheduler", type=Scheduler(), default=None,
              help="Score a zarr store or .h5ad as a dask graph: threads, processes, synchronous, or the address "
                   "of a dask.distributed scheduler (e.g. tcp://10.0.0.5:8786).")
@click.option("--rule", type=click.Choice(["quantile", "mixture", "permutation"]), default="quantile",
              show_default=True, help="Calling rule without --reference (see 'dormsig rank').")
@click.option("--quantile", default=0.9, show_default=True, type=QUANTILE,
              help="Quantile of the index above which a sample is called dormant (--rule quantile).")
@_score_options
@common
def score_cmd(input_path, out, h5ad_out, reference, scheduler, rule, quantile, method, data_kind, min_detection,
              signatures, index_name, threads, seed, backed, cells, tumour_check, min_epithelial_cpm, force):
    """Score samples or cells for dormancy (single-sample methods by default).

    With --reference, each sample also gets its percentile in the reference and a dormancy call
    with the rule that made it; a sample scored alone gets the same numbers as in a batch.

    \b
    Example:
      dormsig score new_samples.csv --reference reference.h5ad --out scores.tsv
    """

    from dormsig.io import write_h5ad, write_table
    from dormsig.tl import rank
    from dormsig.tl.reference import rank_against, score_table

    path = _existing(input_path)
    params = {"method": method, "signatures": signatures, "index": index_name, "threads": threads, "seed": seed,
              "reference": reference, "backed": backed, "data_kind": data_kind, "min_detection": min_detection,
              "cells": cells, "scheduler": scheduler, "tumour_check": tumour_check,
              "min_epithelial_cpm": min_epithelial_cpm, "rule": rule, "quantile": quantile}
    outs = Outputs("score", params, [path, reference], force)
    out = outs.add(out)
    h5ad_out = outs.add(h5ad_out)
    ref = _read_h5ad(reference, what="reference") if reference is not None else None
    max_rank = None
    if ref is not None and method == "auto":  # score as the reference was scored, whatever the batch looks like
        ref_rec = ref.uns.get("dormsig", {}).get("score", {})
        method = str(ref_rec.get("method", method))
        stored = ref_rec.get("params", {}).get("max_rank")
        max_rank = int(stored) if method == "ucell" and stored is not None and str(stored) != "None" else None
    adata = _score(path, method, signatures, index_name, threads, seed, backed, data_kind, min_detection, max_rank,
                   cells, scheduler)
    if ref is not None:  # the reference's tumour check, unless one is asked for
        rank_against(adata, ref, source=f"--reference {reference}",
                     tumour_check=None if tumour_check == "auto" else tumour_check,
                     min_epithelial_cpm=min_epithelial_cpm)
    elif "dormancy_index" in adata.obsm["dormsig_scores"]:
        rank(adata, rule=rule, quantile=quantile, seed=seed, tumour_check=tumour_check,
             min_epithelial_cpm=min_epithelial_cpm)
    compartment = _compartment_check(adata) if "dormsig_call" in adata.obs else None
    write_table(score_table(adata), out, index=True)
    if h5ad_out is not None:
        write_h5ad(adata.to_memory() if adata.isbacked else adata, h5ad_out)
    outs.extra["score"] = adata.uns["dormsig"].get("score", {})
    outs.extra["rank"] = adata.uns["dormsig"].get("rank", {})
    outs.extra["compartment"] = compartment
    outs.finish()
    scored = f"{int(adata.obs['dormsig_scored'].sum())} of " if cells else ""
    evidence = _evidence_note(adata)
    if evidence:
        log.info("%s", evidence)
    _say(f"{out}: {scored}{adata.n_obs} samples/cells scored with {adata.uns['dormsig']['score']['method']} "
               f"({_index_note(adata)})" + (f" ({cells})" if cells else ""))


@cli.command("reference")
@click.argument("input_path", type=InputPath())
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=H5AD), help="Reference .h5ad (scores only, no matrix).")
@click.option("--rule", type=click.Choice(["quantile", "mixture"]), default="quantile", show_default=True)
@click.option("--quantile", default=0.9, show_default=True, type=QUANTILE, help="Quantile of the index above which a sample is called dormant.")
@_score_options
@common
def reference_cmd(input_path, out, rule, quantile, method, data_kind, min_detection, signatures, index_name, threads,
                  seed, backed, cells, tumour_check, min_epithelial_cpm, force):
    """Build a reference once (scores + calling rule) to place new samples in later.

    \b
    Example:
      dormsig reference cohort.h5ad --out reference.h5ad
    """
    from dormsig.io import write_h5ad
    from dormsig.tl import rank
    from dormsig.tl.reference import make_reference

    path = _existing(input_path)
    params = {"method": method, "signatures": signatures, "index": index_name, "threads": threads, "seed": seed,
              "rule": rule, "quantile": quantile, "data_kind": data_kind, "min_detection": min_detection,
              "cells": cells, "tumour_check": tumour_check, "min_epithelial_cpm": min_epithelial_cpm}
    outs = Outputs("reference", params, [path], force)
    out = outs.add(out)
    adata = _score(path, method, signatures, index_name, threads, seed, backed, data_kind, min_detection, None, cells)
    rank(adata, rule=rule, quantile=quantile, seed=seed, tumour_check=tumour_check,
         min_epithelial_cpm=min_epithelial_cpm)
    ref = make_reference(adata)
    write_h5ad(ref, out)
    outs.extra["score"] = adata.uns["dormsig"].get("score", {})
    outs.finish()
    _say(f"{out}: reference of {ref.n_obs} samples/cells ({adata.uns['dormsig']['score']['method']}, "
               f"rule={rule}, {_index_note(adata)})")


@cli.command("rank")
@click.argument("scored_h5ad", type=InputPath("file"))
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=TABLE), help="Ranked table (.tsv or .csv).")
@click.option("--rule", type=click.Choice(["quantile", "mixture", "permutation"]), default="quantile", show_default=True)
@click.option("--quantile", default=0.9, show_default=True, type=QUANTILE)
@click.option("--reference", type=InputPath("file"), default=None)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--permutations", default=1000, show_default=True, type=PERMUTATIONS)
@_CELLS_OPTION
@_tumour_options
@common
def rank_cmd(scored_h5ad, out, rule, quantile, reference, seed, permutations, cells, tumour_check,
             min_epithelial_cpm, force):
    """Rank scored samples/cells by the dormancy index and call dormant ones with a visible rule.

    \b
    Example:
      dormsig rank scored.h5ad --rule mixture --out ranked.tsv
    """

    from dormsig.io import write_table
    from dormsig.tl import rank
    from dormsig.tl.reference import score_table

    path = _existing(scored_h5ad)
    params = {"rule": rule, "quantile": quantile, "reference": reference, "seed": seed, "permutations": permutations,
              "cells": cells, "tumour_check": tumour_check, "min_epithelial_cpm": min_epithelial_cpm}
    outs = Outputs("rank", params, [path, reference], force)
    out = outs.add(out)
    adata = _read_any(path)
    if "dormsig_scores" not in adata.obsm:
        raise InputError("not scored yet: run 'dormsig score ... --h5ad-out' first", path=path)
    ref = _read_h5ad(reference, what="reference") if reference else None
    rank(adata, rule=rule, quantile=quantile, reference=ref, seed=seed, n_permutations=permutations,
         cells=_cells_arg(adata, cells), tumour_check=tumour_check, min_epithelial_cpm=min_epithelial_cpm)
    compartment = _compartment_check(adata)
    write_table(score_table(adata).sort_values("dormsig_rank"), out, index=True)
    outs.extra["rank"] = adata.uns["dormsig"].get("rank", {})
    outs.extra["compartment"] = compartment
    outs.finish()
    _say(f"{out}: {int((adata.obs['dormsig_call'] == 'dormant').sum())} of {adata.n_obs} called dormant "
               f"({_index_note(adata, 'rank')})")


# --------------------------------------------------------------------------- signatures
@cli.group("signatures")
def signatures_grp() -> None:
    """Browse and export the curated gene-set library."""


@signatures_grp.command("list")
@click.option("--category", default=None, type=Name(), help="Only sets of this category.")
def sig_list(category):
    """List the shipped sets with size, direction and category.

    \b
    Example:
      dormsig signatures list
    """
    from dormsig.signatures import load_library

    lib = load_library()
    frame = lib.to_frame()
    if category:
        frame = frame[frame["category"] == category]
    frame = frame.rename_axis("name").reset_index()[["name", "category", "direction", "n_up", "n_down", "score_in"]]
    click.echo(f"dormsig signature library {lib.version}: {len(frame)} sets")
    click.echo(frame.to_string(index=False))


@signatures_grp.command("show")
@click.argument("name", type=Name())
def sig_show(name):
    """Show one set: genes, directions, per-gene evidence and citations.

    \b
    Example:
      dormsig signatures show DORMSIG_HSC_MIMICRY_CORE
    """
    from dormsig.signatures import load_library

    click.echo(load_library().show(name))


@signatures_grp.command("export")
@click.option("--format", "fmt", type=click.Choice(["gmt"]), default="gmt", show_default=True)
@click.option("--out", "-o", required=True, type=OutputPath())
@click.option("--signatures", default=None, type=SignaturesArg(), help="Comma-separated set names (default: all).")
@click.option("--force", is_flag=True)
@guarded
def sig_export(fmt, out, signatures, force):
    """Export the library (or some sets) as GMT: <NAME>_UP / <NAME>_DN lines.

    \b
    Example:
      dormsig signatures export --format gmt --out dormsig.gmt
    """
    from dormsig.signatures import load_library, write_gmt

    lib = load_library()
    if signatures:
        lib = lib.select([s.strip() for s in signatures.split(",")])
    outs = Outputs("signatures.export", {"format": fmt, "signatures": signatures}, [], force)
    out = outs.add(out)
    write_gmt(lib, out, force=True, provenance=False)  # checked above; the sidecar is written below
    outs.extra["signature_library_version"] = lib.version
    outs.finish()


@cli.command("methods")
def methods_cmd():
    """List the scoring methods with their metadata (citation, range, cohort dependence)."""
    import pandas as pd

    from dormsig.tl._registry import table

    frame = pd.DataFrame(table())[["name", "single_sample", "cohort_dependent", "signed", "score_range", "citation"]]
    click.echo(frame.to_string(index=False))


# --------------------------------------------------------------------------- report, run, demo, verify
@cli.command("report")
@click.option("--adata", "adata_path", required=True, type=InputPath("file"), help="Scored .h5ad.")
@click.option("--de", "de_paths", type=InputPath("file"), multiple=True,
              help="DE results table (repeatable: one per contrast, all shown).")
@click.option("--enrichment", "enr_paths", type=InputPath("file"), multiple=True,
              help="Enrichment table (repeatable, in the order of --de).")
@click.option("--groupby", default=None, type=Name(), help="obs column for score distributions.")
@click.option("--title", default="dormsig report", show_default=True, type=Name())
@click.option("--tissue", default=None, type=Name(),
              help="Where the samples come from, in words (the findings section says what it cannot tell).")
@click.option("--block", default=None, type=Name(),
              help="obs column of patients/donors (the findings section's blocking factor).")
@click.option("--out", "-o", required=True, type=OutputPath(suffixes=HTML), help="Self-contained HTML file.")
@common
def report_cmd(adata_path, de_paths, enr_paths, groupby, title, tissue, block, out, force):
    """Write one self-contained HTML report (figures also saved as PNG and SVG).

    \b
    Example:
      dormsig report --adata scored.h5ad --de de.tsv --enrichment enrichment.tsv --out report.html
    """
    from dormsig.io.results import read_result_table
    from dormsig.report import write_report

    inputs = [_existing(p) for p in (adata_path, *de_paths, *enr_paths) if p]
    outs = Outputs("report", {"groupby": groupby, "title": title, "tissue": tissue, "block": block}, inputs, force)
    out = outs.add(out)
    figures = outs.add(out.parent / f"{out.stem}_figures", "--out (figures)", kind="dir")
    if len(enr_paths) > len(de_paths):
        raise InputError(f"{len(enr_paths)} --enrichment tables for {len(de_paths)} --de tables: give them in pairs")
    labels = [_contrast_label(p) for p in de_paths]
    if len(set(labels)) < len(labels):  # two tables of one contrast: tell them apart by file
        labels = [f"{lab} ({Path(p).name})" for lab, p in zip(labels, de_paths, strict=True)]
    de = {lab: read_result_table(p, "de", label="--de") for lab, p in zip(labels, de_paths, strict=True)}
    enr = {lab: read_result_table(p, "enrichment", label="--enrichment")
           for lab, p in zip(labels, enr_paths, strict=False)}
    adata = _read_h5ad(adata_path)
    from dormsig.report.findings import FindingsContext

    first = _contrast_levels(de_paths[0]) if de_paths else None
    write_report(out, adata=adata, de=de or None, enrichment=enr or None, groupby=groupby, title=title,
                 figures_dir=figures, findings=FindingsContext(tissue=tissue, block=block, contrast=first))
    outs.finish()
    _say(str(out))


def _contrast_levels(path: str) -> tuple[str, str] | None:
    """(test, reference) from a DE table's provenance sidecar, else None."""
    from dormsig import get

    try:
        params = get.provenance(path).get("de", {}).get("params", {})
    except DormsigError:
        params = {}
    test, reference = params.get("test"), params.get("reference")
    return (str(test), str(reference)) if test and reference else None


def _contrast_label(path: str) -> str:
    """'<test> vs <reference>' from a DE table's provenance sidecar, else the file's name."""
    levels = _contrast_levels(path)
    return f"{levels[0]} vs {levels[1]}" if levels else Path(path).stem


@cli.command("run")
@click.argument("config", type=InputPath("file"))
@click.option("--out", "-o", required=True, type=OutputPath("container"), help="Output directory.")
@click.option("--threads", type=THREADS, default=None)
@click.option("--seed", default=None, type=SEED, help="Overrides the config's seed.")
@_CELLS_OPTION
@common
def run_cmd(config, out, threads, seed, cells, force):
    """Run the whole pipeline (read, groups, DE, enrichment, score, rank, report) from a config file.

    The config format is dormsig/schemas/config.schema.yaml; the bundled example is
    dormsig/data/aceto2014_ctc/run_config.yaml (what 'dormsig demo' runs).

    \b
    Example:
      dormsig run my_config.yaml --out results
    """
    from dormsig.pipeline import load_config, run_pipeline

    cfg = load_config(_existing(config))
    if cells is not None:
        from dormsig.tl.cells import parse_cells

        parse_cells(cells, what="--cells")  # syntax now; the column is checked against each dataset
    reports = run_pipeline(cfg, out, force=force, threads=threads, seed=seed, cells=cells,
                           plan=click.get_current_context().meta.get(PLAN))
    for path in reports:
        _say(str(path))


@cli.command("demo")
@click.option("--out", "-o", default="dormsig_demo", show_default=True, type=OutputPath("container"), help="Output directory.")
@click.option("--threads", type=THREADS, default=None)
@common
def demo_cmd(out, threads, force):
    """Run the whole pipeline on the bundled breast-cancer CTC data (Aceto 2014) and print the report path.

    \b
    Example:
      dormsig demo --out dormsig_demo
    """
    from dormsig.pipeline import demo_config, run_pipeline

    # a new user otherwise waits minutes in silence on the first run: numba compiles the kernels once per install
    _say("dormsig demo: about a minute on 2 cores; the first run after an install also compiles dormsig's "
         "numba kernels (about two minutes, once)", err=True)
    reports = run_pipeline(demo_config(), out, force=force, threads=threads,
                           plan=click.get_current_context().meta.get(PLAN))
    for path in reports:
        _say(f"report: {path}")


@cli.command("verify")
@click.argument("output", type=InputPath("file"))
@guarded
def verify_cmd(output):
    """Check that an output still matches its inputs' checksums and the signature library version.

    Exit code 0 when everything matches, 3 when something changed.

    \b
    Example:
      dormsig verify results/ctc/scores.tsv
    """
    from dormsig.verify import verify

    ok, lines = verify(_existing(output))
    for line in lines:
        click.echo(line)
    sys.exit(EXIT_OK if ok else EXIT_VERIFY_FAILED)


# --------------------------------------------------------------------------- entry point
def _on_sigint(signum: int, frame: Any) -> None:
    # Remember the signal: libraries (pandas' C parser, h5py) may wrap the KeyboardInterrupt in their own error,
    # and Python drops it where it lands in a ctypes callback (numba compiling); the run's checkpoints raise it
    # again. SIGTERM (a scheduler's time limit, `kill`) takes the same path, so staged and partial outputs are removed.
    _interrupt.note(signum)
    raise KeyboardInterrupt


def _unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook`` during a command: an interrupt that Python drops (raised by the signal handler
    inside a ctypes callback, a finaliser) is already noted, and the run stops at its next checkpoint, so
    it prints nothing; anything else is printed as Python would."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _interrupt.pending():
        return
    sys.__unraisablehook__(unraisable)


def _interrupted() -> int:
    if _interrupt.pending() == signal.SIGTERM:
        click.echo("dormsig: terminated", err=True)
        return 128 + signal.SIGTERM
    click.echo("dormsig: interrupted", err=True)
    return EXIT_INTERRUPTED


def _usage_line(exc: click.ClickException) -> str:
    """A click usage error as one line: the problem, then where to read the usage."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and not isinstance(exc, click.BadParameter):  # a missing or unknown option: show where
        text += f" (see '{ctx.command_path} --help')"
    return for_people(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: map errors to exit codes, one line each, no traceback."""
    _interrupt.clear()
    hook = sys.unraisablehook
    try:
        return _main(argv)
    finally:  # a noted signal belongs to this command only (library calls after it in the process run on)
        _interrupt.clear()
        sys.unraisablehook = hook


def _main(argv: Sequence[str] | None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        signal.signal(signal.SIGTERM, _on_sigint)
        sys.unraisablehook = _unraisable
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="dormsig", standalone_mode=False)
    except DormsigError as exc:
        if _interrupt.pending():
            return _interrupted()
        click.echo(f"dormsig: error: {for_people(str(exc))}", err=True)
        return EXIT_BAD_INPUT
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # usage errors: one line, not click's usage block
        click.echo(f"dormsig: error: {_usage_line(exc)}", err=True)
        return EXIT_BAD_INPUT
    except (click.exceptions.Abort, KeyboardInterrupt):
        return _interrupted()
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:  # an internal error: a bug, not the user's fault
        if _interrupt.pending():
            return _interrupted()
        if "--verbose" in sys.argv or "-v" in sys.argv:
            raise
        text = " ".join(str(exc).split())[:120]
        click.echo(f"dormsig: internal error: {type(exc).__name__}: {text} (rerun with --verbose for the traceback)",
                   err=True)
        return EXIT_INTERNAL
    if _interrupt.pending():  # interrupted where the KeyboardInterrupt was dropped, after the last checkpoint
        return _interrupted()
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
