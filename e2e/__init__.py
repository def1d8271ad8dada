"""Black-box fault campaign against a whole cluster of real processes (see e2e/README.md)."""
