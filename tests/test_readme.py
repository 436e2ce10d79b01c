"""The README's examples run as written."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def python_block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_bucket_example_is_the_example_file():
    # tests/test_readme_examples.py runs it, with the README's other examples
    code = python_block_after("### An app that keeps its videos in its own bucket")
    example = (Path(__file__).resolve().parents[1] / "examples" / "test_my_app_bucket.py").read_text(encoding="utf-8")
    assert example.endswith(code)


def test_the_fixture_example_is_short():
    assert len(python_block_after("## Testing an app with the fixtures").strip().splitlines()) < 20


def test_the_constraint_table_names_real_tests():
    from ivh_mock.contract_tests import test_constraints as constraints

    named = re.findall(r"\| `(test_[a-z0-9_]+)`", README)
    assert len(named) >= 15
    for name in named:
        assert hasattr(constraints, name), f"README names {name}, which contract_tests/test_constraints.py lacks"


def plain(cell: str) -> str:
    """A table cell as a help text says it: no code marks, links reduced to their text."""
    return re.sub(r"\[([^]]+)\]\([^)]*\)", r"\1", cell.replace("\\|", "|")).replace("`", "").strip()


def table(after: str, header: str) -> list[list[str]]:
    """The cells of the first table under the heading `after` whose header row starts with `header`."""
    section = README.split(after, 1)[1]
    rows = section.split("\n" + header, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def options_of(parser) -> dict[str, object]:
    return {action.option_strings[-1]: action for action in parser._actions
            if action.option_strings and action.option_strings[-1] not in ("--help", "--version")}


def commands_of(parser) -> dict[str, object]:
    return parser._subparsers._group_actions[0].choices


def help_of(meaning: str, default: str) -> str:
    return f"{plain(meaning)} (default: {plain(default)})" if default else plain(meaning)


def test_the_configuration_table_is_the_serve_help():
    from ivh_mock.mock_server.serving.cli import build_parser

    options = options_of(commands_of(build_parser())["serve"])
    rows = {cells[0].split("`")[1].split()[0]: cells for cells in table("## Configuration", "| option |")}
    assert sorted(rows) == sorted(options), "README's configuration table and `ivh-mock serve --help` differ"
    for name, action in options.items():
        _, default, meaning = rows[name]
        assert action.help == help_of(meaning, default), name
        if action.default is not None:
            assert plain(default) == str(action.default), name


def test_the_ivh_tables_are_its_help():
    from ivh_mock.client.cli import EXIT_CODES, build_parser

    parser = build_parser()
    commands = commands_of(parser)
    listed = {plain(name).split()[0]: plain(what) for name, what in table("## The `ivh` command", "| command |")}
    assert listed == {name: command.description for name, command in commands.items()}
    rows = {cells[0].split("`")[1].split()[0]: cells for cells in table("## The `ivh` command", "| option |")}
    where: dict[str, list[str]] = {}
    for name, command in commands.items():
        for option in options_of(command):
            where.setdefault(option, []).append(name)
    assert sorted(rows) == sorted(where), "README's option table and `ivh --help` differ"
    for option, names in where.items():
        _, used_by, default, meaning = rows[option]
        everywhere = option in options_of(parser) and len(names) == len(commands)
        assert used_by == ("all" if everywhere else ", ".join(names)), option
        for name in names:
            assert options_of(commands[name])[option].help == help_of(meaning, default), (option, name)
    codes = {int(code): plain(meaning) for code, meaning in table("## The `ivh` command", "| code |")}
    assert codes == EXIT_CODES
