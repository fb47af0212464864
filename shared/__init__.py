"""Cinema Online platform package: domains and the infrastructure they share."""
