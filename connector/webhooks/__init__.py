"""Receiving webhooks: the HTTP view, signature verification and the contract's schemas."""
