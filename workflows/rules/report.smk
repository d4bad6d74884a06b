# The self-contained HTML report of one dataset.


rule html_report:
    input:
        unpack(report_inputs),
    output:
        html=report(
            out("report.html"),
            caption="../report/report.rst",
            category="Report",
            subcategory="{dataset}",
        ),
        provenance=sidecar(out("report.html")),
    params:
        dormsig=DORMSIG,
        de=lambda wc, input: opt("--de", input.get("de")),
        enrichment=lambda wc, input: opt("--enrichment", input.get("enrichment")),
        groupby=opt("--groupby", config["report"]["groupby"]),
    log:
        logfile("report"),
    threads: 1
    resources:
        mem_mb=config["mem_mb"]["report"],
    conda:
        ENV
    shell:
        "{params.dormsig} report --adata {input.h5ad:q} {params.de} {params.enrichment} {params.groupby}"
        " --out {output.html:q} --force 2> {log:q}"
