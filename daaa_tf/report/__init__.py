"""The results report: tables (results.md/json) and plots."""
