"""Benchmarks behind `lfr bench`: each module measures one thing and returns figures as a dict."""
