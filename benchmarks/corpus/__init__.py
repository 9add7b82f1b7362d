"""Validation corpus for nmf4d: scans from simulators nmf4d was not designed on."""
