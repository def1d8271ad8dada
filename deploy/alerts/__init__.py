"""Alert rules: their definition and rendering."""
