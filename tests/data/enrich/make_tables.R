# Real DE tables in the layouts R users write, for dormsig's enrichment tests (see README.md).
# Run from the repository root:
#   Rscript tests/data/enrich/make_tables.R /work/shared/data tests/data/enrich/ctc_groups.csv tests/data/enrich
# (R 4.2.2, DESeq2 1.38.3; the airway full table is written too, for the real-data check, but not kept.)
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
shared <- args[1]; groups_csv <- args[2]; out <- args[3]

# 1. Aceto 2014 CTCs: NOTCH2_high vs NOTCH1_high, groups defined by NOTCH1/NOTCH2 expression
#    (dormsig define_groups, median thresholds; ctc_groups.csv). Gene symbols as in the source file (2014).
counts <- as.matrix(read.table(file.path(shared, "aceto2014_ctc_GSE51827/GSE51827_data.txt"), header = TRUE,
                               sep = "\t", check.names = FALSE))
counts <- round(counts)  # a few values are written as 0.999999999999999
groups <- read.csv(groups_csv, row.names = 1)
keep <- rownames(groups)[groups$group %in% c("NOTCH2_high", "NOTCH1_high")]
cd <- data.frame(group = factor(groups[keep, "group"], levels = c("NOTCH1_high", "NOTCH2_high")), row.names = keep)
dds <- DESeqDataSetFromMatrix(counts[, keep], cd, ~ group)
dds <- DESeq(dds, quiet = TRUE, sfType = "poscounts")
res <- as.data.frame(results(dds, contrast = c("group", "NOTCH2_high", "NOTCH1_high")))
res <- signif(res[!is.na(res$stat), ], 5)
# full table, write.table(sep = "\t", quote = FALSE): gene names as row names, header one field short
write.table(res, gzfile(file.path(out, "ctc_notch2_vs_notch1_deseq2_writetable.tsv.gz")), sep = "\t", quote = FALSE)
# filtered top table, write.csv: "" first header field, row names = genes
top <- res[!is.na(res$padj) & res$padj < 0.1, ]
top <- top[order(top$padj), ]
write.csv(top, file.path(out, "ctc_notch2_vs_notch1_deseq2_padj0.1.csv"))
# the same with a gene column and R's default row names 1..n (write.csv of a data frame)
numbered <- data.frame(gene = rownames(top), top, row.names = NULL)
write.csv(numbered, file.path(out, "ctc_notch2_vs_notch1_deseq2_padj0.1_rownumbers.csv"))
# limma topTable shape (logFC AveExpr t P.Value adj.P.Val B, row names = genes): DESeq2's numbers in limma's columns
limma_like <- data.frame(logFC = top$log2FoldChange, AveExpr = signif(log2(top$baseMean + 1), 5), t = top$stat,
                         P.Value = top$pvalue, adj.P.Val = top$padj, B = NA, row.names = rownames(top))
write.table(limma_like, file.path(out, "ctc_notch2_vs_notch1_limma_shaped_toptable.txt"), sep = "\t", quote = FALSE)
cat("CTC:", nrow(res), "genes;", nrow(top), "with padj < 0.1\n")

# 2. airway (R DESeq2 ~ cell + dex, trt vs untrt): significant genes, write.table defaults (space-separated, quoted)
air <- read.csv(file.path(shared, "airway/r_deseq2_cell_dex_results.csv"), row.names = 1)
sig <- air[!is.na(air$padj) & air$padj < 0.01 & abs(air$log2FoldChange) > 1, ]
sig <- signif(sig[order(sig$padj), ], 5)
write.table(sig, file.path(out, "airway_dex_deseq2_top_writetable.txt"))
write.table(air, file.path(tempdir(), "airway_dex_deseq2_full_writetable.txt"))

cat("airway:", nrow(air), "genes;", nrow(sig), "with padj < 0.01 and |log2FC| > 1\n")
