# R's optim(method = "L-BFGS-B") evaluation paths, for tests/test_lbfgsb.py.
# Run: Rscript tests/data/de/lbfgsb_make_r_paths.R  (from the repository root; R 4.x, base R only)
# Writes tests/data/de/lbfgsb_r_<case>.csv: one row per objective evaluation made by optim's
# L-BFGS-B at an iterate or line-search trial point (x1..xn, f), in order, plus a last row "result"
# with optim's par, value and the convergence code in column f_conv.
out_dir <- "tests/data/de"
record <- function(case, fn, gr, x0, lower, upper, ndeps_calls = 0) {
  log <- list()
  f_rec <- function(x) { v <- fn(x); log[[length(log) + 1]] <<- c(x, v); v }
  o <- if (is.null(gr)) optim(x0, f_rec, method = "L-BFGS-B", lower = lower, upper = upper)
       else optim(x0, f_rec, gr, method = "L-BFGS-B", lower = lower, upper = upper)
  m <- do.call(rbind, log)
  # with the numerical gradient every evaluation is followed by 2n calls for the central differences
  if (is.null(gr)) m <- m[seq(1, nrow(m), by = 1 + 2 * length(x0)), , drop = FALSE]
  m <- rbind(m, c(o$par, o$value))
  df <- data.frame(kind = c(rep("eval", nrow(m) - 1), "result"), m)
  names(df) <- c("kind", paste0("x", seq_along(x0)), "f")
  df$convergence <- c(rep(NA, nrow(m) - 1), o$convergence)
  df$counts <- c(rep(NA, nrow(m) - 1), o$counts[["function"]])
  for (k in seq_along(df)) if (is.double(df[[k]])) df[[k]] <- sprintf("%.17g", df[[k]])
  write.csv(df, file.path(out_dir, paste0("lbfgsb_r_", case, ".csv")), row.names = FALSE)
  cat(case, ":", nrow(m) - 1, "evaluations, convergence", o$convergence, o$message, "\n")
}
rosen <- function(x) { n <- length(x); sum(100 * (x[-1] - x[-n]^2)^2 + (1 - x[-n])^2) }
rosen_gr <- function(x) {
  n <- length(x); g <- numeric(n)
  a <- x[-1] - x[-n]^2; b <- 1 - x[-n]
  g[-n] <- -400 * a * x[-n] - 2 * b
  g[-1] <- g[-1] + 200 * a
  g
}
# Rosenbrock, two bounds active at the solution
record("rosen_bounds", rosen, rosen_gr, c(-1.2, 1, -0.5, 0.8), c(-2, -2, 0.3, -2), c(2, 0.5, 2, 2))
# Rosenbrock, 10 variables, interior solution, memory wraps (more than lmm = 5 updates)
record("rosen10", rosen, rosen_gr, rep(c(-1.2, 1), 5), rep(-5, 10), rep(5, 10))
# convex quadratic with bounds, R's numerical gradient (ndeps 1e-3, shortened at the bounds)
A <- matrix(c(4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2), 3)
b <- c(-8, 3, -1)
quad <- function(x) 0.5 * sum(x * (A %*% x)) + sum(b * x)
record("quad_fd", quad, NULL, c(0, 0, 0), c(-1, -1, 0.6), c(3, 1, 3))
