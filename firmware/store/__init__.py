"""Storage: the SQLite file with deployments, watchlist, alerts, outbox, audit chain and stats."""
