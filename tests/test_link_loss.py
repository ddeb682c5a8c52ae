"""Acceptance: no alert lost, duplicated or reordered while both ends of the link keep failing."""

from __future__ import annotations

from pathlib import Path

import pytest
from link_loss import run_loss


@pytest.mark.slow
def test_1000_alerts_arrive_exactly_once_in_order_through_restarts_and_kills(tmp_path: Path) -> None:
    """20 viewer stops/restarts, 10 network cuts and 5 SIGKILLs of the appliance process, all while alerts
    are being made."""
    report = run_loss(tmp_path, alerts=1000, viewer_restarts=20, appliance_kills=5, network_cuts=10,
                      stream_seconds=8.0)
    assert report.made == 1000
    assert report.viewer_restarts == 20 and report.appliance_kills == 5 and report.network_cuts == 10
    assert len(report.delivered_ids) == len(set(report.delivered_ids)) == 1000
    assert report.exactly_once_in_order
    assert report.outbox_left == 0
    assert report.viewer_connections > 20  # the viewer connected again after each restart and most cuts
    assert report.cuts_severing >= 5  # cuts that broke a live connection (others hit one still being made)
