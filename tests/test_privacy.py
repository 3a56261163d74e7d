"""Issue 5: nothing unpickles, nothing runs a shell string, biometric files are private."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "livecam").rglob("*.py")) + sorted((REPO / "benchmarks").glob("*.py"))


def test_no_pickle_anywhere():
    for path in SOURCES:
        text = path.read_text()
        assert not re.search(r"\bimport pickle\b|\bpickle\.|cPickle|joblib|allow_pickle=True", text), path
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, (path, call)


def test_no_shell_strings():
    for path in SOURCES:
        text = path.read_text()
        assert "shell=True" not in text and "os.system(" not in text and "os.popen(" not in text, path


def test_every_write_of_biometric_data_is_private():
    # photos, caches, crops, snapshots and encodings go through atomic_write_bytes (0600 by default);
    # logs are opened 0600. No module writes them with plain open(..., "w").
    for path in SOURCES:
        if path.relative_to(REPO).parts[0] != "livecam":
            continue
        text = path.read_text()
        assert not re.search(r"\.write_bytes\(|\.write_text\(|cv2\.imwrite\(", text), path
        for call in re.findall(r"os\.open\([^)]*\)", text):
            assert "O_CREAT" not in call or "0o600" in call or "PRIVATE_FILE" in call, (path, call)
