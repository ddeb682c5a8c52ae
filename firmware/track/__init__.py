"""Tracking: faces followed across frames, one track per person walking past; counts faces seen."""
