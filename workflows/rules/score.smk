# Scoring. `dormsig_score_samples` is the reusable rule: import the workflow as a module and
# `use rule dormsig_score_samples from dormsig with:` to score your own samples (README.md).
#
#   input:   h5ad       AnnData (or any file `dormsig read` accepts) to score (default: the plan's, the
#                       dataset's h5ad with every contrast's group column)
#            reference  optional reference h5ad for reference-based calls (config score.reference)
#   output:  scores     TSV, one row per sample/cell: a column per gene set, dormancy_index, rank and call
#            h5ad       the scored AnnData (obsm["dormsig_scores"], obs dormsig_*, uns["dormsig"]["score"])
#            (+ <output>.provenance.json beside each, written by the CLI)
#   params:  args       the plan's `dormsig score` options (config score: method, signatures, index; seed;
#                       the dataset's cells), the same settings `dormsig run` scores with
#   threads: config workflow.threads.score (default threads);  resources: mem_mb = config workflow.mem_mb.score
#
# Datasets with `shards: N > 1` are split into N cell blocks (split_shard), each scored by
# score_shard (this same rule on one block), and gathered by gather_shards, which
# recomputes the ranks over all cells. Scores of single-sample methods (UCell, singscore,
# ssGSEA-like) do not depend on the other cells, so sharding does not change them.


rule dormsig_score_samples:
    input:
        h5ad=step_input("score", "h5ad"),
        reference=score_reference,
    output:
        scores=report(
            out("scores.tsv"),
            caption="../report/scores.rst",
            category="Scores",
            subcategory="{dataset}",
        ),
        h5ad=out("scored.h5ad"),
        scores_provenance=sidecar(out("scores.tsv")),
        h5ad_provenance=sidecar(out("scored.h5ad")),
    params:
        dormsig=DORMSIG,
        args=step_args("score"),
        reference=lambda wc, input: shlex.join(["--reference", input.reference[0]]) if input.get("reference") else "",
    log:
        logfile("score"),
    wildcard_constraints:
        dataset=UNSHARDED,
    threads: threads("score")
    resources:
        mem_mb=WF["mem_mb"]["score"],
    conda:
        ENV
    shell:
        "{params.dormsig} score {input.h5ad:q} --out {output.scores:q} --h5ad-out {output.h5ad:q}"
        " {params.args} {params.reference} --threads {threads} --force 2> {log:q}"


rule split_shard:
    input:
        h5ad=step_input("score", "h5ad"),
    output:
        h5ad=temp(out("shards/grouped.{shard}.h5ad")),
    params:
        n_shards=lambda wc: n_shards(wc.dataset),
    log:
        logfile("split.{shard}"),
    wildcard_constraints:
        dataset=SHARDED,
    threads: 1
    resources:
        mem_mb=WF["mem_mb"]["shard"],
    conda:
        ENV
    script:
        "../scripts/split_h5ad.py"


use rule dormsig_score_samples as score_shard with:
    input:
        h5ad=out("shards/grouped.{shard}.h5ad"),
        reference=score_reference,
    output:
        scores=temp(out("shards/scores.{shard}.tsv")),
        h5ad=temp(out("shards/scored.{shard}.h5ad")),
        scores_provenance=temp(sidecar(out("shards/scores.{shard}.tsv"))),
        h5ad_provenance=temp(sidecar(out("shards/scored.{shard}.h5ad"))),
    log:
        logfile("score.{shard}"),
    wildcard_constraints:
        dataset=SHARDED,


rule gather_shards:
    input:
        scores=lambda wc: expand(out("shards/scores.{shard}.tsv", wc.dataset), shard=range(n_shards(wc.dataset))),
        h5ad=lambda wc: expand(out("shards/scored.{shard}.h5ad", wc.dataset), shard=range(n_shards(wc.dataset))),
    output:
        scores=report(
            out("scores.tsv"),
            caption="../report/scores.rst",
            category="Scores",
            subcategory="{dataset}",
        ),
        h5ad=out("scored.h5ad"),
        scores_provenance=sidecar(out("scores.tsv")),
        h5ad_provenance=sidecar(out("scored.h5ad")),
    log:
        logfile("gather"),
    wildcard_constraints:
        dataset=SHARDED,
    threads: 1
    resources:
        mem_mb=WF["mem_mb"]["score"],
    conda:
        ENV
    script:
        "../scripts/gather_shards.py"
