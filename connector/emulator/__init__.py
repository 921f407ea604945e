"""Local Gmail API + Google OAuth emulator (aiohttp, loopback) for demo, tests and benchmarks.

Start it with `connector emulator` or `connector.emulator.server.run_emulator`; see server.py.
"""
