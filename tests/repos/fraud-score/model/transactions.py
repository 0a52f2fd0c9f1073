"""A synthetic sample of card transactions, some of them fraudulent."""

import numpy as np
import pandas as pd


def transactions(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fraud = rng.random(rows) < 0.05
    return pd.DataFrame(
        {
            "amount": np.where(fraud, rng.lognormal(6, 1, rows), rng.lognormal(3.5, 1, rows)),
            "foreign": np.where(fraud, rng.random(rows) < 0.6, rng.random(rows) < 0.1),
            "night": np.where(fraud, rng.random(rows) < 0.5, rng.random(rows) < 0.15),
            "fraud": fraud,
        }
    )
