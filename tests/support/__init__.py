"""Test-side stand-ins for third-party services, driven by their real SDKs."""
