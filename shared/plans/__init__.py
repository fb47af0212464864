"""Plans domain: plans and their prices, title offers (rent, buy, pay-per-view) and pay-per-view events."""
