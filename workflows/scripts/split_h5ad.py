"""Write block ``shard`` of ``n_shards`` contiguous blocks of an h5ad's observations.

Run by the Snakemake rule ``split_shard`` (``script:`` directive); ``split`` is importable
for tests. The file is opened backed, so only the block is loaded into memory.
"""

# No "from __future__" import: Snakemake puts its preamble before this file's first line.
import logging
import sys

import anndata as ad
import numpy as np


def block(n_obs: int, shard: int, n_shards: int) -> slice:
    """Observations of one shard: ``np.array_split`` boundaries (sizes differ by at most one)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    bounds = np.cumsum([0] + [len(a) for a in np.array_split(np.arange(n_obs), n_shards)])
    return slice(int(bounds[shard]), int(bounds[shard + 1]))


def split(inp: str, out: str, shard: int, n_shards: int) -> None:
    from dormsig.io.write import write_h5ad

    backed = ad.read_h5ad(inp, backed="r")
    part = backed[block(backed.n_obs, shard, n_shards)].to_memory()
    backed.file.close()
    part.uns.setdefault("dormsig", {})["shard"] = {"shard": shard, "n_shards": n_shards, "n_obs": part.n_obs}
    write_h5ad(part, out)
    logging.info("shard %d/%d: %d observations -> %s", shard, n_shards, part.n_obs, out)


if "snakemake" in globals():
    smk = globals()["snakemake"]
    logging.basicConfig(filename=smk.log[0], level=logging.INFO)
    try:
        split(smk.input.h5ad, smk.output.h5ad, int(smk.wildcards.shard), int(smk.params.n_shards))
    except Exception:
        logging.exception("split failed")
        sys.exit(1)
