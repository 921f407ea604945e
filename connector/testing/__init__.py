"""Fakes of the ports: real code, used by tests, the benchmarks and the preset-accounts app.

Each fake has a conformance test against its real twin; none is imported by the service path.
"""
