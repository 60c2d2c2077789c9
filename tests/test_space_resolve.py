"""Which file a space argument means: user files win; shipped spaces by name, NAME.yaml,
spaces/NAME.yaml, search_spaces/NAME.yaml from any directory; errors that do not contradict
themselves; the loaded space says where it came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasl.common.errors import NaslError
from nasl.space import (
    describe_source,
    load_space,
    loads_space,
    resolve_space,
    shipped_dir,
    shipped_names,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["hybrid", "mobilenet", "nb201", "shufflenet", "squeezenet", "xception"]
FORMS = ("{}", "{}.yaml", "{}.yml", "spaces/{}.yaml", "search_spaces/{}.yaml",
         "nasl/spaces/{}.yaml", "spaces/{}")
MINE = "name: mine\nfamily: shufflenet\nparams: {groups: {choices: [3, 8]}}\n"


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory outside the repository."""
    assert REPO not in tmp_path.resolve().parents
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_shipped_names_are_the_six() -> None:
    assert shipped_names() == SHIPPED


@pytest.mark.parametrize("form", FORMS)
def test_every_form_names_every_shipped_space_outside_the_repo(outside: Path, form: str) -> None:
    for name in SHIPPED:
        found = resolve_space(form.format(name))
        assert (found.path, found.kind) == (shipped_dir() / f"{name}.yaml", "shipped"), form
        assert found.source == f"{name}.yaml"


def test_loaded_space_says_where_it_came_from(outside: Path) -> None:
    for name in SHIPPED:
        space = load_space(f"spaces/{name}.yaml")
        assert space == load_space(name) == load_space(f"search_spaces/{name}.yaml")
        assert space.source_kind == "shipped"
        assert space.source_path == str(shipped_dir() / f"{name}.yaml")
        assert Path(space.source_path).is_absolute() and Path(space.source_path).is_file()
        assert describe_source(space) == (f"space {name!r}: shipped file "
                                          f"{shipped_dir() / f'{name}.yaml'}")
    # overrides and budgets keep the source
    s = load_space("spaces/shufflenet.yaml").with_overrides({"groups": 3}).with_budget({})
    assert (s.source_kind, s.source_path) == ("shipped", str(shipped_dir() / "shufflenet.yaml"))
    text = loads_space(MINE, "t.yaml")
    assert (text.source_kind, text.source_path) == ("text", "")
    assert describe_source(text) == "space 'mine': YAML text (t.yaml)"


def test_repository_links_give_the_shipped_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    if not (REPO / "spaces" / "shufflenet.yaml").exists():
        pytest.skip("not a source checkout")
    monkeypatch.chdir(REPO)
    for folder in ("spaces", "search_spaces"):
        assert sorted(p.stem for p in (REPO / folder).glob("*.yaml")) == SHIPPED
        for name in SHIPPED:
            link = REPO / folder / f"{name}.yaml"
            assert link.read_bytes() == (shipped_dir() / f"{name}.yaml").read_bytes()
            space = load_space(f"{folder}/{name}.yaml")
            assert space == load_space(name)
            assert space.source_kind in ("shipped", "user file")  # editable / plain install


@pytest.mark.parametrize("form", ["spaces/shufflenet.yaml", "search_spaces/shufflenet.yaml",
                                  "shufflenet.yaml", "shufflenet"])
def test_a_user_file_at_that_path_wins(outside: Path, form: str) -> None:
    path = outside / form
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MINE)
    space = load_space(form)
    assert space.name == "mine" and space.source_kind == "user file"
    assert space.source_path == str(path.absolute())
    assert describe_source(space) == f"space 'mine': user file {path.absolute()}"
    # other shipped spaces in the same folder form still resolve
    assert resolve_space(form.replace("shufflenet", "mobilenet")).kind == "shipped"


def test_a_directory_at_that_path_is_an_error(outside: Path) -> None:
    (outside / "spaces" / "shufflenet.yaml").mkdir(parents=True)
    with pytest.raises(NaslError, match="spaces/shufflenet.yaml: is a directory"):
        load_space("spaces/shufflenet.yaml")
    assert resolve_space("spaces/mobilenet.yaml").kind == "shipped"  # a folder 'spaces' is fine


def test_git_link_checked_out_as_text_is_followed(outside: Path) -> None:
    """Without symlink support git writes the link target into a small text file."""
    (outside / "spaces").mkdir()
    target = shipped_dir() / "xception.yaml"
    (outside / "spaces" / "xception.yaml").write_text(os.path.relpath(target, outside / "spaces"))
    found = resolve_space("spaces/xception.yaml")
    assert (found.path, found.kind) == (target, "shipped")
    (outside / "spaces" / "xception.yaml").write_text("just: some yaml\n")
    assert resolve_space("spaces/xception.yaml").kind == "user file"


@pytest.mark.parametrize(("arg", "parts", "suggestion"), [
    ("nope.yaml", ["and no shipped space is named 'nope'"], None),
    ("shufflenett", ["and no shipped space is named 'shufflenett'"], "'shufflenet'"),
    ("spaces/shufflenett.yaml", ["no shipped space is named 'shufflenett'"],
     "'spaces/shufflenet.yaml'"),
    ("search_spaces/mobilenett.yml", [], "'search_spaces/mobilenet.yml'"),
    ("foo/shufflenet.yaml", ["the shipped space 'shufflenet' is named 'spaces/shufflenet.yaml'"],
     None),
    ("foo/shufflenett.yaml", [], "'spaces/shufflenet.yaml'"),
    ("./shufflenet", ["the shipped space 'shufflenet' is named"], None),
])
def test_not_found_says_what_was_tried_and_what_exists(outside: Path, arg: str,
                                                       parts: list[str],
                                                       suggestion: str | None) -> None:
    with pytest.raises(NaslError) as e:
        load_space(arg)
    msg = str(e.value)
    assert msg.startswith(f"no such space file {arg!r} (looked for "
                          f"{(outside / arg).absolute()})")
    assert "shipped spaces: hybrid, mobilenet, nb201, shufflenet, squeezenet, xception" in msg
    assert "\n" not in msg
    for part in parts:
        assert part in msg
    if suggestion:
        assert f"did you mean {suggestion}?" in msg
    else:
        assert "did you mean" not in msg
    for name in SHIPPED:  # never "no shipped space ... <a name that is shipped>"
        assert f"no shipped space is named {name!r}" not in msg
