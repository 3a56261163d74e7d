"""Names (issue 17): one normal form (NFC) wherever a name is compared, and no name that only looks like
an enrolled one. Gallery folders are made with real photos; names are spelled as macOS writes them (NFD)."""

from __future__ import annotations

import logging
import shutil
import unicodedata
from pathlib import Path

import pytest

from livecam.cli import main
from livecam.engine.batch import EngineSettings
from livecam.engine.gallery import load_gallery
from livecam.names import NameError_, lookalike, skeleton, validate_name

ARIE = "Arié_Sharon"  # NFC: é is one code point
ARIE_NFD = unicodedata.normalize("NFD", ARIE)  # e + U+0301, as macOS and some tools write it

# each kind of look-alike of "Bill_Clinton"
LOOKALIKES = {
    "cyrillic": "\u0412\u0456ll_Clinton",  # Віll_Clinton: Cyrillic В and і
    "greek": "Bill_Cl\u03b9nt\u03bfn",  # Greek iota and omicron
    "no-break space": "Bill\u00a0Clinton",
    "space": "Bill Clinton",
    "fullwidth": "\uff22\uff49\uff4c\uff4c\uff3f\uff23\uff4c\uff49\uff4e\uff54\uff4f\uff4e",  # Ｂｉｌｌ＿Ｃｌｉｎｔｏｎ
    "case": "bill_clinton",
    "variation selector": "Bill_Clinton\ufe0f",
}
# invisible fillers: refused as names at all, --force or not
FILLERS = {"hangul filler": "Bill_Clinton\u3164", "choseong filler": "\u115fBill_Clinton", "zero width": "Bi\u200bll"}


def _gallery(root: Path, data: Path, people: dict[str, tuple[str, list[int]]]) -> Path:
    """{folder name as spelled on disk: (LFW person, photo numbers)}"""
    for folder, (person, numbers) in people.items():
        (root / folder).mkdir(parents=True)
        for n in numbers:
            shutil.copy(data / "identities" / person / f"{n}.jpg", root / folder / f"{n}.jpg")
    return root


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


# -- the rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LOOKALIKES)
def test_each_kind_of_lookalike_has_the_enrolled_names_skeleton(kind):
    name = LOOKALIKES[kind]
    assert validate_name(name)  # a name in its own right...
    assert skeleton(name) == skeleton("Bill_Clinton")
    assert lookalike(name, ["Ada", "Bill_Clinton"]) == "Bill_Clinton"  # ...that looks like an enrolled one


def test_different_names_and_the_same_name_are_no_lookalikes():
    enrolled = ["Bill_Clinton", ARIE, "张伟"]
    for name in ("Bill_Clinton", ARIE_NFD, "Arie_Sharon", "Bill_Clintons", "张伟", "Hillary_Clinton"):
        assert lookalike(name, enrolled) is None
    assert validate_name(ARIE_NFD) == ARIE


@pytest.mark.parametrize("kind", FILLERS)
def test_invisible_fillers_are_refused_in_any_name(kind):
    with pytest.raises(NameError_, match="invisible|control"):
        validate_name(FILLERS[kind])


# -- one normal form: scan, remove, rename, enroll ------------------------------------------------


def test_a_folder_spelled_in_nfd_is_the_nfc_person_and_is_removed_by_the_nfc_name(tmp_path, data, capsys):
    """`gallery remove "Arié_Sharon"` said removed while the NFD-spelled folder stayed enrolled,
    and with only that folder the person could not be removed at all."""
    root = _gallery(tmp_path / "kf", data, {ARIE_NFD: ("Ariel_Sharon", [1, 2])})
    assert load_gallery(root, EngineSettings(), 1).names == [ARIE]  # scanned as NFC
    assert main(["gallery", "remove", ARIE, "--known-faces", str(root)]) == 0
    assert _folders(root) == []
    assert load_gallery(root, EngineSettings(), 1).names == []

    # both spellings at once (photos copied from a Mac into a gallery made on Linux): both go
    root = _gallery(tmp_path / "kf2", data, {ARIE_NFD: ("Ariel_Sharon", [1]), ARIE: ("Ariel_Sharon", [2])})
    assert load_gallery(root, EngineSettings(), 1).counts() == {ARIE: 2}  # one person
    capsys.readouterr()
    assert main(["gallery", "remove", ARIE_NFD, "--known-faces", str(root)]) == 0
    assert "(2 photo(s))" in capsys.readouterr().out
    assert _folders(root) == [] and load_gallery(root, EngineSettings(), 1).names == []


def test_rename_finds_an_nfd_folder_and_refuses_a_name_enrolled_in_another_spelling(tmp_path, data, capsys):
    root = _gallery(tmp_path / "kf", data, {ARIE_NFD: ("Ariel_Sharon", [1, 2]), "Bob": ("Colin_Powell", [1])})
    load_gallery(root, EngineSettings(), 1)  # the cache
    # B collides with an enrolled name after normalisation: Bob's photos would have joined Ariel's
    assert main(["gallery", "rename", "Bob", ARIE, "--known-faces", str(root)]) == 2
    assert "already enrolled" in capsys.readouterr().err
    assert _folders(root) == sorted(["Bob", ARIE_NFD])
    assert main(["gallery", "rename", "Bob", ARIE, "--known-faces", str(root), "--force"]) == 2  # never
    assert main(["gallery", "rename", ARIE, "Ariel", "--known-faces", str(root)]) == 0
    assert _folders(root) == ["Ariel", "Bob"]
    g = load_gallery(root, EngineSettings(), 1)
    assert g.counts() == {"Ariel": 2, "Bob": 1} and g.encoded_now == 0  # the cache followed


def test_rename_to_a_lookalike_is_refused_unless_forced(tmp_path, data, capsys, caplog):
    root = _gallery(tmp_path / "kf", data, {"Bill_Clinton": ("Bill_Clinton", [1]), "Bob": ("Colin_Powell", [1])})
    # the person's own name in another case is no look-alike of anyone else
    assert main(["gallery", "rename", "Bill_Clinton", "bill_clinton", "--known-faces", str(root)]) == 0
    assert main(["gallery", "rename", "bill_clinton", "Bill_Clinton", "--known-faces", str(root)]) == 0
    fake = LOOKALIKES["cyrillic"]
    assert main(["gallery", "rename", "Bob", fake, "--known-faces", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "looks like 'Bill_Clinton'" in err and "\\u0412\\u0456ll_Clinton" in err
    assert _folders(root) == ["Bill_Clinton", "Bob"]
    with caplog.at_level(logging.WARNING):
        assert main(["gallery", "rename", "Bob", fake, "--known-faces", str(root), "--force"]) == 0
    assert "looks like 'Bill_Clinton'" in caplog.text and _folders(root) == sorted(["Bill_Clinton", fake])


def test_enroll_adds_to_the_folder_already_there_in_nfd(tmp_path, data, capsys):
    root = _gallery(tmp_path / "kf", data, {ARIE_NFD: ("Ariel_Sharon", [1])})
    photo = data / "identities" / "Ariel_Sharon" / "3.jpg"
    assert main(["enroll", ARIE, str(photo), "--known-faces", str(root)]) == 0
    assert _folders(root) == [ARIE_NFD] and len(list((root / ARIE_NFD).iterdir())) == 2


# -- look-alike names at enroll and promote --------------------------------------------------------


@pytest.mark.parametrize("kind", LOOKALIKES)
def test_enroll_under_a_lookalike_name_is_refused_unless_forced(tmp_path, data, capsys, caplog, kind):
    root = _gallery(tmp_path / "kf", data, {"Bill_Clinton": ("Bill_Clinton", [1])})
    fake, photo = LOOKALIKES[kind], data / "identities" / "Colin_Powell" / "1.jpg"
    assert main(["enroll", fake, str(photo), "--known-faces", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "looks like 'Bill_Clinton', already enrolled" in err and "--force" in err
    assert _folders(root) == ["Bill_Clinton"]
    with caplog.at_level(logging.WARNING):
        assert main(["enroll", fake, str(photo), "--known-faces", str(root), "--force"]) == 0
    assert "looks like 'Bill_Clinton'" in caplog.text
    assert sorted(load_gallery(root, EngineSettings(), 1).names) == sorted(["Bill_Clinton", validate_name(fake)])


@pytest.mark.parametrize("kind", FILLERS)
def test_enroll_under_a_name_with_an_invisible_filler_is_refused_even_when_forced(tmp_path, data, capsys, kind):
    root = _gallery(tmp_path / "kf", data, {"Bill_Clinton": ("Bill_Clinton", [1])})
    photo = data / "identities" / "Colin_Powell" / "1.jpg"
    for force in ([], ["--force"]):
        assert main(["enroll", FILLERS[kind], str(photo), "--known-faces", str(root), *force]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert _folders(root) == ["Bill_Clinton"]


def test_a_folder_with_an_invisible_filler_is_not_enrolled(tmp_path, data, caplog):
    root = _gallery(tmp_path / "kf", data, {FILLERS["hangul filler"]: ("Colin_Powell", [1])})
    with caplog.at_level(logging.WARNING):
        assert load_gallery(root, EngineSettings(), 1).names == []
    assert "invisible" in caplog.text


def test_promote_under_a_lookalike_name_is_refused_unless_forced(tmp_path, data, capsys):
    from datetime import datetime, timezone

    import cv2

    from livecam.door.events import UnknownStore

    root = _gallery(tmp_path / "kf", data, {"Bill_Clinton": ("Bill_Clinton", [1])})
    crop = cv2.imread(str(data / "identities" / "Colin_Powell" / "1.jpg"))
    visitor = UnknownStore(tmp_path / "unknown").save(crop, 1, datetime.now(timezone.utc)).stem
    config = tmp_path / "config.yaml"
    config.write_text(f"known_faces: {root}\ndoor:\n  unknown_dir: {tmp_path / 'unknown'}\n")
    fake = LOOKALIKES["no-break space"]
    assert main(["--config", str(config), "unknown", "promote", visitor, fake]) == 2
    assert "looks like 'Bill_Clinton'" in capsys.readouterr().err and _folders(root) == ["Bill_Clinton"]
    assert main(["--config", str(config), "unknown", "promote", visitor, fake, "--force"]) == 0
    assert _folders(root) == ["Bill_Clinton", fake]
