from __future__ import annotations

import cv2
import numpy as np
from conftest import read_frames as frames

from livecam.engine.faces import Box
from livecam.engine.matching import Match
from livecam.identity import STRANGER, UNDECIDED, Identity
from livecam.live.detection import Detector
from livecam.live.tracking import Tracker, VotingRule, decide, iou

RULE = VotingRule(window=5, agree=2, instant_distance=0.42, unknown_after=2)


def m(name, distance, nearest=None):
    return Match(name, distance, 0.2, nearest or name)


def test_first_close_encoding_names_at_once():
    assert decide([m("Ada", 0.35)], m("Ada", 0.35), RULE) == (Identity.of("Ada"), 0.35)


def test_one_borderline_encoding_is_not_enough():
    assert decide([m("Ada", 0.47)], m("Ada", 0.47), RULE) == (UNDECIDED, None)
    assert decide([m("Ada", 0.47), m("Ada", 0.45)], m("Ada", 0.44), RULE) == (Identity.of("Ada"), 0.44)


def test_pooled_match_must_accept_the_person():
    # two frames lean to Ada, but the mean embedding is beyond the threshold: unknown
    votes = [m(None, 0.55, "Ada"), m(None, 0.52, "Ada")]
    assert decide(votes, m(None, 0.53, "Ada"), RULE) == (STRANGER, 0.53)


def test_agreement_on_the_nearest_person_is_required():
    votes = [m("Ada", 0.45), m(None, 0.6, "Bob")]
    assert decide(votes, m("Ada", 0.48), RULE) == (UNDECIDED, None)


def test_unknown_needs_several_encodings():
    assert decide([m(None, 0.7, "Bob")], m(None, 0.7, "Bob"), RULE) == (UNDECIDED, None)
    assert decide([m(None, 0.7, "Bob")] * 2, m(None, 0.7, "Bob"), RULE)[0] == STRANGER


def test_iou():
    a = Box(0, 10, 10, 0)
    assert iou(a, a) == 1.0
    assert iou(a, Box(0, 20, 10, 10)) == 0.0
    assert abs(iou(a, Box(0, 15, 10, 5)) - 1 / 3) < 1e-9


def test_tracker_follows_a_talking_head_with_one_id(engine, big_data):
    clip = big_data / "videos" / "hdtf_WDA_KatieHill_000.mp4"
    detector = Detector(engine, min_face_px=100)
    tracker = Tracker()
    ids, errors = set(), []
    for i, image in enumerate(frames(clip, 90)):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        tracker.follow(gray)
        if i % 6 == 0:
            detections = detector(gray)
            assert len(detections) == 1, i
            if tracker.tracks:  # where flow put the box vs where the detector finds the face
                errors.append(iou(tracker.tracks[0].box, detections[0]))
            tracker.update(detections, gray, i)
        ids |= {t.id for t in tracker.tracks}
    assert ids == {1}
    assert min(errors) > 0.5 and np.mean(errors) > 0.7


def test_a_track_ends_when_a_detection_round_misses_it(engine, big_data):
    image = frames(big_data / "videos" / "hdtf_WDA_KatieHill_000.mp4", 1)[0]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    tracker = Tracker()
    born, ended = tracker.update(Detector(engine, 100)(gray), gray, 0)
    assert len(born) == 1 and ended == [] and tracker.tracks == born
    born, ended = tracker.update([], gray, 4)  # a gap: the face may be someone else when it is found again
    assert born == [] and [t.id for t in ended] == [1] and tracker.tracks == []


def test_detector_scale_follows_min_face_px(engine, big_data):
    image = frames(big_data / "videos" / "hdtf_WDA_KatieHill_000.mp4", 1)[0]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    full = Detector(engine, 80)
    half = Detector(engine, 160)
    assert full.scale == 1.0 and half.scale == 0.5
    a, b = full(gray)[0], half(gray)[0]
    assert iou(a, b) > 0.6  # boxes come back in source pixels


def test_flow_that_jumps_further_than_a_face_moves_ends_the_track():
    """A face swapped for a lookalike can drag flow half a face away in one frame (seen on a handover)."""
    from livecam.live.tracking import Track

    old = np.array([[[100 + x, 100 + y]] for x in (10, 30, 50) for y in (10, 30, 50)], np.float32)
    status = np.ones((len(old), 1), np.uint8)
    walking = Track(1, Box(100, 180, 180, 100), 0, 0)
    Tracker._move(walking, old, old + np.float32([8, 2]), status, 480, 640)  # 10 % of the width: walking
    assert walking.box == Box(102, 188, 182, 108)
    jumped = Track(2, Box(100, 180, 180, 100), 0, 0)
    Tracker._move(jumped, old, old + np.float32([30, 0]), status, 480, 640)  # 37 %: not a face moving
    assert jumped.box.area == 0 and jumped.points is None  # follow() ends a track with no box


def _walking(tracker: Tracker, box: Box, dx: int, frames: range) -> None:
    """A track on `box` at frames[0] that moves `dx` px a frame, as flow would have carried it."""
    from livecam.live.tracking import Track

    track = Track(len(tracker.tracks) + 1, box, frames[0], frames[0])
    for i in frames:
        moved = Box(box.top, box.right + dx * (i - frames[0]), box.bottom, box.left + dx * (i - frames[0]))
        track.box = moved
        track.history.append((i, moved))
    tracker.tracks.append(track)


def test_a_late_detection_is_compared_with_where_the_tracks_were_when_it_was_found():
    """Live on a small board a detection round ends frames after the frame it looked at. Two people
    cross: A walks right, B walks left. Put where A *was*, A's box (and name) would lag onto B."""
    gray = np.random.default_rng(0).integers(0, 255, (480, 640), np.uint8)
    tracker = Tracker()
    _walking(tracker, Box(200, 240, 340, 100), +10, range(100, 109))  # A: left 100 at frame 100 -> 180 at 108
    _walking(tracker, Box(200, 540, 340, 400), -10, range(100, 109))  # B: left 400 -> 320
    a, b = tracker.tracks
    # the round looked at frame 102: A at left 120, B at left 380 (as the detector found them, a little off)
    found = [Box(202, 262, 342, 122), Box(198, 518, 338, 378)]
    born, ended = tracker.update(found, gray, 108, found_on=102)
    assert born == [] and ended == [] and tracker.tracks == [a, b]
    assert a.box == Box(202, 322, 342, 182) and b.box == Box(198, 458, 338, 318)  # moved on by 6 frames' walk
    assert a.last_detected == 108


def test_a_late_detection_does_not_end_a_track_begun_after_it():
    gray = np.random.default_rng(0).integers(0, 255, (480, 640), np.uint8)
    tracker = Tracker()
    _walking(tracker, Box(200, 240, 340, 100), 0, range(105, 109))  # born on frame 105
    born, ended = tracker.update([], gray, 108, found_on=102)
    assert born == [] and ended == [] and len(tracker.tracks) == 1
    born, ended = tracker.update([], gray, 110, found_on=106)  # a round that looked after it began, and missed it
    assert ended and tracker.tracks == []


def test_a_box_mostly_out_of_the_frame_ends_its_track():
    """A face leaving by the edge: once most of its box is outside, nothing shows to check that it is still
    that face (content_patch gives up), so the track and its name end rather than linger on the edge."""
    from livecam.live.tracking import Track

    gray = np.random.default_rng(1).integers(0, 255, (480, 640), np.uint8)
    tracker = Tracker()
    tracker.follow(gray, 0)
    leaving = Track(1, Box(100, 700, 220, 580), 0, 0)  # 60 of its 120 px inside: stays
    gone = Track(2, Box(300, 740, 420, 620), 0, 0)  # 20 of 120 px inside: ends
    tracker.tracks = [leaving, gone]
    ended = tracker.follow(gray, 1)
    assert ended == [gone] and tracker.tracks == [leaving]
