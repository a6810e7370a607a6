"""A realistic demo table, customer churn, generated with a fixed seed (no download)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

TABLE = "customers"
TARGET = "churned"
ID_COLUMN = "customer_id"


def churn_frame(n_rows: int = 2_000, seed: int = 7) -> pd.DataFrame:
    """Customers of a subscription business: numeric and categorical columns, some missing."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n_rows, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["dsl", "fiber", "none"], n_rows, p=[0.4, 0.45, 0.15])
    payment = rng.choice(
        ["electronic-check", "mailed-check", "bank-transfer", "credit-card"], n_rows
    )
    tenure = rng.integers(0, 73, n_rows)
    monthly = np.round(
        20 + 25 * (internet == "dsl") + 55 * (internet == "fiber") + rng.normal(0, 8, n_rows), 2
    ).clip(18, 120)
    total = np.round(monthly * np.maximum(tenure, 1) + rng.normal(0, 20, n_rows), 2)
    senior = (rng.random(n_rows) < 0.16).astype(int)
    support_calls = rng.poisson(1.2, n_rows)
    logit = (
        -1.4
        + 1.3 * (contract == "month-to-month")
        - 0.6 * (contract == "two-year")
        - 0.045 * tenure
        + 0.018 * (monthly - 60)
        + 0.5 * (internet == "fiber")
        + 0.35 * support_calls
        + 0.3 * senior
        + 0.45 * (payment == "electronic-check")
    )
    churned = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            ID_COLUMN: [f"C{i:05d}" for i in range(1, n_rows + 1)],
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract,
            "internet_service": internet.astype(object),
            "payment_method": payment,
            "senior_citizen": senior,
            "support_calls": support_calls,
            TARGET: churned,
        }
    )
    # Real tables have holes: a few unknown totals and service types.
    frame.loc[rng.random(n_rows) < 0.03, "total_charges"] = np.nan
    frame.loc[rng.random(n_rows) < 0.02, "internet_service"] = None
    return frame


def write_sqlite(path: Path, frame: pd.DataFrame, table: str = TABLE) -> None:
    """Write `frame` as `table` into a SQLite file, replacing the table if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        frame.to_sql(table, conn, if_exists="replace", index=False)
