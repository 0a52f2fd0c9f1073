"""The lifecycle steps: the gate, the model's environment archive, deploying an environment,
moving versions through the stands with their own bytes, rollback, clean-up and retraining."""
