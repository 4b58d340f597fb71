"""Reliability and security: faults, concurrency, crashes, hostile input, secrets."""
