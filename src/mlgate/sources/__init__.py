"""Where training rows come from: a small protocol and one module per kind of source."""
