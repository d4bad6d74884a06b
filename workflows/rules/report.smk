# The self-contained HTML report of one dataset: the scores and every contrast.


rule html_report:
    input:
        h5ad=step_input("report", "h5ad"),
        de=step_input("report", "de"),
        enrichment=step_input("report", "enrichment"),
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
        tables=report_tables,
        args=step_args("report"),
    log:
        logfile("report"),
    threads: 1
    resources:
        mem_mb=WF["mem_mb"]["report"],
    conda:
        ENV
    shell:
        "{params.dormsig} report --adata {input.h5ad:q} {params.tables} {params.args} --out {output.html:q}"
        " --force 2> {log:q}"
