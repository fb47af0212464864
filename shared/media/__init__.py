"""Media: direct uploads of source files, their sources and assets, and subtitle tracks."""
