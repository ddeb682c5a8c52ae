"""The hub's link sinks turn recorded alerts into a wake-up and previews into the link's Preview message."""

from __future__ import annotations

import cv2
import numpy as np

from firmware.link.messages import Alert, Preview, decode
from firmware.pipeline.imaging import preview_jpeg
from firmware.pipeline.link_sinks import LinkSinks
from firmware.pipeline.messages import PreviewFrame


class FakeLinkEnd:
    """Records what the sinks hand to the link (the real ApplianceLink is tested on the link branch)."""

    def __init__(self) -> None:
        self.notified = 0
        self.previews: list[Preview] = []

    def notify(self) -> None:
        self.notified += 1

    def publish_preview(self, preview: Preview) -> None:
        self.previews.append(preview)


def test_alert_wakes_the_link_and_preview_becomes_a_valid_link_message() -> None:
    link = FakeLinkEnd()
    sinks = LinkSinks(link)
    sinks.alert_recorded(Alert(alert_id="0b6f1c1e-8f1a-4f7e-9a57-2d0c7f1b2a33", seq=1, t_wall=1_767_225_600.0,
                               camera="cam0", track_id=3, subject_id="S1", subject_name="A B", category="wanted",
                               reason="warrant", score=0.8, probe_jpeg=b"\xff\xd8\xff", reference_jpeg=b""))
    assert link.notified == 1
    jpeg, w, h = preview_jpeg(np.full((360, 640, 3), 90, np.uint8), [(10.0, 10.0, 60.0, 60.0)], [], width=320,
                              blocks=6)
    sinks.preview(PreviewFrame("cam0", 1_767_225_600.0, w, h, jpeg))
    (preview,) = link.previews
    assert decode(preview.encode()) == preview
    assert (preview.width, preview.height) == (320, 180)
    assert cv2.imdecode(np.frombuffer(preview.jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (180, 320, 3)
