"""MQTT: door events, who is at the door, and Home Assistant discovery (paho-mqtt).

The topics are a contract other tools read (README, "MQTT and Home Assistant");
<p> is `mqtt.topic_prefix`, <cam> the camera's name:

    <p>/<cam>/available          online | offline (retained; offline is also the last will)
    <p>/<cam>/event              each door event as JSON, QoS 1, not retained, in order
    <p>/<cam>/person             the name last recognized, or none (retained)
    <p>/<cam>/person/attributes  distance, time, liveness, track of that event (retained JSON)
    <p>/<cam>/snapshot           the JPEG of the last event's face (retained; emptied when there is none)
    <p>/<cam>/present/<person>   ON while that enrolled person is at the door, else OFF (retained)

and Home Assistant's discovery configs under `mqtt.discovery_prefix`. What goes on those topics, and when, is
topics.py's; this module owns the connection.

The frame loop never waits for the network or the disk: `handle()` hands the
event to the outbox (outbox.py) in memory and wakes the sender thread, which
stores it in the outbox's file, publishes one event at a time and removes it
only when the broker has acknowledged it. paho's own thread connects,
reconnects with backoff, and re-sends an event that was in flight when the
connection dropped, so an event is sent once per connection loss at most, never
skipped.

MQTT 5, for one thing 3.1.1 lacks: the CONNECT's Maximum Packet Size, so the
broker drops a message too big for livecam instead of sending it (a retained
150 MB `homeassistant/status` was read into memory whole at every connect).

A face is biometric data: the snapshot topic holds only a face this run holds,
no older than the crops' retention (`door.unknown_keep_days`), a stranger's
only when strangers' crops are kept at all (`door.unknown_dir`), and is emptied
otherwise (at start, when the crop is purged, when it ages out).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterable, Sequence

from ..door import Event, EventHandler
from .outbox import Outbox, OutboxBusy
from .topics import MqttSettings, RetainedState, Topics, event_payload

log = logging.getLogger(__name__)

CLOSE_GRACE = 3.0  # seconds a clean exit gives waiting events and the "offline" message
RECONNECT_MIN, RECONNECT_MAX = 1, 30  # seconds between attempts to reach the broker (doubling)
# Everything livecam reads is small: "online" from Home Assistant, our own discovery configs (~1 KB).
# The broker drops a bigger message for livecam rather than send it (MQTT 5's Maximum Packet Size).
MAX_INCOMING_BYTES = 64 * 1024


class MqttError(ValueError):
    """MQTT settings that cannot work (a CA file that is not one...); str() is one line."""


class MqttPublisher(EventHandler):
    """An event handler that publishes the door to an MQTT broker (module docstring)."""

    def __init__(self, settings: MqttSettings, outbox: Outbox, people: Sequence[str] = ()) -> None:
        import paho.mqtt.client as paho

        self._paho = paho
        self.settings = settings
        self.outbox = outbox
        self.state = RetainedState(settings, people)
        self.topics = self.state.topics
        self._wake = threading.Event()
        self._acked = threading.Condition()
        self._acked_mids: set[int] = set()
        self._connected = threading.Event()
        self._closing = False
        self._given_up = threading.Event()  # close() waited its grace: the sender stops whatever is left
        self._ever_connected = False
        self._problem: str | None = None  # the last connection problem logged (each is logged once)
        self._store_problem: str | None = None  # the last outbox problem logged (idem)
        self._inflight: tuple[int, int] | None = None  # (outbox id, MQTT message id) awaiting its PUBACK

        client = _new_client(settings, settings.client_id)
        client.will_set(self.topics.available, "offline", qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        # an exception in one of our callbacks would end paho's thread, and with it every reconnect:
        # paho logs it (to our logger) and goes on
        client.suppress_exceptions = True
        paho_log = logging.getLogger("livecam.connect.mqtt.paho")
        paho_log.setLevel(logging.WARNING)  # its errors, one line each; not a line per packet under -v
        client.enable_logger(paho_log)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client
        self._where = f"{settings.host}:{settings.port}"
        if settings.snapshots and not (settings.tls and settings.username):
            log.warning(
                "mqtt: faces (mqtt.snapshots) go to the broker at %s %s: anyone who can %s sees them; set mqtt.tls"
                " and mqtt.username, or mqtt.snapshots: false",
                self._where,
                "without TLS or a user name" if not settings.tls and not settings.username
                else "without TLS" if not settings.tls else "without a user name",
                "read the network or subscribe" if not settings.tls else "subscribe",
            )  # fmt: skip
        _connect_async(client, settings)
        client.loop_start()  # paho's thread: connects, reconnects, reads and writes the socket
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._sender.start()

    # -- the frame loop's side: never blocks on the network or the disk -----------------------------

    @property
    def connected(self) -> bool:
        """Is the broker connection up now (the web page's live status)?"""
        return self._connected.is_set()

    def handle(self, event: Event) -> None:
        self.outbox.put(event_payload(event))
        self.state.record(event)
        self._wake.set()

    def presence(self, people: frozenset[str]) -> None:
        self.state.set_present(people)
        self._wake.set()

    def enrolled(self, people: Sequence[str]) -> None:
        self.state.set_people(people)
        self._wake.set()

    def close(self) -> None:
        """Publish the final state (presence OFF...), give waiting events and the "offline" message a
        moment; what is left stays in the outbox."""
        deadline = time.monotonic() + CLOSE_GRACE
        self._closing = True
        self._wake.set()
        self._sender.join(timeout=CLOSE_GRACE)
        self._given_up.set()
        if self._connected.is_set():
            info = self.client.publish(self.topics.available, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not connected any more: the will says it
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            self.client.disconnect()
        self._sender.join(timeout=1.0)
        self.client.loop_stop()
        self.outbox.close(wait=max(0.5, deadline - time.monotonic()))  # a file locked now: a last try
        left = len(self.outbox)
        if left:
            log.warning("mqtt: %d events not delivered yet; kept in %s for the next run", left, self.outbox.path)

    # -- paho's thread -----------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._log_problem(
                f"mqtt: the broker at {self._where} refused livecam ({reason_code}): check mqtt.username and"
                " mqtt.password_file"
                if reason_code.value in (4, 5, 134, 135)  # bad user name or password, not authorized
                else f"mqtt: the broker at {self._where} refused the connection ({reason_code})"
            )
            return
        if self._problem is not None or not self._ever_connected:
            log.info("mqtt: connected to %s as %s", self._where, self.settings.client_id)
        self._problem = None
        self._ever_connected = True
        client.subscribe([(self.topics.ha_status, 1), (self.topics.presence_configs, 1)])
        client.publish(self.topics.available, "online", qos=1, retain=True)
        self.state.connected()
        self._connected.set()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        why = getattr(client, "last_error", None)
        because = f" ({_one_line(why)})" if why is not None else ""
        self._log_problem(
            f"mqtt: cannot reach the broker at {self._where}{because}; retrying (events wait in {self.outbox.path})"
        )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._closing:  # a refused connection was logged as such already
            self._log_problem(f"mqtt: lost the broker at {self._where} ({reason_code}); reconnecting")
        with self._acked:
            self._acked.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._acked:
            self._acked_mids.add(mid)
            self._acked.notify_all()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.topics.ha_status:
            # Home Assistant (re)started and wants the configs again. A retained "online" is only what
            # the broker held when livecam subscribed: everything was published at that connect anyway.
            if message.payload == b"online" and not message.retain:
                self.state.ask_republish()
                self._wake.set()
            return
        # a retained presence config of ours: is its person still enrolled?
        if message.payload:
            self.state.config_seen(message.topic)
            self._wake.set()

    def _log_problem(self, text: str) -> None:
        if text != self._problem:
            self._problem = text
            log.log(logging.ERROR if "refused" in text else logging.WARNING, "%s", text)

    # -- the sender thread -------------------------------------------------------------------------
    def _send_loop(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            busy = False
            try:
                self.state.due()
                busy = not self._store()
                if self._connected.is_set():
                    self._publish_state()
                    if not busy:
                        self._drain()
            except OutboxBusy:
                busy = True
            except Exception as exc:  # noqa: BLE001 - the sender must outlive one bad moment
                log.error("mqtt: sending failed (%s); trying again", _one_line(exc))
                time.sleep(1.0)
            if self._closing and self._done(busy):
                return

    def _done(self, busy: bool) -> bool:
        """Closing: the final state is out, and every event too (or cannot be: no broker, a locked file)."""
        if self._given_up.is_set():
            return True
        if not self._connected.is_set():
            # still connecting (a run of a few frames), the grace allows it: wait for the broker; refused,
            # unreachable or lost: the outbox keeps the events, the last will says "offline"
            return self._problem is not None
        if self.state.pending:
            return False  # published on the next turn: the run's end (presence OFF) must reach the broker
        return busy or self._inflight is None and not len(self.outbox)

    def _store(self) -> bool:
        """Events handed over by the frame loop into the outbox's file; False while another process holds
        it locked (they wait in memory: one warning when that starts, a line when it ends)."""
        try:
            self.outbox.flush()
        except OutboxBusy as exc:
            problem = f"is locked by another process ({exc})"
        except (sqlite3.Error, OSError) as exc:  # a full disk...: said once, not once a turn
            problem = f"cannot be written ({_one_line(exc)})"
        else:
            problem = None
        if problem is not None:
            self._log_store_problem(
                f"mqtt: the outbox {self.outbox.path} {problem}; events wait in memory and go out in order once it"
                " can be used"
            )
            return False
        if self._store_problem is not None:
            log.info("mqtt: the outbox %s can be used again; %d events wait", self.outbox.path, len(self.outbox))
            self._store_problem = None
        return True

    def _log_store_problem(self, text: str) -> None:
        if text != self._store_problem:
            self._store_problem = text
            log.warning("%s", text)

    def _publish_state(self) -> None:
        for topic, payload in self.state.messages():
            self.client.publish(topic, payload, qos=1, retain=True)

    def _drain(self) -> None:
        """Events from the outbox, oldest first, one at a time, each removed once acknowledged."""
        while self._connected.is_set():
            if self._inflight is None:
                message = self.outbox.first()
                if message is None:
                    return
                with self._acked:  # message ids wrap around at 65535: no old one may pass for this one's
                    self._acked_mids.clear()
                info = self.client.publish(self.topics.event, message.payload, qos=1, retain=False)
                if info.rc == self._paho.MQTT_ERR_QUEUE_SIZE:
                    return
                self._inflight = (message.id, info.mid)
            row, mid = self._inflight
            with self._acked:
                self._acked.wait_for(
                    lambda mid=mid: mid in self._acked_mids or not self._connected.is_set(), timeout=1.0
                )
                acked = mid in self._acked_mids
                self._acked_mids.discard(mid)
            if not acked:
                return  # paho sends it again after reconnecting; we wait for that acknowledgement
            self._inflight = None
            self.outbox.remove(row)  # deleted now, or once another process's lock is gone: never sent again


def probe(settings: MqttSettings, timeout: float = 5.0) -> tuple[bool, str]:
    """Connect once, as a run would (credentials, TLS), and say how it went in one line (`livecam check`)."""
    where = f"{settings.host}:{settings.port}"
    with _connected_once(settings, f"{settings.client_id}-check", timeout) as (client, problem):
        if client is None:
            return False, problem
    user = f" as {settings.username}" if settings.username else ""
    return True, f"connected to {where}{user}{' with TLS' if settings.tls else ''}"


def clear_snapshots(settings: MqttSettings, cameras: Iterable[str], timeout: float = 5.0) -> tuple[bool, str]:
    """Empty the retained snapshot of each camera (`livecam unknown purge`): one line saying how it went."""
    cameras = sorted(set(cameras))
    if not cameras:
        return True, "no camera named in the config or the audit log: no snapshot to clear"
    with _connected_once(settings, f"{settings.client_id}-purge", timeout) as (client, problem):
        if client is None:
            return False, f"retained snapshots not cleared: {problem}"
        sent = [
            client.publish(Topics(dataclasses.replace(settings, camera=c)).snapshot, b"", qos=1, retain=True)
            for c in cameras
        ]
        deadline = time.monotonic() + timeout
        for info in sent:
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
        where = f"{settings.host}:{settings.port}"
        if not all(info.is_published() for info in sent):
            return False, f"retained snapshots not cleared: the broker at {where} did not answer"
    return True, f"retained snapshots cleared on {where} for {', '.join(cameras)}"


@contextlib.contextmanager
def _connected_once(settings: MqttSettings, client_id: str, timeout: float):
    """(client, "") connected as a run would (credentials, TLS), or (None, the problem in one line)."""
    result: dict[str, str] = {}
    done = threading.Event()
    where = f"{settings.host}:{settings.port}"
    try:
        client = _new_client(settings, client_id)
    except MqttError as exc:
        yield None, str(exc)
        return

    def on_connect(c, userdata, flags, reason_code, properties):
        result["rc"] = "" if not reason_code.is_failure else str(reason_code)
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, keepalive=10, clean_start=True, properties=_connect_properties())
    except (OSError, ssl.SSLError, ValueError) as exc:
        yield None, f"cannot reach the broker at {where} ({_one_line(exc)})"
        return
    client.loop_start()
    try:
        if not done.wait(timeout):
            yield None, f"the broker at {where} did not answer within {timeout:.0f} s"
        elif result["rc"]:
            yield None, f"the broker at {where} refused livecam ({result['rc']})"
        else:
            yield client, ""
    finally:
        client.disconnect()
        client.loop_stop()


def _connect_properties():
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.MaximumPacketSize = MAX_INCOMING_BYTES
    return props


def _connect_async(client, settings: MqttSettings) -> None:
    client.connect_async(
        settings.host, settings.port, settings.keepalive, clean_start=True, properties=_connect_properties()
    )


def _new_client(settings: MqttSettings, client_id: str):
    """A paho client with the settings' credentials and TLS; MqttError (one line) if TLS files cannot be loaded."""
    import paho.mqtt.client as paho

    client = _client_class(paho)(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        try:
            client.tls_set(
                ca_certs=str(settings.tls_ca) if settings.tls_ca else None,
                certfile=str(settings.tls_cert) if settings.tls_cert else None,
                keyfile=str(settings.tls_key) if settings.tls_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise MqttError(f"mqtt.tls: cannot load the CA, certificate or key ({_one_line(exc)})") from None
    return client


def _client_class(paho):
    """paho's Client, remembering why the last connection attempt failed (paho swallows it; a user
    needs "certificate verify failed" or "connection refused", not only "cannot reach")."""

    class Client(paho.Client):
        last_error: BaseException | None = None

        def _create_socket(self):  # paho-mqtt 2.1 (pinned): where connecting, TLS included, happens
            try:
                return super()._create_socket()
            except OSError as exc:
                self.last_error = exc
                raise

    return Client


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
