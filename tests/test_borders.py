"""The package's borders (docs/design.md, "The map"): which part may import which, read from the source's
own import statements (lazy imports inside functions too), so an arrow back up fails here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "livecam"
BASE = {"config", "models", "storage", "state", "names", "identity", "redact", "stopping", "cpu"}
# what each part may import besides itself and the base
MAY_IMPORT = {"base": set(), "engine": set(), "live": {"engine"}, "door": {"engine", "live"}}
MAY_IMPORT["connect"] = {"engine", "live", "door"}
# the edges, which may import everything: the command line, the web page (the same, in a browser), and the
# modules that build the stages from the config
EDGES = ("livecam.cli", "livecam.web", "livecam.wiring", "livecam.check", "livecam.__main__")


def part_of(module: str) -> str:
    """'live' for livecam.live.recognizer, 'base' for livecam.config, 'edge' for cli/, web/, wiring."""
    if module == "livecam" or module.startswith(EDGES) or module == "livecam.__init__":
        return "edge"
    head = module.split(".")[1]
    if head in MAY_IMPORT:
        return head
    assert head in BASE, f"{module}: in no part (add it to BASE or a subpackage)"
    return "base"


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module imported) for every `livecam` import in `source`, read as the code of `module`."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(node.lineno, n) for n in names if n == "livecam" or n.startswith("livecam.")]
    return out


def wrong_arrows(source: str, module: str, is_package: bool = False) -> list[str]:
    mine = part_of(module)
    if mine == "edge":
        return []
    wrong = []
    for line, target in imports_of(source, module, is_package):
        if target == "livecam.__version__":
            continue
        theirs = part_of(target)
        if theirs not in (mine, "base") and theirs not in MAY_IMPORT[mine]:
            wrong.append(f"{module}:{line}: {mine} imports {target} ({theirs})")
    return wrong


def side_doors(source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports of a part's inner modules from outside that part: the rest of livecam goes through the part's
    `__init__` (its few public names), so a module can move or split inside its part without touching others."""
    mine = module.split(".")[1] if module.count(".") else ""
    wrong = []
    for line, target in imports_of(source, module, is_package):
        names = target.split(".")
        if len(names) > 2 and names[1] in MAY_IMPORT and names[1] != "base" and names[1] != mine:
            wrong.append(f"{module}:{line}: imports {target}; import from livecam.{names[1]} instead")
    return wrong


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        yield path, ".".join(parts[:-1] if is_package else parts), is_package


def test_no_part_imports_a_part_above_it():
    wrong = []
    for path, module, is_package in modules():
        wrong += wrong_arrows(path.read_text(), module, is_package)
    assert wrong == []


def test_parts_are_entered_through_their_init():
    wrong = []
    for path, module, is_package in modules():
        wrong += side_doors(path.read_text(), module, is_package)
    assert wrong == []


def test_a_side_door_is_caught():
    assert side_doors("from ..engine.faces import Box\n", "livecam.live.tracking") == [
        "livecam.live.tracking:1: imports livecam.engine.faces; import from livecam.engine instead"
    ]
    assert side_doors("    from .live.capture import open_source\n".strip(), "livecam.wiring")
    assert not side_doors("from ..engine import Box\nfrom .matching import Match\n", "livecam.engine.faces")
    assert not side_doors("from .faces import Box\n", "livecam.engine.gallery")  # inside its own part


def test_an_arrow_back_up_is_caught():
    assert wrong_arrows("from ..live.loop import run_loop\n", "livecam.engine.faces") == [
        "livecam.engine.faces:1: engine imports livecam.live.loop (live)"
    ]
    assert wrong_arrows("from ..door.events import EventSink\n", "livecam.live.loop")
    assert wrong_arrows("from ..wiring import build_door\n", "livecam.door.events")  # wiring is an edge
    assert not wrong_arrows("from ..engine.faces import Box\nfrom ..config import Config\n", "livecam.live.loop")
