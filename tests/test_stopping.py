from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from livecam.stopping import StopRequest


def _wait_for(condition, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_signal_sets_the_flag_instead_of_raising_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest(force_exit_seconds=0) as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert _wait_for(lambda: stop.requested)
        assert stop.exit_code == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_gives_130_and_a_second_one_forces_keyboard_interrupt():
    with StopRequest(force_exit_seconds=0) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert _wait_for(lambda: stop.requested)
        assert stop.exit_code == 130
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)


def test_a_stuck_shutdown_is_cut_off_at_the_deadline():
    code = textwrap.dedent(
        """
        import os, signal, time
        from livecam.stopping import StopRequest
        with StopRequest(force_exit_seconds=1) as stop:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)  # a cleanup that never ends
        """
    )
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 130
    assert time.monotonic() - start < 10
    assert "shutdown did not finish" in proc.stderr


def test_a_finished_shutdown_disarms_the_deadline():
    code = textwrap.dedent(
        """
        import os, signal, time
        from livecam.stopping import StopRequest
        with StopRequest(force_exit_seconds=0.5) as stop:
            stop.request(signal.SIGTERM)
        time.sleep(1.5)  # past the deadline: still alive, because cleanup had finished
        print("alive")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0 and proc.stdout.strip() == "alive", proc.stderr
