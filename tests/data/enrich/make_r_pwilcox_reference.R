# R's exact Wilcoxon rank-sum distribution (pwilcox), the peer reference for dormsig's rank test.
# Run: Rscript tests/data/enrich/make_r_pwilcox_reference.R  (writes r_pwilcox_reference.csv)
rows <- list()
for (m in c(1, 2, 3, 4, 7, 12, 25, 50)) for (n in c(1, 3, 10, 30, 50)) {
  d <- m * n
  for (u in unique(c(0, floor(d / 10), floor(d / 4), floor(d / 3), floor(d / 2)))) {
    rows[[length(rows) + 1]] <- data.frame(k = m, n_other = n, u = u, lower_tail = sprintf("%.17g", pwilcox(u, m, n)))
  }
}
out <- do.call(rbind, rows)
write.csv(out, "r_pwilcox_reference.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, nrow(out), "rows\n")
