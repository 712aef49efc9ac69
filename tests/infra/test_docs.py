"""The Azure, Power BI and Fabric instructions in README.md and docs/ say what the code and templates do.

Each check pins a finding of the team's Azure review that was a documentation defect: a command that
would fail as written, or a step that cannot work.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    ROOT / "docs" / "deploy.md",
    ROOT / "powerbi" / "report-layout.md",
    ROOT / "fabric" / "README.md",
]


def _text(path: Path) -> str:
    """The page with each line break and its indentation folded into one space, so wrapped commands match."""
    return re.sub(r"\s*\n\s*", " ", path.read_text(encoding="utf-8"))


def _all() -> str:
    return "\n".join(_text(p) for p in DOCS)


def test_every_publish_command_names_the_language() -> None:
    """`func azure functionapp publish` without --python fails on a fresh clone (review A3)."""
    commands = re.findall(r"func azure functionapp publish [^`]*", _all())
    assert len(commands) >= 2
    for command in commands:
        assert "--python" in command, command


def test_every_provision_powerbi_command_exists() -> None:
    """The docs use only the tool's subcommands and options; `create` is gone (Power BI review A1, A4-A6)."""
    from tools.provision_powerbi import parser

    commands = re.findall(r"python -m tools\.provision_powerbi (\w+(?: --[\w-]+ \w+)*)", _all())
    assert len(commands) >= 4
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "check" and len(argv) == 1:
            continue  # a mention of the subcommand in prose, not a command to run
        parser().parse_args(argv)
    assert "provision_powerbi create" not in _all()


def test_live_report_uses_the_website_model_table() -> None:
    """A model created in the website has the table RealTimeData, not ScoredTransactions (review A2)."""
    layout = (ROOT / "powerbi" / "report-layout.md").read_text(encoding="utf-8")
    dax = "\n".join(re.findall(r"```dax\n(.*?)```", layout, flags=re.DOTALL))
    assert "RealTimeData[" in dax
    assert "ScoredTransactions" not in dax
    tables = set(re.findall(r"\b(\w+)\[", dax)) | set(re.findall(r"COUNTROWS \( (\w+) \)", dax))
    assert tables == {"RealTimeData"}


def test_historic_data_analysis_is_required_not_optional() -> None:
    """Without it no report can be built on the model (review A3): every Power BI text says 'on'."""
    for path in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        text = _text(path)
        assert re.search(r"historic data analysis on", text, flags=re.IGNORECASE), path.name
        assert "if you want reports" not in text, path.name


def test_teardown_purges_and_service_principals_are_covered() -> None:
    """azd down without --purge blocks the next azd up (soft-deleted vault); a service principal needs
    AZURE_PRINCIPAL_TYPE (review B4, A2)."""
    for path in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        text = _text(path)
        assert "azd down --purge" in text, path.name
        assert "AZURE_PRINCIPAL_TYPE ServicePrincipal" in text, path.name
    assert "list-flexconsumption-locations" in _text(ROOT / "docs" / "deploy.md")


def test_deployed_containers_are_listed_in_full() -> None:
    """deploy.md names every container cosmos.bicep creates, history to merchants included (review D)."""
    cosmos = _text(ROOT / "infra" / "modules" / "cosmos.bicep")
    params = re.findall(r"param (\w+)ContainerName string", cosmos)
    assert params == ["scored", "rejected", "history", "profiles", "labels", "merchants", "lease"]
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    row = next(line for line in deploy.splitlines() if line.startswith("| Cosmos DB for NoSQL"))
    for container in ("scored", "rejected", "history", "profiles", "labels", "merchants", "leases"):
        assert f"`{container}`" in row, container
    assert "containers scored/rejected/history/profiles/labels/merchants/leases" in deploy
    listed = "`scored`, `rejected`, `history`, `profiles`, `labels`, `merchants` and `leases`"
    assert listed in _text(ROOT / "README.md")


def test_local_runs_against_azure_use_their_own_consumer_group() -> None:
    """A local func start against Azure must not share the scorer's group, and needs host storage (review B6)."""
    for path in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        text = _text(path)
        assert re.search(r"EVENT_HUB_CONSUMER_GROUP`? (=|to) `local`", text), path.name
        assert "Azurite" in text, path.name


def test_python_version_matches_the_template() -> None:
    """The deployed runtime the docs name is the one functionapp.bicep sets."""
    bicep = _text(ROOT / "infra" / "modules" / "functionapp.bicep")
    (version,) = re.findall(r"version: '(3\.\d+)'", bicep)
    deploy = _text(ROOT / "docs" / "deploy.md")
    assert f"Python {version}" in deploy
    assert not re.search(r"Python 3\.(?!13\b)\d+", deploy)


def test_nothing_claims_to_have_run_on_azure_or_fabric() -> None:
    """Each of these pages says what was not run here."""
    assert "not run by this repository's CI" in _text(ROOT / "docs" / "deploy.md")
    assert "None of it was run by this repository's CI" in _text(ROOT / "fabric" / "README.md")
    assert "None of this was exercised by this repository's CI" in _text(ROOT / "powerbi" / "report-layout.md")


def test_readme_layout_table_matches_the_tree() -> None:
    """Every path the Layout table names exists, and every module of shared/ and model/training/ is named in its row."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+)`[^|]*\| (.*) \|$", table, flags=re.M)}
    for path in rows:
        if "*" not in path:
            assert (ROOT / path).exists(), f"the Layout table names {path}, which does not exist"
    folders = [p for p in (ROOT / "shared").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    folders.append(ROOT / "model" / "training")
    for folder in folders:
        key = f"{folder.relative_to(ROOT)}/"
        assert key in rows, f"no Layout row for {key}"
        for module in sorted(folder.glob("*.py")):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in rows[key], f"{key}{module.name} is not in its Layout row"
    for module in sorted((ROOT / "shared").glob("*.py")):
        if module.name != "__init__.py":
            assert f"`{module.name}`" in rows["shared/*.py"], f"shared/{module.name} is not in the Layout table"
