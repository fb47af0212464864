"""The media pipeline on local files: probe, ladder, encode, package, encrypt, images (no database)."""
