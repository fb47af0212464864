"""Entitlements: what a user may play (written by commerce, read by playback). See service.py."""
