"""1:N search of a probe embedding against the watchlist, and the calibrated 0..1 score."""
