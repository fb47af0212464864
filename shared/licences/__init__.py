"""Keys and licences for stream sessions: HLS AES-128 key, EME ClearKey, DRM licence proxy."""
