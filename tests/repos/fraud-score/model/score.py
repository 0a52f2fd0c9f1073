"""Flag one day's transactions with the model in MODEL_URI."""

import argparse
import os
from datetime import date
from pathlib import Path

import mlflow.pyfunc
from transactions import transactions

parser = argparse.ArgumentParser()
parser.add_argument("--day", default=date.today().isoformat())
day = date.fromisoformat(parser.parse_args().day)

model = mlflow.pyfunc.load_model(os.environ["MODEL_URI"])
data = transactions(2000, seed=day.toordinal())
scored = data.assign(flagged=model.predict(data[["amount", "foreign", "night"]]))
output = Path(os.environ.get("MODELCI_OUTPUT_DIR", ".")) / "flags" / f"{day}.csv"
output.parent.mkdir(parents=True, exist_ok=True)
scored.to_csv(output, index=False)
print(f"flagged {int(scored.flagged.sum())} of {len(scored)} transactions")
