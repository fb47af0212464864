"""Stream sessions: starting playback (visibility, geo, maturity, entitlement, limits), heartbeats."""
