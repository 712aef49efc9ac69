"""`make benchmark-model`: our recipe and the handbook's baselines on the handbook's simulation and protocol.

Runs `seeds.run` (for each of `--seeds` seeds, the handbook's run simulated, split as its baseline
chapter does, its three baselines and the project's recipe fitted and measured), prints the tables
of `report.markdown` (the first seed in full, then every model's mean over the seeds) and writes
them (`--out`, default `model/BENCHMARK.md`) for the model card. The published baselines are the
handbook's figures on its own simulated data: if those measured here land near them, the simulation
is faithful.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Final

import numpy as np

from model.benchmark import report, seeds
from model.benchmark.measure import FitPredict, Settings
from model.training import recipe
from model.training.evaluate import IntArray

logger = logging.getLogger(__name__)

OUT: Final = Path("model/BENCHMARK.md")


def _parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(prog="python -m model.benchmark.run", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=d.seed, help="the first simulation's seed, shown in full")
    p.add_argument(
        "--seeds",
        type=int,
        default=d.seeds,
        metavar="N",
        help="simulations, seeds --seed to --seed + N - 1, summarised by their mean (default %(default)s)",
    )
    p.add_argument("--customers", type=int, default=d.customers)
    p.add_argument("--terminals", type=int, default=d.terminals)
    p.add_argument("--days", type=int, default=d.days, help="days simulated from 2018-04-01")
    p.add_argument("--train-start", type=date.fromisoformat, default=d.train_start, help="YYYY-MM-DD")
    p.add_argument("--train-days", type=int, default=d.train_days)
    p.add_argument("--delay-days", type=int, default=d.delay_days)
    p.add_argument("--test-days", type=int, default=d.test_days)
    p.add_argument("--jobs", type=int, default=d.jobs, help="threads for the random forest and XGBoost")
    p.add_argument("--out", type=Path, default=OUT, help="Markdown file for the model card (default %(default)s)")
    p.add_argument("--baselines-only", action="store_true", help="leave our recipe out")
    return p


def main(argv: Sequence[str] | None = None, fit_predict: FitPredict | None = None) -> int:
    """Parse options, run the benchmark, print the tables and write them to `--out`."""
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings(
        seed=args.seed,
        seeds=args.seeds,
        customers=args.customers,
        terminals=args.terminals,
        days=args.days,
        train_start=args.train_start,
        train_days=args.train_days,
        delay_days=args.delay_days,
        test_days=args.test_days,
        jobs=args.jobs,
    )
    try:
        settings.check()
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def ours(columns: Mapping[str, np.ndarray], train: IntArray, test: IntArray, seed: int) -> np.ndarray:
        return recipe.fit_predict(columns, train, test, seed, delay_days=settings.delay_days)

    chosen = None if args.baselines_only else (fit_predict or ours)
    text = report.markdown(seeds.run(settings, chosen))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
