"""Sessions: backend-agnostic state, events and the manager that owns them."""
