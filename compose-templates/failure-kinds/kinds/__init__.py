"""Tiny application code the failure-kinds suite tests."""
