"""Create the fraud database and its containers in the local Cosmos DB emulator (docker-compose.yml).

The Functions host does not create them (the Cosmos DB trigger runs with
createLeaseContainerIfNotExists=false, as identity-based connections require on Azure), so run this
once after `docker compose up`:

    .venv/bin/python emulators/create_cosmos_containers.py

Names are the app's settings (their defaults are the names infra/modules/cosmos.bicep creates on Azure);
partition keys are `shared.contract.partitions.COSMOS_PARTITION_KEY_PATHS` and, for the labels and
merchants containers, their stores' `PARTITION_KEY` (tests/infra/test_templates.py keeps all in step
with the template). Indexing policies are left at the emulator's default: the vNext emulator does not
implement custom index policies yet (learn.microsoft.com/azure/cosmos-db/emulator-linux, feature support).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # run as a file, Python puts emulators/ on the path, not the repository
    sys.path.insert(0, _ROOT)

from shared.behaviour import merchant_store  # noqa: E402
from shared.contract.partitions import COSMOS_PARTITION_KEY_PATHS  # noqa: E402
from shared.labels import store as label_store  # noqa: E402

EMULATOR_ENDPOINT: Final = "https://localhost:8081/"
EMULATOR_KEY: Final = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
"""The emulator's fixed, published account key; not a secret."""
SETTINGS: Final = (
    ("scored", "COSMOS_SCORED_CONTAINER"),
    ("rejected", "COSMOS_REJECTED_CONTAINER"),
    ("history", "COSMOS_HISTORY_CONTAINER"),
    ("profiles", "COSMOS_PROFILES_CONTAINER"),
    ("labels", "COSMOS_LABELS_CONTAINER"),
    ("merchants", "COSMOS_MERCHANTS_CONTAINER"),
    ("leases", "COSMOS_LEASE_CONTAINER"),
)
"""(container's default name, the setting that renames it), for every container the app uses."""
PARTITION_KEYS: Final = {
    **COSMOS_PARTITION_KEY_PATHS,
    "labels": label_store.PARTITION_KEY,
    "merchants": merchant_store.PARTITION_KEY,
}


def containers(env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(container name, partition key path), named by the same settings the app reads."""
    env = dict(os.environ) if env is None else env
    return [(env.get(setting) or name, PARTITION_KEYS[name]) for name, setting in SETTINGS]


def main(argv: Sequence[str] | None = None) -> int:
    """Create what is missing; existing containers are left as they are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=EMULATOR_ENDPOINT)
    parser.add_argument("--database", default=os.environ.get("COSMOS_DATABASE") or "fraud")
    args = parser.parse_args(argv)

    from azure.cosmos import CosmosClient, PartitionKey

    # The emulator's certificate is self-signed; this script only ever talks to the local emulator.
    client = CosmosClient(args.endpoint, credential=EMULATOR_KEY, connection_verify=False)
    database = client.create_database_if_not_exists(id=args.database)
    for name, key in containers():
        database.create_container_if_not_exists(id=name, partition_key=PartitionKey(path=key))
        print(f"{args.database}/{name} (partition key {key})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
