"""Door actions survive whatever a server or a command does (issue 10)."""

from __future__ import annotations

import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from livecam.door.actions import Action, ActionRunner
from livecam.door.events import Event
from livecam.redact import redact_url


def _event(n: int = 1, kind: str = "unknown") -> Event:
    return Event(kind, f"2026-11-27T10:00:0{n}", "cam", n, None if kind == "unknown" else "Ada", 0.3, 0.2)


class RawServer:
    """A TCP server that answers every connection with `reply(conn)`; counts connections."""

    def __init__(self, reply) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.reply = reply
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn) -> None:
        try:
            conn.recv(65536)
            self.reply(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def _counting_command(path) -> tuple[str, ...]:
    return ("sh", "-c", f"echo $LIVECAM_EVENT >> {path}")


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\r\n\r\n",  # BadStatusLine
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",  # > 100 headers
        b"",  # the connection closes with no answer
    ],
    ids=["garbage", "too-many-headers", "no-answer"],
)
def test_a_bad_webhook_reply_never_stops_the_following_actions(tmp_path, caplog, reply):
    server = RawServer(lambda conn: conn.sendall(reply))
    ran = tmp_path / "ran.txt"
    action = Action(_counting_command(ran), f"http://127.0.0.1:{server.port}/hook")
    runner = ActionRunner({"unknown": action}, timeout=1.0, retries=0, capacity=8)
    with caplog.at_level("WARNING", logger="livecam.door.actions"):
        for n in range(5):
            runner.submit(_event(n))
        runner.close(grace=10)
    server.close()
    assert ran.read_text().split() == ["unknown"] * 5  # the command ran for every event
    assert runner.done == 5 and runner.failed == 5 and runner.restarts == 0
    assert caplog.text.count("failed after 1 attempts") == 5


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_is_restarted_by_the_next_submission(tmp_path, caplog, monkeypatch):
    ran = tmp_path / "ran.txt"
    runner = ActionRunner({"unknown": Action(_counting_command(ran))}, capacity=8)
    real = runner._perform
    calls = []

    def perform_once_fatally(action, event):
        calls.append(event.track)
        if len(calls) == 1:
            raise SystemExit  # not an Exception: the worker thread ends
        real(action, event)

    monkeypatch.setattr(runner, "_perform", perform_once_fatally)
    runner.submit(_event(1))
    runner._thread.join(timeout=5)
    assert not runner._thread.is_alive()
    with caplog.at_level("ERROR", logger="livecam.door.actions"):
        runner.submit(_event(2))
        runner.submit(_event(3))
        runner.close(grace=10)
    assert runner.restarts == 1 and "actions worker died" in caplog.text
    assert ran.read_text().split() == ["unknown"] * 2


def test_a_command_that_cannot_start_is_one_failure(caplog):
    runner = ActionRunner({"unknown": Action(("/nonexistent/open-door",))}, capacity=4)
    with caplog.at_level("WARNING", logger="livecam.door.actions"):
        runner.submit(_event(1))
        runner.submit(_event(2))
        runner.close(grace=10)
    assert runner.done == 2 and runner.failed == 2 and caplog.text.count("cannot start") == 2


def test_a_redirect_is_a_failure_and_is_not_followed(caplog):
    other = RawServer(lambda conn: conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n"))
    redirect = f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{other.port}/elsewhere\r\nContent-Length: 0\r\n\r\n"
    server = RawServer(lambda conn: conn.sendall(redirect.encode()))
    runner = ActionRunner({"recognized": Action((), f"http://127.0.0.1:{server.port}/hook")}, retries=0)
    with caplog.at_level("WARNING", logger="livecam.door.actions"):
        runner.submit(_event(1, "recognized"))
        runner.close(grace=10)
    server.close()
    other.close()
    assert runner.failed == 1 and "HTTP 302" in caplog.text
    assert other.connections == 0


def test_one_deadline_covers_a_whole_webhook_attempt():
    def drip(conn):
        for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 200:
            conn.sendall(bytes([byte]))
            time.sleep(0.05)  # each read gets a byte well within any per-read timeout

    server = RawServer(drip)
    runner = ActionRunner({"recognized": Action((), f"http://127.0.0.1:{server.port}/hook")}, timeout=1.0, retries=0)
    start = time.monotonic()
    runner.submit(_event(1, "recognized"))
    runner.close(grace=20)
    spent = time.monotonic() - start
    server.close()
    assert runner.failed == 1
    assert spent < 2.5  # one 1 s attempt (the drip alone lasts 11 s)


def test_webhook_credentials_never_reach_the_log(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    url = f"http://door:s3cret-pass@127.0.0.1:{port}/api/webhook/s3cret-id?token=s3cret-token"
    runner = ActionRunner({"recognized": Action((), url)}, timeout=0.5, retries=1)
    with caplog.at_level("DEBUG"):
        runner.submit(_event(1, "recognized"))
        runner.close(grace=10)
    assert runner.failed == 1 and f"127.0.0.1:{port}" in caplog.text
    assert "s3cret" not in caplog.text


def test_redact_url():
    assert redact_url("rtsp://admin:pw@10.0.0.5:554/stream1") == "rtsp://***@10.0.0.5:554/stream1"
    assert redact_url("http://ha:8123/api/webhook/abc?x=1", hide_path=True) == "http://ha:8123/***?***"
    assert redact_url("0") == "0" and redact_url("clips/door.mp4") == "clips/door.mp4"
    assert "pw" not in redact_url("http://u:pw@[::1")  # malformed: nothing of it shown


class Hang(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        time.sleep(5)

    def log_message(self, *args):
        pass


def test_shutdown_is_bounded_and_names_what_was_not_delivered(caplog):
    server = HTTPServer(("127.0.0.1", 0), Hang)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runner = ActionRunner(
        {"recognized": Action((), f"http://127.0.0.1:{server.server_port}/hook")}, timeout=3.0, retries=2, capacity=8
    )
    for n in range(3):
        runner.submit(_event(n, "recognized"))
    with caplog.at_level("WARNING", logger="livecam.door.actions"):
        start = time.monotonic()
        runner.close(grace=1.0)
        spent = time.monotonic() - start
    server.shutdown()
    assert spent < 2.0
    assert runner.undelivered == 3, caplog.text
    assert caplog.text.count("not delivered") == 3 and "at 2026-11-27T10:00:02" in caplog.text


def test_a_command_leaving_a_background_child_does_not_block_the_queue(tmp_path):
    ran = tmp_path / "ran.txt"
    argv = ("sh", "-c", f"sleep 30 & echo $! >> {tmp_path / 'children'}; echo x >> {ran}")
    runner = ActionRunner({"unknown": Action(argv)}, capacity=8)
    start = time.monotonic()
    for n in range(3):
        runner.submit(_event(n))
    runner.close(grace=20)
    spent = time.monotonic() - start
    for pid in (tmp_path / "children").read_text().split():
        os.kill(int(pid), 9)
    assert ran.read_text().split() == ["x"] * 3 and spent < 3


def test_a_command_past_its_timeout_is_killed_with_its_children(tmp_path):
    argv = ("sh", "-c", f"echo $$ > {tmp_path / 'group'}; sleep 30 & sleep 30")
    runner = ActionRunner({"unknown": Action(argv)}, command_timeout=0.5)
    start = time.monotonic()
    runner.submit(_event(1))
    runner.close(grace=20)
    assert time.monotonic() - start < 3 and runner.failed == 1
    group = int((tmp_path / "group").read_text())
    time.sleep(0.2)
    assert _running_in_group(group) == []  # the whole session is gone, the background sleep too


def _running_in_group(group: int) -> list[int]:
    """Processes of a process group that are still running (zombies left to an init that does not reap are not)."""
    running = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                running.append(int(entry))
    return running
