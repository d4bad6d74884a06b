# R DESeq2 1.38.3's optim objective (fitNbinomGLMsWithOptim's objectiveFn, lambda 1e-6 on every
# coefficient, no weights) and R optim's L-BFGS-B numerical gradient (fmingr with bounds +-30,
# ndeps 1e-3, parscale 1, fnscale 1), at the points of cases.csv.gz (make_cases.py). Debian bookworm R 4.2.2.
# Run from the repository root: Rscript tests/data/de/r_optim_objective/make_objective.R
dir <- "tests/data/de/r_optim_objective"
cases <- read.csv(file.path(dir, "cases.csv.gz"), colClasses = "character")
x <- as.matrix(read.csv(file.path(dir, "design.csv"), colClasses = "character"))
x <- matrix(as.numeric(x), nrow(x))
nf <- as.numeric(read.csv(file.path(dir, "nf.csv"), colClasses = "character")$nf)
lambda <- rep(1e-6, ncol(x))
large <- 30
hx <- function(s) as.numeric(strsplit(s, ";")[[1]])
val <- character(nrow(cases)); grad <- character(nrow(cases))
for (i in seq_len(nrow(cases))) {
  k <- hx(cases$k[i]); p0 <- hx(cases$p[i]); alpha <- as.numeric(cases$alpha[i])
  objectiveFn <- function(p) {  # as DESeq2:::fitNbinomGLMsWithOptim (useWeights FALSE)
    mu_row <- as.numeric(nf * 2^(x %*% p))
    logLike <- sum(dnbinom(k, mu = mu_row, size = 1/alpha, log = TRUE))
    logPrior <- sum(dnorm(p, 0, sqrt(1/lambda), log = TRUE))
    negLogPost <- -1 * (logLike + logPrior)
    if (is.finite(negLogPost)) negLogPost else 10^300
  }
  g <- numeric(length(p0))
  for (j in seq_along(p0)) {  # R's fmingr, usebounds branch
    eps <- 1e-3; epsused <- eps; pt <- p0
    tmp <- p0[j] + eps
    if (tmp > large) { tmp <- large; epsused <- tmp - p0[j] }
    pt[j] <- tmp; v1 <- objectiveFn(pt)
    tmp <- p0[j] - eps
    if (tmp < -large) { tmp <- -large; eps <- p0[j] - tmp }
    pt[j] <- tmp; v2 <- objectiveFn(pt)
    g[j] <- (v1 - v2) / (epsused + eps)
  }
  val[i] <- sprintf("%a", objectiveFn(p0))
  grad[i] <- paste(sprintf("%a", g), collapse = ";")
}
write.csv(data.frame(gene = cases$gene, value = val, grad = grad), gzfile(file.path(dir, "objective.csv.gz")),
          row.names = FALSE, quote = FALSE)
