"""The hub's sinks on the van–laptop link: wake the link for each recorded alert, publish each preview.

The link reads alerts from the outbox itself (`record_alert` wrote them there in the alert's transaction), so
an alert sink only has to say "there is something new". Previews go out on the link's conflated stream.
"""

from __future__ import annotations

from typing import Protocol

from firmware.link.messages import Alert, Preview
from firmware.pipeline.messages import PreviewFrame


class LinkEnd(Protocol):
    """What the sinks need of `firmware.link.appliance_link.ApplianceLink`."""

    def notify(self) -> None: ...

    def publish_preview(self, preview: Preview) -> None: ...


class LinkSinks:
    """Both sinks (`AlertSink`, `PreviewSink`) over one appliance link end."""

    def __init__(self, link: LinkEnd) -> None:
        self.link = link

    def alert_recorded(self, alert: Alert) -> None:
        self.link.notify()

    def preview(self, frame: PreviewFrame) -> None:
        self.link.publish_preview(Preview(camera=frame.camera, t_wall=frame.t_wall, width=frame.width,
                                          height=frame.height, jpeg=frame.jpeg))
