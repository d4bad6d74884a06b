# Read one dataset (any format dormsig understands) into an AnnData with harmonised gene symbols.


rule read_input:
    input:
        data=lambda wc: resolve(dataset(wc.dataset)["input"]),
        sheet=lambda wc: (
            [resolve(dataset(wc.dataset)["sample_sheet"])]
            if dataset(wc.dataset).get("sample_sheet")
            else []
        ),
    output:
        h5ad=out("data.h5ad"),
        provenance=sidecar(out("data.h5ad")),
    params:
        dormsig=DORMSIG,
        sheet=lambda wc, input: opt("--sample-sheet", input.sheet[0] if input.sheet else None),
    log:
        logfile("read"),
    threads: 1
    resources:
        mem_mb=config["mem_mb"]["read"],
    conda:
        ENV
    shell:
        "{params.dormsig} read {input.data:q} --out {output.h5ad:q} {params.sheet} --force 2> {log:q}"
