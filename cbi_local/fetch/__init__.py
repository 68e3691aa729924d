"""Acquisition (`cbi fetch`): coverage gaps turned into exact download requests.

Only the planning step exists so far (`plan.py`: no network, no key, nothing spent). Downloading
through the databento client, FRED refresh and the daemon's `--fetch` are not built yet (issue 23).
"""
