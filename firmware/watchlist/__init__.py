"""Signed watchlist bundles: keys, building at headquarters, verification and enrolment on the van."""
