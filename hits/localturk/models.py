"""State of the offline MTurk-protocol endpoint (simulated requester account and workers)."""
