# R DESeq2 reference results for the multi-factor concordance tests (tests/test_de_r_concordance.py).
# Inputs are written by make_inputs.py (same folder). Run from the repository root:
#   Rscript tests/data/de/r_reference/make_references.R [design ...]
# Debian bookworm r-bioc-deseq2 (DESeq2 1.38.3, R 4.2). DESeq() defaults; the contrast's denominator is the
# reference level of its factor (as dormsig parametrises the design); results() defaults (alpha 0.1 for
# independent filtering, as in R); per-gene diagnostics from mcols(dds) are kept beside the results.
suppressMessages(library(DESeq2))
dir <- "tests/data/de/r_reference"
run <- function(name, design, var, num, den, tag, sf = "ratio", reduced = NULL) {
  counts <- as.matrix(read.csv(file.path(dir, paste0(name, "_counts.csv.gz")), row.names = 1, check.names = FALSE))
  coldata <- read.csv(file.path(dir, paste0(name, "_coldata.csv")), row.names = 1, check.names = FALSE)
  coldata <- coldata[colnames(counts), , drop = FALSE]
  for (v in colnames(coldata)) if (is.character(coldata[[v]])) coldata[[v]] <- factor(coldata[[v]])
  coldata[[var]] <- relevel(coldata[[var]], ref = den)
  t0 <- proc.time()[["elapsed"]]
  dds <- DESeqDataSetFromMatrix(countData = counts, colData = coldata, design = as.formula(design))
  dds <- if (is.null(reduced)) DESeq(dds, quiet = TRUE, sfType = sf) else
    DESeq(dds, quiet = TRUE, sfType = sf, test = "LRT", reduced = as.formula(reduced))
  res <- results(dds, contrast = c(var, num, den))
  secs <- proc.time()[["elapsed"]] - t0
  m <- mcols(dds)
  col <- function(n) if (is.null(m[[n]])) rep(NA, nrow(m)) else m[[n]]  # LRT fits name some columns apart
  out <- data.frame(gene = rownames(res), as.data.frame(res),
                    dispersion = col("dispersion"), dispGeneEst = col("dispGeneEst"), dispFit = col("dispFit"),
                    betaConv = if (is.null(reduced)) col("betaConv") else col("fullBetaConv"),
                    betaIter = col("betaIter"), maxCooks = col("maxCooks"), check.names = FALSE)
  write.csv(out, gzfile(file.path(dir, paste0(tag, "_r_results.csv.gz"))), row.names = FALSE)
  write.csv(data.frame(sample = colnames(dds), size_factor = sizeFactors(dds)),
            file.path(dir, paste0(tag, "_r_size_factors.csv")), row.names = FALSE)
  cat(sprintf("%s: DESeq2 %s, %s, %s vs %s: %d genes, %d padj<0.05, %d not betaConv, %.1f s\n", tag,
              packageVersion("DESeq2"), design, num, den, nrow(res), sum(res$padj < 0.05, na.rm = TRUE),
              sum(!out$betaConv, na.rm = TRUE), secs))
}
jobs <- list(
  ctc_n2_vs_n1 = list("ctc", "~ patient + group_NOTCH2_vs_NOTCH1", "group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"),
  ctc_n2_high_vs_low = list("ctc", "~ patient + group_NOTCH2_high_vs_low", "group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low"),
  ctc_tumour_n2_vs_n1 = list("ctc", "~ patient + tumour_group_NOTCH2_vs_NOTCH1", "tumour_group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"),
  ctc_tumour_n2_high_vs_low = list("ctc", "~ patient + tumour_group_NOTCH2_high_vs_low", "tumour_group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low"),
  sim_wide_c3_vs_c0 = list("sim_wide", "~ batch + condition", "condition", "c3", "c0"),
  sim_wide_c5_vs_c1 = list("sim_wide", "~ batch + condition", "condition", "c5", "c1"),
  sim_cont = list("sim_cont", "~ age + condition", "condition", "B", "A"),
  sim_cont_poscounts = list("sim_cont", "~ age + condition", "condition", "B", "A", "poscounts"),
  sim_wide_lrt = list("sim_wide", "~ batch + condition", "condition", "c3", "c0", "ratio", "~ batch"),
  oligo_pb_lrt = list("oligo_pb", "~ patient + cell_class", "cell_class", "malignant", "oligodendrocyte", "ratio", "~ patient"),
  oligo_pb = list("oligo_pb", "~ patient + cell_class", "cell_class", "malignant", "oligodendrocyte")
)
args <- commandArgs(trailingOnly = TRUE)
todo <- if (length(args)) args else names(jobs)
for (tag in todo) {
  j <- jobs[[tag]]
  run(j[[1]], j[[2]], j[[3]], j[[4]], j[[5]], tag, if (length(j) > 5) j[[6]] else "ratio", if (length(j) > 6) j[[7]] else NULL)
}
