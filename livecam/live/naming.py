"""The naming policy: when a track's face is looked at (encoded), when a new encoding breaks the track's claim, how
it moves the track's name, and why a face shows no name. Decisions only: a track, a match and the matcher in, a
decision out; no frames, no encoder, no clock (the Recognizer does the bookkeeping around it).

A track's name is a claim about the face in its box now (tracking.py ends the track on any sign that the face
changed). Each new encoding is also a check of the claim: one that is not within the threshold of the track's
name, that matches someone on a track shown as unknown, or that is far from the track's own earlier encodings
breaks it, and the Recognizer starts a new track, with no name, votes or blink, from that encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import Match, Matcher, face_distance
from ..identity import UNDECIDED, Identity
from .tracking import Track, VotingRule, decide

REGROWTH = 1.5  # re-encode a decided track when its face area grows this much
UNKNOWN_RECHECK = 8  # detection rounds between looks at a face shown as unknown...
UNKNOWN_EAGER_RECHECK = 2  # ...and while its "unknown" event still waits, if it is near someone
# (spec.unknown_eager_within: in dlib's space a known face seen badly at first is ~0.45-0.6 from its
# gallery). The model's spec also says when an encoding is another face (spec.same_face_distance:
# dlib's two encodings of one face a moment apart are ~0.2-0.35 apart, two people ~0.6 and more) and
# how far past the threshold a face stays undecided rather than "unknown" (spec.unknown_gap).
FIRST_LOOK = "first look"  # an encoding that decides a name or answers a doubt (budget.py: spent first)
RECHECK = "re-check"  # one that questions a settled name or looks again at a stranger (from what is left)


class Reason:
    """Why a face shows no name (the overlay's debug mode and `-v` logging)."""

    LOOKING = "not encoded yet"
    CHECKING = "checking"  # what is in the box changed somewhat: the name waits for an encoding to confirm it
    TOO_FAR = "too far"  # the pooled distance to the nearest person is over the threshold
    MARGIN = "margin"  # within the threshold, but a second person is nearly as close
    VOTES = "waiting for votes"  # accepted, but not yet by enough of the recent encodings
    BLINK = "blink to enter"


@dataclass(frozen=True)
class NamingPolicy:
    """The rules, with the numbers they need: the loop's (in frames) and the model's (in its distances)."""

    voting: VotingRule
    detect_every: int  # frames between detection rounds
    recheck_frames: int  # a settled name is questioned this often
    unknown_wait_frames: float  # while a stranger's "unknown" event waits, a face near someone is looked at more
    unknown_gap: float  # spec: how far past the threshold a face stays undecided rather than "unknown"
    unknown_eager_within: float  # spec: a stranger this near someone gets the eager looks
    same_face_distance: float  # spec: farther than this from a track's own encodings is another face

    def need(self, track: Track, index: int, matcher: Matcher) -> str | None:
        """Is an encoding of this track due on frame `index`: FIRST_LOOK, RECHECK or None? Looks are
        spent where they can change what is shown: soon on new, doubted and nearly-named faces (first
        looks: they decide a name), rarely on settled ones (re-checks: they question one)."""
        since = index - track.last_encoded
        if since < 1:
            return None
        if track.doubt or not track.votes:
            return FIRST_LOOK
        every = self.detect_every
        pooled = track.pooled
        if not track.identity.decided and len(track.votes) < self.voting.window:
            # undecided: a face within reach of a name gets its second look on the next frame
            # (a known face is named within a few frames); others every detection round
            reachable = pooled is not None and pooled.distance <= matcher.threshold + self.unknown_gap
            due = (reachable and len(track.votes) < self.voting.agree) or since >= every
            return FIRST_LOOK if due else None
        if not track.identity.is_person:
            # shown as unknown, or undecided after a full window (just beyond the threshold): a known
            # face seen badly at first gets another look soon while its "unknown" event waits
            young = index - track.born < self.unknown_wait_frames
            near = pooled is not None and pooled.distance <= self.unknown_eager_within
            rounds = UNKNOWN_EAGER_RECHECK if young and near else UNKNOWN_RECHECK
            return RECHECK if since >= min(rounds * every, self.recheck_frames) else None
        if len(track.votes) < self.voting.agree:
            return FIRST_LOOK  # named by one close look: the door waits for a second one
        if since >= self.recheck_frames:
            return RECHECK
        return RECHECK if track.box.area >= REGROWTH * track.encoded_area and since >= every else None

    def breaks_claim(self, track: Track, encoding: np.ndarray, match: Match, matcher: Matcher) -> str | None:
        """Why this encoding cannot be the face the track has been following, or None if it can."""
        if track.embedding is None:
            return None
        if float(face_distance(track.embedding, encoding)) > self.same_face_distance:
            return "another face"
        if track.identity.is_stranger and match.name is not None:
            return f"{match.name} on a track shown as unknown"
        person = track.identity.person
        if person is not None:
            if match.name is not None and match.name != person:
                return f"{match.name}, not {person}"
            if matcher.distance_to(encoding, person) > matcher.threshold:
                return f"not within the threshold of {person}"
        return None

    def vote(self, track: Track, encoding: np.ndarray, match: Match, matcher: Matcher) -> bool:
        """Count an encoding that kept the claim: its vote, the pooled match, and the name if the votes and the
        pooled match now agree (a named track is never renamed: another person breaks the claim instead).
        True when what the track is decided to be changed."""
        track.confirmed = max(track.confirmed, track.chip_doubts)
        track.votes.append(match)
        track.encodings.append(encoding)
        track.embedding = np.mean(list(track.encodings)[-self.voting.window :], axis=0)
        pooled = matcher.match_one(track.embedding)
        track.pooled = pooled
        before = track.identity
        identity, distance = decide(list(track.votes), pooled, self.voting, matcher.threshold + self.unknown_gap)
        if identity.decided and (not track.identity.is_person or identity == track.identity):
            track.identity, track.distance = identity, distance
        return track.identity != before

    @staticmethod
    def shown(track: Track) -> Identity:
        """What the overlay and the log show: a doubted claim shows no name until an encoding confirms it."""
        return UNDECIDED if track.doubt else track.identity

    @staticmethod
    def reason(track: Track, matcher: Matcher, alive: bool | None) -> str | None:
        """Why the face shows no name (a Reason), None when it shows one."""
        if track.doubt and track.identity.decided:
            return Reason.CHECKING
        if track.identity.is_person:
            return Reason.BLINK if alive is False else None
        pooled = track.pooled
        if pooled is None:
            return Reason.LOOKING
        if pooled.distance > matcher.threshold:
            return Reason.TOO_FAR
        if pooled.margin < matcher.margin:
            return Reason.MARGIN
        return Reason.VOTES
