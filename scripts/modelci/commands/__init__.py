"""One module per `modelci` subcommand: `add_arguments(parser)` and `run(args) -> int`."""
