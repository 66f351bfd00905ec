"""Bulk onboarding: many domains across tenants from one CSV, journaled and resumable."""
