"""Watching: playback positions (Redis-buffered, persisted to Postgres), continue watching, history."""
