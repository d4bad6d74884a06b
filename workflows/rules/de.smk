# DESeq2 (pydeseq2) between the two groups, then enrichment of the curated gene sets.


rule differential_expression:
    input:
        h5ad=out("grouped.h5ad"),
    output:
        tsv=report(
            out("de.tsv"),
            caption="../report/de.rst",
            category="Differential expression",
            subcategory="{dataset}",
        ),
        provenance=sidecar(out("de.tsv")),
    params:
        dormsig=DORMSIG,
        group_key="dormsig_group",
        levels=lambda wc: opt("--test", de_levels(wc.dataset)[0])
        + " "
        + opt("--reference", de_levels(wc.dataset)[1]),
        covariate=lambda wc: opt("--covariate", dataset(wc.dataset).get("covariate")),
        sample_key=lambda wc: opt("--sample-key", dataset(wc.dataset).get("sample_key")),
        design=lambda wc: opt("--design", dataset(wc.dataset).get("design")),
        options=" ".join([
            "--shrink" if config["de"]["shrink"] else "--no-shrink",
            f"--size-factors {config['de']['size_factors']}",
            f"--alpha {config['de']['alpha']}",
            f"--inference {config['de']['inference']}",
        ]),
    log:
        logfile("de"),
    threads: config["threads"]["de"]
    resources:
        mem_mb=config["mem_mb"]["de"],
    conda:
        ENV
    shell:
        "{params.dormsig} de {input.h5ad:q} --out {output.tsv:q} --group-key {params.group_key}"
        " {params.levels} {params.covariate} {params.sample_key} {params.design} {params.options}"
        " --threads {threads} --force 2> {log:q}"


rule enrichment:
    input:
        de=out("de.tsv"),
    output:
        tsv=report(
            out("enrichment.tsv"),
            caption="../report/enrichment.rst",
            category="Enrichment",
            subcategory="{dataset}",
        ),
        provenance=sidecar(out("enrichment.tsv")),
    params:
        dormsig=DORMSIG,
    log:
        logfile("enrich"),
    threads: 1
    resources:
        mem_mb=config["mem_mb"]["enrich"],
    conda:
        ENV
    shell:
        "{params.dormsig} enrich {input.de:q} --out {output.tsv:q} --threads {threads} --force 2> {log:q}"
