"""The slml command line (placeholder until the CLI lands)."""


def main() -> None:  # pragma: no cover
    raise SystemExit("slml CLI is being built")
