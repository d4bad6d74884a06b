# R's dnbinom(x, size =, mu =, log = TRUE) on grid.csv.gz (make_grid.py), written as C99 hex floats.
# Debian bookworm R 4.2.2. Run from the repository root: Rscript tests/data/de/r_dnbinom/make_dnbinom.R
dir <- "tests/data/de/r_dnbinom"
g <- read.csv(file.path(dir, "grid.csv.gz"), colClasses = "character")
x <- as.numeric(g$x); size <- as.numeric(g$size); mu <- as.numeric(g$mu)
g$logd <- sprintf("%a", dnbinom(x, size = size, mu = mu, log = TRUE))
write.csv(g, gzfile(file.path(dir, "dnbinom.csv.gz")), row.names = FALSE, quote = FALSE)
