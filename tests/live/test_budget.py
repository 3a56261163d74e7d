"""The CPU budget's policy (budget.py) with scripted costs, clocks and quotas: no video, no dlib."""

from __future__ import annotations

import pytest
from conftest import Clock

from livecam.cpu import CpuShare
from livecam.live.budget import (
    BURST,
    FIRST_LOOKS_PER_SECOND,
    MAX_FACE_PX_FACTOR,
    MIN_DETECT_HZ,
    REPLAN_SECONDS,
    REREAD_BUDGET_SECONDS,
    RESERVE,
    Costs,
    EncodeAllowance,
    Governor,
    plan,
)

# what this machine measured live at 640x480 (MobileFaceNet): CPU ms a frame, a round at 100 px, an encoding
MEASURED = Costs(frame_ms=2.6, detect_ms=12.9, encode_ms=13.0, detect_face_px=100)


def test_a_whole_core_keeps_the_config_and_has_plenty_to_spare():
    p = plan(1.0, 30, MEASURED, detect_every=4, min_face_px=100)
    assert (p.fps, p.detect_every, p.min_face_px, p.fits) == (30, 4, 100, True)
    assert p.first_looks == FIRST_LOOKS_PER_SECOND and p.spare_looks > 20


def test_a_quarter_core_detects_less_often_before_it_shrinks_the_detection_copy():
    p = plan(0.25, 30, MEASURED, detect_every=4, min_face_px=100)
    assert p.fits and p.fps == 30 and p.min_face_px == 100
    assert p.detect_every > 4 and 30 / p.detect_every >= MIN_DETECT_HZ
    assert p.first_looks == FIRST_LOOKS_PER_SECOND  # new faces keep theirs
    spent = 30 * MEASURED.frame_ms + 30 / p.detect_every * MEASURED.detect_ms
    spent += (p.first_looks + p.spare_looks) * MEASURED.encode_ms
    assert spent <= 0.25 * 1000 + 1e-6


def test_when_the_fewest_rounds_do_not_fit_the_copy_shrinks_but_no_more_than_twice_the_face_size():
    heavy = Costs(frame_ms=2.6, detect_ms=40.0, encode_ms=13.0, detect_face_px=100)
    p = plan(0.25, 30, heavy, detect_every=4, min_face_px=100)
    assert p.fits and p.min_face_px > 100 and p.min_face_px <= 100 * MAX_FACE_PX_FACTOR
    assert 30 / p.detect_every >= MIN_DETECT_HZ
    assert heavy.detect_at(p.min_face_px) * 30 / p.detect_every <= 0.25 * 1000


def test_a_budget_too_small_for_every_frame_shows_fewer_frames_and_says_so():
    p = plan(0.08, 30, MEASURED, detect_every=4, min_face_px=100)
    assert not p.fits and p.fps < 30
    assert "does not fit" in p.describe()


@pytest.mark.parametrize("fps", [15, 30])
def test_less_budget_never_means_more_work(fps):
    plans = [plan(c / 100, fps, MEASURED, 4, 100) for c in range(200, 5, -5)]
    for more, less in zip(plans, plans[1:], strict=False):
        assert less.fps <= more.fps
        assert less.first_looks + less.spare_looks <= more.first_looks + more.spare_looks + 1e-9
        assert less.min_face_px >= more.min_face_px or less.fps < more.fps


def test_detection_cost_follows_the_pixels_of_the_copy():
    assert MEASURED.detect_at(100) == MEASURED.detect_ms
    assert MEASURED.detect_at(200) == pytest.approx(MEASURED.detect_ms / 4)
    assert MEASURED.detect_at(40) == MEASURED.detect_at(80)  # HOG never upsamples: 80 px is the full frame


def test_first_looks_go_before_re_checks_and_into_debt_only_so_far():
    clock = Clock()
    a = EncodeAllowance(2.0, clock, saved=0.0)
    assert not a.spare()  # nothing saved: no re-check
    assert all(a.first_look() for _ in range(int(BURST)))  # a group arrives: every first look goes
    assert not a.first_look()  # a crowd: the rest wait for the next frames
    clock.now = 10.0  # refilled, up to BURST
    spares = 0
    while a.spare():
        spares += 1
    assert spares == BURST - RESERVE  # re-checks stop with RESERVE first looks in hand
    assert a.first_look()


def _share(cpus):
    return lambda: CpuShare(cpus[0], 2, cpus[0] if cpus[0] < 2 else None)


def test_the_governor_measures_costs_from_cpu_time_and_plans_from_them():
    clock, cpu = Clock(), Clock()
    g = Governor(30.0, 4, 100, share=_share([0.25]), clock=clock, cpu_clock=cpu)
    guess = g.costs
    for i in range(int(30 * REPLAN_SECONDS) + 1):  # a window of frames: 3 ms each, a round every 5th at 13 ms
        clock.now += 1 / 30
        cpu.now += 0.003
        if i % 5 == 0:
            cpu.now += 0.013
            g.detected(13.0, 100)
        g.encoded(1, 14.0) if i % 15 == 0 else None
        new = g.frame(dropped=0)
    assert new is not None
    assert g.costs.frame_ms == pytest.approx((3.0 + 3.0) / 2, abs=0.2)  # eased halfway from the first guess
    assert g.costs.detect_ms == pytest.approx((guess.detect_ms + 13.0) / 2)
    assert g.costs.encode_ms == pytest.approx((guess.encode_ms + 14.0) / 2)
    assert g.plan.cores == 0.25 and g.plan.detect_every >= 4


def test_the_governor_reads_the_budget_again_and_notices_dropped_frames():
    clock, cpu, cpus = Clock(), Clock(), [2.0]
    g = Governor(30.0, 4, 100, share=_share(cpus), clock=clock, cpu_clock=cpu)
    assert g.plan.cores == 2.0
    cpus[0] = 0.25  # a quota is set while it runs (another service, a board that throttles)
    dropped = 0
    while clock.now < REREAD_BUDGET_SECONDS + REPLAN_SECONDS:
        clock.now += 1 / 30
        cpu.now += 0.002
        g.frame(dropped)
    assert g.budget.cpus == 0.25 and g.plan.cores == 0.25
    assert g.pressure == 1.0
    for _ in range(int(3 * REPLAN_SECONDS * 30)):  # frames dropped although the plan fit: less than it says
        clock.now += 1 / 30
        dropped += 1
        g.frame(dropped)
    assert g.pressure < 1.0 and g.plan.cores < 0.25
    assert g.allowance.per_second == g.plan.first_looks + g.plan.spare_looks


def test_costs_at_another_detection_size_are_counted_as_at_the_configured_one():
    clock, cpu = Clock(), Clock()
    g = Governor(30.0, 4, 100, share=_share([0.25]), clock=clock, cpu_clock=cpu)
    guess = g.costs
    g.detected(20.0 / 4, 200)  # a round on the quarter-size copy (min face 200 px)
    clock.now = REPLAN_SECONDS
    g.frame()
    assert g.costs.detect_ms == pytest.approx((guess.detect_ms + 20.0) / 2)


def test_a_board_with_several_slow_cores_is_planned_as_one_detector_thread_and_one_encoder():
    """A Raspberry Pi 3B+ (4 cores) with dlib's published costs: a HOG round ~250 ms, a face ~248 ms. Four cores
    are not four detectors: one thread detects, one process encodes."""
    pi = Costs(frame_ms=15.0, detect_ms=250.0, encode_ms=248.0, detect_face_px=100)
    p = plan(4.0, 30, pi, detect_every=4, min_face_px=100)
    rounds = p.fps / p.detect_every
    assert rounds * pi.detect_at(p.min_face_px) <= 1000  # one thread's worth
    assert (p.first_looks + p.spare_looks) * pi.encode_ms <= 1000 + 1e-6  # one process's worth
    assert rounds >= MIN_DETECT_HZ  # found often enough
    one = plan(1.0, 30, pi, detect_every=4, min_face_px=100)  # one core of it: the copy shrinks, fewer frames
    assert one.min_face_px == 200 and not one.fits and one.fps < 30


def test_under_one_core_one_heavy_job_at_a_time_and_one_face_at_a_time():
    clock, cpu = Clock(), Clock()
    small = Governor(30.0, 4, 100, share=_share([0.25]), clock=clock, cpu_clock=cpu)
    assert small.encode_limit() == 1  # a pair of faces is two requests, not one 27 ms burst
    small.detecting = True
    assert small.encode_limit() == 0  # the encoder waits for the round: together they would hit the quota
    big = Governor(30.0, 4, 100, share=_share([2.0]), clock=clock, cpu_clock=cpu)
    big.detecting = True
    assert big.encode_limit() is None  # a core or more: side by side, as configured
