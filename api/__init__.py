"""Vercel entry points, one module per endpoint group (files starting with _ are not functions)."""
