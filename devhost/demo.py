"""`make demo`: generate transactions and score them through the app's real function entry points.

No Azure needed: this process plays the host's part, handing the generator's Event Hubs output to
the scorer as trigger batches and printing what the scorer set on its Cosmos DB outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import azure.functions as func

from devhost.bindings import Out, documents, eventhub_batch, user_function


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="transactions to generate (max GENERATE_MAX_COUNT)")
    parser.add_argument("--batch-size", type=int, default=250, help="events per Event Hubs trigger batch")
    parser.add_argument("--show", type=int, default=3, help="flagged documents to print")
    args = parser.parse_args(argv)

    out: Out[list[str]] = Out()
    request = func.HttpRequest(method="POST", url="/api/transactions", params={"count": str(args.count)}, body=b"")
    response = user_function("GenerateTransactions")(request, out)
    if response.status_code != 200:
        print(response.get_body().decode(), file=sys.stderr)
        return 1
    bodies = [b.encode() for b in out.get()]

    score = user_function("ScoreTransactions")
    scored_docs: list[dict[str, Any]] = []
    rejected_docs: list[dict[str, Any]] = []
    for start in range(0, len(bodies), args.batch_size):
        scored: Out[func.DocumentList] = Out()
        rejected: Out[func.DocumentList] = Out()
        score(eventhub_batch(bodies[start : start + args.batch_size], first_sequence_number=start), scored, rejected)
        scored_docs += documents(scored)
        rejected_docs += documents(rejected)

    flagged = [d for d in scored_docs if d["is_flagged"]]
    true_pos = sum(1 for d in flagged if d["is_fraud"])
    actual = sum(1 for d in scored_docs if d["is_fraud"])
    for doc in flagged[: args.show]:
        print(json.dumps(doc, indent=2))
    print(
        f"generated {len(bodies)}, scored {len(scored_docs)}, rejected {len(rejected_docs)}, "
        f"flagged {len(flagged)}; precision {true_pos / max(len(flagged), 1):.3f}, "
        f"recall {true_pos / max(actual, 1):.3f} against the generator's labels"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
