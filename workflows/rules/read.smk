# Read one dataset (any format dormsig understands) into an AnnData with harmonised gene symbols.


rule read_input:
    input:
        data=step_input("read", "data"),
        extra=lambda wc: [p for k, p in step(wc, "read").inputs.items() if k != "data"],
    output:
        h5ad=out("data.h5ad"),
        provenance=sidecar(out("data.h5ad")),
    params:
        dormsig=DORMSIG,
        args=step_args("read"),
    log:
        logfile("read"),
    threads: 1
    resources:
        mem_mb=WF["mem_mb"]["read"],
    conda:
        ENV
    shell:
        "{params.dormsig} read {input.data:q} --out {output.h5ad:q} {params.args} --force 2> {log:q}"
