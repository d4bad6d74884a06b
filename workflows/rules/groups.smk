# Label samples (or cells) of one contrast, e.g. NOTCH2_high vs NOTCH1_high, in the contrast's own obs
# column (dormsig.de.Contrast.factor); each contrast adds its column to the previous contrast's h5ad.


rule define_groups:
    input:
        h5ad=step_input("groups", "h5ad"),
    output:
        h5ad=out("groups/{contrast}.h5ad"),
        provenance=sidecar(out("groups/{contrast}.h5ad")),
    params:
        dormsig=DORMSIG,
        args=step_args("groups"),
    log:
        logfile("groups_{contrast}"),
    threads: 1
    resources:
        mem_mb=WF["mem_mb"]["groups"],
    conda:
        ENV
    shell:
        "{params.dormsig} groups {input.h5ad:q} --out {output.h5ad:q} {params.args} --force 2> {log:q}"
