"""Benchmarks: figures users measure on their own hardware (``lipfault bench``)."""
