"""Both ends of the link over real CURVE sockets on 127.0.0.1 (random ports, linger 0)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
from link_fixtures import (
    PairedKeys,
    add_alert,
    create_outbox,
    free_port,
    link_config,
    make_alert,
    paired_keys,
    tiny_jpeg,
)

from firmware.config import LinkConfig
from firmware.errors import KeyFileError, LinkError, PolicyError
from firmware.link.appliance_link import ApplianceLink
from firmware.link.messages import Alert, Decision, DecisionAck, Health, Heartbeat, Preview, decode
from firmware.link.viewer_link import ViewerLink
from firmware.store import outbox


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def keys(tmp_path: Path) -> PairedKeys:
    return paired_keys(tmp_path / "keys")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    create_outbox(tmp_path / "appliance.db").close()
    return tmp_path / "appliance.db"


class Recorder:
    """Collects what the viewer's callbacks receive."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.acks: list[DecisionAck] = []
        self.health: list[Health] = []
        self.previews: list[Preview] = []
        self.links: list[tuple[bool, float]] = []

    def viewer(self, config: LinkConfig, keys: PairedKeys, **kwargs: object) -> ViewerLink:
        return ViewerLink(config, when_alert=self.alerts.append, when_decision_ack=self.acks.append,
                          when_health=self.health.append, when_preview=self.previews.append,
                          when_link=lambda up: self.links.append((up, time.monotonic())),
                          keypair=keys.laptop, appliance_public=keys.appliance.public, **kwargs)  # type: ignore[arg-type]


def _ports(config: LinkConfig, app: ApplianceLink) -> LinkConfig:
    return dataclasses.replace(config, alerts_port=app.alerts_port, preview_port=app.preview_port)


def test_alerts_arrive_in_order_and_leave_the_outbox(keys: PairedKeys, db_path: Path) -> None:
    db = create_outbox(db_path)
    made = [add_alert(db, s) for s in range(1, 31)]
    rec = Recorder()
    config = link_config(keys)
    with ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None) as app, \
            rec.viewer(_ports(config, app), keys) as viewer:
        assert wait_for(lambda: len(rec.alerts) == 30)
        later = add_alert(db, 31)
        app.notify()
        assert wait_for(lambda: len(rec.alerts) == 31)
        assert wait_for(lambda: outbox.count(db) == 0)
        assert viewer.is_link_up and app.is_link_up
    assert [a.with_prev(None) for a in rec.alerts] == [*made, later]
    assert [up for up, _ in rec.links] == [True]


def test_decisions_reach_the_appliance_and_are_acknowledged(keys: PairedKeys, db_path: Path) -> None:
    db = create_outbox(db_path)
    alert = add_alert(db, 1)
    recorded: list[Decision] = []

    def when_decision(decision: Decision) -> None:
        if decision.alert_id != alert.alert_id:
            raise PolicyError(f"no alert {decision.alert_id} in this deployment")
        recorded.append(decision)

    rec = Recorder()
    config = link_config(keys)
    with ApplianceLink(config, outbox.opener(db_path), when_decision=when_decision) as app, \
            rec.viewer(_ports(config, app), keys) as viewer:
        assert wait_for(lambda: len(rec.alerts) == 1)
        good = viewer.decide(alert.alert_id, "confirmed_not_stopped", "walked on")
        bad = viewer.decide(str(uuid.uuid4()), "false_alert")
        assert wait_for(lambda: len(rec.acks) == 2)
    assert recorded == [good]
    by_id = {a.decision_id: a for a in rec.acks}
    assert by_id[good.decision_id].accepted
    assert not by_id[bad.decision_id].accepted and "no alert" in by_id[bad.decision_id].reason


def test_an_alert_the_viewer_cannot_keep_stays_in_the_outbox(keys: PairedKeys, db_path: Path) -> None:
    db = create_outbox(db_path)
    alert = add_alert(db, 1)
    config = link_config(keys)

    def disk_full(a: Alert) -> None:
        raise OSError("No space left on device")

    links: list[bool] = []
    with ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None) as app:
        with ViewerLink(_ports(config, app), when_alert=disk_full, when_link=links.append,
                        keypair=keys.laptop, appliance_public=keys.appliance.public) as broken:
            assert wait_for(lambda: broken.failure is not None)
            assert not broken.is_link_up
            assert links in ([], [True, False])  # never reported up, or reported down again
        assert outbox.count(db) == 1
        rec = Recorder()
        with rec.viewer(_ports(config, app), keys):
            assert wait_for(lambda: len(rec.alerts) == 1)
    assert rec.alerts[0].alert_id == alert.alert_id


def test_health_and_the_newest_preview_reach_the_viewer(keys: PairedKeys, db_path: Path) -> None:
    rec = Recorder()
    release = threading.Event()
    slow: list[Preview] = []

    def when_preview(p: Preview) -> None:
        slow.append(p)
        release.wait(5)

    config = dataclasses.replace(link_config(keys), health_interval=0.5)
    health = Health(t_wall=time.time(), cameras_fps={"cam0": 12.5}, accelerator="cpu", temperature_c=55.0,
                    disk_free_mb=900.0, watchlist_size=42, watchlist_expires=None, deployment="D1")
    with ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None) as app:
        app.set_health(health)
        with ViewerLink(_ports(config, app), when_alert=rec.alerts.append, when_health=rec.health.append,
                        when_preview=when_preview, keypair=keys.laptop,
                        appliance_public=keys.appliance.public):
            frame = 0

            def publish() -> bool:
                nonlocal frame
                frame += 1
                app.publish_preview(Preview(camera="cam0", t_wall=frame, width=2, height=2,
                                            jpeg=tiny_jpeg(1)))
                return bool(slow)

            assert wait_for(publish)  # the viewer is now stuck in its callback on one frame
            for _ in range(50):
                publish()
                time.sleep(0.002)
            time.sleep(0.3)
            newest = frame
            release.set()
            assert wait_for(lambda: slow[-1].t_wall == newest)
            assert wait_for(lambda: len(rec.health) >= 1)
    assert len(slow) <= 4, "a conflated stream delivers the newest frame, not the backlog"
    assert rec.health[0] == health


@pytest.mark.slow
def test_both_sides_see_the_link_go_down_and_up_within_3_s(keys: PairedKeys, db_path: Path) -> None:
    """With the default timings: each side notices the other leave, and come back, within 3 s."""
    config = link_config(keys, heartbeat_interval=LinkConfig.heartbeat_interval,
                         link_timeout=LinkConfig.link_timeout, resend_interval=LinkConfig.resend_interval)
    rec = Recorder()
    app_links: list[tuple[bool, float]] = []

    def appliance(cfg: LinkConfig) -> ApplianceLink:
        return ApplianceLink(cfg, outbox.opener(db_path), when_decision=lambda d: None,
                             when_link=lambda up: app_links.append((up, time.monotonic())))

    app = appliance(config)
    config = _ports(config, app)
    viewer = rec.viewer(config, keys)
    assert wait_for(lambda: len(rec.links) == 1 and len(app_links) == 1)
    viewer.close()
    viewer.close()
    gone = time.monotonic()
    assert wait_for(lambda: len(app_links) == 2, 3.5)
    assert app_links[1][0] is False and app_links[1][1] - gone < 3.0
    back = time.monotonic()
    viewer = rec.viewer(config, keys)
    assert wait_for(lambda: len(app_links) == 3 and len(rec.links) == 2, 3.0)
    assert app_links[2][0] is True and app_links[2][1] - back < 3.0
    app.close()
    stopped = time.monotonic()
    assert wait_for(lambda: len(rec.links) == 3, 3.5)
    assert rec.links[2][0] is False and rec.links[2][1] - stopped < 3.0
    restarted = time.monotonic()
    app = appliance(config)
    assert wait_for(lambda: len(rec.links) == 4, 3.0)
    assert rec.links[3][0] is True and rec.links[3][1] - restarted < 3.0
    viewer.close()
    app.close()
    assert [up for up, _ in rec.links] == [True, True, False, True]


def _intruder_dealer(ctx: zmq.Context, port: int, curve: tuple[bytes, bytes, bytes] | None) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if curve is not None:
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = curve
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def _intruder_sub(ctx: zmq.Context, port: int, curve: tuple[bytes, bytes, bytes] | None) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    if curve is not None:
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = curve
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


BEAT = Heartbeat(role="viewer", t_wall=1.0)
PREVIEW = Preview(camera="c", t_wall=1.0, width=1, height=1, jpeg=tiny_jpeg(0))


def test_unpaired_key_and_plain_clients_receive_nothing(keys: PairedKeys, db_path: Path) -> None:
    db = create_outbox(db_path)
    for s in range(1, 6):
        add_alert(db, s)
    stranger_public, stranger_secret = zmq.curve_keypair()
    config = link_config(keys)
    ctx = zmq.Context()
    try:
        with ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None) as app:
            intruders = []
            for curve in ((stranger_public, stranger_secret, keys.appliance.public), None):
                intruders.append(_intruder_dealer(ctx, app.alerts_port, curve))
                intruders.append(_intruder_sub(ctx, app.preview_port, curve))
            poller = zmq.Poller()
            for sock in intruders:
                poller.register(sock, zmq.POLLIN)
            end, received = time.monotonic() + 1.5, []
            while time.monotonic() < end:
                for sock in intruders[::2]:
                    try:
                        sock.send_multipart(BEAT.encode(), zmq.NOBLOCK)
                    except zmq.Again:
                        pass  # refused during the handshake: nothing to send to
                app.publish_preview(PREVIEW)
                for sock, _ in poller.poll(50):
                    received.append(sock.recv_multipart())
            assert received == []
            assert app.protocol.peers == {} and not app.is_link_up
            assert outbox.count(db) == 5
            # Control: the paired laptop, on the same ports, does get the alerts and the preview.
            rec = Recorder()
            with rec.viewer(_ports(config, app), keys):
                assert wait_for(lambda: len(rec.alerts) == 5)
                assert wait_for(lambda: (app.publish_preview(PREVIEW), rec.previews)[1] != [])
    finally:
        ctx.destroy(linger=0)
    assert [decode(a.encode()) for a in rec.alerts] == rec.alerts


def test_close_is_safe_twice_and_a_busy_port_is_a_clear_error(keys: PairedKeys, db_path: Path) -> None:
    config = link_config(keys)
    app = ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None)
    busy = _ports(config, app)
    with pytest.raises(LinkError, match="cannot listen"):
        ApplianceLink(busy, outbox.opener(db_path), when_decision=lambda d: None)
    viewer = Recorder().viewer(busy, keys)
    viewer.close()
    viewer.close()
    app.close()
    app.close()
    assert not app._thread.is_alive() and not viewer._thread.is_alive()


def test_appliance_refuses_a_secret_key_others_can_read(keys: PairedKeys, db_path: Path) -> None:
    config = link_config(keys)
    Path(config.secret_key).chmod(0o644)
    with pytest.raises(KeyFileError, match="mode 0644"):
        ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None)


def test_garbage_from_an_authenticated_peer_changes_nothing_over_real_sockets(keys: PairedKeys,
                                                                              db_path: Path) -> None:
    """Both socket ends keep working after a paired peer sends thousands of malformed messages."""
    from test_link_fuzz import malformed

    db = create_outbox(db_path)
    add_alert(db, 1)
    config = link_config(keys)
    garbage = malformed(11, 2000)
    ctx = zmq.Context()
    try:
        with ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None) as app:
            raw = ctx.socket(zmq.DEALER)
            raw.linger = 0
            raw.curve_publickey, raw.curve_secretkey = keys.laptop.public, keys.laptop.secret
            raw.curve_serverkey = keys.appliance.public
            raw.connect(f"tcp://127.0.0.1:{app.alerts_port}")
            for frames in garbage:
                raw.send_multipart(frames or [b""])
            assert wait_for(lambda: sum(app.protocol.rejects.counts.values()) >= len(garbage))
            assert app.protocol.peers == {} and outbox.count(db) == 1
            raw.close()
            rec = Recorder()
            with rec.viewer(_ports(config, app), keys):
                assert wait_for(lambda: len(rec.alerts) == 1)
        # The viewer side: a stand-in appliance (CURVE server with the appliance's key) sends garbage,
        # then one real alert; only the alert comes out.
        fake = ctx.socket(zmq.ROUTER)
        fake.linger = 0
        fake.setsockopt(zmq.ROUTER_MANDATORY, 1)  # block at the high-water mark instead of dropping
        fake.sndtimeo = 5000
        fake.curve_server = True
        fake.curve_publickey, fake.curve_secretkey = keys.appliance.public, keys.appliance.secret
        port = fake.bind_to_random_port("tcp://127.0.0.1")
        rec = Recorder()
        fake_config = dataclasses.replace(config, alerts_port=port, preview_port=free_port())
        with rec.viewer(fake_config, keys) as viewer:
            assert fake.poll(3000)
            peer = fake.recv_multipart()[0]
            for frames in garbage:
                fake.send_multipart([peer, *(frames or [b""])])
            alert = make_alert(7)
            fake.send_multipart([peer, *alert.encode()])
            assert wait_for(lambda: len(rec.alerts) == 1)
            assert sum(viewer.protocol.rejects.counts.values()) == len(garbage)
        assert rec.alerts == [alert]
    finally:
        ctx.destroy(linger=0)


def test_a_second_connection_with_the_same_key_gets_nothing_while_the_first_is_alive(
        keys: PairedKeys, db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 13, finding 6: a second connection with a paired key took the alert stream over and
    acknowledged alerts the operator never saw. Now it is refused (logged once) while the first is alive."""
    db = create_outbox(db_path)
    config = link_config(keys)
    first, second = Recorder(), Recorder()
    with ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None) as app, \
            first.viewer(_ports(config, app), keys):
        assert wait_for(lambda: app.is_link_up)
        with second.viewer(_ports(config, app), keys):
            time.sleep(1.0)  # the copy's heartbeats arrive
            made = [add_alert(db, s) for s in range(1, 6)]
            app.notify()
            assert wait_for(lambda: len(first.alerts) == 5)
            time.sleep(0.5)
            assert second.alerts == [] and not any(up for up, _ in second.links)
        assert [a.with_prev(None) for a in first.alerts] == made
    refusals = [r for r in caplog.records if "second viewer connection" in r.getMessage()]
    assert len(refusals) == 1


def test_an_alert_the_van_could_not_write_is_sent_from_memory(keys: PairedKeys, db_path: Path) -> None:
    """Issue 13, finding 4: an alert the disk refused reaches the viewer in seq order after the stored ones,
    marked not persisted, and leaves the appliance's memory when acknowledged."""
    db = create_outbox(db_path)
    stored = [add_alert(db, s) for s in (1, 2)]
    rec = Recorder()
    config = link_config(keys)
    with ApplianceLink(config, outbox.opener(db_path), when_decision=lambda d: None) as app, \
            rec.viewer(_ports(config, app), keys):
        unrecorded = dataclasses.replace(make_alert(3), persisted=False)
        assert app.keep_unrecorded(unrecorded)
        assert wait_for(lambda: len(rec.alerts) == 3)
        assert wait_for(lambda: app.unrecorded_count == 0 and outbox.count(db) == 0)
        assert app.can_take_alerts()
    assert [a.alert_id for a in rec.alerts] == [*(a.alert_id for a in stored), unrecorded.alert_id]
    assert [a.persisted is not False for a in rec.alerts] == [True, True, False]
