"""The fleet page: one static site of what every stand serves, how each model is doing and
what the branch environments hold (`modelci fleet`)."""
