"""One module per benchmark section."""
