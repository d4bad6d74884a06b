# R DESeq2 1.38's optim refit (fitNbinomGLMsOptim) of CTC genes whose IRLS diverged, for
# tests/test_lbfgsb.py. Inputs (written by dormsig from tests/data/de/r_reference/ctc_*, design
# ~ patient + group, NOTCH2_high vs NOTCH1_high): lbfgsb_ctc_design.csv (per sample: size factor
# nf and the model matrix), lbfgsb_ctc_genes.csv (per gene: dispersion alpha, log2-scale start
# start_1..p as DESeq2 passes it, counts y_1..m).
# Run from the repository root:
#   Rscript tests/data/de/lbfgsb_make_r_genes.R [genes.csv] [out.csv] [path|result]
# "path" (default) writes lbfgsb_r_gene_<gene>.csv per gene (every evaluation, in order, as
# lbfgsb_make_r_paths.R); "result" writes one row per gene (par, value, convergence, counts).
args <- commandArgs(trailingOnly = TRUE)
genes_csv <- if (length(args) >= 1) args[1] else "tests/data/de/lbfgsb_ctc_genes.csv"
out <- if (length(args) >= 2) args[2] else "tests/data/de"
mode <- if (length(args) >= 3) args[3] else "path"
des <- read.csv("tests/data/de/lbfgsb_ctc_design.csv")
nf <- des$nf
x <- as.matrix(des[, grep("^x", names(des))])
genes <- read.csv(genes_csv)
p <- ncol(x)
lambda <- 1e-6
large <- 30
fmt <- function(df) { for (k in seq_along(df)) if (is.double(df[[k]])) df[[k]] <- sprintf("%.17g", df[[k]]); df }
res <- vector("list", nrow(genes))
for (i in seq_len(nrow(genes))) {
  k <- as.numeric(genes[i, grep("^y_", names(genes))])
  alpha <- genes$alpha[i]
  betaRow <- as.numeric(genes[i, grep("^start_", names(genes))])
  log <- list()
  objectiveFn <- function(p) {  # DESeq2 1.38 fitNbinomGLMsOptim, unweighted
    mu_row <- as.numeric(nf * 2^(x %*% p))
    logLike <- sum(dnbinom(k, mu = mu_row, size = 1/alpha, log = TRUE))
    logPrior <- sum(dnorm(p, 0, sqrt(1/lambda), log = TRUE))
    negLogPost <- -1 * (logLike + logPrior)
    v <- if (is.finite(negLogPost)) negLogPost else 10^300
    if (mode == "path") log[[length(log) + 1]] <<- c(p, v)
    v
  }
  o <- optim(betaRow, objectiveFn, method = "L-BFGS-B", lower = -large, upper = large)
  if (mode == "path") {
    m <- do.call(rbind, log)
    m <- m[seq(1, nrow(m), by = 1 + 2 * p), , drop = FALSE]
    m <- rbind(m, c(o$par, o$value))
    df <- data.frame(kind = c(rep("eval", nrow(m) - 1), "result"), m)
    names(df) <- c("kind", paste0("x", seq_len(p)), "f")
    df$convergence <- c(rep(NA, nrow(m) - 1), o$convergence)
    df$counts <- c(rep(NA, nrow(m) - 1), o$counts[["function"]])
    write.csv(fmt(df), file.path(out, paste0("lbfgsb_r_gene_", genes$gene[i], ".csv")), row.names = FALSE)
  }
  res[[i]] <- data.frame(gene = genes$gene[i], t(o$par), value = o$value, convergence = o$convergence,
                         counts = o$counts[["function"]])
}
if (mode == "result") write.csv(fmt(do.call(rbind, res)), out, row.names = FALSE)
