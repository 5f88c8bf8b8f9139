"""Test support: settings builders, a cuttable TCP proxy, drainer subprocesses."""
