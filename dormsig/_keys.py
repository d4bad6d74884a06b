"""Every key dormsig writes into an AnnData and every file name of a run, in one place.

Readers go through :mod:`dormsig.get`; writers use these names. Changing a name here changes it
everywhere (the tests read through :mod:`dormsig.get` too).
"""

from __future__ import annotations

#: ``adata.uns[UNS]`` holds one provenance record per step (``read``, ``normalise``, ``score``, ``rank``, ...).
UNS = "dormsig"
#: ``adata.obsm[SCORES]``: one column per scored set plus :data:`INDEX` (a DataFrame).
SCORES = "dormsig_scores"
#: The dormancy index: a column of ``obsm[SCORES]`` and of the score table.
INDEX = "dormancy_index"
#: Prefix of the per-set score copies in ``obs`` (``obs["dormsig_<set>"]``, for plotting by name).
OBS_PREFIX = "dormsig_"

# obs columns written by tl.rank (and read back from references)
OBS_INDEX = "dormsig_index"  # the index the ranking used (equal to obsm[SCORES][INDEX] unless rank(index=...))
OBS_RANK = "dormsig_rank"  # 1 = highest index among the observations ranked together (this batch)
OBS_PERCENTILE = "dormsig_percentile"  # 0-100, in the reference when one was given, else in this batch
OBS_CALL = "dormsig_call"  # "dormant" / "not_dormant" / "not_scored"
OBS_PVALUE = "dormsig_pvalue"
OBS_PADJ = "dormsig_padj"
OBS_SCORED = "dormsig_scored"  # cells= restriction: scored or not
OBS_COMPARTMENT = "dormsig_compartment"
RANK_COLUMNS = (OBS_INDEX, OBS_RANK, OBS_PERCENTILE, OBS_CALL, OBS_PVALUE, OBS_PADJ)

#: Column names of the flat score table (``scores.tsv``): one name per quantity.
TABLE_COLUMNS = {
    OBS_RANK: "rank_in_batch",
    OBS_PERCENTILE: "percentile",
    OBS_CALL: "call",
    OBS_PVALUE: "call_pvalue",
    OBS_PADJ: "call_padj",
}

# steps in uns[UNS]
STEP_READ, STEP_SCORE, STEP_RANK, STEP_DE, STEP_ENRICH, STEP_COMPARTMENT = (
    "input", "score", "rank", "de", "enrich", "compartment")

# files of a pipeline run, per dataset directory
DATA_FILE = "data.h5ad"
SCORED_FILE = "scored.h5ad"
SCORES_FILE = "scores.tsv"
REPORT_FILE = "report.html"
DE_FILE = "de_{contrast}.tsv"
ENRICHMENT_FILE = "enrichment_{contrast}.tsv"
PROVENANCE_SUFFIX = ".provenance.json"

#: Default threshold of the tumour check (EPCAM+KRT8+KRT18+KRT19, counts per million of the library):
#: one value for the library (``tl.epithelial``), the CLI option and ``dormsig run``'s config (the schema's
#: default is tested against it).
MIN_EPITHELIAL_CPM = 1000.0
