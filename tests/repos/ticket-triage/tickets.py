"""Support tickets and the team that handled them, made up from a few phrases."""

import random

PHRASES = {
    "billing": ["charged twice", "refund my payment", "invoice is wrong", "card was declined"],
    "outage": ["site is down", "cannot log in", "error 500 on checkout", "app keeps crashing"],
    "shipping": ["parcel never arrived", "tracking not updated", "wrong address", "late delivery"],
}


def tickets(rows: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, teams = [], []
    for _ in range(rows):
        team = rng.choice(sorted(PHRASES))
        words = rng.sample(PHRASES[team], 2) + rng.sample(["please", "help", "urgent", "hi"], 2)
        rng.shuffle(words)
        texts.append(" ".join(words))
        teams.append(team)
    return texts, teams
