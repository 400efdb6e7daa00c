"""Example GDPR Art. 30 registers generated from provider metadata."""
