"""A face's identity is a type, and "unknown" a label only at the contracts' edge (identity.py)."""

from __future__ import annotations

from livecam.identity import STRANGER, STRANGER_LABEL, UNDECIDED, Identity


def test_identity_kinds_and_labels():
    ada = Identity.of("Ada")
    assert (ada.is_person, ada.is_stranger, ada.decided, ada.label) == (True, False, True, "Ada")
    assert (STRANGER.is_person, STRANGER.is_stranger, STRANGER.label) == (False, True, STRANGER_LABEL)
    assert (UNDECIDED.decided, UNDECIDED.label) == (False, None)
    assert ada == Identity.of("Ada") and ada != STRANGER != UNDECIDED
