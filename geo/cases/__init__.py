"""Cases: intake, the workflow from report to closure, and time limits (时限)."""
