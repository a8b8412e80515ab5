"""tfface.models."""
