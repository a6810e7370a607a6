"""mlgate: from rows in a database to a versioned, access-controlled prediction API."""

__version__ = "0.1.0"
