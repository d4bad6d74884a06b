# How closely does R DESeq2 agree with itself? The same counts and design, with the samples in reverse
# order: mathematically the same fit, numerically a different order of every sum and every QR step.
# Genes that IRLS cannot fit (whole patients or groups at zero) are refitted by optim's L-BFGS-B along
# nearly flat directions; their stopping points depend on the last bits of the objective, so R's own
# answer for them moves when only the sample order changes. benchmarks/r_self_consistency.py compares
# the two runs with the criterion of tests/test_de_r_concordance.py (issue 11).
#
# Run from the repository root (Debian r-bioc-deseq2, DESeq2 1.38.3; ~5-9 min per CTC design on one core):
#   Rscript benchmarks/r_self_consistency.R ctc_n2_vs_n1 [ctc_tumour_n2_vs_n1 ...]
# Writes <outdir>/<tag>_r_reversed_results.csv.gz (default outdir: /tmp/dormsig_r_self).
suppressMessages(library(DESeq2))
dir <- "tests/data/de/r_reference"
outdir <- Sys.getenv("DORMSIG_R_SELF_OUT", "/tmp/dormsig_r_self")
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)
jobs <- list(
  ctc_n2_vs_n1 = list("ctc", "~ patient + group_NOTCH2_vs_NOTCH1", "group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"),
  ctc_n2_high_vs_low = list("ctc", "~ patient + group_NOTCH2_high_vs_low", "group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low"),
  ctc_tumour_n2_vs_n1 = list("ctc", "~ patient + tumour_group_NOTCH2_vs_NOTCH1", "tumour_group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"),
  ctc_tumour_n2_high_vs_low = list("ctc", "~ patient + tumour_group_NOTCH2_high_vs_low", "tumour_group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low")
)
for (tag in commandArgs(trailingOnly = TRUE)) {
  j <- jobs[[tag]]
  counts <- as.matrix(read.csv(file.path(dir, paste0(j[[1]], "_counts.csv.gz")), row.names = 1, check.names = FALSE))
  counts <- counts[, rev(colnames(counts))]  # the only change from make_references.R
  coldata <- read.csv(file.path(dir, paste0(j[[1]], "_coldata.csv")), row.names = 1, check.names = FALSE)
  coldata <- coldata[colnames(counts), , drop = FALSE]
  for (v in colnames(coldata)) if (is.character(coldata[[v]])) coldata[[v]] <- factor(coldata[[v]])
  coldata[[j[[3]]]] <- relevel(coldata[[j[[3]]]], ref = j[[5]])
  t0 <- proc.time()[["elapsed"]]
  dds <- DESeq(DESeqDataSetFromMatrix(countData = counts, colData = coldata, design = as.formula(j[[2]])), quiet = TRUE)
  res <- results(dds, contrast = c(j[[3]], j[[4]], j[[5]]))
  out <- data.frame(gene = rownames(res), as.data.frame(res), betaConv = mcols(dds)$betaConv, check.names = FALSE)
  write.csv(out, gzfile(file.path(outdir, paste0(tag, "_r_reversed_results.csv.gz"))), row.names = FALSE)
  cat(sprintf("%s (samples reversed): %d padj<0.05, %.1f s\n", tag, sum(res$padj < 0.05, na.rm = TRUE),
              proc.time()[["elapsed"]] - t0))
}
