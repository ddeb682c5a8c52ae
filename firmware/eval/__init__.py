"""Accuracy evaluation on real faces: LFW verification, open-set identification, demographic breakdowns."""
