"""Transcoding: queued jobs turning an uploaded source into protected HLS and DASH renditions."""
