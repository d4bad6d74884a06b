# DESeq2 of one contrast, then enrichment of the curated gene sets in its ranking.


rule differential_expression:
    input:
        h5ad=step_input("de", "h5ad"),
    output:
        tsv=report(
            out("de_{contrast}.tsv"),
            caption="../report/de.rst",
            category="Differential expression",
            subcategory="{dataset}",
        ),
        provenance=sidecar(out("de_{contrast}.tsv")),
    params:
        dormsig=DORMSIG,
        args=step_args("de"),
    log:
        logfile("de_{contrast}"),
    threads: threads("de")
    resources:
        mem_mb=WF["mem_mb"]["de"],
    conda:
        ENV
    shell:
        "{params.dormsig} de {input.h5ad:q} --out {output.tsv:q} {params.args} --threads {threads} --force 2> {log:q}"


rule enrichment:
    input:
        de=step_input("enrich", "tsv"),
    output:
        tsv=report(
            out("enrichment_{contrast}.tsv"),
            caption="../report/enrichment.rst",
            category="Enrichment",
            subcategory="{dataset}",
        ),
        provenance=sidecar(out("enrichment_{contrast}.tsv")),
    params:
        dormsig=DORMSIG,
        args=step_args("enrich"),
    log:
        logfile("enrich_{contrast}"),
    threads: threads("enrich")
    resources:
        mem_mb=WF["mem_mb"]["enrich"],
    conda:
        ENV
    shell:
        "{params.dormsig} enrich {input.de:q} --out {output.tsv:q} {params.args} --threads {threads} --force"
        " 2> {log:q}"
