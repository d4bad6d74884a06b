# R's lowess() on the cases of tests/test_de_r_filter.py (R 4.2, Debian bookworm). Run from the repository root:
#   Rscript tests/data/de/lowess/make_lowess.R
set.seed(1)
theta <- seq(0.01, 0.95, length = 50)
cases <- list(
  flat = round(750 - 5 * theta + rnorm(50, 0, 3)),
  peak = round(400 + 300 * theta - 400 * theta^2 + rnorm(50, 0, 8)),
  steps = c(rep(100, 20), rep(130, 15), rep(90, 15)),
  outliers = replace(round(200 + 50 * theta), c(5, 30), c(400, 0))
)
out <- data.frame(theta = theta)
for (n in names(cases)) { out[[n]] <- cases[[n]]; out[[paste0(n, "_fit")]] <- lowess(theta, cases[[n]], f = 1/5)$y }
write.csv(out, "tests/data/de/lowess/r_lowess.csv", row.names = FALSE)
