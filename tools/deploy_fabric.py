"""Deploy the Fabric Real-Time Intelligence items in fabric/workspace/ to a Fabric workspace with fabric-cicd.

    az login
    python -m tools.deploy_fabric --workspace-id <workspace guid> --cosmos-connection-id <connection guid>

The Eventhouse and its `fraud` KQL database (DatabaseSchema.kql: table, mapping, view, function), the
Eventstream from the Cosmos DB `scored` container's change feed, and the Real-Time Dashboard are published
in fabric-cicd's own order (KQL database before the Eventstream and the dashboard that point at it). fabric-cicd
rewrites the items' logical ids to the deployed ids and fills the dashboard's cluster address; the Cosmos DB
connection id reaches the Eventstream through fabric/workspace/parameter.yml. Items of other types in the
workspace are left alone: nothing is unpublished. Sign-in is the Azure CLI's (`az login`), whose account must be
Contributor or more on the workspace and a user of the Fabric connection. Steps: docs/fabric.md.
Not run by this repository's CI: there is no Fabric capacity here (tests/infra/test_fabric.py reads the items
offline the way fabric-cicd does).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

ROOT: Final = Path(__file__).resolve().parent.parent
WORKSPACE_DIR: Final = ROOT / "fabric" / "workspace"
ITEM_TYPES: Final = ("Eventhouse", "KQLDatabase", "Eventstream", "KQLDashboard")
"""The item types fabric/workspace holds; fabric-cicd publishes only these."""
CONNECTION_ENV: Final = "FABRIC_COSMOS_CONNECTION_ID"
"""The variable parameter.yml reads (`$ENV:...`) for the Eventstream source's Fabric connection."""
ENVIRONMENT: Final = "azd"
"""fabric-cicd's target environment name; parameter.yml applies its one value to any (`_ALL_`)."""


def _guid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a GUID: {text!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.deploy_fabric", description=__doc__.split("\n", 1)[0])
    p.add_argument("--workspace-id", type=_guid, required=True, help="the Fabric workspace (its URL holds the id)")
    p.add_argument(
        "--cosmos-connection-id",
        type=_guid,
        default=os.environ.get(CONNECTION_ENV) or None,
        help=f"the Fabric connection to the Cosmos DB account (Manage connections); default ${CONNECTION_ENV}",
    )
    p.add_argument("--dry-run", action="store_true", help="sign in and list what would be published; publish nothing")
    return p


def fabric_workspace(workspace_id: str, connection_id: str, credential: TokenCredential) -> Any:
    """fabric-cicd's view of fabric/workspace for `workspace_id`, with the connection id in its parameters."""
    import fabric_cicd  # type: ignore[import-untyped]

    os.environ[CONNECTION_ENV] = connection_id
    fabric_cicd.append_feature_flag("enable_environment_variable_replacement")
    return fabric_cicd.FabricWorkspace(
        workspace_id=workspace_id,
        repository_directory=str(WORKSPACE_DIR),
        item_type_in_scope=list(ITEM_TYPES),
        environment=ENVIRONMENT,
        token_credential=credential,
    )


def main(argv: Sequence[str] | None = None, credential: TokenCredential | None = None) -> int:
    args = parser().parse_args(argv)
    if args.cosmos_connection_id is None:
        parser().error(f"--cosmos-connection-id (or ${CONNECTION_ENV}) is required: the Eventstream's source needs it")
    import fabric_cicd
    from azure.identity import AzureCliCredential

    workspace = fabric_workspace(args.workspace_id, args.cosmos_connection_id, credential or AzureCliCredential())
    if args.dry_run:
        workspace._refresh_repository_items()
        items = workspace.repository_items
        for item_type in ITEM_TYPES:
            for name in sorted(items.get(item_type, {})):
                print(f"would publish {item_type} {name}")
        return 0
    try:
        fabric_cicd.publish_all_items(workspace)
    except Exception:
        logger.exception("fabric-cicd could not publish fabric/workspace to workspace %s", args.workspace_id)
        return 1
    print(f"published {', '.join(ITEM_TYPES)} to workspace {args.workspace_id}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
