"""Treasury core: payment registers, reconciliation, debtors, export (pure: decisions in, bytes out)."""
