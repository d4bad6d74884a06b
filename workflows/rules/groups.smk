# Label samples (or cells) as <high>_high / <versus>_high, e.g. NOTCH2_high vs NOTCH1_high.


rule define_groups:
    input:
        h5ad=out("data.h5ad"),
    output:
        h5ad=out("grouped.h5ad"),
        provenance=sidecar(out("grouped.h5ad")),
    params:
        dormsig=DORMSIG,
        high=lambda wc: opt("--high", dataset(wc.dataset)["high"]),
        versus=lambda wc: opt("--versus", dataset(wc.dataset)["versus"]),
        by=lambda wc: opt("--by", dataset(wc.dataset).get("by")),
    log:
        logfile("groups"),
    threads: 1
    resources:
        mem_mb=config["mem_mb"]["groups"],
    conda:
        ENV
    shell:
        "{params.dormsig} groups {input.h5ad:q} --out {output.h5ad:q} {params.high} {params.versus} {params.by}"
        " --force 2> {log:q}"
