"""Who a face is, as livecam has decided so far: undecided, a stranger, or a person.

A bare string that can be a name or mean "unknown" invites a person named
"unknown" (now refused, `names.py`) and checks like `name not in (None,
"unknown")` everywhere. Inside livecam a face's identity is this type; the
string forms ("unknown", a name, null) exist only at the edges, in the
`--log-json` and event contracts and on screen (`label`).
"""

from __future__ import annotations

from dataclasses import dataclass

STRANGER_LABEL = "unknown"  # what the contracts and the overlay call a stranger


@dataclass(frozen=True, slots=True)
class Identity:
    person: str | None = None  # the enrolled person, when one is decided
    decided: bool = False

    @staticmethod
    def of(person: str) -> Identity:
        return Identity(person, True)

    @property
    def is_person(self) -> bool:
        return self.person is not None

    @property
    def is_stranger(self) -> bool:
        return self.decided and self.person is None

    @property
    def label(self) -> str | None:
        """The contracts' form: the person's name, "unknown" for a stranger, None while undecided."""
        return self.person if self.person is not None else (STRANGER_LABEL if self.decided else None)


UNDECIDED = Identity()
STRANGER = Identity(None, True)
