"""Signed delivery: tokens in the URL path, per-session manifests, the manifest endpoint."""
