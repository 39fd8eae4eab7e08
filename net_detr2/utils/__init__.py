"""Small shared utilities: distributed helpers, event storage and writers, logging, environment."""
