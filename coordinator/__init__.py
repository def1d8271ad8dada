"""What every cluster member shares: the catalog, the error model, and (later) membership and placement."""
