"""The door: what a run's decisions mean (events, the audit log, the stranger crops), what they set off (actions,
webhooks), and the gallery's care (enrolling, promoting a stranger, renaming, calibrating the threshold).

Everything outside the door imports these names from here."""

from __future__ import annotations

from .actions import Action, ActionRunner
from .calibrate import calibrate, histogram_png, recommendation, write_plot
from .enroll import (
    EnrollError,
    check_new_name,
    enroll_from_source,
    enroll_images,
    people_photos,
    person_folder,
    person_photos,
    promote_visitor,
    remove_person,
    rename_person,
)
from .events import (
    AuditLog,
    DoorPolicy,
    Event,
    EventHandler,
    EventSink,
    Retention,
    UnknownStore,
    Visitor,
    audit_records,
)

__all__ = [
    # events, and who hears them
    "AuditLog",
    "DoorPolicy",
    "Event",
    "EventHandler",
    "EventSink",
    "Retention",
    "audit_records",
    "Action",
    "ActionRunner",
    # strangers' crops
    "UnknownStore",
    "Visitor",
    # the gallery's care
    "EnrollError",
    "check_new_name",
    "enroll_from_source",
    "enroll_images",
    "people_photos",
    "person_photos",
    "person_folder",
    "promote_visitor",
    "remove_person",
    "rename_person",
    # the threshold, from the gallery's own distances
    "calibrate",
    "histogram_png",
    "recommendation",
    "write_plot",
]
