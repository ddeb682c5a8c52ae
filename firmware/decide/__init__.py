"""Decide: turn a track's best faces into at most one alert, under the cooldown per watchlist subject."""
